"""A seeded governance history for the report and candidates tests: a Rasa tracker store written by Rasa's own
`SQLTrackerStore` (real events: UserUttered with parse_data, the routing_decision slot, actions, bot messages)
and a consultation store written through its methods (replies through `record_reply`), with values known by
construction. Window: 2026-11-02 to 2026-11-16 (ISO weeks 2026-W45 and 2026-W46); business hours are
experts.yml's (Europe/Berlin, Mon-Fri 08:00-18:00, i.e. 07:00-17:00 UTC in November).

By construction: 8 conversations, 4 contained (50.0%); 4 consultations with verdicts needed 2, not_needed 2
(accuracy 50.0%); first replies 10, 60, 30, 20 min (median 25.0 min, P90 60.0 min; business hours 10, 30, 20
min: median 20.0 min; off hours 60.0 min); 1 hand-back of 4 closed (25.0%); CSAT 5 and 3 (4.0); 2 of 3 decided
drafts overridden (66.7%: wrong_intent, tone); 1 SLA breach, 1 ladder step; 1 missed escalation (QA).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tests.governance_history import save_conversations, turn

UTC = dt.timezone.utc
SINCE, UNTIL = "2026-11-02", "2026-11-15"  # --until a date: the end of that day (2026-11-16 00:00)
RETURN_ITEM_TEXT = (
    "You can return any hardware within 30 days of delivery. Start the return under Orders › Return an item in your "
    "Kestrel account; we'll e-mail you a prepaid label. Unopened items get a full refund, opened items are checked first."
)
CARD = "4242 4242 4242 4242"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass
class History:
    consult_url: str
    tracker_url: str
    cases: Dict[str, str]
    reviews: Dict[str, str]


CONVERSATIONS: List[Tuple[str, str, str, dt.datetime, str, Optional[str]]] = [
    ("alone-1", "where is my order ORD-1001", "order_status", at(2, 9), "answer", None),
    ("alone-2", "my parcel still has not arrived", "order_status", at(3, 10), "answer", None),
    ("alone-3", "I will take you to court over this charge", "billing_dispute", at(4, 11), "answer", None),
    ("alone-4", "how much is cloud pro", "pricing", at(13, 12), "answer", None),
    ("esc-1", f"please send my money back, card {CARD}", "refund_request", at(9, 8), "consult", "medium_confidence"),
    ("esc-2", "I want to return this, get me a person", "return_item", at(10, 20), "handoff", "explicit_request"),
    ("esc-3", "how do I send the dock back", "return_item", at(11, 9), "consult", "medium_confidence"),
    ("esc-4", "move me to the business plan", "change_plan", at(12, 10), "consult", "medium_confidence"),
]


def seed_tracker(path: Path) -> str:
    return save_conversations(
        f"sqlite:///{path}",
        {
            conversation_id: turn(
                text, intent, when, action, reason=reason, said=None if action == "answer" else "Asking a colleague."
            )
            for conversation_id, text, intent, when, action, reason in CONVERSATIONS
        },
    )


def seed_history(folder: Path) -> History:
    """Both stores under ``folder``: the tracker store and the consultation store (see the module docstring)."""
    from backline.consult.replies import Reply, record_reply
    from backline.consult.store import ConsultationStore

    tracker_url = seed_tracker(folder / "tracker.db")
    store = ConsultationStore(f"sqlite:///{folder / 'consultations.db'}")
    texts = {c[0]: (c[1], c[2], c[3]) for c in CONVERSATIONS}
    cases: Dict[str, str] = {}

    def case(conv: str, mode: str, queue: str, reason: str, draft: Optional[str], sla_minutes: int = 240) -> str:
        text, intent, when = texts[conv]
        created = when
        transcript = [
            {"role": "customer", "text": "hello", "at": (when - dt.timedelta(minutes=1)).isoformat()},
            {"role": "assistant", "text": "Hi, how can I help?", "at": (when - dt.timedelta(seconds=50)).isoformat()},
            {"role": "customer", "text": text, "at": when.isoformat()},
        ]
        consultation = store.create(
            conversation_id=conv,
            mode=mode,
            queue=queue,
            reasons=[reason],
            brief={"intent": intent},
            ai_draft=draft,
            transcript=transcript,
            routing={"intent": intent, "reason": reason},
            sla_due_at=created + dt.timedelta(minutes=sla_minutes),
            now=created,
        )
        cases[conv] = consultation.id
        return consultation.id

    c1 = case("esc-1", "consult", "billing", "medium_confidence", "Refunds take 5 to 7 business days.")
    record_reply(
        store,
        c1,
        "bea",
        "dashboard",
        Reply(
            "answer",
            "Your dispute is open; billing checks the charge within 2 days.",
            override_reason="wrong_intent",
            corrected_intent="billing_dispute",
            verdict="needed",
        ),
        now=at(9, 8, 10),
    )
    store.record_csat(c1, 5, conversation_id="esc-1", channel="socketio", at=at(9, 9))
    c2 = case("esc-2", "handoff", "support", "explicit_request", None, sla_minutes=30)
    store.audit(c2, "system", "sla_next_person", {"to": "bob"}, at=at(10, 20, 31))
    record_reply(store, c2, "bob", "slack", Reply("hand_back", "Label sent.", verdict="not_needed"), now=at(10, 21, 0))
    store.record_csat(c2, 3, conversation_id="esc-2", channel="socketio", at=at(10, 22))
    c3 = case("esc-3", "consult", "support", "medium_confidence", RETURN_ITEM_TEXT)
    record_reply(
        store,
        c3,
        "ann",
        "dashboard",
        Reply(
            "answer",
            "Send the Dock back within 30 days; the prepaid label is under Orders › Return an item.",
            override_reason="tone",
            verdict="not_needed",
        ),
        now=at(11, 9, 30),
    )
    c4 = case(
        "esc-4", "consult", "sales", "medium_confidence", "Business adds SSO; switch under Account › Subscription."
    )
    record_reply(store, c4, "ann", "dashboard", Reply("approve", verdict="needed"), now=at(12, 10, 20))

    reviews: Dict[str, str] = {}
    for conv, verdict, corrected in (("alone-2", "right", None), ("alone-3", "should_have_escalated", "legal_threat")):
        _, intent, when = texts[conv]
        review = store.add_review(
            kind="ai_alone",
            subject=conv,
            conversation_id=conv,
            subject_at=when,
            queue="billing" if conv == "alone-3" else "support",
            intent=intent,
            channel="socketio",
            at=when + dt.timedelta(hours=1),
        )
        assert review is not None
        store.record_review(
            review.id,
            verdict,
            reviewer="rita",
            note="checked",
            corrected_intent=corrected,
            at=when + dt.timedelta(hours=2),
        )
        reviews[conv] = review.id
    store.engine.dispose()
    return History(f"sqlite:///{folder / 'consultations.db'}", tracker_url, cases, reviews)
