"""The expert channel interface: what is sent (`Notification`), what came of it (`Delivery`), errors,
and the question after a decision (`ExpertChannel.ask_feedback`: the verdict on the escalation and the
reason for overriding the AI's draft, in governance.yml's words).

Channels do one attempt per `send`; retries, backoff and fallback live in `backline.experts.delivery`.
Masking of card numbers, IBANs and the like happens when the context package is built
(`backline.consult.context`): channels send the brief and transcript they are given.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from backline.governance.config import governance
from backline.routing.directory import Person
from backline.routing.matrix import PRIORITIES
from backline.utc import as_utc

MODES = ("consult", "handoff")
ACTIONS = ("approve", "deny", "answer", "take_over", "close")
"""What an expert can do with a consultation from a channel's buttons (the hub's reply actions). Answer
and Close need the text for the customer: their buttons ask for it (a reply in the thread)."""
ACTION_LABELS = {
    "approve": "Approve",
    "deny": "Deny",
    "answer": "Answer",
    "take_over": "Take over",
    "close": "Close case",
}
TEXT_ACTIONS = ("answer", "close")
"""Buttons that record nothing: the expert is asked to reply with the text (``close: <resolution>``)."""
BRIEF_FIELDS: Tuple[Tuple[str, str], ...] = (
    ("intent", "Intent"),
    ("amount", "Amount"),
    ("product", "Product"),
    ("user_claim", "Customer says"),
    ("risk", "Risk"),
)
"""The five-field brief, in display order: (key, label)."""
ROLE_LABELS = {"user": "Customer", "customer": "Customer", "bot": "AI", "assistant": "AI", "expert": "Expert"}
PRIORITY_MARKS = {"urgent": "🔴", "high": "🟠", "normal": "🔵", "low": "⚪"}
EMPTY = "—"


class ChannelError(Exception):
    """One failed send. ``transient`` failures are worth retrying (after ``retry_after`` seconds if given)."""

    def __init__(
        self,
        channel: str,
        code: str,
        message: str,
        *,
        transient: bool,
        retry_after: Optional[float] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.status = status


class ChannelConfigError(ChannelError):
    """A channel cannot be used as configured (missing token, bad setting): permanent, names the env var."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(channel, "not_configured", message, transient=False)


@dataclass(frozen=True)
class Notification:
    """One consultation, addressed to one expert. ``text`` is the plain-text rendering (rendered if empty)."""

    consultation_id: str
    conversation_id: str
    person: Person
    mode: str
    priority: str
    brief: Mapping[str, Any]
    transcript: Sequence[Mapping[str, str]] = ()
    ai_draft: Optional[str] = None
    text: str = ""
    queue: Optional[str] = None
    reasons: Tuple[str, ...] = ()
    sla_minutes: Optional[int] = None
    sla_due_at: Optional[dt.datetime] = None
    link: Optional[str] = None
    fallback: bool = False
    """True when this is the last-resort dashboard copy: no expert channel took it."""

    def __post_init__(self) -> None:
        if not str(self.consultation_id):
            raise ValueError("consultation_id must not be empty")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {self.priority!r}")
        object.__setattr__(self, "consultation_id", str(self.consultation_id))
        object.__setattr__(self, "conversation_id", str(self.conversation_id))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "transcript", tuple(dict(turn) for turn in self.transcript))
        if not self.text:
            object.__setattr__(self, "text", render_text(self))

    def for_person(self, person: Person) -> "Notification":
        """The same notification addressed to someone else (the next person of a fallback)."""
        return replace(self, person=person)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form (what the dashboard stores and pushes)."""
        return {
            "consultation_id": self.consultation_id,
            "conversation_id": self.conversation_id,
            "person_id": self.person.id,
            "person_name": self.person.name,
            "mode": self.mode,
            "priority": self.priority,
            "queue": self.queue,
            "reasons": list(self.reasons),
            "brief": dict(self.brief),
            "ai_draft": self.ai_draft,
            "text": self.text,
            "transcript": [dict(turn) for turn in self.transcript],
            "sla_minutes": self.sla_minutes,
            "sla_due_at": self.sla_due_at.isoformat() if self.sla_due_at else None,
            "link": self.link,
            "fallback": self.fallback,
        }


@dataclass(frozen=True)
class Delivery:
    """A notification that reached a channel: where, under which provider ids, after how many attempts."""

    channel: str
    person_id: str
    destination: str
    message_id: Optional[str] = None
    thread_id: Optional[str] = None
    attempts: int = 1
    at: Optional[dt.datetime] = None
    fallback: bool = False
    warnings: Tuple[str, ...] = ()
    """Problems after the message itself went out (e.g. the transcript follow-up failed)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "channel": self.channel,
            "person_id": self.person_id,
            "destination": self.destination,
            "message_id": self.message_id,
            "thread_id": self.thread_id,
            "attempts": self.attempts,
            "at": self.at.isoformat() if self.at else None,
            "fallback": self.fallback,
            "warnings": list(self.warnings),
            "extra": dict(self.extra),
        }


