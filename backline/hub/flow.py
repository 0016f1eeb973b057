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
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple

import requests

from backline.access import access_for
from backline.consult.outbox import Outbox
from backline.consult.replies import DuplicateReply, ReplyError, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import ConsultationClosed, ConsultationNotFound
from backline.experts.base import ChannelError
from backline.hub.delivery_worker import DeliveryWorker
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

    def __init__(self, service: ConsultationService, worker: DeliveryWorker) -> None:
        self.service = service
        self.store = service.store
        self.worker = worker
        self.outbox: Outbox = worker.outbox
        self._timers: List[asyncio.Task] = []

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

    def may_answer(self, answer: ExpertReply) -> bool:
        """Whether the expert answering from Slack or Telegram may decide the case (their queues)."""
        case = self.store.get(answer.consultation_id)
        return case is None or access_for(self.service.directory, answer.actor).may_see_case(case)

    # telling the expert where they wrote

    def tell_expert(self, answer: ExpertReply, text: str) -> None:
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
