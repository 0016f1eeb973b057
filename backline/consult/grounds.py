"""Why a case was escalated and what the expert should do next, in words: the grounds of each
reason (from the routing record's evidence), the amount asked for, and the next step.

`backline.consult.context` puts them in the package's brief (``risk.grounds``), ``reasons`` and
``next_step``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from backline import configuration
from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.consult.account import slot
from backline.consult.render import as_mapping, confidence_text, intent_label
from backline.money import format_money
from backline.money import to_number as _number

_REASON_EVIDENCE = {
    "explicit_request": "explicit_request",
    "sensitive_topic": "sensitive_topic",
    "no_convergence": "no_convergence",
    "low_confidence": "confidence",
    "medium_confidence": "confidence",
    "policy_action": "confidence",
    "negative_sentiment": "negative_sentiment",
    "high_value": "high_value",
}
_TRIGGER_REASON = {
    "explicit_request": "explicit_request",
    "sensitive_topic": "sensitive_topic",
    "no_convergence": "no_convergence",
    "repeated_frustration": "negative_sentiment",
    "negative_sentiment": "negative_sentiment",
    "high_value": "high_value",
}


def category_label(category: str) -> str:
    """How the brief names an exception category: its ``label`` in escalation.yml (the configured matrix,
    `backline.configuration`); a code the matrix does not know, spaced."""
    found = configuration.matrix().categories.get(category)
    return found.label if found is not None else category.replace("_", " ")


def amount_asked(record: Mapping[str, Any], slots: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The amount in question (``value``, ``currency``, ``amount_eur``, ``display``): from the routing
    evidence, else the ``amount`` / ``currency`` slots; None when there is none."""
    evidence = record.get("evidence") or {}
    found = evidence.get("amount") if isinstance(evidence, Mapping) else None
    if not isinstance(found, Mapping):
        topic = evidence.get("sensitive_topic") if isinstance(evidence, Mapping) else None
        found = topic if isinstance(topic, Mapping) and "amount" in topic else None
    if isinstance(found, Mapping) and _number(found.get("amount")) is not None:
        value, currency = _number(found.get("amount")), str(found.get("currency") or "EUR").upper()
        eur = _number(found.get("amount_eur"))
    else:
        value = _number(slot(slots, "amount"))
        if value is None:
            return None
        currency = str(slot(slots, "currency") or "EUR").upper()
        eur = value if currency == "EUR" else None
    return {"value": value, "currency": currency, "amount_eur": eur, "display": format_money(value, currency)}


