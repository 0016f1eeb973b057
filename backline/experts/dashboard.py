"""The operator dashboard: the notification is handed to a sink (the store or hub; a list in tests).

Always available, so it is the last fallback of every delivery.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, MutableSequence, Optional, Union

from backline.experts.base import ChannelError, Delivery, ExpertChannel, Notification
from backline.routing.directory import Person

Sink = Union[Callable[[Dict[str, Any]], Any], MutableSequence]
"""Receives `Notification.as_dict()`; may return an id for the stored entry. A list is appended to."""


class DashboardChannel(ExpertChannel):
    kind = "dashboard"

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def send(self, notification: Notification) -> Delivery:
        record = notification.as_dict()
        person = notification.person.channel(self.kind)
        destination = person.address if person else notification.person.id
        record["dashboard_user"] = destination
        try:
            if isinstance(self.sink, MutableSequence):
                self.sink.append(record)
                stored_id = None
            else:
                stored_id = self.sink(record)
        except Exception as error:  # the sink is ours (store, hub): worth another try
            raise ChannelError(self.kind, "sink_failed", f"dashboard sink failed: {error!r}", transient=True) from error
        message_id = str(stored_id) if stored_id is not None else f"dashboard:{notification.consultation_id}"
        return Delivery(
            channel=self.kind,
            person_id=notification.person.id,
            destination=destination,
            message_id=message_id,
            fallback=notification.fallback,
        )

    def ask_feedback(
        self,
        person: Person,
        consultation_id: str,
        *,
        verdict: bool,
        reasons: bool,
        thread_id: Optional[str] = None,
    ) -> Delivery:
        """Nothing to send: the dashboard shows its own verdict and reason buttons on the closed case."""
        return Delivery(channel=self.kind, person_id=person.id, destination=person.id, thread_id=thread_id)

    def post(self, person: Person, text: str, thread_id: Optional[str] = None) -> Delivery:
        """Nothing to send: the dashboard shows the consultation's messages from the store."""
        return Delivery(channel=self.kind, person_id=person.id, destination=person.id, thread_id=thread_id)
