"""Governance for the hub and the command line: verdicts and override reasons (checked against
governance.yml), the outcome metrics over a window and a caller's queues, the QA review queue, and a
conversation's routing decisions (the audit trail of turns the AI took alone).

    service = GovernanceService(store, directory, tracker=TrackerReader(tracker_url()))

``access`` is the caller's (`backline.access.Access`): None or a supervisor's means every queue;
otherwise cases, conversations (by their queue: the case's, else their topic's matrix row's) and
reviews are restricted to the caller's queues. Errors: ValueError (bad input: 400), LookupError
(no such thing: 404), PermissionError (not the caller's: 403), `ReviewDone` and `CaseStillOpen` (409).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Dict, List, Mapping, Optional

from backline import configuration
from backline.access import Access
from backline.consult.governance import (
    REVIEW_KINDS,
    REVIEW_STATUSES,
    REVIEW_VERDICTS,
    CaseStillOpen,
    Override,
    Review,
    Verdict,
)
from backline.consult.store import ConsultationStore
from backline.governance.config import Governance, governance
from backline.governance.facts import (
    CaseFact,
    ConversationFact,
    Facts,
    ReviewFact,
    TrackerReader,
    case_facts,
    conversation_fact,
)
from backline.governance.metrics import compute, conversation_queue
from backline.governance.window import parse_moment
from backline.routing.directory import ExpertDirectory
from backline.utc import as_utc, iso

DEFAULT_DAYS = 30
FILTERS = ("queue", "intent", "channel", "reason")


def parse_when(
    value: Optional[str], now: dt.datetime, name: str = "since", *, end_of_day: bool = False
) -> Optional[dt.datetime]:
    """`backline.governance.window.parse_moment` with the API's error: ValueError naming ``name``."""
    try:
        return parse_moment(value, now, end_of_day=end_of_day)
    except ValueError:
        text = str(value).strip()[:40]
        raise ValueError(
            f"{name} must be like 30d, 12w, 24h, 2026-11-01 or 2026-11-01T09:00:00Z; got {text!r}"
        ) from None


