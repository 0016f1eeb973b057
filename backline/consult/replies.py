"""Expert replies: recorded on the consultation (hub side), then turned into what the customer hears
(action side), in the assistant's voice or as the named person in human mode.

The hub calls `record_reply`: the reply, its effect on the case and a pending delivery (the outbox,
`backline.consult.outbox`) are one transaction under the consultation's row lock, so of two final
decisions at once exactly one is recorded and reaches the customer. The hub's delivery worker then
resumes the conversation with the returned `Resume` (Rasa's trigger_intent); the action server
answers that intent with `customer_update`.

The slots `customer_update` sets (a contract with the action server and the routing engine):

- approve / deny / answer / close: back to the AI (``handoff_mode`` ``ai``, ``human_joined`` false,
  reason, detail, draft, agent and allowed intents cleared) plus ``case_resolution``;
- hand_back: the same with ``handoff_mode`` ``handed_back`` and ``allowed_intents`` (None: no limit);
- take_over / message: ``handoff_mode`` ``human``, ``human_agent`` (full name), ``human_joined`` true;
- need_info and the SLA delay notice: no slots.

``case_resolution`` is ``{"consultation_id", "intent" (the case's, base name before "/", or None),
"outcome" (approved | denied | answered | closed | handed_back), "text" (what the customer was told,
without the greeting), "by" (the expert's first name), "team", "at" (ISO-8601 UTC of the reply)}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from backline import configuration
from backline.consult.outbox import Outbox
from backline.consult.store import Consultation, ConsultationClosed, ConsultationStore, Message
from backline.governance.config import governance
from backline.limits import max_reply_chars
from backline.routing.directory import ExpertDirectory
from backline.routing.handback import UnknownFollowup
from backline.utc import iso

DECISIONS = ("approve", "deny", "answer", "need_info", "take_over", "message", "hand_back", "close")
RESOLUTIONS = {
    "approve": "approved",
    "deny": "denied",
    "answer": "answered",
    "hand_back": "handed_back",
    "close": "closed",
}
NEEDS_TEXT = ("answer", "need_info", "message", "close")
EXPERT_REPLY = "EXTERNAL_expert_reply"
HUMAN_TAKEOVER = "EXTERNAL_human_takeover"
HUMAN_MESSAGE = "EXTERNAL_human_message"
HAND_BACK = "EXTERNAL_hand_back"
SLA_DELAY = "EXTERNAL_sla_delay"
INTENT_FOR = {
    "approve": EXPERT_REPLY,
    "deny": EXPERT_REPLY,
    "answer": EXPERT_REPLY,
    "need_info": EXPERT_REPLY,
    "take_over": HUMAN_TAKEOVER,
    "message": HUMAN_MESSAGE,
    "hand_back": HAND_BACK,
    "close": EXPERT_REPLY,
}
OUTCOMES = {
    "approve": "approved",
    "deny": "denied",
    "answer": "answered",
    "close": "closed",
    "hand_back": "handed_back",
}
"""The ``case_resolution`` slot's ``outcome`` per final decision (`customer_update`)."""


class ReplyError(ValueError):
    """A reply that cannot be applied: the message says why (shown to the expert)."""


class DuplicateReply(ReplyError):
    """The webhook delivery carrying this reply was already recorded (a platform retry): no effect."""


@dataclass(frozen=True)
class Reply:
    """An expert's reply. ``customer_text``: what is meant for the customer (default ``text``);
    ``internal_notes`` never reach the customer; ``allowed_followups``: follow-up types of escalation.yml's
    ``hand_back.followups``."""

    action: str
    text: str = ""
    customer_text: Optional[str] = None
    internal_notes: Tuple[str, ...] = ()
    allowed_followups: Tuple[str, ...] = ()
    amounts: Tuple[Mapping[str, Any], ...] = ()
    override_reason: Optional[str] = None
    """Why the AI's draft was denied or edited: a key of governance.yml's ``override_reasons``."""
    override_note: Optional[str] = None
    corrected_intent: Optional[str] = None
    """With ``wrong_intent``: the intent the customer meant (a candidate NLU example)."""
    verdict: Optional[str] = None
    """The expert's verdict on the escalation with a final decision: needed | not_needed | too_late."""

    @property
    def for_customer(self) -> str:
        return (self.text if self.customer_text is None else self.customer_text).strip()


@dataclass(frozen=True)
class Resume:
    """How the hub resumes the customer's conversation: Rasa's trigger_intent with these entities."""

    conversation_id: str
    intent: str
    entities: Dict[str, Any] = field(default_factory=dict)
    delivery_id: Optional[str] = None


@dataclass(frozen=True)
class CustomerUpdate:
    """What the assistant says on the customer's channel, the slots it sets, and who speaks."""

    text: str
    slots: Dict[str, Any]
    sender_name: Optional[str] = None


