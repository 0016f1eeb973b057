"""The escalation matrix (escalation.yml): schema, typed model and loader."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from backline.routing.collect import FIELDS as COLLECT_FIELDS, form_name
from backline.routing.signals import (
    EXPLICIT_REQUEST,
    NOT_EXPLICIT_REQUEST,
    SignalSpec,
    TokenPattern,
    check_token_pattern,
    plain,
)
from backline.routing.source import (
    MatrixError,
    PathLike,
    YamlSource,
    check_schema,
    dotted,
    read_yaml,
)

AI_MAY = ("answer", "collect_then_route", "draft", "never")
PRIORITIES = ("low", "normal", "high", "urgent")
"""Least to most urgent."""
DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_HAND_BACK_MINUTES = 240
REASONS = (
    "explicit_request",
    "sensitive_topic",
    "no_convergence",
    "low_confidence",
    "medium_confidence",
    "negative_sentiment",
    "high_value",
    "policy_action",
)
UNRATED_CURRENCY = "unrated_currency"
"""Detail of an exception category with a money limit when the amount's currency has no rate in
``currency_rates``: the amount cannot be compared with the limit, so it escalates (fail closed).
A category may name another code with ``unrated_detail``."""
CONTEXT_FIELDS = (
    "brief",
    "sentiment",
    "account_snapshot",
    "ai_attempts",
    "documents_used",
    "confidence",
    "ai_draft",
    "reasons",
    "next_step",
    "transcript",
)

_NAME = r"^[a-z][a-z0-9_]*$"
_CURRENCY = r"^[A-Z]{3}$"
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_INTENT_LIST = {"type": "array", "items": {"type": "string", "pattern": _NAME}, "uniqueItems": True}
_MONEY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["value", "currency"],
    "properties": {
        "value": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": _CURRENCY},
    },
}
_THRESHOLDS = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"high": _UNIT, "low": _UNIT, "basis": {"type": "string"}},
}
_PHRASES = {"type": "array", "items": {"type": "string", "pattern": r"\S"}, "uniqueItems": True}
_PATTERNS = {"type": "array"}  # each item is checked by signals.check_token_pattern, with its own messages

SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "version",
        "defaults",
        "currency_rates",
        "triggers",
        "context_packages",
        "exception_categories",
        "intents",
    ],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "hand_back": {
            "type": "object",
            "additionalProperties": False,
            "required": ["expires_after_minutes"],
            "properties": {"expires_after_minutes": {"type": "integer", "minimum": 1}},
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "required": ["thresholds", "ai_may", "queue", "sla_minutes", "priority", "context_package"],
            "properties": {
                "thresholds": {**_THRESHOLDS, "required": ["high", "low"]},
                "ai_may": {"enum": list(AI_MAY)},
                "queue": {"type": "string", "pattern": _NAME},
                "sla_minutes": {"type": "integer", "minimum": 1},
                "priority": {"enum": list(PRIORITIES)},
                "context_package": {"type": "string"},
            },
        },
        "currency_rates": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _CURRENCY},
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
        },
        "triggers": {
            "type": "object",
            "x-key-kind": "trigger",
            "additionalProperties": False,
            "required": ["explicit_request", "no_convergence", "sentiment", "high_value"],
            "properties": {
                "explicit_request": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["intents"],
                    "properties": {
                        "intents": {**_INTENT_LIST, "minItems": 1},
                        "min_confidence": _UNIT,
                        "phrases": _PHRASES,
                        "patterns": _PATTERNS,
                        "not_phrases": _PHRASES,
                    },
                },
                "no_convergence": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["same_intent_turns", "overlap", "rejection_intents"],
                    "properties": {
                        # The current message is not answered yet: with fewer than 3 turns the window
                        # holds no two answered turns to compare, and the trigger could never fire.
                        "same_intent_turns": {"type": "integer", "minimum": 3},
                        "overlap": _UNIT,
                        "rejection_intents": _INTENT_LIST,
                    },
                },
                "sentiment": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["negative_below", "frustration_intents", "frustration_repeats"],
                    "properties": {
                        "negative_below": {"type": "number", "minimum": -1, "maximum": 1},
                        "frustration_intents": _INTENT_LIST,
                        "frustration_repeats": {"type": "integer", "minimum": 1},
                    },
                },
                "high_value": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["tiers"],
                    "properties": {
                        "tiers": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
                        "amount_above": _MONEY,
                    },
                },
            },
        },
        "context_packages": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": list(CONTEXT_FIELDS)},
            },
        },
        "exception_categories": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["reason", "detail", "queue", "priority", "intents", "description"],
                "properties": {
                    "reason": {"enum": list(REASONS)},
                    "detail": {"type": "string", "pattern": _NAME},
                    "queue": {"type": "string", "pattern": _NAME},
                    "priority": {"enum": list(PRIORITIES)},
                    "intents": _INTENT_LIST,
                    "amount_above": _MONEY,
                    "unrated_detail": {"type": "string", "pattern": _NAME},
                    "phrases": _PHRASES,
                    "patterns": _PATTERNS,
                    "description": {"type": "string", "minLength": 1},
                },
            },
        },
        "intents": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ai_may", "queue", "description"],
                "properties": {
                    "ai_may": {"enum": list(AI_MAY)},
                    "thresholds": _THRESHOLDS,
                    "queue": {"type": "string", "pattern": _NAME},
                    "context_package": {"type": "string"},
                    "sla_minutes": {"type": "integer", "minimum": 1},
                    "priority": {"enum": list(PRIORITIES)},
                    "exceptions": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "collect": {"type": "array", "minItems": 1, "items": {"enum": list(COLLECT_FIELDS)},
                                "uniqueItems": True},
                    "reason": {"enum": list(REASONS)},
                    "detail": {"type": "string", "pattern": _NAME},
                    "description": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


EXTERNAL_PREFIX = "EXTERNAL_"
"""Intents the hub triggers (expert replies, hand-backs): answered by rules, never routed, no matrix row."""


def is_external(intent: Optional[str]) -> bool:
    return bool(intent) and intent.startswith(EXTERNAL_PREFIX)


def base_intent(intent: str) -> str:
    """``product_question/warranty`` -> ``product_question``: retrieval intents share their base row."""
    return intent.split("/", 1)[0]


def priority_rank(priority: str) -> int:
    """0 for ``low`` up to 3 for ``urgent``; unknown priorities rank as ``normal``."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else PRIORITIES.index("normal")