class GovernanceService:
    """Over the consultation ``store``, the expert ``directory`` and Rasa's tracker store (``tracker``;
    None: no conversation facts, so containment and AI answers are unknown)."""

    def __init__(
        self,
        store: ConsultationStore,
        directory: ExpertDirectory,
        tracker: Optional[TrackerReader] = None,
        *,
        rules: Optional[Governance] = None,
        queue_of_intent: Optional[Mapping[str, str]] = None,
        clock: Optional[Callable[[], dt.datetime]] = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.rules = rules or governance()
        self.tracker = tracker
        if tracker is not None and not tracker.conversational:
            tracker.conversational = frozenset(self.rules.conversational_intents)
        if queue_of_intent is None:
            queue_of_intent = {name: row.queue for name, row in configuration.matrix().rows.items()}
        self.queue_of_intent = dict(queue_of_intent)
        self.clock = clock or store.clock

    # verdicts and overrides

    def record_verdict(
        self, consultation_id: str, verdict: str, *, actor: str, source: str, note: Optional[str] = None
    ) -> Verdict:
        """The expert's verdict (a key or label of governance.yml's ``verdicts``) on the escalation of a decided
        case; `CaseStillOpen` before (a verdict given with the final decision goes with the reply)."""
        key = self.rules.check_verdict(verdict)
        if self.store.require(consultation_id).is_open:
            raise CaseStillOpen(consultation_id)
        return self.store.record_verdict(consultation_id, key, actor=actor, source=source, note=note)

    def set_override_reason(
        self,
        consultation_id: str,
        reason: str,
        *,
        actor: str,
        source: str,
        note: Optional[str] = None,
        corrected_intent: Optional[str] = None,
    ) -> Override:
        """Why the case's AI draft was denied or edited (a key or label of ``override_reasons``)."""
        key = self.rules.check_reason(reason)
        if corrected_intent and corrected_intent not in self.queue_of_intent:
            raise ValueError(f"intent {corrected_intent[:64]!r} is not a row of escalation.yml")
        self.store.require(consultation_id)
        return self.store.set_override_reason(
            consultation_id, key, actor=actor, source=source, note=note, corrected_intent=corrected_intent
        )

    # metrics

    def window(self, since: Optional[dt.datetime], until: Optional[dt.datetime]) -> tuple:
        end = as_utc(until) if until else self.clock()
        start = as_utc(since) if since else end - dt.timedelta(days=DEFAULT_DAYS)
        if start >= end:
            raise ValueError("since must be before until")
        return start, end

    def facts(
        self,
        access: Optional[Access] = None,
        since: Optional[dt.datetime] = None,
        until: Optional[dt.datetime] = None,
        filters: Optional[Mapping[str, Optional[str]]] = None,
        *,
        extra: dt.timedelta = dt.timedelta(0),
    ) -> Facts:
        """Conversations started, cases opened and reviews of subjects in [since, until + extra), restricted
        to ``access`` and ``filters`` (queue, intent, channel, reason)."""
        start, end = self.window(since, until)
        end = end + extra
        conversations = self.tracker.conversations(start, end) if self.tracker is not None else []
        channels = {c.conversation_id: c.channel for c in conversations}
        cases = case_facts(self.store.engine, start, end, self.directory.is_open, channels)
        missing = sorted({c.conversation_id for c in cases} - set(channels))
        if missing and self.tracker is not None:
            for cid, events in self.tracker.events(missing).items():
                channels[cid] = conversation_fact(cid, events).channel
            cases = [_with_channel(c, channels.get(c.conversation_id, "unknown")) for c in cases]
        reviews = [
            ReviewFact(
                r.kind,
                r.subject_at,
                r.status,
                r.verdict,
                r.queue,
                r.intent,
                r.channel,
                r.conversation_id,
                r.consultation_id,
            )
            for r in self.store.reviews(since=start, until=end)
        ]
        return self._restrict(Facts(conversations, cases, reviews), access, filters or {})

    def _restrict(self, facts: Facts, access: Optional[Access], filters: Mapping[str, Optional[str]]) -> Facts:
        wanted = {k: v for k, v in filters.items() if v}
        unknown = set(wanted) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown filter {sorted(unknown)[0]!r}; one of {', '.join(FILTERS)}")
        cases_of: Dict[str, List[CaseFact]] = {}
        for case in facts.cases:
            cases_of.setdefault(case.conversation_id, []).append(case)

        def queue(conv: ConversationFact) -> str:
            return conversation_queue(conv, cases_of.get(conv.conversation_id, ()), self.queue_of_intent)

        def seen(q: Optional[str]) -> bool:
            return access is None or access.sees_all or (q is not None and access.may_see(q))

        def case_ok(c: CaseFact) -> bool:
            return (
                (access is None or access.sees_all or access.may_see(c.queue))
                and wanted.get("queue", c.queue) == c.queue
                and wanted.get("intent", c.intent) == c.intent
                and wanted.get("channel", c.channel) == c.channel
                and ("reason" not in wanted or wanted["reason"] in c.reasons)
            )

        def conv_ok(c: ConversationFact) -> bool:
            q = queue(c)
            reasons = {r for case in cases_of.get(c.conversation_id, ()) for r in case.reasons} | set(c.reasons)
            return (
                seen(q)
                and wanted.get("queue", q) == q
                and wanted.get("intent", c.intent) == c.intent
                and wanted.get("channel", c.channel) == c.channel
                and ("reason" not in wanted or wanted["reason"] in reasons)
            )

        def review_ok(r: ReviewFact) -> bool:
            return (
                seen(r.queue)
                and wanted.get("queue", r.queue) == r.queue
                and wanted.get("intent", r.intent) == r.intent
                and wanted.get("channel", r.channel) == r.channel
                and "reason" not in wanted
            )

        return Facts(
            [c for c in facts.conversations if conv_ok(c)],
            [c for c in facts.cases if case_ok(c)],
            [r for r in facts.reviews if review_ok(r)],
        )

    def metrics(
        self,
        access: Optional[Access] = None,
        since: Optional[dt.datetime] = None,
        until: Optional[dt.datetime] = None,
        filters: Optional[Mapping[str, Optional[str]]] = None,
    ) -> Dict[str, Any]:
        """Every outcome metric (`backline.governance.metrics.compute`) over the window (default: the last
        30 days) within the caller's queues and the filters."""
        start, end = self.window(since, until)
        window = dt.timedelta(hours=self.rules.reopen_window_hours)
        everything = self.facts(access, start, end, filters, extra=window)
        inside = Facts(
            [c for c in everything.conversations if c.started_at < end],
            [c for c in everything.cases if c.created_at < end],
            [r for r in everything.reviews if r.subject_at < end],
        )
        history = [c for c in everything.cases if c.created_at >= end]
        result = compute(
            inside,
            since=start,
            until=end,
            now=self.clock(),
            reopen_window=window,
            queue_of_intent=self.queue_of_intent,
            history=history,
        )
        return {
            "since": iso(start),
            "until": iso(end),
            "filters": {k: v for k, v in (filters or {}).items() if v},
            "reopen_window_hours": self.rules.reopen_window_hours,
            **result,
        }

    # QA reviews

    def _review_for(self, access: Optional[Access], review_id: str) -> Review:
        review = self.store.review(review_id)
        if review is None:
            raise LookupError(f"no review {review_id}")
        if access is not None and not access.sees_all and not access.may_see(review.queue):
            raise PermissionError(f"review {review_id} is not in your queues")
        return review

    def reviews(
        self, access: Optional[Access] = None, status: Optional[str] = None, kind: Optional[str] = None
    ) -> List[Review]:
        """The review queue (pending first by default order: oldest subject first)."""
        if status is not None and status not in REVIEW_STATUSES:
            raise ValueError(f"status must be one of {', '.join(REVIEW_STATUSES)}")
        if kind is not None and kind not in REVIEW_KINDS:
            raise ValueError(f"kind must be one of {', '.join(REVIEW_KINDS)}")
        queues = None if access is None or access.sees_all else sorted(access.queues or ())
        return self.store.reviews(status=status, kind=kind, queues=queues)

    def review_detail(self, access: Optional[Access], review_id: str) -> Dict[str, Any]:
        """The review with what the reviewer needs: the transcript and each turn's routing decision
        (from the tracker store), and the consultation when there is one."""
        review = self._review_for(access, review_id)
        case = self.store.get(review.consultation_id) if review.consultation_id else None
        transcript = self.tracker.transcript(review.conversation_id) if self.tracker is not None else []
        if not transcript and case is not None:
            transcript = [
                {"at": t.get("at"), "speaker": t.get("speaker") or t.get("role"), "text": t.get("text")}
                for t in case.transcript
            ]
        return {
            "review": review.as_dict(),
            "transcript": transcript,
            "decisions": self.tracker.decisions(review.conversation_id) if self.tracker is not None else [],
            "consultation": case.as_dict() if case is not None else None,
        }

    def record_review(
        self,
        access: Optional[Access],
        review_id: str,
        verdict: str,
        note: Optional[str] = None,
        corrected_intent: Optional[str] = None,
    ) -> Review:
        """The reviewer's verdict (right, should_have_escalated, should_not_have_escalated, wrong_answer)."""
        if verdict not in REVIEW_VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(REVIEW_VERDICTS)}")
        if corrected_intent and corrected_intent not in self.queue_of_intent:
            raise ValueError(f"intent {corrected_intent[:64]!r} is not a row of escalation.yml")
        self._review_for(access, review_id)
        reviewer = access.person_id if access is not None else "system"
        return self.store.record_review(
            review_id, verdict, reviewer=reviewer, note=note, corrected_intent=corrected_intent
        )

    def decisions(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Each user turn's routing decision in the conversation (tracker store)."""
        return self.tracker.decisions(conversation_id) if self.tracker is not None else []


def _with_channel(case: CaseFact, channel: str) -> CaseFact:
    from dataclasses import replace

    return replace(case, channel=channel)
