"""The matrix test files: the real ones, the small fixtures the validator tests break one way at a
time, and `patched`, which writes a broken copy and says which line was marked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "matrix"
SMALL_MATRIX = FIXTURES / "small_escalation.yml"
SMALL_SIGNALS = FIXTURES / "small_signals.yml"
SMALL_EXPERTS = FIXTURES / "small_experts.yml"
SMALL_DOMAIN = FIXTURES / "small_domain.yml"

CONTRACT_INTENTS = [
    "greet", "goodbye", "affirm", "deny", "thank", "bot_challenge", "request_human", "inform",
    "order_status", "track_shipment", "return_item", "refund_request", "damaged_item", "invoice_copy",
    "invoice_wrong", "billing_dispute", "cancel_subscription", "change_plan", "license_activation",
    "password_reset", "account_compromised", "update_payment_method", "gdpr_request", "legal_threat",
    "formal_complaint", "product_question", "pricing", "opening_hours", "frustration",
    "upgrade_interest", "answer_rejected", "out_of_scope", "csat_rating",
]  # fmt: skip

MARK = "#!"

Edit = Tuple[str, str]


def patched(tmp_path: Path, base: Path, *edits: Edit) -> Tuple[Path, Optional[int]]:
    """Copy ``base`` with each unique snippet replaced; returns the path and the line marked ``#!``."""
    text = base.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"snippet must occur exactly once: {old!r}"
        text = text.replace(old, new)
    for sibling in (SMALL_MATRIX, SMALL_SIGNALS):  # the matrix names its signals file relative to itself
        if base.parent == sibling.parent and sibling != base and not (tmp_path / sibling.name).exists():
            shutil.copy(sibling, tmp_path / sibling.name)
    path = tmp_path / base.name
    path.write_text(text, encoding="utf-8")
    marked = [n for n, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(marked) <= 1
    return path, (marked[0] if marked else None)


ROW_ORDER_STATUS = "  order_status:\n    ai_may: answer\n    queue: support\n    description: Where is my order.\n"
"""The small matrix's order_status row, as it stands in the file (tests replace it)."""
