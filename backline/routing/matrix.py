"""Loading escalation.yml (and the signals file it names) into an `EscalationMatrix`, with every
problem located at its file and line.

Order: YAML syntax, the JSON schemas (`backline.routing.matrix_schema`), building the model with
what is derived (a row's exception categories and, for rows that route because of a trigger or a
category, their reason and detail; each token pattern compiled), then what the schemas cannot say
(`backline.routing.matrix_checks`: cross-references, facts entered twice). The model is
`backline.routing.matrix_model`; its public names are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from backline.routing.handback import Followup, HandBack
from backline.routing.matrix_checks import check_matrix
from backline.routing.matrix_model import (  # the matrix's public names, re-exported (__all__)
    DEFAULT_MIN_CONFIDENCE,
    EXTERNAL_PREFIX,
    Defaults,
    EscalationMatrix,
    ExceptionCategory,
    ExplicitRequestTrigger,
    HighValueTrigger,
    IntentRow,
    Money,
    NoConvergenceTrigger,
    SentimentTrigger,
    Thresholds,
    Triggers,
    base_intent,
    is_external,
    priority_rank,
    raise_priority,
)
from backline.routing.matrix_schema import (  # re-exported (__all__)
    AI_MAY,
    CONTEXT_FIELDS,
    PRIORITIES,
    REASONS,
    SCHEMA,
    SIGNALS_SCHEMA,
    UNRATED_CURRENCY,
)
from backline.routing.signals import (
    EXPLICIT_REQUEST,
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

__all__ = [
    "AI_MAY",
    "CONTEXT_FIELDS",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_SIGNALS",
    "EXTERNAL_PREFIX",
    "PRIORITIES",
    "REASONS",
    "SCHEMA",
    "SIGNALS_SCHEMA",
    "UNRATED_CURRENCY",
    "Defaults",
    "EscalationMatrix",
    "ExceptionCategory",
    "ExplicitRequestTrigger",
    "HighValueTrigger",
    "IntentRow",
    "Money",
    "NoConvergenceTrigger",
    "SentimentTrigger",
    "Thresholds",
    "Triggers",
    "base_intent",
    "is_external",
    "load_matrix",
    "priority_rank",
    "raise_priority",
    "signals_file",
]

DEFAULT_SIGNALS = "signals.yml"
"""The signals file when escalation.yml does not name one (next to it)."""


def load_matrix(path: PathLike, signals: Optional[PathLike] = None) -> EscalationMatrix:
    """Load and check escalation.yml and its signals file (``signals``: that file, instead of the one the
    matrix names); raises `MatrixError` listing every problem with its file and line."""
    source = read_yaml(path)
    if source.problems:
        raise MatrixError(source.problems)
    schema_problems = check_schema(source, SCHEMA)
    if schema_problems:
        raise MatrixError(schema_problems)
    signals_source = read_yaml(signals) if signals is not None else _signals_source(source)
    if signals_source is not None:
        if signals_source.problems:
            raise MatrixError(signals_source.problems)
        schema_problems = check_schema(signals_source, SIGNALS_SCHEMA)
        if schema_problems:
            raise MatrixError(schema_problems)
    matrix = _build(source, signals_source)
    check_matrix(matrix, source, signals_source)
    problems = source.problems + (signals_source.problems if signals_source is not None else [])
    if problems:
        raise MatrixError(problems)
    return matrix


def signals_file(matrix_path: PathLike, named: Any = None) -> Optional[Path]:
    """The signals file of the matrix at ``matrix_path``: the one it names (``signals:``, relative to the
    matrix), else ``signals.yml`` next to it when that exists; None when there is none. ``named``: the
    ``signals`` value, when the caller has read the matrix already."""
    base = Path(matrix_path).parent
    if named is None:
        data = read_yaml(matrix_path).data
        named = data.get("signals") if isinstance(data, Mapping) else None
    if named is None:
        default = base / DEFAULT_SIGNALS
        return default if default.exists() else None
    path = Path(str(named)).expanduser()
    return path if path.is_absolute() else base / path


def _signals_source(source: YamlSource) -> Optional[YamlSource]:
    path = signals_file(source.path, source.data.get("signals"))
    return read_yaml(path) if path is not None else None


def _money(data: Optional[Mapping[str, Any]]) -> Optional[Money]:
    if data is None:
        return None
    return Money(float(data["value"]), str(data["currency"]))


def _limit_eur(
    source: YamlSource, keys: Tuple[str, ...], money: Optional[Money], rates: Mapping[str, float]
) -> Optional[float]:
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
    return Thresholds(float(high), float(low), basis)  # the schema requires both


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


class _Signals:
    """The phrases / patterns / not-phrases of each signal in the signals file (empty without one)."""

    def __init__(self, source: Optional[YamlSource]) -> None:
        self.source = source
        self.data: Mapping[str, Any] = {
            str(k): v for k, v in ((source.data or {}) if source is not None else {}).items() if k != "version"
        }

    def get(self, name: str) -> Mapping[str, Any]:
        return self.data.get(name) or {}

    def phrases(self, name: str, key: str = "phrases") -> Tuple[str, ...]:
        return _phrases(self.get(name), key)

    def patterns(self, name: str) -> Tuple[TokenPattern, ...]:
        if self.source is None or name not in self.data:
            return ()
        return _patterns(self.source, (name,), self.get(name))


def _build(source: YamlSource, signals_source: Optional[YamlSource] = None) -> EscalationMatrix:
    data = source.data
    signals = _Signals(signals_source)
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
            phrases=signals.phrases(EXPLICIT_REQUEST),
            patterns=signals.patterns(EXPLICIT_REQUEST),
            not_phrases=signals.phrases(EXPLICIT_REQUEST, "not_phrases"),
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
            phrases=signals.phrases(name),
            patterns=signals.patterns(name),
            line=_line(source, keys),
            unrated_detail=c.get("unrated_detail"),
            label=" ".join(str(c.get("label") or "").split()),
        )
    rows: Dict[str, IntentRow] = {}
    for intent, r in data["intents"].items():
        ai_may = r["ai_may"]
        exceptions = tuple(name for name, c in categories.items() if intent in c.intents)
        reason, detail, derived_from = _derived_reason(intent, ai_may, triggers, categories, exceptions)
        rows[intent] = IntentRow(
            intent=intent,
            ai_may=ai_may,
            thresholds=_thresholds(r.get("thresholds", {}), defaults.thresholds),
            queue=r["queue"],
            context_package=r.get("context_package", defaults.context_package),
            sla_minutes=int(r.get("sla_minutes", defaults.sla_minutes)),
            priority=r.get("priority", defaults.priority),
            exceptions=exceptions,
            description=str(r["description"]).strip(),
            reason=reason if derived_from else r.get("reason"),
            detail=detail if derived_from else r.get("detail"),
            line=_line(source, ("intents", intent)),
            collect=tuple(r.get("collect", ())),
            derived_from=derived_from,
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
        hand_back=_hand_back(data),
        signals_path=signals_source.path if signals_source is not None else None,
    )


def _derived_reason(
    intent: str,
    ai_may: str,
    triggers: Triggers,
    categories: Mapping[str, ExceptionCategory],
    exceptions: Tuple[str, ...],
) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """``(reason, detail, from where)`` for a row whose routing reason follows from elsewhere in the matrix:
    a request-for-a-person intent (explicit_request), a rejection intent (no_convergence), or a row that
    never answers and that a category without a money limit names (that category's reason and detail)."""
    if intent in triggers.explicit_request.intents:
        return "explicit_request", None, "triggers.explicit_request.intents"
    if intent in triggers.no_convergence.rejection_intents:
        return "no_convergence", None, "triggers.no_convergence.rejection_intents"
    if ai_may == "never":
        for name in exceptions:
            category = categories[name]
            if category.amount_above is None:
                return category.reason, category.detail, f"exception_categories.{name}"
    return None, None, None


def _hand_back(data: Mapping[str, Any]) -> HandBack:
    h = data.get("hand_back") or {}
    followups = {
        str(name): Followup(
            str(name),
            " ".join(str(f["label"]).split()),
            tuple(f["intents"]),
            tuple(str(a) for a in f.get("aliases") or ()),
        )
        for name, f in (h.get("followups") or {}).items()
    }
    kwargs: Dict[str, Any] = {"followups": followups, "always_allowed": tuple(h.get("always_allowed") or ())}
    if "expires_after_minutes" in h:
        kwargs["expires_after_minutes"] = int(h["expires_after_minutes"])
    waiting = (data.get("while_waiting") or {}).get("answers")
    return HandBack(**kwargs, while_waiting=str(waiting) if waiting else None)
