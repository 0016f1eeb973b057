"""An expert's reply, from whichever channel, turned into structured guidance for the assistant.

Buttons (Slack, Telegram), the dashboard and the JSON API say what the expert decided; free text
(a Slack thread reply, a Telegram message, an e-mail body) follows this convention:

- a leading keyword sets the decision when no button was used: ``approve``, ``deny``,
  ``answer:``, ``need info``, ``take over``, ``hand back``, ``close:`` (also ``close case:``,
  ``closing:``, ``closing this case:``; the rest is the resolution the customer reads, and the case
  closes); without one, free text is a
  ``message``, read as an answer while the case is still a consultation (`ExpertReply.to_reply`);
- lines starting with ``//``, ``note:`` or ``internal:``, and the rest of a line after
  `` //``, are internal notes: recorded, never shown to the customer;
- ``allowed: informational, order status`` (also ``allow:``, ``follow-ups:``) or the rest of a
  ``hand back: info only`` line lists what the AI may handle after the hand-back;
- ``verdict: not needed`` (also ``escalation:``; ``needed``, ``not needed``, ``too late`` or
  ``should have come earlier``, governance.yml's ``verdicts``) is the expert's verdict on the escalation;
- ``reason: tone`` (also ``override:``, ``override reason:``) says why the AI's draft was denied or
  edited (governance.yml's ``override_reasons``): ``reason: wrong intent -> order_status`` names the
  intent meant, ``reason: other - the customer wanted a call`` (``other`` needs the text) or
  ``reason: tone - too blunt`` adds a note. Such a value (for a reason: its name, before ``->``,
  `` - ``, ``:`` or ``,``) of no more words than the longest configured key or label must name a
  configured one (else `ReplyError` lists them); a longer one is a sentence for the customer
  ("Reason: the refund window has passed."). A reply of only these lines (and notes) on a closed
  case records them and sends nothing to the customer (`Guidance.feedback_only`);
- quoted e-mail history is dropped: lines starting with ``>`` and everything from an
  ``On ... wrote:`` line, an ``-----Original Message-----`` line or a ``-- `` signature on.

Follow-up types, the intents each allows and the words experts may use for them are escalation.yml's
``hand_back.followups`` (`backline.configuration.hand_back`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from backline import configuration
from backline.consult.replies import DECISIONS, Reply, ReplyError, allowed_intents
from backline.governance.config import governance
from backline.nlp.money import find_money
from backline.routing.directory import ExpertDirectory, Person

SOURCES = ("slack", "telegram", "email", "dashboard", "api")
GOVERNANCE_FIELDS = ("override_reason", "override_note", "corrected_intent", "verdict")
"""Optional fields of a reply from the API or the dashboard: why the AI's draft was denied or edited, and
the verdict on the escalation (`ExpertReply`'s fields of those names; they win over ``reason:`` /
``verdict:`` lines)."""
MAX_ID_CHARS = 255
"""The longest consultation id or actor a reply may name (ids are short; anything longer is not one)."""
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL (PostgreSQL refuses it in text) and unpaired surrogates (not UTF-8): no reply may carry them."""
FREE_TEXT_DECISION = {"consult": "answer", "handoff": "message"}
"""What free text without a keyword means, by the consultation's mode."""
# Words for follow-up types come from escalation.yml (`HandBack.words`: the type's name with spaces,
# and its aliases); '-' and '_' read as spaces, a trailing 'only' or 'questions' is ignored.

