"""The escalation matrix's typed model: rows with defaults applied, triggers, exception categories.

Built and checked by `backline.routing.matrix.load_matrix`; read by the engine, the validator, the
exporter and the adapters. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from backline.routing.collect import form_name
from backline.routing.handback import HandBack
from backline.routing.matrix_schema import PRIORITIES, UNRATED_CURRENCY
from backline.routing.signals import EXPLICIT_REQUEST, SignalSpec, TokenPattern
from backline.routing.source import YamlSource

DEFAULT_MIN_CONFIDENCE = 0.5

EXTERNAL_PREFIX = "EXTERNAL_"
"""Intents the hub triggers (expert replies, hand-backs): answered by rules, never routed, no matrix row."""


def is_external(intent: Optional[str]) -> bool:
    return intent is not None and intent.startswith(EXTERNAL_PREFIX)


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
    label: str = ""
    """How the expert's brief names the category ("legal matter"); default: the name, spaced."""

    def __post_init__(self) -> None:
        if self.amount_above is not None and not self.unrated_detail:
            object.__setattr__(self, "unrated_detail", UNRATED_CURRENCY)  # a money limit always fails closed
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))

    @property
    def has_rule_route(self) -> bool:
        return bool(self.phrases or self.patterns)

    @property
    def details(self) -> Tuple[str, ...]:
        """Every ``escalation_detail`` the category can set: ``detail``, then ``unrated_detail`` if any."""
        return (self.detail,) + ((self.unrated_detail,) if self.unrated_detail else ())

    def names(self, intent: Optional[str]) -> bool:
        """Whether the classifier route covers the intent (retrieval sub-intents by their base)."""
        return intent is not None and base_intent(intent) in self.intents

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
    derived_from: Optional[str] = None
    """Where ``reason`` / ``detail`` come from when the row does not enter them (``triggers.explicit_request``,
    ``exception_categories.legal``, ...)."""

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
    hand_back: HandBack = field(default_factory=HandBack)
    signals_path: Optional[str] = None
    """The signals file (phrases and token patterns per signal), when the matrix names one."""

    @property
    def hand_back_minutes(self) -> int:
        """How long a hand-back's limits (and the AI's leave to cite the resolution) last."""
        return self.hand_back.expires_after_minutes

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
        refs.update(self.hand_back.intents())
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
