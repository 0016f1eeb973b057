"""The consultation store's governance records: an expert's verdict on an escalation, an override of
the AI's draft (the draft and the final text side by side, with the reason), the customer's
satisfaction answer, and the QA review queue. Each write is one transaction with its audit event on
the case (`backline.consult.transactions.StoreBase`); a review of a conversation the AI handled alone
has no case, and its row (who, when, what verdict, why) is its record.

Texts are masked like every other stored text (`backline.consult.masking`). Which values are allowed
(verdicts, override reasons) is governance.yml's (`backline.governance.config`); the store checks the
fixed ones (verdict keys, review verdicts, scores) and the length of the rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from backline.consult.masking import mask
from backline.consult.rows import checked_choice, checked_text
from backline.consult.schema import csat_responses, overrides, qa_reviews, verdicts
from backline.consult.transactions import StoreBase
from backline.utc import iso

VERDICTS = ("needed", "not_needed", "too_late")
OVERRIDE_KINDS = ("denied", "edited")
REVIEW_KINDS = ("ai_alone", "accepted_draft", "closed_case")
REVIEW_VERDICTS = ("right", "should_have_escalated", "should_not_have_escalated", "wrong_answer")
REVIEW_STATUSES = ("pending", "reviewed")
NOTE_LIMIT = 2000
TEXT_LIMIT = 20000


class CaseStillOpen(Exception):
    """A verdict on an escalation is given when the case is decided (with the decision, or after it)."""

    def __init__(self, consultation_id: str) -> None:
        super().__init__(f"consultation {consultation_id} is still open: give the verdict when you close it")
        self.consultation_id = consultation_id


class ReviewDone(ValueError):
    """The review was already made (by ``reviewer``): a second verdict changes nothing."""

    def __init__(self, review_id: str, reviewer: Optional[str]) -> None:
        super().__init__(f"review {review_id} was already made by {reviewer or 'someone'}")
        self.review_id = review_id
        self.reviewer = reviewer


@dataclass(frozen=True)
class Verdict:
    consultation_id: str
    verdict: str
    actor: str
    source: str
    note: Optional[str]
    at: datetime

    def as_dict(self) -> Dict[str, Any]:
        return {**self.__dict__, "at": iso(self.at)}


@dataclass(frozen=True)
class Override:
    consultation_id: str
    kind: str
    reason: Optional[str]
    note: Optional[str]
    intent: Optional[str]
    corrected_intent: Optional[str]
    ai_draft: str
    final_text: str
    actor: str
    source: str
    at: datetime

    def as_dict(self) -> Dict[str, Any]:
        return {**self.__dict__, "at": iso(self.at)}


@dataclass(frozen=True)
class CsatResponse:
    consultation_id: str
    conversation_id: str
    score: int
    channel: str
    at: datetime

    def as_dict(self) -> Dict[str, Any]:
        return {**self.__dict__, "at": iso(self.at)}


@dataclass(frozen=True)
class Review:
    id: str
    kind: str
    subject: str
    conversation_id: str
    consultation_id: Optional[str]
    queue: Optional[str]
    intent: Optional[str]
    channel: Optional[str]
    subject_at: datetime
    sampled_at: datetime
    status: str
    reviewer: Optional[str] = None
    reviewed_at: Optional[datetime] = None
    verdict: Optional[str] = None
    note: Optional[str] = None
    corrected_intent: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            **self.__dict__,
            "subject_at": iso(self.subject_at),
            "sampled_at": iso(self.sampled_at),
            "reviewed_at": iso(self.reviewed_at) if self.reviewed_at else None,
        }


def _note(note: Optional[str]) -> Optional[str]:
    if note is None or not str(note).strip():
        return None
    if not isinstance(note, str) or len(note) > NOTE_LIMIT:
        raise ValueError(f"a note must be text of at most {NOTE_LIMIT} characters")
    return mask(note.strip())


def _intent(name: str, value: Optional[str]) -> Optional[str]:
    return None if value is None or not str(value).strip() else checked_text(name, str(value).strip(), 64)


def _row(cls: Any, row: Any) -> Any:
    return None if row is None else cls(**dict(row._mapping))


class Governance(StoreBase):
    """Verdicts, overrides, satisfaction answers and QA reviews (part of `ConsultationStore`)."""

    # verdicts

    def record_verdict(
        self,
        consultation_id: str,
        verdict: str,
        *,
        actor: str,
        source: str,
        note: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> Verdict:
        """The expert's verdict on the escalation (the latest wins), audited ``verdict``."""
        checked_choice("verdict", verdict, VERDICTS)
        moment = self._now(at)
        note_text = _note(note)
        values = {
            "verdict": verdict,
            "actor": checked_text("actor", actor, 128),
            "source": checked_text("source", source, 16),
            "note": note_text,
            "at": moment,
        }
        with self._write() as connection:
            self._locked(connection, consultation_id)
            previous = connection.execute(
                select(verdicts.c.verdict).where(verdicts.c.consultation_id == consultation_id)
            ).scalar()
            if previous is None:
                connection.execute(verdicts.insert().values(consultation_id=consultation_id, **values))
            else:
                connection.execute(
                    verdicts.update().where(verdicts.c.consultation_id == consultation_id).values(**values)
                )
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "verdict",
                {"verdict": verdict, "previous": previous, "source": source, "note": note_text},
            )
        return Verdict(consultation_id, verdict, actor, source, note_text, moment)

    def verdict(self, consultation_id: str) -> Optional[Verdict]:
        with self._read() as connection:
            row = connection.execute(select(verdicts).where(verdicts.c.consultation_id == consultation_id)).first()
        return _row(Verdict, row)

    # overrides

    def record_override(
        self,
        consultation_id: str,
        *,
        kind: str,
        ai_draft: str,
        final_text: str,
        actor: str,
        source: str,
        reason: Optional[str] = None,
        note: Optional[str] = None,
        intent: Optional[str] = None,
        corrected_intent: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> Override:
        """The expert denied or edited the AI's draft (one per case), audited ``override``."""
        checked_choice("override kind", kind, OVERRIDE_KINDS)
        moment = self._now(at)
        record = Override(
            consultation_id=consultation_id,
            kind=kind,
            reason=None if reason is None else checked_text("reason", reason, 32),
            note=_note(note),
            intent=_intent("intent", intent),
            corrected_intent=_intent("corrected_intent", corrected_intent),
            ai_draft=mask(str(ai_draft)[:TEXT_LIMIT]),
            final_text=mask(str(final_text)[:TEXT_LIMIT]),
            actor=checked_text("actor", actor, 128),
            source=checked_text("source", source, 16),
            at=moment,
        )
        values = {k: v for k, v in record.__dict__.items() if k != "consultation_id"}
        with self._write() as connection:
            self._locked(connection, consultation_id)
            connection.execute(overrides.delete().where(overrides.c.consultation_id == consultation_id))
            connection.execute(overrides.insert().values(consultation_id=consultation_id, **values))
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "override",
                {"kind": kind, "reason": record.reason, "note": record.note, "source": source},
            )
        return record

    def set_override_reason(
        self,
        consultation_id: str,
        reason: str,
        *,
        actor: str,
        source: str,
        note: Optional[str] = None,
        corrected_intent: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> Override:
        """Say why the draft was overridden (after the decision, e.g. a button under it), audited
        ``override_reason``. LookupError when the case has no override."""
        moment = self._now(at)
        checked_text("reason", reason, 32)
        with self._write() as connection:
            self._locked(connection, consultation_id)
            found = connection.execute(select(overrides).where(overrides.c.consultation_id == consultation_id)).first()
            if found is None:
                raise LookupError(f"consultation {consultation_id} has no override of an AI draft")
            changes: Dict[str, Any] = {"reason": reason}
            if note is not None and str(note).strip():
                changes["note"] = _note(note)
            if corrected_intent is not None and str(corrected_intent).strip():
                changes["corrected_intent"] = _intent("corrected_intent", corrected_intent)
            connection.execute(
                overrides.update().where(overrides.c.consultation_id == consultation_id).values(**changes)
            )
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "override_reason",
                {
                    "reason": reason,
                    "previous": found.reason,
                    "source": source,
                    **{k: v for k, v in changes.items() if k != "reason"},
                },
            )
            row = connection.execute(select(overrides).where(overrides.c.consultation_id == consultation_id)).first()
        return _row(Override, row)

    def override(self, consultation_id: str) -> Optional[Override]:
        with self._read() as connection:
            row = connection.execute(select(overrides).where(overrides.c.consultation_id == consultation_id)).first()
        return _row(Override, row)

    # satisfaction

    def record_csat(
        self,
        consultation_id: str,
        score: int,
        *,
        conversation_id: str,
        channel: str,
        at: Optional[datetime] = None,
    ) -> Optional[CsatResponse]:
        """The customer's 1-5 answer after the case closed; the first answer counts (None for a second),
        audited ``csat``."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ValueError(f"a satisfaction score is a whole number from 1 to 5; got {score!r}")
        moment = self._now(at)
        record = CsatResponse(
            consultation_id,
            checked_text("conversation_id", conversation_id, 255),
            score,
            checked_text("channel", channel or "unknown", 32),
            moment,
        )
        with self._write() as connection:
            self._locked(connection, consultation_id)
            if connection.execute(
                select(csat_responses.c.score).where(csat_responses.c.consultation_id == consultation_id)
            ).first():
                return None
            connection.execute(csat_responses.insert().values(**record.__dict__))
            self._append(connection, consultation_id, moment, "customer", "csat", {"score": score, "channel": channel})
        return record

    def csat(self, consultation_id: str) -> Optional[CsatResponse]:
        with self._read() as connection:
            row = connection.execute(
                select(csat_responses).where(csat_responses.c.consultation_id == consultation_id)
            ).first()
        return _row(CsatResponse, row)

    # QA reviews

    def add_review(
        self,
        *,
        kind: str,
        subject: str,
        conversation_id: str,
        subject_at: datetime,
        consultation_id: Optional[str] = None,
        queue: Optional[str] = None,
        intent: Optional[str] = None,
        channel: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> Optional[Review]:
        """Put ``subject`` in the review queue, once: None when it already is (another hub sampled it)."""
        checked_choice("review kind", kind, REVIEW_KINDS)
        moment = self._now(at)
        review = Review(
            id="r_" + uuid.uuid4().hex[:12],
            kind=kind,
            subject=checked_text("subject", subject, 255),
            conversation_id=checked_text("conversation_id", conversation_id, 255),
            consultation_id=consultation_id,
            queue=queue,
            intent=_intent("intent", intent),
            channel=channel,
            subject_at=self._now(subject_at),
            sampled_at=moment,
            status="pending",
        )
        try:
            with self.transaction() as connection:
                if connection.execute(
                    select(qa_reviews.c.id).where(and_(qa_reviews.c.kind == kind, qa_reviews.c.subject == subject))
                ).first():
                    return None
                connection.execute(qa_reviews.insert().values(**review.__dict__))
                if consultation_id:
                    self._append(
                        connection,
                        consultation_id,
                        moment,
                        "system",
                        "qa_sampled",
                        {"review_id": review.id, "kind": kind},
                    )
        except IntegrityError:  # sampled at the same moment by another hub
            return None
        return review

    def review(self, review_id: str) -> Optional[Review]:
        with self._read() as connection:
            row = connection.execute(select(qa_reviews).where(qa_reviews.c.id == review_id)).first()
        return _row(Review, row)

    def reviews(
        self,
        *,
        status: Optional[str] = None,
        kind: Optional[str] = None,
        queues: Optional[Sequence[str]] = None,
        since: Optional[datetime] = None,
        until: Optional[datetime] = None,
        limit: Optional[int] = None,
    ) -> List[Review]:
        """Reviews, oldest subject first; ``queues`` None means every queue (an empty list: none)."""
        statement = select(qa_reviews).order_by(qa_reviews.c.subject_at, qa_reviews.c.id)
        if status is not None:
            statement = statement.where(qa_reviews.c.status == checked_choice("status", status, REVIEW_STATUSES))
        if kind is not None:
            statement = statement.where(qa_reviews.c.kind == checked_choice("kind", kind, REVIEW_KINDS))
        if queues is not None:
            statement = statement.where(qa_reviews.c.queue.in_(list(queues)))
        if since is not None:
            statement = statement.where(qa_reviews.c.subject_at >= self._now(since))
        if until is not None:
            statement = statement.where(qa_reviews.c.subject_at < self._now(until))
        if limit is not None:
            statement = statement.limit(limit)
        with self._read() as connection:
            return [_row(Review, row) for row in connection.execute(statement)]

    def record_review(
        self,
        review_id: str,
        verdict: str,
        *,
        reviewer: str,
        note: Optional[str] = None,
        corrected_intent: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> Review:
        """The reviewer's verdict (once: `ReviewDone` for a second), audited ``qa_reviewed`` on its case."""
        checked_choice("review verdict", verdict, REVIEW_VERDICTS)
        moment = self._now(at)
        with self._write() as connection:
            found = connection.execute(select(qa_reviews).where(qa_reviews.c.id == review_id).with_for_update()).first()
            if found is None:
                raise LookupError(f"no review {review_id}")
            if found.status == "reviewed":
                raise ReviewDone(review_id, found.reviewer)
            changes = {
                "status": "reviewed",
                "reviewer": checked_text("reviewer", reviewer, 128),
                "reviewed_at": moment,
                "verdict": verdict,
                "note": _note(note),
                "corrected_intent": _intent("corrected_intent", corrected_intent),
            }
            connection.execute(qa_reviews.update().where(qa_reviews.c.id == review_id).values(**changes))
            if found.consultation_id:
                self._append(
                    connection,
                    found.consultation_id,
                    moment,
                    reviewer,
                    "qa_reviewed",
                    {"review_id": review_id, "verdict": verdict, "note": changes["note"]},
                )
            row = connection.execute(select(qa_reviews).where(qa_reviews.c.id == review_id)).first()
        return _row(Review, row)
