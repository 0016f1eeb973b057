"""Routing model: the escalation matrix, the decision engine, the expert directory, validator and exporter.

Pure Python: nothing in this package imports Rasa (or spaCy).
"""

from backline.routing.directory import (
    Channel,
    ExpertDirectory,
    Holiday,
    LadderStep,
    Person,
    Queue,
    TimeRange,
    load_experts,
)
from backline.routing.engine import Conversation, Decision, Parse, Turn, decide
from backline.routing.matrix import (
    AI_MAY,
    CONTEXT_FIELDS,
    PRIORITIES,
    REASONS,
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
    load_matrix,
)
from backline.routing.signals import EXPLICIT_REQUEST, NOT_EXPLICIT_REQUEST, Signal, SignalSpec
from backline.routing.source import ConfigError, ExpertsError, MatrixError, Problem, ValidationProblem

__all__ = [
    "AI_MAY",
    "CONTEXT_FIELDS",
    "PRIORITIES",
    "REASONS",
    "Channel",
    "Conversation",
    "Decision",
    "ConfigError",
    "Defaults",
    "EscalationMatrix",
    "EXPLICIT_REQUEST",
    "ExceptionCategory",
    "ExplicitRequestTrigger",
    "ExpertDirectory",
    "ExpertsError",
    "HighValueTrigger",
    "Holiday",
    "IntentRow",
    "LadderStep",
    "MatrixError",
    "Money",
    "Parse",
    "NOT_EXPLICIT_REQUEST",
    "NoConvergenceTrigger",
    "Person",
    "Problem",
    "Queue",
    "SentimentTrigger",
    "Signal",
    "SignalSpec",
    "Thresholds",
    "TimeRange",
    "Turn",
    "Triggers",
    "ValidationProblem",
    "base_intent",
    "decide",
    "load_experts",
    "load_matrix",
]