def raise_priority(priority: str, levels: int = 1) -> str:
    """One level more urgent (``urgent`` stays ``urgent``)."""
    return PRIORITIES[min(priority_rank(priority) + levels, len(PRIORITIES) - 1)]


@dataclass(frozen=True)
class Money:
    value: float
    currency: str


@dataclass(frozen=True)
class Thresholds:
    """Confidence tiers: ``>= high`` the AI answers, ``< low`` it escalates, in between it drafts."""

    high: float
    low: float
    basis: Optional[str] = None

    def tier(self, confidence: float) -> str:
        """``high``, ``medium`` or ``low`` for an NLU confidence."""
        if confidence >= self.high:
            return "high"
        if confidence < self.low:
            return "low"
        return "medium"


@dataclass(frozen=True)
class Defaults:
    thresholds: Thresholds
    ai_may: str
    queue: str
    sla_minutes: int
    priority: str
    context_package: str


@dataclass(frozen=True)
class ExplicitRequestTrigger:
    """A request for a person: the classifier route (``intents`` at ``min_confidence`` or more)
    or the rule route (``phrases`` / ``patterns``, vetoed by overlapping ``not_phrases``)."""

    intents: Tuple[str, ...]
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    phrases: Tuple[str, ...] = ()
    patterns: Tuple[TokenPattern, ...] = ()
    not_phrases: Tuple[str, ...] = ()

    def signal_spec(self) -> SignalSpec:
        return SignalSpec(EXPLICIT_REQUEST, self.phrases, self.patterns, self.not_phrases)


