"""Reliable delivery: retry with backoff, fall back along channels and people, end on the dashboard.

Order: for each person given, their preferred channel, then their other channels in experts.yml
order (the dashboard counts as a person's channel only when it is their preferred one, since it is
passive); then the next person; finally the dashboard, addressed to the first person and marked
``fallback``, so a notification is never lost. Transient failures (HTTP 5xx, timeouts, connection
errors, 429 / Slack ``ratelimited``) are retried on the same channel with exponential backoff,
honouring Retry-After; permanent ones move on at once. Delivery is at-least-once: a timeout after
the provider accepted a message can lead to a second copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from backline.experts.base import ChannelConfigError, ChannelError, Delivery, ExpertChannel, Notification
from backline.experts.dashboard import DashboardChannel, Sink
from backline.experts.email import EmailChannel
from backline.experts.slack import SlackChannel
from backline.experts.telegram import TelegramChannel
from backline.routing.directory import Person
from backline.utc import utcnow

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], Any]


utc_now = utcnow
"""The real clock (aware UTC): `backline.utc.utcnow`."""


@dataclass(frozen=True)
class Route:
    """Try ``person`` on channel type ``channel``."""

    person: Person
    channel: str


def routes_for(person: Person) -> List[Route]:
    """The person's preferred channel first, then the others; the dashboard only if preferred."""
    kinds = [person.preferred] + [c.type for c in person.channels if c.type != person.preferred]
    return [Route(person, kind) for kind in kinds if kind != "dashboard" or kind == person.preferred]


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_attempts`` per route; waits base·factor^(n-1) capped at ``max_delay``, or Retry-After.

    A Retry-After longer than ``max_retry_after`` is not waited for: the next route is tried instead.
    """

    max_attempts: int = 3
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def wait_before_retry(self, attempt: int, error: ChannelError) -> Optional[float]:
        """Seconds to wait before attempt ``attempt + 1``; None when the route should be given up."""
        if not error.transient or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        return min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))


@dataclass(frozen=True)
class FailedAttempt:
    """One failed send, for the audit trail. ``waited`` is the pause before the retry (None: gave up the route)."""

    person_id: str
    channel: str
    destination: Optional[str]
    attempt: int
    code: str
    message: str
    transient: bool
    at: dt.datetime
    retry_after: Optional[float] = None
    status: Optional[int] = None
    waited: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "person_id": self.person_id,
            "channel": self.channel,
            "destination": self.destination,
            "attempt": self.attempt,
            "code": self.code,
            "message": self.message,
            "transient": self.transient,
            "at": self.at.isoformat(),
            "retry_after": self.retry_after,
            "status": self.status,
            "waited": self.waited,
        }


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    failures: Tuple[FailedAttempt, ...] = ()

    def audit_entries(self) -> List[Dict[str, Any]]:
        """{"action", "detail"} dicts for `ConsultationStore.audit`: each failure, then the delivery."""
        entries = [{"action": "delivery_failed", "detail": f.as_dict()} for f in self.failures]
        entries.append({"action": "notified", "detail": self.delivery.as_dict()})
        return entries


class DeliveryFailed(Exception):
    """Even the dashboard refused the notification (its sink kept failing)."""

    def __init__(self, failures: Sequence[FailedAttempt]) -> None:
        last = failures[-1] if failures else None
        super().__init__(f"notification could not be delivered, not even to the dashboard: {last and last.message}")
        self.failures = tuple(failures)


class UnavailableChannel(ExpertChannel):
    """Stands in for a channel that is not configured: every send fails permanently with the reason."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason

    def send(self, notification: Notification) -> Delivery:
        raise ChannelConfigError(self.kind, self.reason)

    def ask_feedback(self, person: Person, consultation_id: str, **_: Any) -> Delivery:
        raise ChannelConfigError(self.kind, self.reason)


def channels_from_env(
    dashboard_sink: Sink, env: Optional[Mapping[str, str]] = None, timeout: float = 10.0
) -> Dict[str, ExpertChannel]:
    """All four channels from the environment; an unconfigured one becomes an `UnavailableChannel`."""
    channels: Dict[str, ExpertChannel] = {}
    for kind, factory in (("slack", SlackChannel), ("telegram", TelegramChannel), ("email", EmailChannel)):
        try:
            channels[kind] = factory.from_env(env, timeout=timeout)  # type: ignore[attr-defined]
        except ChannelConfigError as error:
            channels[kind] = UnavailableChannel(kind, error.message)
    channels["dashboard"] = DashboardChannel(dashboard_sink)
    return channels


def deliver(
    notification: Notification,
    routes: Sequence[Union[Route, Person]],
    channels: Mapping[str, ExpertChannel],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = time.sleep,
    clock: Clock = utc_now,
) -> DeliveryResult:
    """Deliver along ``routes`` (people expand with `routes_for`), then to the dashboard; see the module doc."""
    if "dashboard" not in channels:
        raise ValueError("channels must include 'dashboard', the last fallback")
    plan: List[Route] = []
    for item in routes:
        for route in routes_for(item) if isinstance(item, Person) else [item]:
            if route not in plan:
                plan.append(route)
    failures: List[FailedAttempt] = []
    for route in plan:
        channel = channels.get(route.channel)
        if channel is None:
            failures.append(
                _failure(
                    route, 1, ChannelConfigError(route.channel, f"no {route.channel} channel is set up"), None, clock
                )
            )
            continue
        target = notification if route.person == notification.person else notification.for_person(route.person)
        delivery = _attempt(channel, target, route, policy, sleep, clock, failures)
        if delivery is not None:
            return DeliveryResult(delivery, tuple(failures))
    last_resort = Route(notification.person, "dashboard")
    delivery = _attempt(
        channels["dashboard"], replace(notification, fallback=True), last_resort, policy, sleep, clock, failures
    )
    if delivery is None:
        raise DeliveryFailed(failures)
    logger.warning("consultation %s: no expert channel took it; left on the dashboard", notification.consultation_id)
    return DeliveryResult(replace(delivery, fallback=True), tuple(failures))


def _attempt(
    channel: ExpertChannel,
    notification: Notification,
    route: Route,
    policy: RetryPolicy,
    sleep: Sleep,
    clock: Clock,
    failures: List[FailedAttempt],
) -> Optional[Delivery]:
    """Send on one route with retries; None (failures recorded) when the route is given up."""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            delivery = channel.send(notification)
        except ChannelError as error:
            wait = policy.wait_before_retry(attempt, error)
            failures.append(_failure(route, attempt, error, wait, clock))
            if wait is None:
                return None
            sleep(wait)
            continue
        except Exception as error:  # a bug in a channel must not lose the notification
            logger.exception("unexpected error from the %s channel", route.channel)
            failures.append(
                _failure(
                    route,
                    attempt,
                    ChannelError(route.channel, "unexpected_error", repr(error), transient=False),
                    None,
                    clock,
                )
            )
            return None
        return replace(delivery, attempts=attempt, at=clock())
    return None


def _failure(route: Route, attempt: int, error: ChannelError, wait: Optional[float], clock: Clock) -> FailedAttempt:
    address = route.person.channel(route.channel)
    return FailedAttempt(
        person_id=route.person.id,
        channel=route.channel,
        destination=address.address if address else None,
        attempt=attempt,
        code=error.code,
        message=error.message,
        transient=error.transient,
        at=clock(),
        retry_after=error.retry_after,
        status=error.status,
        waited=wait,
    )