def _grounds(key: str, evidence: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """One sentence of why, from a trigger's evidence."""
    phrase = evidence.get("phrase")
    said = f' ("{phrase}")' if isinstance(phrase, str) and phrase else ""
    if key == "explicit_request":
        if said:
            return f"the customer asked for a person{said}"
        return f"the customer asked for a person (intent {evidence.get('intent')}, {confidence_text(evidence.get('confidence'))})"
    if key == "sensitive_topic":
        category = str(evidence.get("category") or record.get("detail") or "sensitive topic")
        words = category_label(category)
        if evidence.get("no_rate") and _number(evidence.get("amount")) is not None:
            amount = format_money(evidence.get("amount"), evidence.get("currency"))
            return (
                f"{amount}: no rate is configured for {evidence.get('currency')}, so it was not compared with the limit"
            )
        if evidence.get("limit_eur") is not None and _number(evidence.get("amount")) is not None:
            amount = format_money(evidence.get("amount"), evidence.get("currency"))
            limit = format_money(evidence.get("limit_eur"), "EUR")
            return f"{words}: {amount} is above the {limit} limit"
        if evidence.get("route") in ("classifier", "both") and not said:
            return f"{words} (intent {evidence.get('intent')}, {confidence_text(evidence.get('confidence'))})"
        return f"{words}{said}"
    if key == "no_convergence":
        if evidence.get("kind") == "answer_rejected":
            return "the customer rejected the AI's answer"
        overlap = _number(evidence.get("overlap"))
        share = f", answers {overlap:.0%} alike" if overlap is not None else ""
        return f"no progress: the same intent {evidence.get('turns')} turns in a row{share}"
    if key == "confidence":
        tier = evidence.get("tier") or record.get("tier")
        return (
            f"confidence {confidence_text(evidence.get('confidence', record.get('confidence')))} for "
            f"{record.get('intent') or 'an unknown intent'} ({tier} tier: high ≥ {confidence_text(evidence.get('high'))}, "
            f"low < {confidence_text(evidence.get('low'))}; the AI may {evidence.get('ai_may') or 'answer'})"
        )
    if key == "negative_sentiment":
        return f"negative sentiment ({confidence_text(evidence.get('sentiment'))} ≤ {confidence_text(evidence.get('negative_below'))})"
    if key == "repeated_frustration":
        return f"repeated frustration ({evidence.get('count')} messages)"
    if key == "high_value":
        if evidence.get("kind") == "high_value_customer":
            return f"high-value customer ({evidence.get('customer_tier')} tier)"
        amount = format_money(evidence.get("amount_eur"), "EUR")
        return f"high amount ({amount} ≥ {format_money(evidence.get('limit_eur'), 'EUR')})"
    return key.replace("_", " ")


def reasons_for(record: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The deciding reason first, then every other trigger or modifier that fired, each with its
    grounds and evidence."""
    evidence = as_mapping(record.get("evidence"))
    reason, detail = record.get("reason"), record.get("detail")
    out: List[Dict[str, Any]] = []
    used = set()
    if reason:
        key = _REASON_EVIDENCE.get(reason, reason)
        if reason == "negative_sentiment" and detail == "repeated_frustration":
            key = "repeated_frustration"
        if (
            key not in evidence
            and "confidence" in evidence
            and reason in ("high_value", "explicit_request", "sensitive_topic", "no_convergence")
        ):
            key = "confidence"  # a row that routes by itself (ai_may: never) at high confidence
        item = as_mapping(evidence.get(key))
        out.append({"reason": reason, "detail": detail, "grounds": _grounds(key, item, record), "evidence": dict(item)})
        used.add(key)
    for trigger in record.get("triggers") or ():
        if trigger in used or not isinstance(evidence.get(trigger), Mapping):
            continue
        item = evidence[trigger]
        out.append(
            {
                "reason": _TRIGGER_REASON.get(trigger, trigger),
                "detail": item.get("category")
                or item.get("kind")
                or (trigger if trigger == "repeated_frustration" else None),
                "grounds": _grounds(trigger, item, record),
                "evidence": dict(item),
            }
        )
        used.add(trigger)
    return out


def _reference(slots: Mapping[str, Any]) -> str:
    order_id = normalise_order_id(slot(slots, "order_id"))
    invoice_id = normalise_invoice_id(slot(slots, "invoice_id"))
    if order_id:
        return f" on order {order_id}"
    if invoice_id:
        return f" on invoice {invoice_id}"
    return ""


def next_step(record: Mapping[str, Any], slots: Mapping[str, Any], amount: Optional[Mapping[str, Any]]) -> str:
    """What the expert should decide or do, from the escalation's reason and detail."""
    reason, detail = record.get("reason"), record.get("detail")
    intent = str(record.get("intent") or "").split("/", 1)[0]
    ref = _reference(slots)
    money = f" of {amount['display']}" if amount and amount.get("display") else ""
    if detail == "unrated_currency":
        if intent == "billing_dispute":
            return f"Convert the amount{money} yourself and decide the disputed charge{ref}"
        return f"Convert the amount{money} yourself, then approve or deny the refund{ref}"
    if detail == "refund_over_limit":
        if intent == "billing_dispute":
            return f"Decide the disputed charge{money}{ref}: uphold it or refund it"
        return f"Approve or deny the refund{money}{ref}"
    if detail == "legal":
        return "Assess the legal matter and answer the customer yourself; the AI gives no legal advice"
    if detail == "formal_complaint":
        return "Take ownership of the formal complaint: acknowledge it to the customer and open the complaint procedure"
    if detail == "account_security":
        return "Secure the account now (end sessions, reset credentials, hold orders and payouts), then verify the customer"
    if reason == "explicit_request":
        return "Take over the conversation: the customer asked for a person"
    if reason == "no_convergence":
        return "The AI's answers did not help: answer the customer's question yourself or take over"
    if reason in ("medium_confidence", "policy_action") or detail == "draft_review":
        return "Approve the AI draft, correct it, or answer yourself"
    if reason == "low_confidence":
        return "The AI could not tell what the customer needs: read the transcript and answer or take over"
    if reason == "negative_sentiment":
        return "The customer is upset: acknowledge it and resolve the issue, or take over"
    if reason == "high_value":
        if intent in ("refund_request", "billing_dispute") and money:
            return f"Approve or deny the refund{money}{ref} (high-value case)"
        return f"High-value case: handle the {intent_label(intent)} request with priority"
    return "Read the conversation and reply to the customer"
