"""Conversation load for `python -m backline.bench scale`: many customers at once on the REST channel,
a scripted operator on the hub's API, and the check of what reached the trackers.

Each conversation sends its turns one after the other, each with its own ``message_id``; a turn that
gets no answer (connection refused or reset, 5xx, timeout) is sent again with the same id until it is
answered or ``turn_deadline`` passes, as a careful integration would. A share of the conversations
asks for a person at turn 3; the `Operator` answers every consultation once, with a text that names
it, through the hub's JSON API.

`audit` then compares, per conversation, what was sent with the tracker: a ``message_id`` missing is
**lost**, present more than once is **duplicated**, and a tracker whose ids are not in the order they
were sent is **out of order**; an operator's reply missing from the customer's conversation is
**lost**, present more than once **doubled**.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import requests

ORDERS = ("10007", "10019", "10023", "10031", "10042", "10048", "10056", "10061", "10070", "10085")
ROUTINE = (
    "hi there",
    "where is my order {order}?",
    "what are your opening hours?",
    "how much is Kestrel Cloud Pro?",
    "thanks a lot",
    "when will order {order} arrive?",
    "what does Kestrel Cloud Business cost?",
    "are you open on saturday?",
    "ok thank you",
)
PERSON = "I want to talk to a human"
HANDOFF_TURN = 3


@dataclass(frozen=True)
class Conversation:
    """One customer's script: sender id and the turns (message id, text) in order."""

    sender: str
    turns: Sequence[Sequence[str]]
    asks_for_person: bool


def scripts(count: int, turns: int, handoff_share: float, prefix: str, seed: int = 7) -> List[Conversation]:
    """``count`` conversations of ``turns`` turns; every ``1/handoff_share``-th asks for a person."""
    rng = random.Random(seed)
    every = round(1 / handoff_share) if handoff_share > 0 else 0
    made = []
    for number in range(count):
        sender = f"{prefix}-{number:04d}"
        person = bool(every) and number % every == 0
        offset = rng.randrange(len(ROUTINE))
        texts = [ROUTINE[(offset + turn) % len(ROUTINE)].format(order=rng.choice(ORDERS)) for turn in range(turns)]
        if person:
            texts[HANDOFF_TURN - 1] = PERSON
        made.append(Conversation(sender, [(f"{sender}-t{turn:02d}", text) for turn, text in enumerate(texts)], person))
    return made


@dataclass
class TurnResult:
    """One turn as the customer saw it: when it was answered (None: never), how many sends it took."""

    sender: str
    message_id: str
    started: float
    latency: Optional[float]
    attempts: int
    failures: Sequence[str] = ()  # why each failed send failed: "HTTP 503", "ConnectionError", ...


@dataclass
class LoadResult:
    """Every turn of a run, and the run's wall time."""

    turns: List[TurnResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def answered(self) -> List[float]:
        return [t.latency for t in self.turns if t.latency is not None]

    @property
    def unanswered(self) -> int:
        return sum(t.latency is None for t in self.turns)

    @property
    def resent(self) -> int:
        return sum(t.attempts - 1 for t in self.turns)

    @property
    def failure_reasons(self) -> Dict[str, int]:
        """Why sends failed, most frequent first."""
        counts = Counter(reason for turn in self.turns for reason in turn.failures)
        return dict(counts.most_common())


def send_turn(
    session: requests.Session, url: str, token: str, sender: str, message_id: str, text: str, deadline: float
) -> TurnResult:
    """Sends one turn until it is answered (200) or ``deadline`` (seconds from now) passes."""
    started = time.monotonic()
    attempts = 0
    failures: List[str] = []
    while time.monotonic() - started < deadline:
        attempts += 1
        try:
            answer = session.post(
                url,
                json={"sender": sender, "message": text, "message_id": message_id},
                headers={"Authorization": f"Bearer {token}"},
                timeout=max(1.0, deadline - (time.monotonic() - started)),
            )
            if answer.status_code == 200:
                return TurnResult(sender, message_id, started, time.monotonic() - started, attempts, failures)
            failures.append(f"HTTP {answer.status_code}")
            if answer.status_code < 500:
                break  # refused: sending it again would not help
        except requests.RequestException as error:
            failures.append(failure_reason(error))
        time.sleep(0.5)
    return TurnResult(sender, message_id, started, None, attempts, failures)


def failure_reason(error: BaseException) -> str:
    """``ConnectionError (RemoteDisconnected)``: the exception and the innermost cause it wraps."""
    inner: object = error
    for _ in range(5):  # requests wraps urllib3's errors, which wrap the socket's
        args = getattr(inner, "args", ())
        wrapped = next((a for a in args if isinstance(a, BaseException)), None)
        wrapped = wrapped or getattr(inner, "reason", None) or getattr(inner, "__cause__", None)
        if not isinstance(wrapped, BaseException):
            break
        inner = wrapped
    name = type(error).__name__
    return name if inner is error else f"{name} ({type(inner).__name__})"


def run_load(
    rasa_url: str,
    token: str,
    conversations: Sequence[Conversation],
    *,
    turn_deadline: float = 180.0,
    on_progress: Optional[Callable[[int], None]] = None,
) -> LoadResult:
    """Every conversation at once (one thread each), turns in order; ``on_progress(turns done)``."""
    url = f"{rasa_url}/webhooks/rest/webhook"
    result = LoadResult()
    done = 0
    lock = threading.Lock()

    def converse(conversation: Conversation) -> List[TurnResult]:
        nonlocal done
        mine = []
        with requests.Session() as session:
            for message_id, text in conversation.turns:
                mine.append(send_turn(session, url, token, conversation.sender, message_id, text, turn_deadline))
                with lock:
                    done += 1
                    count = done
                if on_progress is not None:
                    on_progress(count)
        return mine

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(conversations))) as pool:
        for turns in pool.map(converse, conversations):
            result.turns.extend(turns)
    result.seconds = time.monotonic() - started
    return result