@dataclass(frozen=True)
class NoConvergenceTrigger:
    """Same intent for ``same_intent_turns`` turns with Q/A overlap >= ``overlap``, or a rejection intent."""

    same_intent_turns: int
    overlap: float
    rejection_intents: Tuple[str, ...]


@dataclass(frozen=True)
class SentimentTrigger:
    """Escalate when sentiment polarity (-1..1) is at or below ``negative_below`` or frustration repeats."""

    negative_below: float
    frustration_intents: Tuple[str, ...]
    frustration_repeats: int


@dataclass(frozen=True)
class HighValueTrigger:
    tiers: Tuple[str, ...]
    amount_above: Optional[Money] = None
    limit_eur: Optional[float] = None


@dataclass(frozen=True)
class Triggers:
    explicit_request: ExplicitRequestTrigger
    no_convergence: NoConvergenceTrigger
    sentiment: SentimentTrigger
    high_value: HighValueTrigger


@dataclass(frozen=True)
class ExceptionCategory:
    """A case that always escalates, whatever the confidence. Two routes, either one enough:

    - classifier route: the message's intent is one of ``intents`` and, when ``amount_above``
      is set, the amount (in EUR) is above ``limit_eur``; an amount in a currency without a
      rate cannot be compared, so it fires too, with ``unrated_detail`` instead of ``detail``
      (fail closed; set whenever ``amount_above`` is, default `UNRATED_CURRENCY`);
    - rule route: the NLU signal detector found one of ``phrases`` / ``patterns`` (a signal
      named after the category) in any message, whatever its intent.
    """

    name: str
    reason: str
    detail: str
    queue: str
    priority: str
    intents: Tuple[str, ...]
    description: str
    amount_above: Optional[Money] = None
    limit_eur: Optional[float] = None
    phrases: Tuple[str, ...] = ()
    patterns: Tuple[TokenPattern, ...] = ()
    line: Optional[int] = None
    unrated_detail: Optional[str] = None

    def __post_init__(self) -> None:
        if self.amount_above is not None and not self.unrated_detail:
            object.__setattr__(self, "unrated_detail", UNRATED_CURRENCY)  # a money limit always fails closed

    @property
    def has_rule_route(self) -> bool:
        return bool(self.phrases or self.patterns)

    @property
    def details(self) -> Tuple[str, ...]:
        """Every ``escalation_detail`` the category can set: ``detail``, then ``unrated_detail`` if any."""
        return (self.detail,) + ((self.unrated_detail,) if self.unrated_detail else ())

    def names(self, intent: Optional[str]) -> bool:
        """Whether the classifier route covers the intent (retrieval sub-intents by their base)."""
        return bool(intent) and base_intent(intent) in self.intents

    def matches(self, intent: Optional[str], amount_eur: Optional[float] = None) -> bool:
        """The classifier route: the intent is one of the category's and the amount rule, if any, holds."""
        if not self.names(intent):
            return False
        if self.limit_eur is None:
            return True
        return amount_eur is not None and amount_eur > self.limit_eur

    def fails_closed(self, intent: Optional[str]) -> bool:
        """The classifier route for an amount whose currency has no rate: the category has a money limit
        and covers the intent, so the unconvertible amount escalates with ``unrated_detail``."""
        return self.limit_eur is not None and self.unrated_detail is not None and self.names(intent)

    def signal_spec(self) -> SignalSpec:
        return SignalSpec(self.name, self.phrases, self.patterns)


@dataclass(frozen=True)
class IntentRow:
    """One matrix row with defaults already applied."""

    intent: str
    ai_may: str
    thresholds: Thresholds
    queue: str
    context_package: str
    sla_minutes: int
    priority: str
    exceptions: Tuple[str, ...]
    description: str
    reason: Optional[str] = None
    detail: Optional[str] = None
    line: Optional[int] = None
    collect: Tuple[str, ...] = ()
    """``collect_then_route``: the fields collected (by the form `collect.form_name(intent)`) before routing."""

    @property
    def form(self) -> Optional[str]:
        """The form that collects this row's fields (None unless the row is ``collect_then_route``)."""
        return form_name(self.intent) if self.ai_may == "collect_then_route" else None

    @property
    def route_reason(self) -> Optional[str]:
        """The escalation reason when the row itself routes (never / collect_then_route / draft)."""
        if self.ai_may == "answer":
            return None
        return self.reason or "policy_action"


