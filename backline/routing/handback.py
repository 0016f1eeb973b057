"""Hand-back limits: what an expert may leave to the AI when handing a conversation back.

Pure Python, shared by the routing engine (which enforces the limits), the consultation replies (which
record them) and the expert channels (which offer them). The intents a hand-back allows expire after
the matrix's ``hand_back.expires_after_minutes`` or with the session, whichever comes first.
"""
from __future__ import annotations

from typing import List, Mapping, Sequence, Tuple

FOLLOWUPS: Mapping[str, Tuple[str, ...]] = {
    "informational": ("opening_hours", "pricing", "product_question", "order_status", "track_shipment",
                      "invoice_copy", "upgrade_interest"),
    "order_status": ("order_status", "track_shipment"),
    "invoices": ("invoice_copy", "invoice_wrong"),
    "returns": ("return_item", "damaged_item"),
    "account": ("password_reset", "update_payment_method", "license_activation"),
    "plan_changes": ("change_plan", "upgrade_interest", "pricing"),
}
"""Follow-up types an expert may leave to the AI at hand-back, and the intents each allows."""

FOLLOWUP_LABELS: Mapping[str, str] = {
    "informational": "information questions (opening hours, prices, products, order status)",
    "order_status": "order status and tracking",
    "invoices": "invoices",
    "returns": "returns",
    "account": "account questions",
    "plan_changes": "plan changes",
}

ALWAYS_ALLOWED = frozenset({"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge"})
"""Small talk the AI may always handle after a hand-back, whatever the limits."""

INFORMATIONAL = FOLLOWUPS["informational"]
"""What the AI may answer while a handoff waits for a person (DESIGN.md: `human_joined` false)."""


class UnknownFollowup(ValueError):
    """A follow-up type that `FOLLOWUPS` does not define."""


def allowed_intents(followups: Sequence[str]) -> List[str]:
    """The intents the follow-up types allow, in `FOLLOWUPS` order."""
    unknown = [f for f in followups if f not in FOLLOWUPS]
    if unknown:
        raise UnknownFollowup(f"unknown follow-up types {unknown}; known: {', '.join(FOLLOWUPS)}")
    return list(dict.fromkeys(intent for f in followups for intent in FOLLOWUPS[f]))
