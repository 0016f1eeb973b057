"""The routing decision: one user message, the conversation so far and the matrix in, a `Decision` out.

Pure Python (no Rasa, no spaCy): the Rasa policy (backline/rasa/routing_policy.py) is a thin
adapter that builds `Parse` / `Conversation` from the tracker and applies the `Decision`.

Order (DESIGN.md, "Routing decision"); the first step that decides wins:

0. human mode (``handoff_mode == "human"``): ``silent``, the AI says nothing (the message
   goes to the case), except while no person has joined (``human_joined`` false): a confident
   informational question is answered (``answer_waiting``), saying a person is on the way.
   A message without words (empty, emoji, punctuation, or the NLU's ``no_known_words``):
   ``clarify``; the second in a row: ``handoff``, ``low_confidence`` / ``not_understood``;
1. explicit request for a person: an ``explicit_request`` signal, or a trigger intent at
   ``min_confidence`` or more that no ``not_explicit_request`` signal vetoes: ``handoff``;
2. exception category: the classifier route (intent, and amount above the limit when the
   category has one) or the rule route (a signal named after the category, in any message);
   the most urgent category wins: ``handoff``, reason ``sensitive_topic``. Fail closed: an
   amount whose currency has no rate in ``currency_rates`` cannot be compared with a limit, so
   on an intent of a category with a limit it escalates too, detail ``unrated_currency`` (the
   category's ``unrated_detail``), unless a convertible amount is already over the limit.
   Inside a collect form the form's row is the topic an amount is judged against;
3. no convergence: a rejection intent after an earlier answer, or the same intent for
   ``same_intent_turns`` turns with consecutive question+answer token sets overlapping
   ``>= overlap`` (Jaccard): ``handoff``, reason ``no_convergence``, the last answer attached;
   after a hand-back with limits (``handed_back`` and ``allowed_intents``, not yet lapsed), an
   intent outside them goes back to a person: ``handoff``, ``policy_action`` / ``outside_handback``.
   (Before 1: the topic of a fresh recorded resolution (``case_resolution``), with no signal or
   amount of its own, gets ``tell_resolution``, once;)
4. confidence tier of the intent's row: high -> the row's ``ai_may`` (answer: ``answer``;
   collect_then_route: ``collect``, the row's form; draft: ``consult``; never: ``handoff``);
   medium -> ``consult`` (expert reviews the AI's draft); low -> ``handoff`` with the full
   context. While a form is active, a reply to it (or, in a collect form, its own topic) and
   any reply below the high tier are left to the form; a confident "no" stops a collect form
   (``stop_collect``: nothing is routed);
5. modifiers on ``answer`` / ``consult`` / ``collect`` outcomes: repeated frustration
   (``handoff``), negative sentiment (``answer`` becomes ``consult``), high value (priority one
   level up; ``consult`` on draft rows).

When a collect form completes, `route_collected` decides the route: ``consult`` to the row's
queue with the collected facts (an amount over a category's limit hands off instead).

Every evaluated trigger that fired leaves its evidence in `Decision.evidence`, keyed by
trigger name, so the record shows e.g. a sensitive topic that an explicit request beat.

Steps 1 to 3 (explicit request, exception category, no convergence) are `backline.routing.triggers`;
what one decision looks at is `backline.routing.decision_context.DecisionContext`; the inputs and the
output are `backline.routing.decision`. This module holds the order and the other steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from backline.routing.amounts import resolve_amounts
from backline.routing.collect import collected, form_intent, form_name
from backline.routing.decision import (
    ACTIONS,
    ANSWER,
    ANSWER_WAITING,
    CLARIFY,
    COLLECT,
    CONSULT,
    FULL_CONTEXT,
    HANDED_BACK,
    HANDOFF,
    HUMAN,
    SILENT,
    STOP_COLLECT,
    TELL_RESOLUTION,
    Conversation,
    Decision,
    Parse,
    Turn,
    _base,
    _polarity,
    _signals,
    jaccard,
    tokens,
    usable,
)
from backline.routing.decision_context import DecisionContext
from backline.routing.matrix import EscalationMatrix, raise_priority
from backline.routing.signals import EXPLICIT_REQUEST, NO_KNOWN_WORDS, Signal
from backline.routing.triggers import explicit_request, no_convergence, sensitive_topic

__all__ = [  # the decision and its inputs / output (defined in backline.routing.decision)
    "ACTIONS",
    "Conversation",
    "Decision",
    "Parse",
    "Turn",
    "decide",
    "handback_lapsed",
    "jaccard",
    "route_collected",
    "tokens",
    "usable",
]

# --- the decision -----------------------------------------------------------------------


def decide(parse: Parse, conversation: Optional[Conversation], matrix: EscalationMatrix) -> Decision:
    """The routing decision for the latest message (see the module docstring for the order)."""
    ctx = DecisionContext(parse, conversation or Conversation(), matrix)
    if ctx.mode == HUMAN:
        waiting = _while_waiting(ctx)
        if waiting is not None:
            return waiting
        ctx.evidence["human_mode"] = {"handoff_mode": HUMAN, "human_joined": ctx.conversation.human_joined}
        return ctx.decision(SILENT, detail="human_mode")
    unclear = _unclear(ctx)
    if unclear is not None:
        return unclear

    resolved = _resolution(ctx)
    if resolved is not None:
        return resolved
    # Every trigger is evaluated, so the record also shows those the winner outranked.
    fired = [d for d in (explicit_request(ctx), sensitive_topic(ctx), no_convergence(ctx)) if d is not None]
    if fired:
        return replace(fired[0], evidence=dict(ctx.evidence))
    outside = _outside_handback(ctx)
    if outside is not None:
        return outside
    return _modifiers(ctx, _confidence_tier(ctx))


def _why_unclear(text: Optional[str], signals: Sequence[Signal]) -> Optional[str]:
    """Why a message cannot be understood: no letters or digits, or no word the assistant knows."""
    if not usable(text):
        return "no_usable_text"
    if any(isinstance(s, Signal) and s.name == NO_KNOWN_WORDS for s in signals or ()):
        return NO_KNOWN_WORDS
    return None


def _unclear(ctx: DecisionContext) -> Optional[Decision]:
    """A message without words asks to rephrase; a second one in a row goes to a person (low confidence,
    detail ``not_understood``) instead of asking again."""
    why = _why_unclear(ctx.text, ctx.parse.signals)
    if why is None:
        return None
    ctx.evidence["clarify"] = {"length": len(ctx.text), "why": why}
    previous = ctx.history[-1] if ctx.history else None
    if previous is not None and _why_unclear(previous.text, previous.signals) is not None:
        ctx.evidence["clarify"]["previous"] = previous.text
        package = FULL_CONTEXT if FULL_CONTEXT in ctx.matrix.context_packages else None
        return ctx.decision(
            HANDOFF, reason="low_confidence", detail="not_understood", tier="low", context_package=package
        )
    return ctx.decision(CLARIFY, detail=why)


def _while_waiting(ctx: DecisionContext) -> Optional[Decision]:
    """Human mode before a person has joined: an informational question the AI may answer alone (high
    tier, an ``answer`` row) is answered, saying a person is still on the way; anything else goes to
    the case (None here: the caller stays silent and relays it)."""
    if ctx.conversation.human_joined is not False or _why_unclear(ctx.text, ctx.parse.signals):
        return None
    intent = _base(ctx.intent)
    row = ctx.row
    if intent not in ctx.matrix.hand_back.informational or row.ai_may != "answer" or not ctx.matrix.has_row(intent):
        return None
    if row.thresholds.tier(ctx.confidence) != "high" or _signals(ctx.parse, EXPLICIT_REQUEST):
        return None
    if any(_signals(ctx.parse, name) for name in ctx.matrix.categories):
        return None
    ctx.evidence["while_waiting"] = {"intent": ctx.intent, "confidence": ctx.confidence, "high": row.thresholds.high}
    return ctx.decision(ANSWER_WAITING, detail="while_waiting", tier="high")


def _resolution_time(resolution: Optional[Mapping[str, Any]]) -> Optional[dt.datetime]:
    at = resolution.get("at") if isinstance(resolution, Mapping) else None
    if not isinstance(at, str):
        return None
    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def handback_lapsed(conversation: Conversation, matrix: EscalationMatrix) -> bool:
    """Whether a hand-back's limits have lapsed: the session it happened in has ended, or the recorded
    resolution is older than ``hand_back.expires_after_minutes`` (unknown: not lapsed)."""
    if conversation.handback_this_session is False and conversation.handoff_mode == HANDED_BACK:
        return True
    when = _resolution_time(conversation.resolution)
    now = conversation.now
    if when is None or now is None:
        return False
    now = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    return now - when > dt.timedelta(minutes=matrix.hand_back_minutes)


def _resolution(ctx: DecisionContext) -> Optional[Decision]:
    """The customer comes back to the topic an expert has just resolved: the AI tells them the recorded
    outcome (once, while it is fresh) instead of starting over, ahead of the triggers that the case's
    own facts (its amount in the slots) would fire again. A message with a signal or an amount of its
    own is new business and goes through the triggers."""
    resolution = ctx.conversation.resolution
    if not isinstance(resolution, Mapping) or resolution.get("told") or not resolution.get("intent"):
        return None
    if _base(ctx.intent) != _base(str(resolution["intent"])) or handback_lapsed(ctx.conversation, ctx.matrix):
        return None
    if ctx.row.thresholds.tier(ctx.confidence) == "low" or ctx.parse.signals:
        return None  # a new signal (a request for a person, a sensitive topic) is new business
    if any(a.source == "message" for a in resolve_amounts(ctx.parse, Conversation(), ctx.matrix)):
        return None  # a new amount is a new matter
    ctx.evidence["resolution"] = {k: resolution.get(k) for k in ("consultation_id", "intent", "outcome", "at")}
    return ctx.decision(TELL_RESOLUTION, detail="resolution")


def route_collected(intent: str, conversation: Conversation, matrix: EscalationMatrix) -> Decision:
    """The route once a ``collect_then_route`` row's form has collected its fields: a consultation to the
    row's queue with the facts (reason ``policy_action`` unless the row names one, detail ``collected``);
    an exception category the collected amount fires (over the limit, or unconvertible) hands off instead;
    high value (tier or amount) raises the priority and names itself as the reason (``high_value``)."""
    row = matrix.row(intent)
    ctx = DecisionContext(Parse(text="", intent=row.intent, confidence=1.0), conversation, matrix)
    ctx.evidence["collected"] = {"form": form_name(row.intent), "fields": collected(row.collect, conversation.slots)}
    sensitive = sensitive_topic(ctx)
    if sensitive is not None:
        return replace(sensitive, evidence=dict(ctx.evidence))
    reason, detail = row.route_reason, row.detail or "collected"
    priority = row.priority
    modifiers: Tuple[str, ...] = ()
    high_value = _high_value(ctx)
    if high_value is not None:
        priority = raise_priority(row.priority)
        ctx.evidence["high_value"] = {**high_value, "priority_from": row.priority, "priority_to": priority}
        reason, detail, modifiers = "high_value", high_value["kind"], ("high_value",)
    return ctx.decision(CONSULT, reason=reason, detail=detail, tier="high", priority=priority, modifiers=modifiers)


def _outside_handback(ctx: DecisionContext) -> Optional[Decision]:
    allowed = ctx.conversation.allowed_intents
    if ctx.mode != HANDED_BACK or allowed is None:
        return None
    if handback_lapsed(ctx.conversation, ctx.matrix):
        ctx.evidence["handback_lapsed"] = {"expires_after_minutes": ctx.matrix.hand_back_minutes}
        return None
    intent = _base(ctx.intent)
    if intent in allowed or intent in ctx.matrix.hand_back.always_allowed:
        return None
    ctx.evidence["outside_handback"] = {"intent": ctx.intent, "allowed_intents": sorted(allowed)}
    return ctx.decision(HANDOFF, reason="policy_action", detail="outside_handback")


def _confidence_tier(ctx: DecisionContext) -> Decision:
    row = ctx.row
    tier = row.thresholds.tier(ctx.confidence)
    if ctx.tier_cap == "medium" and tier == "high":
        tier = "medium"
    ctx.evidence["confidence"] = {
        "tier": tier,
        "confidence": ctx.confidence,
        "high": row.thresholds.high,
        "low": row.thresholds.low,
        "ai_may": row.ai_may,
    }
    if ctx.parse.answer_confidence is not None:  # a retrieval intent: the intent's and the answer's
        ctx.evidence["confidence"]["intent_confidence"] = ctx.parse.intent_confidence
        ctx.evidence["confidence"]["answer_confidence"] = ctx.parse.answer_confidence
        ctx.evidence["confidence"]["answer_margin"] = ctx.parse.answer_margin
    loop = ctx.conversation.active_loop
    if form_intent(loop) and tier == "high" and _base(ctx.intent) == "deny":
        ctx.evidence["stop_collect"] = {"form": loop}
        return ctx.decision(STOP_COLLECT, detail="customer_stopped", tier=tier)
    if loop and (tier != "high" or _continues(loop, _base(ctx.intent))):
        ctx.evidence["active_loop"] = {"name": loop, "tier": tier}
        return ctx.decision(ANSWER, tier=tier)
    if tier == "high":
        if row.ai_may == "collect_then_route" and ctx.matrix.has_row(ctx.intent):
            ctx.evidence["collect"] = {"form": form_name(row.intent), "fields": list(row.collect)}
            return ctx.decision(COLLECT, tier=tier)
        if row.ai_may == "answer":
            return ctx.decision(ANSWER, tier=tier)
        if row.ai_may == "draft":
            return ctx.decision(CONSULT, reason="policy_action", detail="draft_review", tier=tier)
        return ctx.decision(HANDOFF, reason=row.route_reason, detail=row.detail or "ai_never", tier=tier)
    if tier == "medium":
        return ctx.decision(CONSULT, reason="medium_confidence", detail="draft_review", tier=tier)
    package = FULL_CONTEXT if FULL_CONTEXT in ctx.matrix.context_packages else None
    return ctx.decision(HANDOFF, reason="low_confidence", tier=tier, context_package=package)


def _continues(loop: str, intent: str) -> bool:
    """Whether a confident message continues the active form: a reply to its question, or (for a collect
    form) the same topic again. Any other confident intent leaves the form to its own route."""
    return intent in ("inform", "affirm", "deny") or form_intent(loop) == intent


def _modifiers(ctx: DecisionContext, outcome: Decision) -> Decision:
    if outcome.action not in (ANSWER, CONSULT, COLLECT):
        return outcome
    action, reason, detail = outcome.action, outcome.reason, outcome.detail
    priority, package = outcome.priority, outcome.context_package
    applied: List[str] = []
    sentiment = ctx.matrix.triggers.sentiment
    frustrated = [t for t in ctx.history if _base(t.intent) in sentiment.frustration_intents]
    polarity = _polarity(ctx.parse.sentiment)
    if _base(ctx.intent) in sentiment.frustration_intents and len(frustrated) + 1 >= sentiment.frustration_repeats:
        ctx.evidence["repeated_frustration"] = {"count": len(frustrated) + 1, "repeats": sentiment.frustration_repeats}
        action, reason, detail = HANDOFF, "negative_sentiment", "repeated_frustration"
        if FULL_CONTEXT in ctx.matrix.context_packages:
            package = FULL_CONTEXT
        applied.append("repeated_frustration")
    elif polarity is not None and polarity <= sentiment.negative_below:
        ctx.evidence["negative_sentiment"] = {"sentiment": polarity, "negative_below": sentiment.negative_below}
        if action == ANSWER:
            action, reason, detail = CONSULT, "negative_sentiment", "negative_sentiment"
        applied.append("negative_sentiment")
    high_value = _high_value(ctx)
    if high_value is not None:
        raised = raise_priority(priority)
        high_value.update(priority_from=priority, priority_to=raised)
        ctx.evidence["high_value"] = high_value
        priority = raised
        if action == ANSWER and ctx.row.ai_may == "draft":
            action, reason, detail = CONSULT, "high_value", high_value["kind"]
        applied.append("high_value")
    if not applied:
        return outcome
    return ctx.decision(
        action,
        reason=reason,
        detail=detail,
        priority=priority,
        context_package=package,
        tier=outcome.tier,
        modifiers=tuple(applied),
    )


def _high_value(ctx: DecisionContext) -> Optional[Dict[str, Any]]:
    trigger = ctx.matrix.triggers.high_value
    tier = ctx.conversation.customer_tier
    tiers = {str(t).lower() for t in trigger.tiers}
    if isinstance(tier, str) and tier.strip().lower() in tiers:
        return {"kind": "high_value_customer", "customer_tier": tier}
    amount = ctx.amount
    if trigger.limit_eur is not None and amount is not None and amount.amount_eur is not None:
        if amount.amount_eur >= trigger.limit_eur:
            eur = round(amount.amount_eur, 2)
            return {"kind": "high_value_amount", "amount_eur": eur, "limit_eur": trigger.limit_eur}
    return None