@dataclass(frozen=True)
class EscalationMatrix:
    path: str
    version: int
    defaults: Defaults
    currency_rates: Mapping[str, float]
    triggers: Triggers
    context_packages: Mapping[str, Tuple[str, ...]]
    categories: Mapping[str, ExceptionCategory]
    rows: Mapping[str, IntentRow]
    source: Optional[YamlSource] = field(default=None, compare=False, repr=False)
    hand_back_minutes: int = DEFAULT_HAND_BACK_MINUTES
    """How long a hand-back's limits (and the AI's leave to cite the resolution) last."""

    def collect_rows(self) -> List[IntentRow]:
        """The ``collect_then_route`` rows, in file order."""
        return [row for row in self.rows.values() if row.ai_may == "collect_then_route"]

    @property
    def intents(self) -> List[str]:
        return list(self.rows)

    def has_row(self, intent: str) -> bool:
        return base_intent(intent) in self.rows

    def row(self, intent: str) -> IntentRow:
        """The row for ``intent`` (retrieval sub-intents use their base row); defaults when missing."""
        name = base_intent(intent)
        if name in self.rows:
            return self.rows[name]
        d = self.defaults
        return IntentRow(
            intent=name,
            ai_may=d.ai_may,
            thresholds=d.thresholds,
            queue=d.queue,
            context_package=d.context_package,
            sla_minutes=d.sla_minutes,
            priority=d.priority,
            exceptions=(),
            description="no matrix row: defaults apply",
        )

    def thresholds(self, intent: str) -> Thresholds:
        return self.row(intent).thresholds

    def context_fields(self, intent: str) -> Tuple[str, ...]:
        return self.context_packages[self.row(intent).context_package]

    def categories_for(self, intent: str) -> List[ExceptionCategory]:
        """Exception categories whose classifier route names the intent, in the row's order."""
        return [self.categories[name] for name in self.row(intent).exceptions]

    def matching_categories(
        self, intent: str, amount: Optional[float] = None, currency: Optional[str] = None
    ) -> List[ExceptionCategory]:
        """Categories the classifier route fires for this intent and amount (in ``currency``, default EUR).
        An amount in a currency without a rate fires every category with a money limit (fail closed)."""
        if amount is not None and not self.has_rate(currency or "EUR"):
            return [c for c in self.categories_for(intent) if c.fails_closed(intent) or c.matches(intent)]
        amount_eur = None if amount is None else self.to_eur(amount, currency or "EUR")
        return [c for c in self.categories_for(intent) if c.matches(intent, amount_eur)]

    def category_row(self, category: ExceptionCategory) -> IntentRow:
        """The row a category's escalation borrows its SLA and context package from: its first intent's."""
        return self.row(category.intents[0]) if category.intents else self.row("")

    def signal_specs(self) -> List[SignalSpec]:
        """What the NLU signal detector looks for: `explicit_request` first, then each category with phrases
        or patterns, in file order. A detected signal carries the spec's name."""
        specs = [self.triggers.explicit_request.signal_spec()]
        specs += [c.signal_spec() for c in self.categories.values() if c.has_rule_route]
        return specs

    def referenced_intents(self) -> Dict[str, Tuple[str, ...]]:
        """Every intent the triggers and categories name, by where they name it (``triggers.explicit_request.intents``)."""
        t = self.triggers
        refs: Dict[str, Tuple[str, ...]] = {
            "triggers.explicit_request.intents": t.explicit_request.intents,
            "triggers.no_convergence.rejection_intents": t.no_convergence.rejection_intents,
            "triggers.sentiment.frustration_intents": t.sentiment.frustration_intents,
        }
        for name, category in self.categories.items():
            refs[f"exception_categories.{name}.intents"] = category.intents
        return refs

    def detail_codes(self) -> Tuple[str, ...]:
        """Every ``escalation_detail`` an exception category can set, in file order, without repeats."""
        return tuple(dict.fromkeys(d for c in self.categories.values() for d in c.details))

    def has_rate(self, currency: Optional[str]) -> bool:
        """Whether ``currency_rates`` converts the currency (an ISO code, any case) to EUR."""
        return isinstance(currency, str) and currency.strip().upper() in self.currency_rates

    def to_eur(self, amount: float, currency: str) -> float:
        code = currency.strip().upper()
        if code not in self.currency_rates:
            raise ValueError(f"no EUR rate for currency {currency!r} in {self.path}")
        return float(amount) * self.currency_rates[code]


