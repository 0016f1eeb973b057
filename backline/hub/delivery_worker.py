"""The hub's delivery worker: sends the outbox (`backline.consult.outbox`) to Rasa until Rasa confirms.

Every ``interval`` seconds (or at once when woken) it leases the due deliveries, resumes each
conversation through trigger_intent and marks the delivery delivered only when the tracker Rasa
returns holds the bot message carrying its ``delivery_id``; otherwise the attempt is recorded as
failed and retried with backoff. Several hubs may run it on one store: leases keep them apart, and
the Rasa side answers a repeated delivery with silence. A delivery can also be attempted at once
(`deliver_now`) so that an operator hears right away whether the customer was reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any, Dict, List, Optional

from backline.consult.outbox import Outbox, confirmed
from backline.consult.records import Delivery
from backline.hub.rasa_client import RasaClient, RasaError

logger = logging.getLogger(__name__)

NOT_CONFIRMED = "Rasa ran the intent but no bot message carries the delivery id (is the action server up?)"


def worker_id() -> str:
    """Who holds a lease: host, process and a random suffix (two hubs never share one)."""
    return f"hub-{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    """Delivers ``outbox`` through ``rasa``; ``attempt_timeout``: seconds one trigger_intent may take."""

    def __init__(
        self,
        outbox: Outbox,
        rasa: RasaClient,
        *,
        owner: Optional[str] = None,
        interval: float = 1.0,
        attempt_timeout: float = 30.0,
        batch: int = 20,
    ) -> None:
        self.outbox = outbox
        self.rasa = rasa
        self.owner = owner or worker_id()
        self.interval = interval
        self.attempt_timeout = attempt_timeout
        self.batch = batch
        self._wake: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def attempt(self, delivery: Delivery) -> Optional[Dict[str, Any]]:
        """One attempt at a leased delivery: Rasa's answer when it was confirmed, else None (recorded
        as a failed attempt, retried later or given up past the budget)."""
        try:
            answer = self.rasa.trigger_intent(
                delivery.conversation_id, delivery.intent, delivery.entities, timeout=self.attempt_timeout
            )
        except RasaError as error:
            self._failed(delivery, str(error))
            return None
        if not confirmed(answer, delivery.id):
            self._failed(delivery, NOT_CONFIRMED)
            return None
        self.outbox.succeeded(delivery)
        logger.info(
            "delivery %s (%s, consultation %s) reached the customer after %d attempt(s)",
            delivery.id,
            delivery.intent,
            delivery.consultation_id,
            delivery.attempts + 1,
        )
        return answer

    def _failed(self, delivery: Delivery, error: str) -> None:
        after = self.outbox.failed(delivery, error)
        if after is not None and after.status == "undeliverable":
            logger.error(
                "delivery %s (consultation %s) given up after %d attempts: %s",
                delivery.id,
                delivery.consultation_id,
                after.attempts,
                after.last_error,
            )
        else:
            logger.warning(
                "delivery %s (consultation %s) not delivered yet: %s", delivery.id, delivery.consultation_id, error
            )

    def deliver_now(self, delivery_id: str) -> Optional[Dict[str, Any]]:
        """Attempt one delivery at once if it is due and first in its conversation; Rasa's answer
        when the customer was reached, else None (the worker keeps trying)."""
        claimed = self.outbox.claim_due(self.owner, delivery_id=delivery_id, limit=1)
        return self.attempt(claimed[0]) if claimed else None

    def run_once(self) -> List[str]:
        """One round: every due delivery attempted; the ids that reached the customer."""
        delivered = []
        for delivery in self.outbox.claim_due(self.owner, limit=self.batch):
            try:
                if self.attempt(delivery) is not None:
                    delivered.append(delivery.id)
            except Exception:  # a broken delivery must not stop the others; its lease runs out
                logger.exception("delivery %s failed unexpectedly; retried when its lease ends", delivery.id)
        return delivered

    def wake(self) -> None:
        """Run a round now instead of at the next interval (after a webhook recorded a reply); safe
        to call from any thread."""
        if self._wake is None or self._loop is None:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Rounds forever (a hub task); a round that raises is logged and the next one retries."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                while await asyncio.to_thread(self.run_once):
                    pass  # more may be due (the next of a conversation)
            except Exception:
                logger.exception("delivery round failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
