"""What the hub does with an expert's reply, whichever way it came (API, dashboard, Slack, Telegram):
turn it into guidance (``//`` notes stay internal), record it with its pending delivery in one
transaction, deliver it to the customer (at once, or by the delivery worker), and tell the expert
where they wrote when it cannot be applied. Also the SLA timer (a tick every ``BACKLINE_SLA_INTERVAL``
seconds) and the delivery worker's loop, started and stopped with the server.

The hub's handlers get this one object (`backline.hub.api`, `backline.hub.webhooks`, and the
dashboard its `ConsultationFlow.apply_async` and `ConsultationFlow.wake`); `backline.hub.app`
only wires it.

Outcomes are ``(HTTP status, JSON body)``: 200 delivered (with what the customer was told), 202
recorded but the customer not reached yet (awaiting delivery), 400 a bad reply, 404 no such case,
409 already decided / closed (nothing was sent).

Feedback (`backline.hub.feedback`): after a final decision the expert is asked, on the channel they
decided on (or the case's expert channel), for the verdict on the escalation and, when they overrode
the AI's draft without saying why, the reason (`ConsultationFlow.ask_feedback`, best effort, in the
background); their click, or a free-text reply of only ``verdict:`` / ``reason:`` lines on the closed
case, is recorded without reaching the customer (`ConsultationFlow.record_feedback`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import requests

from backline.access import SYSTEM, access_for
from backline.consult.outbox import Outbox
from backline.consult.replies import DuplicateReply, ReplyError, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import ConsultationClosed, ConsultationNotFound
from backline.experts.base import ChannelError, Delivery
from backline.experts.delivery import UnavailableChannel
from backline.hub.delivery_worker import DeliveryWorker
from backline.hub.feedback import ASKING_CHANNELS, Feedback, feedback_channel, is_final, record_feedback
from backline.hub.guidance import ExpertReply
from backline.hub.slack_inbound import Ephemeral
from backline.hub.telegram_inbound import send_message
from backline.redact import redact

logger = logging.getLogger(__name__)

Outcome = Tuple[int, Dict[str, Any]]
AWAITING = (
    "Recorded. The customer could not be reached yet: the reply is delivered as soon as the "
    "assistant answers again (awaiting delivery)."
)


class ConsultationFlow:
    """The hub's consultation flow over ``service`` (store, directory, expert channels) and ``worker``."""

    def __init__(self, service: ConsultationService, worker: DeliveryWorker, governance: Any = None) -> None:
        self.service = service
        self.governance = governance
        """The `backline.governance.service.GovernanceService` (verdicts, overrides, metrics, QA reviews)."""
        self.store = service.store
        self.worker = worker
        self.outbox: Outbox = worker.outbox
        self._timers: List[asyncio.Task] = []
        self.feedback_runner: Callable[[Callable[[], Any]], None] = _in_background
        """Runs the feedback question after a decision (a daemon thread; tests may run it at once)."""

    def _name(self, person_id: Optional[str]) -> str:
        person = self.service.directory.people.get(person_id or "")
        return person.name if person else (person_id or "someone")

    def record(self, answer: ExpertReply, *, send_now: bool = False) -> Tuple[Outcome, Optional[str]]:
        """Record the reply and queue its delivery (one transaction): the outcome if it stops here,
        and the delivery id when it was recorded. Database errors propagate (the caller answers 5xx
        so that the platform retries; nothing was kept). ``send_now``: the caller sends it at once
        (`apply`), so this hub's worker holds its lease from the start and no round takes it first."""
        case = self.store.get(answer.consultation_id)
        if case is None:
            return (404, {"error": f"no consultation {answer.consultation_id}"}), None
        try:
            if answer.free_text:
                read = answer.guidance(case.mode)
                if read.feedback_only:  # only verdict / reason lines: feedback on the decided case
                    feedback = Feedback.from_guidance(
                        read,
                        answer.consultation_id,
                        answer.actor,
                        answer.source,
                        dedupe_key=answer.dedupe_key,
                        raw=answer.raw,
                    )
                    return self.record_feedback(feedback), None
            guidance = answer.to_reply(case.mode)
            resume = record_reply(
                self.store,
                answer.consultation_id,
                answer.actor,
                answer.source,
                guidance,
                dedupe_key=answer.dedupe_key,
                # `apply` sends it at once: no background round may take it between the commit and then
                sender=self.worker.owner if send_now else None,
            )
        except DuplicateReply:
            return (200, {"duplicate": True, "consultation": case.as_dict()}), None
        except ConsultationNotFound:
            return (404, {"error": f"no consultation {answer.consultation_id}"}), None
        except ConsultationClosed as closed:
            current = self.store.require(answer.consultation_id)
            who = (
                f"already decided by {self._name(closed.decided_by)} ({closed.resolution or 'closed'})"
                if closed.decided_by
                else "already closed"
            )
            return (
                409,
                {
                    "error": f"consultation {answer.consultation_id} was {who}; nothing was sent to the customer",
                    "consultation": current.as_dict(),
                },
            ), None
        except ReplyError as error:
            return (400, {"error": str(error)}), None
        if is_final(guidance.action):
            self.feedback_runner(
                lambda: self.ask_feedback(
                    answer.consultation_id,
                    answer.actor,
                    answer.source,
                    verdict_given=guidance.verdict is not None,
                    raw=answer.raw,
                )
            )
        return (202, {}), resume.delivery_id

    def apply(self, answer: ExpertReply) -> Outcome:
        """Record the reply and try to reach the customer at once: 200 with what the customer was
        told, or 202 awaiting delivery (the worker keeps trying)."""
        (status, payload), delivery_id = self.record(answer, send_now=True)
        if delivery_id is None:
            return status, payload
        rasa_answer = self.worker.deliver_now(delivery_id)
        case = self.store.require(answer.consultation_id).as_dict()
        delivery = self.outbox.get(delivery_id)
        record = delivery.as_dict() if delivery else {"id": delivery_id}
        if rasa_answer is None:
            return 202, {"consultation": case, "delivery": record, "message": AWAITING}
        return 200, {"consultation": case, "delivery": record, "customer_messages": rasa_answer.get("messages", [])}

    async def apply_async(self, answer: ExpertReply) -> Outcome:
        """`apply` off the event loop."""
        return await asyncio.to_thread(self.apply, answer)

    def wake(self) -> None:
        """Start a delivery round now (a reply was recorded or sent again)."""
        self.worker.wake()

    def may_answer(self, answer: Union[ExpertReply, Feedback]) -> bool:
        """Whether the expert answering from Slack or Telegram may decide the case, or give feedback on
        it (their queues)."""
        case = self.store.get(answer.consultation_id)
        return case is None or access_for(self.service.directory, answer.actor).may_see_case(case)

    # feedback: the verdict on the escalation and the reason for an override

    def record_feedback(self, feedback: Feedback) -> Outcome:
        """Record a verdict / override reason on a decided case (`backline.hub.feedback.record_feedback`):
        nothing reaches the customer. Database errors propagate (the platform retries)."""
        return record_feedback(self.store, feedback)

    def ask_feedback(
        self,
        consultation_id: str,
        person_id: str,
        source: str,
        *,
        verdict_given: bool = False,
        raw: Optional[Mapping[str, Any]] = None,
    ) -> Optional[Delivery]:
        """After a final decision by ``person_id`` from ``source``: ask them on their channel for the
        verdict (unless given or already recorded) and, when the draft was overridden without a reason,
        the reason. Best effort: a failure is logged and audited ``delivery_failed``, never raised."""
        try:
            return self._ask_feedback(consultation_id, person_id, source, verdict_given, dict(raw or {}))
        except Exception as error:  # the decision is recorded; asking is best effort
            logger.warning("consultation %s: asking for feedback failed: %s", consultation_id, redact(str(error)))
            return None

    def _ask_feedback(
        self, consultation_id: str, person_id: str, source: str, verdict_given: bool, raw: Dict[str, Any]
    ) -> Optional[Delivery]:
        case = self.store.get(consultation_id)
        person = self.service.directory.people.get(person_id)
        if case is None or person is None:
            return None
        kind = feedback_channel(source, case.channel)
        channel = self.service.channels.get(kind)
        if channel is None or isinstance(channel, UnavailableChannel) or person.channel(kind) is None:
            return None
        if kind not in ASKING_CHANNELS:  # the dashboard shows its own buttons: nothing to send or audit
            return channel.ask_feedback(person, consultation_id, verdict=True, reasons=True)
        override = self.store.override(consultation_id)
        reasons = override is not None and override.reason is None
        verdict = not verdict_given and self.store.verdict(consultation_id) is None
        if not (verdict or reasons):
            return None
        thread = self._thread_of(consultation_id, person_id, kind, raw)
        try:
            asked = channel.ask_feedback(person, consultation_id, verdict=verdict, reasons=reasons, thread_id=thread)
        except ChannelError as error:
            logger.warning(
                "consultation %s: could not ask %s for feedback on %s: %s",
                consultation_id,
                person.id,
                kind,
                redact(error.message),
            )
            self.store.audit(
                consultation_id,
                SYSTEM,
                "delivery_failed",
                {
                    "person_id": person.id,
                    "channel": kind,
                    "code": error.code,
                    "message": redact(error.message),
                    "feedback": True,
                },
            )
            return None
        self.store.audit(
            consultation_id,
            SYSTEM,
            "feedback_asked",
            {
                "person_id": person.id,
                "channel": kind,
                "message_id": asked.message_id,
                "thread_id": thread,
                "verdict": verdict,
                "reasons": reasons,
            },
        )
        if kind == "telegram" and asked.message_id:  # a reply to the question finds its consultation
            self.store.link_thread(consultation_id, kind, asked.destination, asked.message_id)
        return asked

    def _thread_of(self, consultation_id: str, person_id: str, kind: str, raw: Dict[str, Any]) -> Optional[str]:
        """The consultation's thread for ``person_id`` on ``kind``: where it was sent to them, else where
        they wrote (the Slack thread, the Telegram message they answered)."""
        threads = [
            e.detail.get("thread_id")
            for e in self.store.audit_trail(consultation_id)
            if e.action == "assigned" and e.detail.get("assignee") == person_id and e.detail.get("channel") == kind
        ]
        if threads and threads[-1]:
            return str(threads[-1])
        for key in ("thread_ts", "reply_to_message_id", "message_id") if kind != "email" else ():
            if raw.get(key):
                return str(raw[key])
        return None

    # telling the expert where they wrote

    def tell_expert(self, answer: Union[ExpertReply, Feedback], text: str) -> None:
        """Best effort: an ephemeral Slack message, or a Telegram reply, to the expert who wrote."""
        raw = answer.raw
        if answer.source == "slack":
            self.tell_slack(
                Ephemeral(
                    text,
                    response_url=raw.get("response_url"),
                    channel=raw.get("channel"),
                    user=raw.get("user_id"),
                    thread_ts=raw.get("thread_ts"),
                )
            )
        elif answer.source == "telegram" and callable(getattr(self.service.channels.get("telegram"), "call", None)):
            telegram: Any = self.service.channels["telegram"]  # the Telegram channel (it has a Bot API `call`)
            call = send_message(raw.get("chat_id"), text, raw.get("message_id"))  # (no bot token: nothing to call)
            try:
                telegram.call(call.pop("method"), call)
            except ChannelError as error:
                logger.warning("could not tell the expert on Telegram: %s", redact(error.message))

    def tell_slack(self, ephemeral: Ephemeral) -> None:
        """Best effort: an ephemeral Slack message (through its response URL, else the Slack client)."""
        try:
            if ephemeral.response_url:
                requests.post(ephemeral.response_url, json=ephemeral.payload(), timeout=10).raise_for_status()
            elif hasattr(self.service.channels.get("slack"), "client"):
                slack: Any = self.service.channels["slack"]  # the Slack channel (it has a slack_sdk client)
                slack.client.chat_postEphemeral(**ephemeral.payload())
        except Exception as error:  # the expert's feedback is best effort; the reply itself is recorded
            logger.warning("could not send a Slack ephemeral message: %s", redact(str(error)))

    # the timers: the SLA ladder and the delivery worker

    def sla_tick(self) -> List[Dict[str, Any]]:
        """Walk the SLA ladder; the delay notices it queued (the worker delivers them)."""
        notices = [
            {"consultation_id": o.consultation_id, "text": o.customer_text}
            for o in self.service.run_sla()
            if o.customer_text
        ]
        if notices:
            self.worker.wake()
        return notices

    async def sla_timer(self, interval: float) -> None:
        """`sla_tick` every ``interval`` seconds, off the event loop, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.sla_tick)
            except Exception:  # the timer must survive a bad tick; the next one retries
                logger.exception("SLA tick failed")

    def start_timers(self, sla_interval: float, delivery_interval: float) -> None:
        """Start the SLA timer and the delivery worker's loop on the running event loop (an interval of 0
        leaves that one off)."""
        loop = asyncio.get_running_loop()
        if sla_interval > 0:
            self._timers.append(loop.create_task(self.sla_timer(sla_interval)))
        if delivery_interval > 0:
            self._timers.append(loop.create_task(self.worker.run()))

    async def stop_timers(self) -> None:
        """Stop the timers cleanly; a delivery in flight keeps its lease and is retried after it."""
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers.clear()


def _in_background(job: Callable[[], Any]) -> None:
    """Run ``job`` in a daemon thread: the expert's reply is answered without waiting for it."""
    threading.Thread(target=job, name="backline-feedback", daemon=True).start()