def allowed_intents(followups: Sequence[str]) -> List[str]:
    """The intents the follow-up types allow (escalation.yml's ``hand_back.followups``, in file order);
    `ReplyError` names unknown ones."""
    try:
        return configuration.hand_back().allowed_intents(followups)
    except UnknownFollowup as error:
        raise ReplyError(str(error)) from None


def record_reply(
    store: ConsultationStore,
    consultation_id: str,
    actor: str,
    source: str,
    reply: Reply,
    *,
    now: Optional[dt.datetime] = None,
    dedupe_key: Optional[str] = None,
    sender: Optional[str] = None,
) -> Resume:
    """Apply the reply to the consultation (message, first reply, mode, closing) and queue its delivery
    to the customer, all audited, in one transaction under the consultation's lock.

    `ConsultationClosed` (with who decided) for a closed case; `DuplicateReply` when ``dedupe_key``
    (a webhook delivery's key) was already recorded: the key is kept only if the reply is. ``sender``:
    the delivery worker that will send it at once, which holds its lease from the start."""
    with store.transaction():
        if dedupe_key is not None and not store.claim_webhook_key(dedupe_key, at=now):
            raise DuplicateReply(f"delivery {dedupe_key} was already applied")
        case = store.lock(consultation_id)
        if not case.is_open:
            raise ConsultationClosed(consultation_id, store.decided_by(consultation_id), case.resolution)
        reply = _check(case, reply)
        message = store.add_message(
            consultation_id,
            "from_expert",
            actor,
            source,
            reply.text,
            at=now,
            meta={
                "action": reply.action,
                "customer_text": reply.for_customer,
                "internal_notes": list(reply.internal_notes),
                "allowed_followups": list(reply.allowed_followups),
                "amounts": [dict(a) for a in reply.amounts],
            },
        )
        store.record_first_reply(consultation_id, now, actor=actor)
        if reply.action in ("take_over", "message") and case.mode == "consult":
            store.set_mode(consultation_id, "handoff", at=now, actor=actor)
        _record_governance(store, case, reply, actor, source, now)
        if reply.action in RESOLUTIONS:
            store.close(
                consultation_id,
                now,
                RESOLUTIONS[reply.action],
                actor=actor,
                detail={"text": reply.for_customer} if reply.action == "close" else None,
            )
        intent = INTENT_FOR[reply.action]
        delivery = Outbox(store).enqueue(
            consultation_id,
            case.conversation_id,
            intent,
            {"consultation_id": consultation_id, "message_id": message.id},
            at=now,
            actor=actor,
            lease_owner=sender,
        )
    return Resume(case.conversation_id, intent, dict(delivery.entities), delivery.id)


def override_kind(case: Consultation, reply: Reply) -> Optional[str]:
    """``denied`` or ``edited`` when the reply overrides the AI's draft (a deny; an answer or approval
    whose text for the customer is not the draft's), else None."""
    if not case.ai_draft or reply.action not in ("approve", "deny", "answer"):
        return None
    if reply.action == "deny":
        return "denied"
    final = " ".join(reply.for_customer.split())
    if reply.action == "approve" and not final:
        return None
    return None if final == " ".join(case.ai_draft.split()) else "edited"


def _record_governance(
    store: ConsultationStore, case: Consultation, reply: Reply, actor: str, source: str, now: Optional[dt.datetime]
) -> None:
    """The override of the AI's draft and the expert's verdict, in the reply's transaction."""
    kind = override_kind(case, reply)
    if kind is not None:
        store.record_override(
            case.id,
            kind=kind,
            ai_draft=case.ai_draft or "",
            final_text=reply.for_customer or "",
            actor=actor,
            source=source,
            reason=reply.override_reason,
            note=reply.override_note,
            intent=case_intent(case),
            corrected_intent=reply.corrected_intent,
            at=now,
        )
    elif reply.override_reason is not None:
        raise ReplyError("an override reason is for denying or editing the AI's draft; this reply does neither")
    if reply.verdict is not None:
        store.record_verdict(case.id, reply.verdict, actor=actor, source=source, at=now)


def _check(case: Consultation, reply: Reply) -> Reply:
    """The reply, checked, with its override reason and verdict as governance.yml's keys; `ReplyError` otherwise."""
    if reply.action not in DECISIONS:
        raise ReplyError(f"unknown action {reply.action!r}; one of {', '.join(DECISIONS)}")
    if reply.action in NEEDS_TEXT and not reply.for_customer:
        raise ReplyError(f"'{reply.action}' needs the text for the customer")
    limit = max_reply_chars()
    for name, text in (("the text", reply.text), ("the text for the customer", reply.customer_text or "")):
        if len(text) > limit:
            raise ReplyError(f"{name} is {len(text):,} characters; at most {limit:,} (BACKLINE_MAX_REPLY_CHARS)")
    if reply.action == "approve" and not reply.for_customer and not case.ai_draft:
        raise ReplyError("there is no AI draft to approve: answer with the text for the customer")
    allowed_intents(reply.allowed_followups)
    rules = governance()
    try:
        reason = None if reply.override_reason is None else rules.check_reason(reply.override_reason)
        verdict = None if reply.verdict is None else rules.check_verdict(reply.verdict)
    except ValueError as error:
        raise ReplyError(str(error)) from None
    if verdict is not None and reply.action not in RESOLUTIONS:
        raise ReplyError(
            "a verdict on the escalation goes with a final decision (approve, deny, answer, close, hand back)"
        )
    return replace(reply, override_reason=reason, verdict=verdict)