def load_matrix(path: PathLike) -> EscalationMatrix:
    """Load and check escalation.yml; raises `MatrixError` listing every problem with its line."""
    source = read_yaml(path)
    if source.problems:
        raise MatrixError(source.problems)
    schema_problems = check_schema(source, SCHEMA)
    if schema_problems:
        raise MatrixError(schema_problems)
    matrix = _build(source)
    _check(matrix, source)
    if source.problems:
        raise MatrixError(source.problems)
    return matrix


def _money(data: Optional[Mapping[str, Any]]) -> Optional[Money]:
    if data is None:
        return None
    return Money(float(data["value"]), str(data["currency"]))


def _limit_eur(source: YamlSource, keys: Tuple[str, ...], money: Optional[Money], rates: Mapping[str, float]) -> Optional[float]:
    if money is None:
        return None
    if money.currency not in rates:
        where = ".".join(keys)
        source.add(keys + ("currency",), f"{where}: no rate for currency {money.currency!r} in currency_rates")
        return None
    return money.value * rates[money.currency]


def _thresholds(data: Mapping[str, Any], fallback: Optional[Thresholds] = None) -> Thresholds:
    high = data.get("high", fallback.high if fallback else None)
    low = data.get("low", fallback.low if fallback else None)
    basis = data.get("basis", fallback.basis if fallback else None)
    return Thresholds(float(high), float(low), basis)


def _line(source: YamlSource, keys: Tuple[str, ...]) -> int:
    return source.key_position(keys)[0]


def _phrases(data: Mapping[str, Any], key: str) -> Tuple[str, ...]:
    return tuple(" ".join(str(p).split()) for p in data.get(key) or ())


def _patterns(source: YamlSource, keys: Tuple[str, ...], data: Mapping[str, Any]) -> Tuple[TokenPattern, ...]:
    """The valid token patterns at ``keys + ("patterns",)``; every problem is added with its line."""
    where = keys + ("patterns",)
    patterns: List[TokenPattern] = []
    for i, pattern in enumerate(data.get("patterns") or ()):
        pattern = plain(pattern)
        problems = check_token_pattern(pattern)
        for inner, message in problems:
            path = where + (i,) + inner
            at_key = len(inner) >= 2 and isinstance(inner[-1], str)
            source.add(path, f"{dotted(path)}: {message}", at_key=at_key)
        if not problems:
            patterns.append(tuple(pattern))
    return tuple(patterns)