_KEYWORDS = (
    ("approve", r"approved?"),
    ("deny", r"deny|denied|reject(?:ed)?"),
    ("answer", r"answer(?=\s*:)"),
    ("need_info", r"need(?:s)?\s+(?:more\s+)?info(?:rmation)?"),
    ("take_over", r"take\s*over|taking\s+over"),
    ("hand_back", r"hand(?:ing)?\s*back"),
    (
        "close",
        r"close(?:\s+(?:the\s+|this\s+)?case)?(?=\s*:)"
        r"|closing(?:\s+(?:the|this)\s+case)?(?=\s*[:,.!\-–—]|\s*$)",
    ),
)
_KEYWORD = re.compile(
    r"^\s*(?:" + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _KEYWORDS) + r")"
    r"(?:\s*[:,.!\-–—]+\s*|\s+|$)",
    re.IGNORECASE,
)
_NOTE_LINE = re.compile(r"^\s*(?://|(?:internal(?:\s+note)?|note)\s*:)\s*", re.IGNORECASE)
_INLINE_NOTE = re.compile(r"(?:^|\s)//\s*")
_FOLLOWUP_LINE = re.compile(r"^\s*(?:allowed|allow|follow[\s-]?ups?)\s*:\s*(?P<spec>.*)$", re.IGNORECASE)
_VERDICT_LINE = re.compile(r"^\s*(?:verdict|escalation)\s*[:=]\s*(?P<value>.*?)[\s.!]*$", re.IGNORECASE)
_REASON_LINE = re.compile(r"^\s*(?:(?:override\s+)?reason|override)\s*[:=]\s*(?P<value>.*?)\s*$", re.IGNORECASE)
_REASON_SPLIT = re.compile(r"\s*(?:->|→|=>|:|,|\(|\s[-–—]+\s|[-–—]{2,})\s*")
_INTENT_NAME = re.compile(
    r"^(?:(?:meant|means|should\s+be|is|was|intent)\s+)*(?P<intent>[A-Za-z][A-Za-z0-9_]*(?:/[A-Za-z0-9_]+)?)\)?$",
    re.IGNORECASE,
)
VERDICT_WORDS = {
    "necessary": "needed",
    "yes": "needed",
    "justified": "needed",
    "unnecessary": "not_needed",
    "not necessary": "not_needed",
    "no": "not_needed",
    "late": "too_late",
    "came too late": "too_late",
    "should have come sooner": "too_late",
    "earlier": "too_late",
    "should have been earlier": "too_late",
}
"""Other words for governance.yml's verdicts (its keys and labels are always understood)."""
_QUOTE = re.compile(r"^\s*>")
_HISTORY = re.compile(r"^\s*(?:On\b.*\bwrote:\s*|-{2,}\s*Original Message\s*-{2,}\s*|-- ?)$", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:[,;/&+]|\band\b)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Guidance:
    """What the expert decided, what the customer may read, and what stays internal."""

    decision: str
    customer_text: str = ""
    internal_notes: Tuple[str, ...] = ()
    amounts: Tuple[Dict[str, Any], ...] = ()
    """Money in the customer text: ``{"amount": 250.0, "currency": "EUR"}``."""
    allowed_followups: Tuple[str, ...] = ()
    explicit: bool = True
    """False when free text without a keyword fell back to the default decision."""
    verdict: Optional[str] = None
    """The expert's verdict on the escalation (a key of governance.yml's ``verdicts``)."""
    override_reason: Optional[str] = None
    """Why the AI's draft was denied or edited (a key of governance.yml's ``override_reasons``)."""
    override_note: Optional[str] = None
    corrected_intent: Optional[str] = None

    @property
    def has_feedback(self) -> bool:
        return self.verdict is not None or self.override_reason is not None

    @property
    def feedback_only(self) -> bool:
        """Only verdict / reason lines (and internal notes): no keyword, nothing for the customer."""
        return self.has_feedback and not self.explicit and not self.customer_text and not self.allowed_followups


def parse_verdict(value: str) -> str:
    """The verdict key for ``value`` (a key, a label or one of `VERDICT_WORDS`); `ReplyError` naming the choices."""
    rules = governance()
    try:
        return rules.check_verdict(value)
    except ValueError as error:
        wanted = " ".join(str(value).strip(" .!").lower().replace("_", " ").replace("-", " ").split())
        if wanted in VERDICT_WORDS:
            return VERDICT_WORDS[wanted]
        raise ReplyError(f"{error} (labels: {', '.join(rules.verdicts.values())})") from None


def parse_reason(value: str) -> Tuple[str, Optional[str], Optional[str]]:
    """``(reason, note, corrected_intent)`` from a reason line's value: ``tone``, ``tone - too blunt``,
    ``wrong intent -> order_status``, ``other - the text``; `ReplyError` naming the choices."""
    rules = governance()
    text = str(value).strip()
    head, rest = text, ""
    try:
        reason = rules.check_reason(head.strip(" .!"))
    except ValueError:
        parts = _REASON_SPLIT.split(text, maxsplit=1)
        head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        try:
            reason = rules.check_reason(head.strip(" .!"))
        except ValueError as error:
            raise ReplyError(f"{error} (labels: {', '.join(rules.override_reasons.values())})") from None
    rest = rest.strip().rstrip(")").strip()
    note, intent = (rest or None), None
    if reason == "wrong_intent" and rest:
        named = _INTENT_NAME.match(rest.rstrip(" ."))
        if named:
            note, intent = None, named.group("intent")
    if reason == "other" and not note:
        raise ReplyError("the reason 'other' needs its text: reason: other - <what was wrong>")
    return reason, note, intent


