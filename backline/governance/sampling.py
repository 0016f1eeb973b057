"""QA sampling: a configured share (governance.yml ``qa_sampling``) of conversations the AI handled
alone, of AI drafts an expert approved unchanged and of each queue's closed cases goes to the review
queue on the dashboard.

Which ones is a hash of the kind and the id (SHA-256 with the sampling ``seed``), not a random draw: every
hub picks the same ones, a rerun adds nothing twice (`ConsultationStore.add_review` keeps one row per
subject), and over many subjects the share taken is the configured one. A conversation is sampled once it
has been quiet ``idle_minutes``; a case once it is closed. The hub samples every
``BACKLINE_QA_INTERVAL`` seconds (default 300) over the last ``LOOKBACK`` days;
``python -m backline sample [--days 7]`` does the same once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
from collections import Counter
from typing import Dict, List, Optional

from backline.governance.service import GovernanceService

LOOKBACK_DAYS = 7
SEED = "backline-qa"


def chosen(kind: str, subject: str, share: float, seed: str = SEED) -> bool:
    """Whether ``subject`` of ``kind`` falls in the sampled ``share`` (0..1)."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    digest = hashlib.sha256(f"{seed}:{kind}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def sample(
    service: GovernanceService, now: Optional[dt.datetime] = None, days: float = LOOKBACK_DAYS
) -> Dict[str, int]:
    """Add what is due to the review queue; how many of each kind were added."""
    now = now or service.clock()
    since = now - dt.timedelta(days=days)
    rules = service.rules.sampling
    quiet = now - dt.timedelta(minutes=rules.idle_minutes)
    facts = service.facts(None, since, now)
    added: Counter = Counter()
    escalated = {c.conversation_id for c in facts.cases}
    for conv in facts.conversations:
        if conv.escalated or conv.conversation_id in escalated or (conv.last_at or conv.started_at) > quiet:
            continue
        if chosen("ai_alone", conv.conversation_id, rules.ai_alone):
            review = service.store.add_review(
                kind="ai_alone",
                subject=conv.conversation_id,
                conversation_id=conv.conversation_id,
                subject_at=conv.started_at,
                queue=service.queue_of_intent.get(conv.intent or ""),
                intent=conv.intent,
                channel=conv.channel,
                at=now,
            )
            added["ai_alone"] += review is not None
    for case in facts.cases:
        if case.status != "closed" or case.closed_at is None:
            continue
        kinds: List[str] = []
        if case.had_draft and case.decision == "approve" and not case.override_kind:
            kinds.append("accepted_draft")
        kinds.append("closed_case")
        for kind in kinds:
            if chosen(kind, case.consultation_id, rules.share(kind, case.queue)):
                review = service.store.add_review(
                    kind=kind,
                    subject=case.consultation_id,
                    conversation_id=case.conversation_id,
                    consultation_id=case.consultation_id,
                    subject_at=case.created_at,
                    queue=case.queue,
                    intent=case.intent,
                    channel=case.channel,
                    at=now,
                )
                added[kind] += review is not None
    return {kind: added[kind] for kind in ("ai_alone", "accepted_draft", "closed_case")}


def main(argv: Optional[List[str]] = None) -> int:
    """Sample the last ``--days`` into the review queue once (the hub does it on its own every few minutes)."""
    parser = argparse.ArgumentParser(prog="python -m backline sample", description=main.__doc__)
    parser.add_argument("--days", type=float, default=LOOKBACK_DAYS, help="how far back to look (default 7)")
    parser.add_argument("--consult-url", default=None, help="the consultation store (default BACKLINE_CONSULT_DB_URL)")
    parser.add_argument(
        "--tracker-url", default=None, help="Rasa's tracker store (default BACKLINE_TRACKER_DB_URL / _DB)"
    )
    args = parser.parse_args(argv)
    from backline import configuration
    from backline.consult.store import ConsultationStore
    from backline.governance.facts import TrackerReader

    service = GovernanceService(
        ConsultationStore(args.consult_url), configuration.experts(), TrackerReader(args.tracker_url)
    )
    added = sample(service, days=args.days)
    print("added to the review queue: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in added.items()))
    return 0
