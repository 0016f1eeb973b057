"""Consultation orchestration: open a case, reach the chosen expert, tell the customer; walk the SLA ladder.

Plain Python over the store, the expert directory and the expert channels; the action server
calls `ConsultationService.open`, the hub's timer calls `run_sla`. Every step is audited:
``created``, ``selected``, ``delivery_failed`` / ``notified``, ``assigned``, ``customer_told``
(a conversation escalating again while its case is open: ``escalated_again``, ``customer_told_again``),
``sla_<step>``, ``queue_changed``, ``delivery_queued`` (the delay notice; ``customer_delay_told``
once it reached the customer).

The ladder itself is `backline.consult.ladder`; transcripts and what a case has not seen yet are
`backline.consult.transcripts`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy.exc import SQLAlchemyError

from backline import configuration
from backline.consult import ladder, quotas, sla, waits
from backline.consult.account import lookup_account
from backline.consult.context import build_context
from backline.consult.ladder import SLA_ACTOR, LadderOutcome  # noqa: F401  (re-exported)
from backline.consult.masking import mask
from backline.consult.quotas import EscalationLimits
from backline.consult.selection import Selection, choose_experts
from backline.consult.store import Consultation, ConsultationStore
from backline.consult.transcripts import transcript_from_events, unseen_customer_entries  # noqa: F401  (re-exported)
from backline.experts.base import ChannelError, Delivery, ExpertChannel, Notification
from backline.experts.delivery import DeliveryFailed, RetryPolicy, Sleep, channels_from_env, deliver
from backline.routing.directory import ExpertDirectory, Person
from backline.utc import utcnow

logger = logging.getLogger(__name__)

ENV_HUB_URL = "BACKLINE_HUB_URL"
DEFAULT_HUB_URL = "http://localhost:5006"
SYSTEM = "system"


@dataclass(frozen=True)
class Opened:
    """A new consultation, whom it reached, and what the customer is told. ``merged``: no new case, the
    escalation was added to the conversation's open one (``delivery``: the re-notification, if any)."""

    consultation: Consultation
    customer_text: str
    wait: waits.WaitEstimate
    selection: Selection
    delivery: Optional[Delivery]
    merged: bool = False