def _reads_as_sentence(value: str, limit: int) -> bool:
    return len(value.split()) > limit


def _longest(*choices: Mapping[str, str]) -> int:
    """The most words any key or label of ``choices`` has: a longer value is a sentence, not a choice."""
    return max(len(str(text).replace("_", " ").split()) for found in choices for pair in found.items() for text in pair)


def normalize_followups(words: Sequence[str]) -> Tuple[str, ...]:
    """Follow-up types for ``words`` (keys or aliases, each may list several); `ReplyError` names unknown ones."""
    found: List[str] = []
    unknown: List[str] = []
    for word in words:
        for token in _SPLIT.split(str(word)):
            key = _followup(token)
            if key:
                found.append(key)
            elif token.strip():
                unknown.append(token.strip())
    if unknown:
        raise ReplyError(f"unknown follow-up types {unknown}; known: {', '.join(configuration.hand_back().followups)}")
    return tuple(dict.fromkeys(found))


def _followup(token: str) -> Optional[str]:
    words = re.sub(r"[\s_\-]+", " ", token.strip(" .!").lower()).split()
    while words and words[-1] in ("only", "questions", "question"):
        words.pop()
    phrase = " ".join(words)
    rules = configuration.hand_back()
    return phrase if phrase in rules.followups else rules.words.get(phrase)


def followup_allows(allowed: Sequence[str], intent: str) -> bool:
    """Whether the AI may handle ``intent`` after a hand-back limited to ``allowed`` (no limit when empty)."""
    if not allowed:
        return True
    return intent in configuration.hand_back().always_allowed or intent in allowed_intents(normalize_followups(allowed))


