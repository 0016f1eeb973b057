"""The outcome metrics a team lead governs the escalation matrix by, computed from plain facts
(`backline.governance.facts`): pure Python, no database, no Rasa.

Definitions (each rate is None when there is nothing to divide):

- ``containment_rate``: conversations that started in the window and never escalated, over all that
  started in it; ``escalation_rate`` is the rest.
- ``escalation_accuracy``: escalations an expert judged ``needed``, over all judged (``not_needed`` and
  ``too_late``, should have come earlier, count against it).
- ``missed_escalations``: conversations the AI handled alone that a QA reviewer marked
  ``should_have_escalated``; ``missed_escalation_rate`` over the AI-alone conversations reviewed.
- ``first_reply_seconds`` / ``resolution_seconds``: from a case's opening to the first expert reply / to
  its close; median and P90 (nearest rank), also apart for cases opened within business hours and off-hours.
- ``handback_rate``: closed cases handed back to the AI, over closed cases.
- ``reopened_rate``: resolutions (an AI answer on a topic, a close, a hand-back) followed, within the
  reopen window, by a new escalation or an ``answer_rejected`` in the same conversation; each such event
  reopens the latest resolution before it.
- ``csat``: the mean 1-5 answer to the question asked after a close or hand-back.
- ``override_rate``: AI drafts an expert denied or edited, over drafts decided (approved, denied, answered).
- ``sla_breaches``: cases without an expert reply by their deadline; ``ladder_steps``: SLA ladder steps taken.

A case counts in the window (and week) it was opened; a conversation in the one it started.
Breakdowns by ``queue``, ``intent``, ``reason``, ``channel`` and ``week`` give the same measures per value
(conversation measures are left out of ``reason``: a conversation that did not escalate has none).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from backline.governance.facts import CaseFact, ConversationFact, Facts, ReviewFact

DIMENSIONS = ("queue", "intent", "reason", "channel", "week")
VERDICT_KEYS = ("needed", "not_needed", "too_late")
DRAFT_DECISIONS = ("approve", "deny", "answer")
NONE = "(none)"
"""The breakdown value of a conversation without a topic or a queue."""


def ratio(part: int, whole: int) -> Optional[float]:
    return None if whole == 0 else round(part / whole, 4)


def p90(values: Sequence[float]) -> Optional[float]:
    """The nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)] if ordered else None


def durations(values: Sequence[float]) -> Dict[str, Any]:
    return {
        "count": len(values),
        "median": statistics.median(values) if values else None,
        "p90": p90(values),
    }


def _split_durations(cases: Sequence[CaseFact], end: Callable[[CaseFact], Optional[dt.datetime]]) -> Dict[str, Any]:
    pairs = [(c, (end(c) - c.created_at).total_seconds()) for c in cases if end(c) is not None]  # type: ignore[operator]
    return {
        **durations([s for _, s in pairs]),
        "business_hours": durations([s for c, s in pairs if c.business_hours]),
        "off_hours": durations([s for c, s in pairs if not c.business_hours]),
    }