def _build(source: YamlSource) -> EscalationMatrix:
    data = source.data
    d = data["defaults"]
    defaults = Defaults(
        thresholds=_thresholds(d["thresholds"]),
        ai_may=d["ai_may"],
        queue=d["queue"],
        sla_minutes=int(d["sla_minutes"]),
        priority=d["priority"],
        context_package=d["context_package"],
    )
    rates = {str(code): float(rate) for code, rate in data["currency_rates"].items()}
    t = data["triggers"]
    e = t["explicit_request"]
    big = _money(t["high_value"].get("amount_above"))
    triggers = Triggers(
        explicit_request=ExplicitRequestTrigger(
            intents=tuple(e["intents"]),
            min_confidence=float(e.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
            phrases=_phrases(e, "phrases"),
            patterns=_patterns(source, ("triggers", "explicit_request"), e),
            not_phrases=_phrases(e, "not_phrases"),
        ),
        no_convergence=NoConvergenceTrigger(
            same_intent_turns=int(t["no_convergence"]["same_intent_turns"]),
            overlap=float(t["no_convergence"]["overlap"]),
            rejection_intents=tuple(t["no_convergence"]["rejection_intents"]),
        ),
        sentiment=SentimentTrigger(
            negative_below=float(t["sentiment"]["negative_below"]),
            frustration_intents=tuple(t["sentiment"]["frustration_intents"]),
            frustration_repeats=int(t["sentiment"]["frustration_repeats"]),
        ),
        high_value=HighValueTrigger(
            tiers=tuple(str(tier) for tier in t["high_value"]["tiers"]),
            amount_above=big,
            limit_eur=_limit_eur(source, ("triggers", "high_value", "amount_above"), big, rates),
        ),
    )
    packages = {str(name): tuple(fields) for name, fields in data["context_packages"].items()}
    categories: Dict[str, ExceptionCategory] = {}
    for name, c in data["exception_categories"].items():
        keys = ("exception_categories", name)
        amount = _money(c.get("amount_above"))
        categories[name] = ExceptionCategory(
            name=name,
            reason=c["reason"],
            detail=c["detail"],
            queue=c["queue"],
            priority=c["priority"],
            intents=tuple(c["intents"]),
            description=str(c["description"]).strip(),
            amount_above=amount,
            limit_eur=_limit_eur(source, keys + ("amount_above",), amount, rates),
            phrases=_phrases(c, "phrases"),
            patterns=_patterns(source, keys, c),
            line=_line(source, keys),
            unrated_detail=c.get("unrated_detail"),
        )
    rows: Dict[str, IntentRow] = {}
    for intent, r in data["intents"].items():
        rows[intent] = IntentRow(
            intent=intent,
            ai_may=r["ai_may"],
            thresholds=_thresholds(r.get("thresholds", {}), defaults.thresholds),
            queue=r["queue"],
            context_package=r.get("context_package", defaults.context_package),
            sla_minutes=int(r.get("sla_minutes", defaults.sla_minutes)),
            priority=r.get("priority", defaults.priority),
            exceptions=tuple(r.get("exceptions", ())),
            description=str(r["description"]).strip(),
            reason=r.get("reason"),
            detail=r.get("detail"),
            line=_line(source, ("intents", intent)),
            collect=tuple(r.get("collect", ())),
        )
    return EscalationMatrix(
        path=source.path,
        version=int(data["version"]),
        defaults=defaults,
        currency_rates=rates,
        triggers=triggers,
        context_packages=packages,
        categories=categories,
        rows=rows,
        source=source,
        hand_back_minutes=int((data.get("hand_back") or {}).get("expires_after_minutes", DEFAULT_HAND_BACK_MINUTES)),
    )


def _check(m: EscalationMatrix, source: YamlSource) -> None:
    """Consistency checks inside escalation.yml (cross-file checks live in `validate`)."""
    t = m.defaults.thresholds
    if t.low > t.high:
        message = f"defaults.thresholds: low {t.low:.2f} is above high {t.high:.2f}"
        source.add(("defaults", "thresholds", "low"), message)
    if m.currency_rates.get("EUR") != 1.0:
        source.add(("currency_rates",), "currency_rates: EUR must be present with rate 1.0", at_key=True)
    if m.defaults.context_package not in m.context_packages:
        message = f"defaults.context_package: unknown context package {m.defaults.context_package!r}"
        source.add(("defaults", "context_package"), message)
    trigger_intents = {
        ("triggers", "explicit_request", "intents"): m.triggers.explicit_request.intents,
        ("triggers", "no_convergence", "rejection_intents"): m.triggers.no_convergence.rejection_intents,
        ("triggers", "sentiment", "frustration_intents"): m.triggers.sentiment.frustration_intents,
    }
    for keys, intents in trigger_intents.items():
        for i, intent in enumerate(intents):
            if intent not in m.rows:
                source.add(keys + (i,), f"{'.'.join(keys)}: intent {intent!r} has no row in intents")
    explicit = m.triggers.explicit_request
    vetoed = {p.lower() for p in explicit.not_phrases}
    for i, phrase in enumerate(explicit.phrases):
        if phrase.lower() in vetoed:
            message = f"triggers.explicit_request.phrases[{i}]: {phrase!r} is also in not_phrases"
            source.add(("triggers", "explicit_request", "phrases", i), message)
    for name, category in m.categories.items():
        _check_category(m, source, name, category)
    for intent, row in m.rows.items():
        _check_row(m, source, intent, row)


def _check_category(m: EscalationMatrix, source: YamlSource, name: str, category: ExceptionCategory) -> None:
    keys = ("exception_categories", name)
    if name == EXPLICIT_REQUEST or name.startswith("not_") or name == NOT_EXPLICIT_REQUEST:
        message = f"exception_categories.{name}: reserved name (signals are named explicit_request, not_<name>)"
        source.add(keys, message, at_key=True)
    if not category.intents and not (source.get(keys).get("phrases") or source.get(keys).get("patterns")):
        message = f"exception_categories.{name}: no route: list intents (classifier route) or phrases / patterns (rule route)"
        source.add(keys, message, at_key=True)
    if category.amount_above is not None and not category.intents:
        message = f"exception_categories.{name}.amount_above: applies to the classifier route, which needs intents"
        source.add(keys + ("amount_above",), message, at_key=True)
    if "unrated_detail" in source.get(keys):
        if category.amount_above is None:
            message = f"exception_categories.{name}.unrated_detail: applies only with amount_above"
            source.add(keys + ("unrated_detail",), message, at_key=True)
        elif category.unrated_detail == category.detail:
            message = (
                f"exception_categories.{name}.unrated_detail: must differ from detail "
                f"{category.detail!r} (the record must tell an unconvertible amount from one over the limit)"
            )
            source.add(keys + ("unrated_detail",), message)
    for i, intent in enumerate(category.intents):
        where = keys + ("intents", i)
        if intent not in m.rows:
            source.add(where, f"exception category {name!r}: intent {intent!r} has no row in intents")
        elif name not in m.rows[intent].exceptions:
            message = f"exception category {name!r} applies to {intent!r}, but that row does not list it"
            source.add(where, message)


def _check_row(m: EscalationMatrix, source: YamlSource, intent: str, row: IntentRow) -> None:
    keys = ("intents", intent)
    own = source.get(keys).get("thresholds")
    if own is not None and row.thresholds.low > row.thresholds.high:
        where = "low" if "low" in own else "high"
        source.add(
            keys + ("thresholds", where),
            f"intents.{intent}.thresholds: low {row.thresholds.low:.2f} is above high {row.thresholds.high:.2f}",
        )
    if row.context_package not in m.context_packages:
        source.add(keys + ("context_package",), f"intents.{intent}: unknown context package {row.context_package!r}")
    for i, name in enumerate(row.exceptions):
        if name not in m.categories:
            known = ", ".join(sorted(m.categories)) or "none"
            message = f"intents.{intent}: unknown exception category {name!r} (known: {known})"
            source.add(keys + ("exceptions", i), message)
        elif intent not in m.categories[name].intents:
            message = f"intents.{intent}: exception category {name!r} does not list {intent!r} in its intents"
            source.add(keys + ("exceptions", i), message)
    if row.ai_may == "collect_then_route" and not row.collect:
        message = f"intents.{intent}: ai_may collect_then_route needs `collect` (the fields to collect: {', '.join(COLLECT_FIELDS)})"
        source.add(keys + ("ai_may",), message)
    if row.collect and row.ai_may != "collect_then_route":
        message = f"intents.{intent}.collect: only applies to ai_may collect_then_route (this row is {row.ai_may!r})"
        source.add(keys + ("collect",), message, at_key=True)
    if row.ai_may == "answer" and (row.reason or row.detail):
        field_name = "reason" if row.reason else "detail"
        message = f"intents.{intent}: {field_name} only applies to rows that route (ai_may is 'answer')"
        source.add(keys + (field_name,), message)