def _without_history(text: str) -> List[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: List[str] = []
    for i, line in enumerate(lines):
        wrapped = f"{line} {lines[i + 1].strip()}" if i + 1 < len(lines) and line.lstrip().startswith("On ") else ""
        if _HISTORY.match(line) or (wrapped and _HISTORY.match(wrapped)):
            break
        if not _QUOTE.match(line):
            kept.append(line)
    return kept


def parse_guidance(
    action: Optional[str],
    text: str = "",
    *,
    allowed_followups: Sequence[str] = (),
    default: str = "message",
) -> Guidance:
    """Guidance from a button or API ``action``, or from free text (``action`` None): its leading
    keyword, dropped from the customer text, else ``default``. `ReplyError` for an unknown action
    or follow-up type."""
    for name, value in (("action", action), ("default", default)):
        if value is not None and value not in DECISIONS:
            raise ReplyError(f"unknown {name} {value!r}; one of {', '.join(DECISIONS)}")
    notes: List[str] = []
    followups: List[str] = list(allowed_followups)
    body: List[str] = []
    verdict: Optional[str] = None
    reason: Optional[Tuple[str, Optional[str], Optional[str]]] = None
    decision, explicit = action, action is not None
    first = action is None  # the first line for the customer may start with a keyword
    for line in _without_history(text or ""):
        note = _NOTE_LINE.match(line)
        if note:
            notes.append(line[note.end() :].strip())
            continue
        spec = _FOLLOWUP_LINE.match(line)
        if spec:
            followups.append(spec.group("spec"))
            continue
        inline = _INLINE_NOTE.search(line)
        if inline:
            notes.append(line[inline.end() :].strip())
            line = line[: inline.start()]
        said = _VERDICT_LINE.match(line)
        if said and not _reads_as_sentence(said.group("value"), _longest(governance().verdicts, VERDICT_WORDS)):
            verdict = parse_verdict(said.group("value"))
            continue
        why = _REASON_LINE.match(line)
        if why and not _reads_as_sentence(
            _REASON_SPLIT.split(why.group("value"), maxsplit=1)[0], _longest(governance().override_reasons)
        ):
            reason = parse_reason(why.group("value"))
            continue
        if first and line.strip():
            first = False
            keyword = _KEYWORD.match(line)
            if keyword:
                decision, explicit = keyword.lastgroup, True
                line = line[keyword.end() :]
                if decision == "hand_back" and line.strip():
                    try:
                        followups += normalize_followups([line])
                        continue
                    except ReplyError:  # not a list of follow-ups: words for the customer
                        pass
        body.append(line.rstrip())
    customer_text = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()
    return Guidance(
        decision=decision or default,
        customer_text=customer_text,
        internal_notes=tuple(n for n in notes if n),
        amounts=tuple({"amount": float(m.amount), "currency": m.currency} for _, _, m in find_money(customer_text)),
        allowed_followups=normalize_followups(followups),
        explicit=explicit,
        verdict=verdict,
        override_reason=reason[0] if reason else None,
        override_note=reason[1] if reason else None,
        corrected_intent=reason[2] if reason else None,
    )


@dataclass(frozen=True)
class ExpertReply:
    """One reply as it arrived: who, from where, what; ``raw`` keeps the channel's ids for answering there
    (Slack ``channel``/``message_ts``/``thread_ts``/``response_url``, Telegram ``chat_id``/``message_id``)."""

    consultation_id: str
    actor: str
    """The person id of experts.yml."""
    source: str
    action: str
    text: str = ""
    allowed_followups: Tuple[str, ...] = ()
    free_text: bool = False
    """True when ``action`` was read from ``text``: its leading keyword, else ``message``."""
    dedupe_key: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    verdict: Optional[str] = None
    """The verdict on the escalation given beside the action (the API's field); a ``verdict:`` line otherwise."""
    override_reason: Optional[str] = None
    """Why the AI's draft was denied or edited (the API's field); a ``reason:`` line otherwise."""
    override_note: Optional[str] = None
    corrected_intent: Optional[str] = None

    def __post_init__(self) -> None:
        """`ReplyError` (a ValueError) unless every field has its type and can be stored as it is."""
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {_short(self.source)}")
        if self.action not in DECISIONS:
            raise ReplyError(f"unknown action {_short(self.action)}; one of {', '.join(DECISIONS)}")
        for name in ("consultation_id", "actor", "text"):
            _storable(name, getattr(self, name))
        for name in ("verdict", "override_reason", "override_note", "corrected_intent"):
            if getattr(self, name) is not None:
                _storable(name, getattr(self, name))
        for name in ("consultation_id", "actor"):
            value = getattr(self, name)
            if not value.strip() or len(value) > MAX_ID_CHARS:
                raise ReplyError(f"{name} must be 1 to {MAX_ID_CHARS} characters, not {_short(value)}")
        if isinstance(self.allowed_followups, (str, bytes)) or not isinstance(self.allowed_followups, (tuple, list)):
            raise ReplyError("allowed_followups must be a list of follow-up types")
        for followup in self.allowed_followups:
            _storable("a follow-up type", followup)
        object.__setattr__(self, "allowed_followups", tuple(self.allowed_followups))

    @classmethod
    def from_text(cls, consultation_id: str, actor: str, source: str, text: str, **fields: Any) -> "ExpertReply":
        """A free-text reply: its action from a leading keyword, else ``message``. `ReplyError` for bad follow-ups."""
        guidance = parse_guidance(None, text)
        return cls(consultation_id, actor, source, guidance.decision, text, free_text=True, **fields)

    def guidance(self, mode: str) -> Guidance:
        """The guidance while the consultation is in ``mode`` (``consult`` | ``handoff``)."""
        return parse_guidance(
            None if self.free_text else self.action,
            self.text,
            allowed_followups=self.allowed_followups,
            default=FREE_TEXT_DECISION[mode],
        )

    def to_reply(self, mode: str) -> Reply:
        """The `Reply` that `backline.consult.replies.record_reply` records (quoted history dropped)."""
        g = self.guidance(mode)
        kept = "\n".join(_without_history(self.text)).strip()
        return Reply(
            action=g.decision,
            text=kept,
            customer_text=g.customer_text,
            internal_notes=g.internal_notes,
            allowed_followups=g.allowed_followups,
            amounts=g.amounts,
            override_reason=self.override_reason or g.override_reason,
            override_note=self.override_note or g.override_note,
            corrected_intent=self.corrected_intent or g.corrected_intent,
            verdict=self.verdict or g.verdict,
        )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _storable(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ReplyError(f"{name} must be text, not {type(value).__name__}")
    if _UNSTORABLE.search(value):
        raise ReplyError(f"{name} contains NUL or an unpaired surrogate")


def person_for(directory: ExpertDirectory, channel: str, address: Any) -> Optional[Person]:
    """The person whose ``channel`` (``slack`` user id, ``telegram`` chat id...) is ``address``, if any."""
    wanted = str(address)
    for person in directory.people.values():
        found = person.channel(channel)
        if found is not None and found.address == wanted:
            return person
    return None