class ConsultationService:
    """Opens consultations and keeps them moving. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        store: ConsultationStore,
        directory: ExpertDirectory,
        channels: Mapping[str, ExpertChannel],
        *,
        clock: Any = utcnow,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Sleep = time.sleep,
        hub_url: Optional[str] = DEFAULT_HUB_URL,
        business_db_url: Optional[str] = None,
        limits: Optional[EscalationLimits] = None,
    ) -> None:
        self.store = store
        self.limits = limits or EscalationLimits.from_env()
        self.directory = directory
        self.channels = channels
        self.clock = clock
        self.retry = retry
        self.sleep = sleep
        self.hub_url = hub_url.rstrip("/") if hub_url else None
        self.business_db_url = business_db_url

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "ConsultationService":
        """Store from $BACKLINE_CONSULT_DB_URL, directory from $BACKLINE_EXPERTS, channels from their
        variables (unconfigured ones are skipped; the dashboard, which is the store, always works)."""
        env = os.environ if env is None else env
        store = ConsultationStore()
        directory = configuration.experts(env)
        channels = channels_from_env(lambda record: record["consultation_id"], env)
        return cls(store, directory, channels, hub_url=env.get(ENV_HUB_URL) or DEFAULT_HUB_URL)

    # opening

    def open(
        self,
        conversation_id: str,
        routing: Mapping[str, Any],
        *,
        transcript: Sequence[Mapping[str, Any]] = (),
        slots: Optional[Mapping[str, Any]] = None,
        ai_draft: Optional[str] = None,
        sentiment: Optional[float] = None,
        ranking: Sequence[Any] = (),
        client: Optional[str] = None,
    ) -> Opened:
        """Create the consultation for a routing decision (``action`` consult or handoff), offer it to
        the best expert on their channel, and return what to tell the customer. ``client``: the
        hashed client address (`backline.consult.quotas.client_key`) when the channel knows it.

        One open consultation per conversation: while one is open, the escalation is added to it
        (`_add_to_open`) instead. `EscalationLimited` past the hourly limits on new cases
        (`backline.consult.quotas`)."""
        now = self.clock()
        slots = slots or {}
        queue = routing.get("queue") or "support"
        if queue not in self.directory.queues:
            raise ValueError(f"routing names queue {queue!r}, which experts.yml does not define")
        existing = self.store.open_for_conversation(conversation_id)
        if existing is not None:
            merged = self._add_to_open(existing.id, routing, transcript, now)
            if merged is not None:
                return merged
        self._within_limits(conversation_id, client, routing, transcript, now)
        mode = "consult" if routing.get("action") == "consult" else "handoff"
        priority = routing.get("priority") or "normal"
        high_value = "high_value" in (routing.get("modifiers") or ())
        sla_minutes = routing.get("sla_minutes") or self.directory.queue(queue).sla_minutes
        package = build_context(
            routing,
            transcript,
            slots,
            account=self._account(slots),
            ai_draft=ai_draft,
            sentiment=sentiment,
            ranking=ranking,
        )
        selection = choose_experts(self.directory, queue, priority, now, self._load(), high_value)
        clock_start = selection.opens_at if selection.off_hours and selection.opens_at else now
        due = sla.sla_deadline(now, sla_minutes, priority, high_value, starts_at=clock_start)
        reasons = [r for r in (routing.get("reason"),) if r]
        case = self.store.create(
            conversation_id=conversation_id,
            mode=mode,
            queue=queue,
            priority=priority,
            reasons=reasons,
            detail=routing.get("detail"),
            context=package,
            routing=routing,
            sla_due_at=due,
            now=now,
            client_key=client,
            ai_draft=ai_draft,  # the case's draft, whether or not its package shows it
        )
        self.store.audit(
            case.id, SYSTEM, "selected", {**selection.as_record(), "sla_started_at": clock_start.isoformat()}, at=now
        )
        delivery = self._notify(case, [c.person for c in selection], SYSTEM)
        wait = waits.typical_wait(
            queue, self.store.first_reply_times(queue, waits.window_start(now), now, mode=mode), sla_minutes
        )
        text = waits.customer_message(mode, self.directory.team_name(queue), wait, self.directory, now, selection)
        promised = wait.promised_minutes
        if selection.off_hours and selection.opens_at:
            promised = max(promised, round((selection.opens_at - now).total_seconds() / 60) + wait.promised_minutes)
        self.store.audit(
            case.id,
            SYSTEM,
            "customer_told",
            {
                "text": text,
                "promised_minutes": promised,
                "basis": wait.basis,
                "cases": wait.cases,
                "off_hours": selection.off_hours,
            },
            at=now,
        )
        return Opened(self.store.require(case.id), text, wait, selection, delivery)

    def _add_to_open(
        self,
        consultation_id: str,
        routing: Mapping[str, Any],
        transcript: Sequence[Mapping[str, Any]],
        now: dt.datetime,
    ) -> Optional[Opened]:
        """The conversation escalated again while its case is open: under the case's lock, in one
        transaction, add the customer's messages the case does not have yet, the reason (once, the
        details audited ``escalated_again``), a higher priority, and consult -> handoff when the new
        decision is a handoff (never back). The assigned expert hears of it again only when the mode
        changed. None when the case was closed in the meantime (the caller opens a new one)."""
        action = routing.get("action")
        reason = routing.get("reason")
        with self.store.transaction():
            case = self.store.lock(consultation_id)
            if not case.is_open:
                return None
            added = unseen_customer_entries(case, self.store.messages(consultation_id), transcript)
            for entry in added:
                self.store.add_message(
                    case.id,
                    "from_customer",
                    "customer",
                    "escalated_again",
                    entry["text"],
                    at=now,
                    meta={"reason": reason, "said_at": entry.get("at")},
                )
            self.store.escalated_again(
                case.id,
                reason=reason,
                priority=routing.get("priority"),
                at=now,
                actor=SYSTEM,
                detail={
                    "detail": routing.get("detail"),
                    "action": action,
                    "intent": routing.get("intent"),
                    "queue": routing.get("queue"),
                    "messages_added": len(added),
                },
            )
            upgraded = case.mode == "consult" and action == "handoff"
            if upgraded:
                self.store.set_mode(
                    case.id, "handoff", at=now, actor=SYSTEM, detail={"reason": reason, "escalated_again": True}
                )
            case = self.store.require(case.id)
        high_value = "high_value" in (routing.get("modifiers") or ())
        selection = choose_experts(self.directory, case.queue, case.priority, now, self._load(), high_value)
        delivery = None
        if upgraded:  # a person is now needed: the expert on the case hears it (else no duplicate ping)
            assigned = self.directory.people.get(case.assignee or "")
            people = [assigned] if assigned is not None else [c.person for c in selection]
            delivery = self._notify(case, people, SYSTEM)
        wait = waits.typical_wait(
            case.queue,
            self.store.first_reply_times(case.queue, waits.window_start(now), now, mode=case.mode),
            self.directory.queue(case.queue).sla_minutes,
        )
        team = self.directory.team_name(case.queue)
        text = f"Your request is already with our {team} team, and I have added this to it."
        if upgraded:
            text += f" I have asked for a colleague to take over; they typically reply in {wait.phrase}."
        else:
            text += " They will answer you here."
        self.store.audit(case.id, SYSTEM, "customer_told_again", {"text": text, "upgraded": upgraded}, at=now)
        return Opened(self.store.require(case.id), text, wait, selection, delivery, merged=True)

    def _within_limits(
        self,
        conversation_id: str,
        client: Optional[str],
        routing: Mapping[str, Any],
        transcript: Sequence[Mapping[str, Any]],
        now: dt.datetime,
    ) -> None:
        """Raises `EscalationLimited` when the conversation or the client address is past its hourly limit."""
        since = now - dt.timedelta(seconds=quotas.WINDOW_SECONDS)
        limit = self.limits.per_conversation
        recent = self.store.created_since(since, conversation_id=conversation_id) if limit else []
        if limit and len(recent) >= limit:
            latest = recent[-1]
            said = [t.get("text") for t in transcript if t.get("role") in ("customer", "user") and t.get("text")]
            if said:
                self.store.add_message(
                    latest.id,
                    "from_customer",
                    "customer",
                    "escalated_again",
                    str(said[-1]),
                    meta={"reason": routing.get("reason"), "limit": "conversation"},
                    at=now,
                )
            self.store.audit(
                latest.id,
                SYSTEM,
                "escalation_limited",
                {"limit": "conversation", "per_hour": limit, "reason": routing.get("reason")},
                at=now,
            )
            raise quotas.EscalationLimited(
                f"Your request is already with our {self.directory.team_name(latest.queue)} team, and I have added your latest "
                "message to it: they will answer you here.",
                latest,
                "conversation",
            )
        limit = self.limits.per_address
        if client and limit and len(self.store.created_since(since, client_key=client)) >= limit:
            logger.warning("escalation refused: %s escalations from one address within the hour", limit)
            raise quotas.EscalationLimited(
                "We have received many requests from your connection in the last hour, so I cannot open another "
                "case right now. Please try again later.",
                None,
                "address",
            )

    def _account(self, slots: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        try:
            return lookup_account(slots, self.business_db_url)
        except SQLAlchemyError:
            logger.exception("business database unavailable: the brief goes out without the account snapshot")
            return None

    def _load(self) -> Dict[str, int]:
        return {person_id: self.store.open_load(person_id) for person_id in self.directory.people}

    # notifying

    def notification(self, case: Consultation, person: Person) -> Notification:
        """The consultation as a notification addressed to ``person``."""
        return Notification(
            consultation_id=case.id,
            conversation_id=case.conversation_id,
            person=person,
            mode=case.mode,
            priority=case.priority,
            brief=case.brief,
            transcript=[{"role": t.get("role", ""), "text": t.get("text", "")} for t in case.transcript],
            ai_draft=case.ai_draft,
            queue=case.queue,
            reasons=tuple(case.reasons),
            sla_minutes=self.directory.queue(case.queue).sla_minutes if case.queue in self.directory.queues else None,
            sla_due_at=case.sla_due_at,
            link=f"{self.hub_url}/dashboard/consultations/{case.id}" if self.hub_url else None,
        )

    def _notify(self, case: Consultation, people: Sequence[Person], actor: str) -> Optional[Delivery]:
        """Deliver to the first of ``people`` that a channel reaches (the dashboard last); audit and assign."""
        if not people:
            return None
        try:
            result = deliver(
                self.notification(case, people[0]),
                people,
                self.channels,
                policy=self.retry,
                sleep=self.sleep,
                clock=self.clock,
            )
        except DeliveryFailed as failed:
            for failure in failed.failures:
                self.store.audit(case.id, actor, "delivery_failed", failure.as_dict())
            logger.error("consultation %s: not delivered anywhere; it stays open in the store", case.id)
            return None
        for entry in result.audit_entries():
            self.store.audit(case.id, actor, entry["action"], entry["detail"])
        delivery = result.delivery
        self.store.assign(
            case.id,
            delivery.person_id,
            delivery.channel,
            actor=actor,
            detail={
                "message_id": delivery.message_id,
                "thread_id": delivery.thread_id,
                "fallback": delivery.fallback,
            },
        )
        self._link(case.id, delivery)
        return delivery

    def _link(self, consultation_id: str, delivery: Delivery) -> None:
        """Remember the messages a reply can answer: the Slack thread, the Telegram messages."""
        address = delivery.extra.get("channel_id") or delivery.destination
        for message_id in (delivery.message_id, *delivery.extra.get("transcript_message_ids", ())):
            if message_id:
                self.store.link_thread(consultation_id, delivery.channel, address, message_id)

    def relay_to_expert(self, consultation_id: str, text: str, channel: str) -> Optional[Delivery]:
        """A customer message in human mode: kept on the consultation (the dashboard shows it) and
        posted in the assigned expert's thread on their channel, masked in both places."""
        case = self.store.require(consultation_id)
        self.store.add_message(consultation_id, "from_customer", "customer", channel or "unknown", text)
        person = self.directory.people.get(case.assignee or "")
        channel_kind = case.channel or "dashboard"
        if person is None or channel_kind not in self.channels:
            return None
        threads = [
            e.detail.get("thread_id")
            for e in self.store.audit_trail(consultation_id)
            if e.action == "assigned" and e.detail.get("assignee") == person.id
        ]
        try:
            posted = self.channels[channel_kind].post(
                person, f"Customer: {mask(text)}", threads[-1] if threads else None
            )
        except ChannelError as error:
            self.store.audit(
                consultation_id,
                SYSTEM,
                "delivery_failed",
                {
                    "person_id": person.id,
                    "channel": channel_kind,
                    "code": error.code,
                    "message": error.message,
                    "relay": True,
                },
            )
            return None
        self._link(consultation_id, posted)
        return posted

    # the SLA ladder (backline.consult.ladder)

    def run_sla(self, now: Optional[dt.datetime] = None) -> List[LadderOutcome]:
        """Take the ladder steps now due on cases without an expert reply, and queue the delay notice
        for customers whose promised wait has passed (each once; the hub's outbox delivers it)."""
        return ladder.run(self, now or self.clock())