class ExpertChannel(abc.ABC):
    """A way to reach an expert. ``send`` makes one attempt and raises `ChannelError` on failure."""

    kind: str = ""

    @abc.abstractmethod
    def send(self, notification: Notification) -> Delivery:
        """Deliver ``notification`` to ``notification.person`` on this channel."""

    def post(self, person: Person, text: str, thread_id: Optional[str] = None) -> Delivery:
        """A follow-up in the consultation's thread (a customer message in human mode)."""
        raise ChannelError(self.kind, "unsupported", f"{self.kind} does not carry follow-ups", transient=False)

    def ask_feedback(
        self,
        person: Person,
        consultation_id: str,
        *,
        verdict: bool,
        reasons: bool,
        thread_id: Optional[str] = None,
    ) -> Delivery:
        """After a final decision: ask ``person`` for the verdict on the escalation (``verdict``) and
        why they overrode the AI's draft (``reasons``), in the consultation's thread: buttons where the
        channel has them, else the reply keywords (`feedback_lines`). One attempt; `ChannelError`."""
        raise ChannelError(self.kind, "unsupported", f"{self.kind} does not ask for feedback", transient=False)

    def address(self, person: Person) -> str:
        """The person's address on this channel; a permanent `ChannelError` when they have none."""
        channel = person.channel(self.kind)
        if channel is None:
            raise ChannelError(self.kind, "no_address", f"{person.id} has no {self.kind} channel", transient=False)
        return channel.address


# --- rendering helpers shared by the channels ------------------------------------------------


FEEDBACK_QUESTION = "Was this escalation needed?"
REASON_QUESTION = "You changed the AI's draft: why?"


def feedback_lines(consultation_id: str, *, verdict: bool, reasons: bool, buttons: bool = False) -> List[str]:
    """The feedback question as text: what to click (``buttons``) or which lines to reply with
    (``verdict: ...``, ``reason: ...``, read by `backline.hub.guidance`), in governance.yml's words."""
    rules = governance()
    lines = [f"Consultation {consultation_id} is closed. Thank you!"]
    if verdict:
        lines.append(
            FEEDBACK_QUESTION + " " + " / ".join(rules.verdicts.values())
            if buttons
            else f"{FEEDBACK_QUESTION} Reply with one line: "
            + " | ".join(f"verdict: {key.replace('_', ' ')}" for key in rules.verdicts)
        )
    if reasons:
        lines.append(
            REASON_QUESTION + " " + " / ".join(rules.override_reasons.values())
            if buttons
            else f"{REASON_QUESTION} Reply with one line: "
            + " | ".join(_reason_example(key) for key in rules.override_reasons)
        )
    if buttons:
        lines.append("Or reply here with verdict: ... or reason: ... lines.")
    return lines


def _reason_example(key: str) -> str:
    if key == "wrong_intent":
        return "reason: wrong intent -> <the intent meant>"
    if key == "other":
        return "reason: other - <what was wrong>"
    return f"reason: {key.replace('_', ' ')}"


def format_value(value: Any) -> str:
    """A brief value as one readable line: amounts, risk with grounds, lists and mappings."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Mapping):
        amount = value.get("value", value.get("amount"))
        if amount is not None and "currency" in value:
            return f"{format_value(amount)} {value['currency']}"
        level = value.get("level")
        grounds = value.get("grounds", value.get("reasons", value.get("evidence")))
        if level is not None:
            return f"{level} — {format_value(grounds)}" if grounds else str(level)
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return "; ".join(format_value(v) for v in value)
    return str(value)


def brief_lines(brief: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """The five-field brief as (label, text) pairs, in display order."""
    return [(label, format_value(brief.get(key))) for key, label in BRIEF_FIELDS]


def role_label(role: str) -> str:
    return ROLE_LABELS.get(str(role).lower(), str(role).capitalize() or "?")


def transcript_lines(transcript: Sequence[Mapping[str, str]]) -> List[Tuple[str, str]]:
    """(speaker, text) for each turn."""
    return [(role_label(turn.get("role", "")), str(turn.get("text", ""))) for turn in transcript]


def sla_text(notification: Notification) -> str:
    """'SLA 240 min · reply by 2026-11-23 14:30 UTC', or '' when there is no SLA."""
    parts = []
    if notification.sla_minutes:
        parts.append(f"SLA {notification.sla_minutes} min")
    if notification.sla_due_at:
        due = as_utc(notification.sla_due_at)
        parts.append(f"reply by {due:%Y-%m-%d %H:%M} UTC")
    return " · ".join(parts)


def headline(notification: Notification) -> str:
    """One line: priority, mode and intent."""
    kind = "Handoff" if notification.mode == "handoff" else "Consultation"
    intent = format_value(notification.brief.get("intent"))
    return f"{PRIORITY_MARKS[notification.priority]} {notification.priority.upper()} · {kind}: {intent}"


def render_text(notification: Notification) -> str:
    """The plain-text notification: headline, ids, the five-field brief and the AI draft."""
    lines = [headline(notification)]
    meta = [f"consultation {notification.consultation_id}", f"conversation {notification.conversation_id}"]
    if notification.queue:
        meta.append(f"queue {notification.queue}")
    lines.append(" · ".join(meta))
    if notification.reasons:
        lines.append("Why: " + ", ".join(notification.reasons))
    sla = sla_text(notification)
    if sla:
        lines.append(sla)
    lines.append("")
    width = max(len(label) for _, label in BRIEF_FIELDS) + 1
    lines += [f"{label + ':':<{width}} {text}" for label, text in brief_lines(notification.brief)]
    if notification.ai_draft:
        lines += ["", "AI draft:", notification.ai_draft]
    if notification.link:
        lines += ["", f"Open: {notification.link}"]
    return "\n".join(lines)


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, with ``marker`` when cut."""
    return text if len(text) <= limit else text[: max(limit - len(marker), 0)] + marker


def chunk_lines(lines: Sequence[str], limit: int, measure: Callable[[str], int] = len) -> List[str]:
    """Join lines into chunks of at most ``limit`` (by ``measure``); an overlong line is split hard."""
    chunks: List[str] = []
    current = ""
    for line in lines:
        while measure(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            cut = limit
            while cut > 1 and measure(line[:cut]) > limit:
                cut -= 1
            chunks.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if measure(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks
