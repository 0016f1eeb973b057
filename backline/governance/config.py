"""governance.yml: what experts may say of an escalation (verdicts), why they override a draft
(override reasons), the reopen window, the satisfaction question and the QA sampling shares.

Loaded once per path (``$BACKLINE_GOVERNANCE``, default governance.yml in the project); an invalid
file raises `GovernanceError` with every problem and its line, as escalation.yml and experts.yml do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from backline.paths import PROJECT_ROOT
from backline.routing.source import ConfigError, PathLike, check_schema, read_yaml

ENV_GOVERNANCE = "BACKLINE_GOVERNANCE"
DEFAULT_GOVERNANCE = PROJECT_ROOT / "governance.yml"
VERDICTS = ("needed", "not_needed", "too_late")
"""An expert's verdict on an escalation: needed, not needed, should have come earlier (fixed keys)."""
REVIEW_VERDICTS = ("right", "should_have_escalated", "should_not_have_escalated", "wrong_answer")
"""A QA reviewer's verdict on what the AI (or the routing) did."""
REVIEW_KINDS = ("ai_alone", "accepted_draft", "closed_case")
"""What a QA review looks at: a conversation the AI handled alone, an approved draft, a closed case."""
REQUIRED_REASONS = ("wrong_intent", "other")
CSAT_SCORES = (1, 2, 3, 4, 5)

_KEY = r"^[a-z][a-z0-9_]{0,31}$"
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "verdicts", "override_reasons", "reopen_window_hours", "csat", "qa_sampling"],
    "properties": {
        "version": {"const": 1},
        "verdicts": {
            "type": "object",
            "additionalProperties": False,
            "required": list(VERDICTS),
            "properties": {key: {"type": "string", "minLength": 1, "maxLength": 60} for key in VERDICTS},
        },
        "override_reasons": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _KEY},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 60},
            "required": list(REQUIRED_REASONS),
        },
        "reopen_window_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24 * 90},
        "conversational_intents": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "csat": {
            "type": "object",
            "additionalProperties": False,
            "required": ["after_modes", "question", "thanks"],
            "properties": {
                "after_modes": {"type": "array", "items": {"enum": ["handoff", "consult"]}, "uniqueItems": True},
                "question": {"type": "string", "minLength": 1, "maxLength": 300},
                "thanks": {"type": "string", "minLength": 1, "maxLength": 300},
            },
        },
        "qa_sampling": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ai_alone", "accepted_drafts", "closed_cases"],
            "properties": {
                "ai_alone": _SHARE,
                "accepted_drafts": _SHARE,
                "closed_cases": {
                    "type": "object",
                    "required": ["default"],
                    "propertyNames": {"pattern": _KEY},
                    "additionalProperties": _SHARE,
                },
                "idle_minutes": {"type": "number", "minimum": 0, "maximum": 24 * 60},
            },
        },
    },
}


class GovernanceError(ConfigError):
    """governance.yml is invalid."""


@dataclass(frozen=True)
class Sampling:
    """QA sampling shares (0..1) per kind of work; ``closed_cases`` per queue with a ``default``."""

    ai_alone: float
    accepted_drafts: float
    closed_cases: Mapping[str, float]
    idle_minutes: float = 30.0

    def closed_share(self, queue: Optional[str]) -> float:
        return float(self.closed_cases.get(queue or "", self.closed_cases["default"]))

    def share(self, kind: str, queue: Optional[str] = None) -> float:
        """The share of ``kind`` (one of `REVIEW_KINDS`) that goes to review."""
        if kind == "ai_alone":
            return self.ai_alone
        if kind == "accepted_draft":
            return self.accepted_drafts
        if kind == "closed_case":
            return self.closed_share(queue)
        raise ValueError(f"kind must be one of {', '.join(REVIEW_KINDS)}, not {kind!r}")


@dataclass(frozen=True)
class Csat:
    after_modes: Tuple[str, ...]
    question: str
    thanks: str


@dataclass(frozen=True)
class Governance:
    """governance.yml, loaded (`load_governance`)."""

    verdicts: Mapping[str, str]
    override_reasons: Mapping[str, str]
    reopen_window_hours: float
    csat: Csat
    sampling: Sampling
    conversational_intents: Tuple[str, ...] = ()
    path: str = ""
    review_verdicts: Tuple[str, ...] = field(default=REVIEW_VERDICTS)

    def check_verdict(self, verdict: Any) -> str:
        """``verdict`` if it is one of `VERDICTS` (labels and spaces accepted: "not needed"); else ValueError."""
        return _choice("verdict", verdict, self.verdicts)

    def check_reason(self, reason: Any) -> str:
        """``reason`` if it is a configured override reason (or its label); else ValueError naming them."""
        return _choice("override reason", reason, self.override_reasons)


def _choice(name: str, value: Any, choices: Mapping[str, str]) -> str:
    if isinstance(value, str):
        wanted = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
        for key, label in choices.items():
            if wanted in (key.replace("_", " "), label.strip().lower()):
                return key
    raise ValueError(f"{name} must be one of {', '.join(choices)}; got {str(value)[:60]!r}")


def load_governance(path: PathLike) -> Governance:
    """Load and check governance.yml; `GovernanceError` lists every problem with its line."""
    source = read_yaml(path)
    if source.problems:
        raise GovernanceError(source.problems)
    problems = check_schema(source, SCHEMA)
    if problems:
        raise GovernanceError(problems)
    data = source.data
    sampling = data["qa_sampling"]
    csat = data["csat"]
    return Governance(
        verdicts={key: str(data["verdicts"][key]) for key in VERDICTS},
        override_reasons={str(k): str(v) for k, v in data["override_reasons"].items()},
        reopen_window_hours=float(data["reopen_window_hours"]),
        csat=Csat(tuple(csat["after_modes"]), str(csat["question"]), str(csat["thanks"])),
        sampling=Sampling(
            ai_alone=float(sampling["ai_alone"]),
            accepted_drafts=float(sampling["accepted_drafts"]),
            closed_cases={str(k): float(v) for k, v in sampling["closed_cases"].items()},
            idle_minutes=float(sampling.get("idle_minutes", 30)),
        ),
        conversational_intents=tuple(str(i) for i in data.get("conversational_intents") or ()),
        path=str(path),
    )


def governance_path(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_GOVERNANCE) or DEFAULT_GOVERNANCE)


@lru_cache(maxsize=4)
def _governance(path: Path) -> Governance:
    return load_governance(path)


def governance() -> Governance:
    """The configured governance.yml (loaded once per path)."""
    return _governance(governance_path())
