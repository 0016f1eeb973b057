"""The triggers that take a message to a person whatever its confidence, in the engine's order:
an explicit request for a person, an exception category (classifier or rule route, amounts against
limits, fail closed on a currency without a rate), and no convergence. Each returns the `Decision`
when it fires, else None, and leaves its evidence in the context either way."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from backline.routing.amounts import _unrated_evidence
from backline.routing.collect import form_intent
from backline.routing.decision import (
    FULL_CONTEXT,
    HANDOFF,
    Decision,
    _base,
    _signal_evidence,
    _signals,
    _unit,
    jaccard,
    tokens,
)
from backline.routing.decision_context import DecisionContext
from backline.routing.matrix import ExceptionCategory, priority_rank
from backline.routing.signals import EXPLICIT_REQUEST, NOT_EXPLICIT_REQUEST, Signal


def explicit_request(ctx: DecisionContext) -> Optional[Decision]:
    trigger = ctx.matrix.triggers.explicit_request
    asked = _signals(ctx.parse, EXPLICIT_REQUEST)
    vetoes = _signals(ctx.parse, NOT_EXPLICIT_REQUEST)
    classified = _base(ctx.intent) in trigger.intents and ctx.confidence >= trigger.min_confidence
    if asked:
        evidence = _signal_evidence(asked[0])
        if classified:
            evidence.update(intent=ctx.intent, confidence=ctx.confidence)
    elif classified and not vetoes:
        evidence = {
            "route": "classifier",
            "intent": ctx.intent,
            "confidence": ctx.confidence,
            "min_confidence": trigger.min_confidence,
        }
    else:
        if classified and vetoes:
            _suppress(ctx, vetoes[0])
        return None
    ctx.evidence[EXPLICIT_REQUEST] = evidence
    row = ctx.matrix.row(trigger.intents[0])
    return ctx.decision(HANDOFF, reason="explicit_request", row=row)


def _suppress(ctx: DecisionContext, veto: Signal) -> None:
    """A not-phrase vetoed the request intent: route the next-best intent of the ranking instead, with
    its share of the confidence left once the request is ruled out (P(intent | not a request)).
    Without a ranking, the request intent stays, capped at the medium tier (expert review)."""
    trigger = ctx.matrix.triggers.explicit_request
    evidence: Dict[str, Any] = {"not_phrase": veto.phrase, "intent": ctx.intent, "confidence": ctx.confidence}
    rest = 1.0 - ctx.confidence
    for item in ctx.parse.ranking or ():
        name, confidence = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) >= 2 else (None, 0.0)
        if isinstance(name, str) and name and _base(name) not in trigger.intents:
            own = _unit(confidence)
            ctx.intent = name
            ctx.confidence = min(1.0, own / rest) if rest > 1e-6 else own
            evidence.update(fallback_intent=name, fallback_ranking_confidence=own, fallback_confidence=ctx.confidence)
            break
    else:
        ctx.tier_cap = "medium"
        evidence["fallback_intent"] = None
    ctx.evidence["explicit_suppressed"] = evidence


def _classifier_detail(
    category: ExceptionCategory, intent: Optional[str], amount_eur: Optional[float], unrated: bool
) -> Optional[str]:
    """The detail the classifier route fires with for this topic intent, or None: over the limit first
    (a convertible amount above it is certain), then fail closed on an unconvertible amount."""
    if category.matches(intent, amount_eur):
        return category.detail
    if unrated and category.fails_closed(intent):
        return category.unrated_detail
    return None


def category_fires(ctx: DecisionContext, category: ExceptionCategory) -> Optional[Dict[str, Any]]:
    """Evidence of the category firing (``detail``: the detail it sets), or None."""
    evidence: Dict[str, Any] = {}
    detail: Optional[str] = None
    if category.intents:
        limited = category.limit_eur is not None
        amount = ctx.amount if limited else None
        amount_eur = amount.amount_eur if amount is not None else None
        unrated = ctx.unrated if limited else []
        topic = ctx.intent
        detail = _classifier_detail(category, topic, amount_eur, bool(unrated))
        loop_topic = form_intent(ctx.conversation.active_loop)
        if detail is None and amount is not None and (amount.source == "message" or loop_topic):
            # The topic of an amount given in reply: the collect form's row, else the previous message's intent.
            previous = loop_topic or (ctx.history[-1].intent if ctx.history else None)
            if not category.names(topic):
                detail = _classifier_detail(category, previous, amount_eur, bool(unrated))
                if detail is not None:
                    evidence["topic_intent"] = previous
        if detail is not None:
            evidence.update(route="classifier", intent=ctx.intent, confidence=ctx.confidence)
            if limited and detail == category.detail and amount is not None:
                evidence.update(amount.evidence())
                evidence["limit_eur"] = category.limit_eur
            elif limited:
                evidence.update(_unrated_evidence(unrated[0], ctx.matrix, category))
            if len(unrated) > 1 or (unrated and detail == category.detail):
                evidence["unrated"] = [_unrated_evidence(a, ctx.matrix) for a in unrated]
    hits = _signals(ctx.parse, category.name)
    if hits:
        rule = _signal_evidence(hits[0])
        evidence["route"] = "both" if evidence.get("route") == "classifier" else "rule"
        evidence.update({k: v for k, v in rule.items() if k != "route"})
        detail = category.detail  # the signal names the category, whatever the amount
    if not evidence:
        return None
    evidence["detail"] = detail
    return evidence


def sensitive_topic(ctx: DecisionContext) -> Optional[Decision]:
    fired: List[Tuple[ExceptionCategory, Dict[str, Any]]] = []
    for category in ctx.matrix.categories.values():
        evidence = category_fires(ctx, category)
        if evidence is not None:
            fired.append((category, evidence))
    if not fired:
        return None
    category, evidence = max(fired, key=lambda item: priority_rank(item[0].priority))
    ctx.evidence["sensitive_topic"] = {
        "category": category.name,
        **evidence,
        "fired": [
            {"category": c.name, "priority": c.priority, "route": e["route"], "detail": e["detail"]} for c, e in fired
        ],
    }
    row = ctx.matrix.category_row(category)
    return ctx.decision(
        HANDOFF,
        reason=category.reason,
        detail=evidence["detail"],
        row=row,
        queue=category.queue,
        priority=category.priority,
    )


def no_convergence(ctx: DecisionContext) -> Optional[Decision]:
    trigger = ctx.matrix.triggers.no_convergence
    intent = _base(ctx.intent)
    answered = [t for t in ctx.history if isinstance(t.answer, str) and t.answer.strip()]
    if intent and intent in trigger.rejection_intents and answered:
        last = answered[-1]
        ctx.evidence["no_convergence"] = {
            "kind": "answer_rejected",
            "intent": ctx.intent,
            "last_answer": last.answer,
            "last_question": last.text,
            "last_intent": last.intent,
        }
        return ctx.decision(HANDOFF, reason="no_convergence", detail="answer_rejected")
    n = trigger.same_intent_turns
    window = list(ctx.history[len(ctx.history) - (n - 1) :]) if n > 1 else []
    if not intent or len(window) < n - 1 or any(_base(t.intent) != intent for t in window):
        return None
    pairs = [t for t in window if isinstance(t.answer, str) and t.answer.strip()]
    sets = [tokens(f"{t.text or ''} {t.answer}") for t in pairs]
    overlaps = [round(jaccard(a, b), 4) for a, b in zip(sets, sets[1:])]
    if not overlaps or max(overlaps) < trigger.overlap:
        return None
    ctx.evidence["no_convergence"] = {
        "kind": "repeated_answer",
        "intent": ctx.intent,
        "turns": n,
        "overlaps": overlaps,
        "overlap": max(overlaps),
        "threshold": trigger.overlap,
        "last_answer": pairs[-1].answer,
        "last_question": pairs[-1].text,
    }
    package = FULL_CONTEXT if FULL_CONTEXT in ctx.matrix.context_packages else None
    return ctx.decision(HANDOFF, reason="no_convergence", detail="repeated_answer", context_package=package)
