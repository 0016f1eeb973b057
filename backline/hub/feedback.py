"""An expert's feedback on a decided case: the verdict on the escalation (needed, not needed, should
have come earlier) and why the AI's draft was overridden, from a button (Slack, Telegram) or from
free text holding only ``verdict:`` / ``reason:`` lines (`backline.hub.guidance`).

`record_feedback` checks the values against governance.yml and records them on the consultation
store with the person as actor and the channel as source, with the platform's delivery key in the
same transaction (a retried click or update counts once). `feedback_channel` says where to ask for
it after a final decision; `backline.hub.flow.ConsultationFlow` does the asking (best effort).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from backline.consult.replies import RESOLUTIONS
from backline.consult.store import ConsultationNotFound, ConsultationStore
from backline.governance.config import governance
from backline.hub.guidance import MAX_ID_CHARS, SOURCES, Guidance, _storable

Outcome = Tuple[int, Dict[str, Any]]
KINDS = ("verdict", "reason")
ASKING_CHANNELS = ("slack", "telegram", "email")
"""Channels that ask for feedback themselves after a decision (the dashboard shows its own buttons)."""


@dataclass(frozen=True)
class Feedback:
    """One piece of feedback as it arrived: a verdict and/or an override reason (governance.yml's keys
    or labels), who gave it, from where; ``raw`` keeps the channel's ids for answering there."""

    consultation_id: str
    actor: str
    source: str
    verdict: Optional[str] = None
    reason: Optional[str] = None
    note: Optional[str] = None
    corrected_intent: Optional[str] = None
    dedupe_key: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}"[:120])
        for name in ("consultation_id", "actor"):
            value = getattr(self, name)
            _storable(name, value)
            if not value.strip() or len(value) > MAX_ID_CHARS:
                raise ValueError(f"{name} must be 1 to {MAX_ID_CHARS} characters")
        for name in ("verdict", "reason", "note", "corrected_intent"):
            if getattr(self, name) is not None:
                _storable(name, getattr(self, name))
        if self.verdict is None and self.reason is None:
            raise ValueError("feedback needs a verdict or an override reason")

    @classmethod
    def from_guidance(
        cls, guidance: Guidance, consultation_id: str, actor: str, source: str, **fields: Any
    ) -> "Feedback":
        """The ``verdict:`` / ``reason:`` lines of a free-text reply."""
        return cls(
            consultation_id,
            actor,
            source,
            verdict=guidance.verdict,
            reason=guidance.override_reason,
            note=guidance.override_note,
            corrected_intent=guidance.corrected_intent,
            **fields,
        )

    def summary(self) -> str:
        """What was recorded, in governance.yml's labels ("Not needed", "Tone")."""
        rules = governance()
        parts = []
        if self.verdict is not None:
            key = rules.check_verdict(self.verdict)
            parts.append(f"verdict {rules.verdicts[key]}")
        if self.reason is not None:
            key = rules.check_reason(self.reason)
            parts.append(
                f"reason {rules.override_reasons[key]}"
                + (f" ({self.corrected_intent})" if self.corrected_intent else "")
            )
        return ", ".join(parts)


def record_feedback(store: ConsultationStore, feedback: Feedback) -> Outcome:
    """Record ``feedback`` on its consultation (one transaction with its delivery key): 200 with what was
    recorded, ``{"duplicate": True}`` for a re-delivery, 400 for a value governance.yml does not know
    or a reason on a case without an override, 404 no such case, 409 while the case is still open."""
    rules = governance()
    try:
        verdict = None if feedback.verdict is None else rules.check_verdict(feedback.verdict)
        reason = None if feedback.reason is None else rules.check_reason(feedback.reason)
    except ValueError as error:
        return 400, {"error": str(error)}
    case = store.get(feedback.consultation_id)
    if case is None:
        return 404, {"error": f"no consultation {feedback.consultation_id}"}
    try:
        with store.transaction():
            if feedback.dedupe_key is not None and not store.claim_webhook_key(feedback.dedupe_key):
                return 200, {"duplicate": True}
            case = store.lock(feedback.consultation_id)
            if case.is_open:
                raise _Refused(
                    409,
                    f"consultation {case.id} is still open: decide it first (the verdict and the reason "
                    "go with the decision or after it)",
                )
            recorded: Dict[str, Any] = {}
            if reason is not None:
                if store.override(case.id) is None:
                    raise _Refused(400, f"consultation {case.id} has no override of an AI draft to give a reason for")
                recorded["override"] = store.set_override_reason(
                    case.id,
                    reason,
                    actor=feedback.actor,
                    source=feedback.source,
                    note=feedback.note,
                    corrected_intent=feedback.corrected_intent,
                ).as_dict()
            if verdict is not None:
                recorded["verdict"] = store.record_verdict(
                    case.id, verdict, actor=feedback.actor, source=feedback.source
                ).as_dict()
    except _Refused as refused:  # the transaction rolled back: the delivery key too
        return refused.status, {"error": refused.message}
    except ConsultationNotFound:
        return 404, {"error": f"no consultation {feedback.consultation_id}"}
    except (LookupError, ValueError) as error:
        return 400, {"error": str(error)}
    return 200, {"feedback": recorded, "message": f"Recorded: {feedback.summary()}. Thank you!"}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_final(action: str) -> bool:
    """Whether a reply with ``action`` decides (closes) the case."""
    return action in RESOLUTIONS


def feedback_channel(source: str, case_channel: Optional[str]) -> str:
    """Where to ask after a decision: the channel the expert decided on when it asks itself, else the
    case's expert channel (a case on Slack decided on the dashboard is asked about on Slack)."""
    if source in ASKING_CHANNELS:
        return source
    if case_channel in ASKING_CHANNELS:
        return str(case_channel)
    return "dashboard"