def _first_name(name: str) -> str:
    parts = [p for p in name.split() if not p.endswith(".")]
    return parts[0] if parts else name


def customer_update(
    store: ConsultationStore,
    directory: ExpertDirectory,
    consultation_id: str,
    intent: str,
    message_id: Optional[int] = None,
    delivery_id: Optional[str] = None,
) -> CustomerUpdate:
    """What to tell the customer after ``intent`` was triggered for the consultation (see `INTENT_FOR`)."""
    case = store.require(consultation_id)
    team = directory.team_name(case.queue)
    if intent == SLA_DELAY:
        delivery = Outbox(store).get(delivery_id) if delivery_id else None
        if delivery is not None and delivery.consultation_id == consultation_id and delivery.notice:
            return CustomerUpdate(delivery.notice, {})
        told = [e for e in store.audit_trail(consultation_id) if e.action == "customer_delay_told"]
        if not told:
            raise ReplyError(f"consultation {consultation_id} has no delay message")
        return CustomerUpdate(told[-1].detail["text"], {})
    message = _expert_message(store.messages(consultation_id), message_id)
    person = directory.people.get(message.author)
    name = person.name if person else message.author
    first = _first_name(name)
    meta = message.meta or {}
    action, body = str(meta.get("action") or ""), (meta.get("customer_text") or "").strip()
    back_to_ai = {
        "handoff_mode": "ai",
        "escalation_reason": None,
        "escalation_detail": None,
        "ai_draft": None,
        "human_agent": None,
        "allowed_intents": None,
        "human_joined": False,
    }

    def resolved(outcome_text: str) -> Dict[str, Any]:
        return {"case_resolution": case_resolution(case, message, action, outcome_text, first, team)}

    if action == "approve":
        body = body or case.ai_draft or ""
        return CustomerUpdate(
            f"Good news: {first} from our {team} team approved it. {body}", {**back_to_ai, **resolved(body)}
        )
    if action == "deny":
        body = body or "I am sorry, we cannot do that in this case."
        return CustomerUpdate(f"I checked with {first} from our {team} team. {body}", {**back_to_ai, **resolved(body)})
    if action == "answer":
        return CustomerUpdate(f"I checked with {first} from our {team} team. {body}", {**back_to_ai, **resolved(body)})
    if action == "close":
        return CustomerUpdate(
            f"{first} from our {team} team has closed this case: {body}", {**back_to_ai, **resolved(body)}
        )
    if action == "need_info":
        return CustomerUpdate(f"{first} from our {team} team needs one more detail: {body}", {})
    human = {"handoff_mode": "human", "human_agent": name, "human_joined": True}
    if action == "take_over":
        return CustomerUpdate(f"{name} from our {team} team has joined the conversation.", human)
    if action == "message":
        return CustomerUpdate(body, human, name)
    if action == "hand_back":
        followups = list(meta.get("allowed_followups") or [])
        limits = (
            f" From here I can help you with {', '.join(configuration.hand_back().labels[f] for f in followups)}."
            if followups
            else ""
        )
        text = f"{first} has handed the conversation back to me. {body}".rstrip() + limits
        return CustomerUpdate(
            text,
            {
                **back_to_ai,
                "handoff_mode": "handed_back",
                "allowed_intents": allowed_intents(followups) if followups else None,
                **resolved(body),
            },
        )
    raise ReplyError(f"message {message.id} of consultation {consultation_id} is not an expert decision")


def case_intent(case: Consultation) -> Optional[str]:
    """The intent the case is about: the brief's, else the routing record's; its base name (before "/")."""
    for source in (case.brief, case.routing):
        intent = (source or {}).get("intent")
        if isinstance(intent, str) and intent.strip():
            return intent.strip().split("/", 1)[0]
    return None


def case_resolution(case: Consultation, message: Message, action: str, text: str, by: str, team: str) -> Dict[str, Any]:
    """The ``case_resolution`` slot: how the expert's final decision ``action`` resolved the case."""
    return {
        "consultation_id": case.id,
        "intent": case_intent(case),
        "outcome": OUTCOMES[action],
        "text": text,
        "by": by,
        "team": team,
        "at": iso(message.at),
    }


def _expert_message(messages: Sequence[Message], message_id: Optional[int]) -> Message:
    from_expert = [m for m in messages if m.direction == "from_expert"]
    for message in reversed(from_expert):
        if message_id is None or message.id == message_id:
            return message
    raise ReplyError(f"no expert message to relay (id {message_id})")