class Operator(threading.Thread):
    """Answers every consultation once through the hub's JSON API (``message`` on a handoff,
    ``answer`` on a consultation), with the text `reply_text` names the case with."""

    def __init__(self, hub_url: str, token: str, prefix: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.hub_url, self.token, self.prefix, self.interval = hub_url, token, prefix, interval
        self.answered: Dict[str, str] = {}  # consultation id -> conversation id
        self.waiting = 0  # cases of this run seen unanswered in the last look
        self.failures = 0
        self._stop_event = threading.Event()

    @staticmethod
    def reply_text(consultation_id: str) -> str:
        return f"Operator note {consultation_id}: checked, all is in order."

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with requests.Session() as session:
            while not self._stop_event.is_set():
                try:
                    cases = session.get(f"{self.hub_url}/api/consultations", headers=headers, timeout=30).json()
                    todo = [
                        case
                        for case in cases
                        if case["id"] not in self.answered
                        and case["conversation_id"].startswith(self.prefix)
                        and case["status"] in ("open", "assigned")
                    ]
                    self.waiting = len(todo)
                    for case in todo:
                        action = "message" if case["mode"] == "handoff" else "answer"
                        reply = session.post(
                            f"{self.hub_url}/api/consultations/{case['id']}/reply",
                            json={"action": action, "text": self.reply_text(case["id"])},
                            headers=headers,
                            timeout=30,
                        )
                        if reply.status_code in (200, 202):
                            self.answered[case["id"]] = case["conversation_id"]
                        else:
                            self.failures += 1
                except (requests.RequestException, ValueError, KeyError):
                    self.failures += 1
                self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


@dataclass
class Audit:
    """What the trackers hold against what was sent (see the module docstring)."""

    conversations: int = 0
    turns_sent: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    replies_sent: int = 0
    replies_lost: int = 0
    replies_doubled: int = 0
    problems: List[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.replies_lost or self.replies_doubled)


def audit_conversation(sent_ids: Sequence[str], events: Sequence[Mapping[str, Any]], audit: Audit, sender: str) -> None:
    """Adds one conversation's counts to ``audit``: its sent ids against its tracker's user events."""
    wanted = set(sent_ids)
    seen = [str(e["message_id"]) for e in events if e.get("event") == "user" and e.get("message_id") in wanted]
    audit.conversations += 1
    audit.turns_sent += len(sent_ids)
    missing = [m for m in sent_ids if m not in seen]
    doubled = sorted({m for m in seen if seen.count(m) > 1})
    audit.lost += len(missing)
    audit.duplicated += sum(seen.count(m) - 1 for m in doubled)
    first_seen = list(dict.fromkeys(seen))
    expected = [m for m in sent_ids if m in first_seen]
    if first_seen != expected:
        audit.out_of_order += 1
        audit.problems.append(f"{sender}: turns out of order")
    if missing:
        audit.problems.append(f"{sender}: lost {', '.join(missing[:3])}")
    if doubled:
        audit.problems.append(f"{sender}: duplicated {', '.join(doubled[:3])}")


def audit_replies(
    replies: Mapping[str, str], events_of: Callable[[str], Sequence[Mapping[str, Any]]], audit: Audit
) -> None:
    """Adds the operator's replies (consultation id -> conversation) found 0 or 2+ times to ``audit``."""
    for consultation_id, sender in sorted(replies.items()):
        text = Operator.reply_text(consultation_id)
        count = sum(1 for e in events_of(sender) if e.get("event") == "bot" and text in (e.get("text") or ""))
        audit.replies_sent += 1
        if count == 0:
            audit.replies_lost += 1
            audit.problems.append(f"{sender}: the reply of {consultation_id} never arrived")
        elif count > 1:
            audit.replies_doubled += count - 1
            audit.problems.append(f"{sender}: the reply of {consultation_id} arrived {count} times")