def week_of(moment: dt.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _reopened(
    conversations: Sequence[ConversationFact],
    cases: Sequence[CaseFact],
    window: dt.timedelta,
    since: dt.datetime,
    until: dt.datetime,
    history: Sequence[CaseFact] = (),
) -> Tuple[int, int]:
    """(reopened, resolutions) for resolutions in [since, until)."""
    points: Dict[str, List[dt.datetime]] = {}
    events: Dict[str, List[dt.datetime]] = {}
    for conv in conversations:
        points.setdefault(conv.conversation_id, []).extend(conv.answered_at)
        events.setdefault(conv.conversation_id, []).extend(conv.rejected_at + conv.escalated_at)
    for case in list(cases) + list(history):
        if case.closed_at is not None and case.resolution:
            points.setdefault(case.conversation_id, []).append(case.closed_at)
        events.setdefault(case.conversation_id, []).append(case.created_at)
    reopened, total = 0, 0
    for conversation_id, moments in points.items():
        moments = sorted(set(moments))
        later = sorted(events.get(conversation_id, ()))
        hit = set()
        for event in later:
            before = [m for m in moments if m < event]
            if before and event - before[-1] <= window:
                hit.add(before[-1])
        for moment in moments:
            if since <= moment < until:
                total += 1
                reopened += moment in hit
    return reopened, total


def _flat(
    conversations: Sequence[ConversationFact],
    cases: Sequence[CaseFact],
    reviews: Sequence[ReviewFact],
    window: dt.timedelta,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    with_conversations: bool = True,
) -> Dict[str, Any]:
    contained = sum(1 for c in conversations if not c.escalated)
    judged = [c.verdict for c in cases if c.verdict in VERDICT_KEYS]
    reviewed_alone = [r for r in reviews if r.kind == "ai_alone" and r.status == "reviewed"]
    missed = sum(1 for r in reviewed_alone if r.verdict == "should_have_escalated")
    closed = [c for c in cases if c.status == "closed"]
    drafts = [c for c in cases if c.had_draft and c.decision in DRAFT_DECISIONS]
    scores = [c.csat for c in cases if c.csat is not None]
    first = _split_durations(cases, lambda c: c.first_reply_at)
    resolved = _split_durations(cases, lambda c: c.closed_at)
    reopened, resolutions = _reopened(conversations, cases, window, since, until)
    flat: Dict[str, Any] = {
        "conversations": len(conversations) if with_conversations else None,
        "consultations": len(cases),
        "containment_rate": ratio(contained, len(conversations)) if with_conversations else None,
        "escalation_rate": ratio(len(conversations) - contained, len(conversations)) if with_conversations else None,
        "escalation_accuracy": ratio(judged.count("needed"), len(judged)),
        "missed_escalations": missed,
        "first_reply_median": first["median"],
        "first_reply_p90": first["p90"],
        "resolution_median": resolved["median"],
        "resolution_p90": resolved["p90"],
        "handback_rate": ratio(sum(1 for c in closed if c.resolution == "handed_back"), len(closed)),
        "reopened_rate": ratio(reopened, resolutions),
        "csat": round(statistics.mean(scores), 3) if scores else None,
        "override_rate": ratio(sum(1 for c in drafts if c.override_kind), len(drafts)),
        "sla_breaches": sum(1 for c in cases if c.sla_breached(now)),
    }
    return flat


def compute(
    facts: Facts,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    reopen_window: dt.timedelta,
    queue_of_intent: Optional[Mapping[str, str]] = None,
    history: Sequence[CaseFact] = (),
) -> Dict[str, Any]:
    """Every outcome metric over ``facts`` (already restricted to the window and the caller's scope) and
    their breakdowns. ``queue_of_intent``: the matrix row's queue per intent (where a conversation that
    did not escalate belongs); ``history``: cases after the window (within the reopen window) that
    may reopen a resolution in it."""
    conversations, cases, reviews = facts.conversations, facts.cases, facts.reviews
    queue_of_intent = queue_of_intent or {}
    closed = [c for c in cases if c.status == "closed"]
    judged = Counter(c.verdict for c in cases if c.verdict in VERDICT_KEYS)
    reviewed_alone = [r for r in reviews if r.kind == "ai_alone" and r.status == "reviewed"]
    missed = sum(1 for r in reviewed_alone if r.verdict == "should_have_escalated")
    drafts = [c for c in cases if c.had_draft and c.decision in DRAFT_DECISIONS]
    overridden = [c for c in drafts if c.override_kind]
    scores = [c.csat for c in cases if c.csat is not None]
    contained = sum(1 for c in conversations if not c.escalated)
    reopened, resolutions = _reopened(conversations, cases, reopen_window, since, until, history)
    breaches = [c for c in cases if c.sla_breached(now)]
    result: Dict[str, Any] = {
        "conversations": len(conversations),
        "contained": contained,
        "containment_rate": ratio(contained, len(conversations)),
        "escalation_rate": ratio(len(conversations) - contained, len(conversations)),
        "consultations": len(cases),
        "escalation_accuracy": ratio(judged["needed"], sum(judged.values())),
        "verdicts": {key: judged[key] for key in VERDICT_KEYS},
        "missed_escalations": missed,
        "missed_escalation_rate": ratio(missed, len(reviewed_alone)),
        "unneeded_escalations": judged["not_needed"]
        + sum(1 for r in reviews if r.status == "reviewed" and r.verdict == "should_not_have_escalated"),
        "first_reply_seconds": _split_durations(cases, lambda c: c.first_reply_at),
        "resolution_seconds": _split_durations(cases, lambda c: c.closed_at),
        "handback_rate": ratio(sum(1 for c in closed if c.resolution == "handed_back"), len(closed)),
        "reopened_rate": ratio(reopened, resolutions),
        "reopened": {"count": reopened, "of": resolutions},
        "csat": round(statistics.mean(scores), 3) if scores else None,
        "csat_responses": {"count": len(scores), "scores": {str(s): scores.count(s) for s in range(1, 6)}},
        "override_rate": ratio(len(overridden), len(drafts)),
        "override_reasons": dict(Counter(c.override_reason or "unspecified" for c in overridden)),
        "sla_breaches": len(breaches),
        "sla_breach_rate": ratio(len(breaches), len(cases)),
        "ladder_steps": dict(Counter(step for c in cases for step in c.ladder_steps)),
        "qa": {
            "pending": sum(1 for r in reviews if r.status == "pending"),
            "reviewed": sum(1 for r in reviews if r.status == "reviewed"),
            "by_verdict": dict(Counter(r.verdict for r in reviews if r.verdict)),
        },
        "by_reason": dict(Counter(reason for c in cases for reason in c.reasons)),
        "by_mode": dict(Counter(c.mode for c in cases)),
        "by_queue": dict(Counter(c.queue for c in cases)),
        "by_status": dict(Counter(c.status for c in cases)),
    }
    result["breakdowns"] = {
        dimension: _breakdown(dimension, facts, queue_of_intent, reopen_window, since, until, now)
        for dimension in DIMENSIONS
    }
    return result


def conversation_queue(
    conversation: ConversationFact, cases: Iterable[CaseFact], queue_of_intent: Mapping[str, str]
) -> str:
    """Where a conversation belongs: its first case's queue, else its topic's matrix row queue."""
    for case in cases:
        return case.queue
    return queue_of_intent.get(conversation.intent or "", NONE)


def _conversation_value(
    dimension: str, conv: ConversationFact, cases: Sequence[CaseFact], queue_of_intent: Mapping[str, str]
) -> Optional[str]:
    if dimension == "queue":
        return conversation_queue(conv, cases, queue_of_intent)
    if dimension == "intent":
        return conv.intent
    if dimension == "channel":
        return conv.channel
    return week_of(conv.started_at)


def _breakdown(
    dimension: str,
    facts: Facts,
    queue_of_intent: Mapping[str, str],
    window: dt.timedelta,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
) -> Dict[str, Dict[str, Any]]:
    cases_of: Dict[str, List[CaseFact]] = {}
    for case in facts.cases:
        cases_of.setdefault(case.conversation_id, []).append(case)
    groups: Dict[str, Tuple[List[ConversationFact], List[CaseFact], List[ReviewFact]]] = {}

    def group(value: Optional[str]) -> Tuple[List[ConversationFact], List[CaseFact], List[ReviewFact]]:
        return groups.setdefault(value or NONE, ([], [], []))

    for conv in facts.conversations:
        if dimension == "reason":
            continue
        value = _conversation_value(dimension, conv, cases_of.get(conv.conversation_id, ()), queue_of_intent)
        group(value)[0].append(conv)
    for case in facts.cases:
        values: Sequence[Optional[str]]
        if dimension == "reason":
            values = case.reasons or (None,)
        else:
            values = (
                {"queue": case.queue, "intent": case.intent, "channel": case.channel, "week": week_of(case.created_at)}[
                    dimension
                ],
            )
        for value in values:
            group(value)[1].append(case)
    for review in facts.reviews:
        value = {
            "queue": review.queue,
            "intent": review.intent,
            "reason": None,
            "channel": review.channel,
            "week": week_of(review.subject_at),
        }[dimension]
        if dimension != "reason":
            group(value)[2].append(review)
    return {
        value: _flat(convs, cases, reviews, window, since, until, now, with_conversations=dimension != "reason")
        for value, (convs, cases, reviews) in sorted(groups.items())
    }
