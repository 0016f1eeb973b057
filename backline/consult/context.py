"""The context package: what an expert reads to decide in 30 seconds, masked.

Built from plain inputs: the routing record (`Decision.as_record()`), the transcript
(``[{"role": "customer" | "assistant" | "expert", "text", "at"}]``), the slots, the
matrix row's context package (field names from escalation.yml ``context_packages``)
and an account snapshot from the business database (`account_snapshot`).

Fields: ``brief`` (always: intent, amount, product, user_claim, risk), ``sentiment``,
``account_snapshot``, ``ai_attempts``, ``documents_used``, ``confidence``, ``ai_draft``,
``reasons``, ``next_step``, ``transcript``; plus ``package`` / ``fields`` / ``case``
(mode, queue, priority, reason, detail) that say what the package is.

Every string of a package is masked (`backline.consult.masking`), and the renderings mask again.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy.orm import Session

from backline.business import queries
from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.consult.masking import mask, mask_data  # noqa: F401  (re-exported: the package's masking)
from backline.routing.matrix import CONTEXT_FIELDS
from backline.routing.collect import LABELS as COLLECTED_LABELS

FIELDS = CONTEXT_FIELDS
"""Every field a context package may list (escalation.yml ``context_packages``), in display order."""
ROLES = ("customer", "assistant", "expert")
CLAIM_MAX = 300
RECENT = 5

_ROLE_ALIASES = {"user": "customer", "bot": "assistant", "ai": "assistant", "agent": "expert", "human": "expert"}
_RISK_LEVEL = {"low": "low", "normal": "medium", "high": "high", "urgent": "critical"}
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


# --- small helpers ----------------------------------------------------------------------------


def _number(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", "").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def format_money(value: Any, currency: Optional[str]) -> Optional[str]:
    """€780, €780.50, $12.30, CHF 1,200; None when `value` is not a number."""
    number = _number(value)
    if number is None:
        return None
    code = (currency or "EUR").strip().upper() or "EUR"
    whole = abs(number - round(number)) < 0.005
    text = f"{abs(number):,.0f}" if whole else f"{abs(number):,.2f}"
    sign = "-" if number < 0 else ""
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{code} {text}"


def _money(value: Any, currency: Optional[str]) -> Dict[str, Any]:
    return {"value": str(value), "currency": currency, "display": format_money(value, currency)}


def _iso(value: Any) -> Optional[str]:
    """An ISO-8601 string for datetimes, dates, epoch seconds and ISO strings; None for anything else."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    number = _number(value) if not isinstance(value, str) else None
    if number is not None:
        try:
            return datetime.fromtimestamp(number, timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            return _iso(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _clean(text: Any) -> str:
    return " ".join(text.split()) if isinstance(text, str) else ""


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _slot(slots: Mapping[str, Any], name: str) -> Any:
    value = slots.get(name)
    return value.strip() if isinstance(value, str) else value


def _intent_label(intent: Optional[str]) -> str:
    return (intent or "unknown").replace("/", ": ").replace("_", " ")


# --- the transcript -----------------------------------------------------------------------------


def normalise_transcript(transcript: Sequence[Any]) -> List[Dict[str, Any]]:
    """Entries as ``{"role", "text", "at"}`` (roles: customer / assistant / expert; "user" and
    "bot" accepted), extra keys ``response`` / ``document`` kept; entries without text dropped."""
    out: List[Dict[str, Any]] = []
    for entry in transcript or ():
        if not isinstance(entry, Mapping):
            continue
        role = str(entry.get("role") or "").strip().lower()
        role = _ROLE_ALIASES.get(role, role)
        text = entry.get("text")
        if role not in ROLES or not isinstance(text, str) or not text.strip():
            continue
        item: Dict[str, Any] = {"role": role, "text": text.strip(), "at": _iso(entry.get("at"))}
        for key in ("response", "document", "sentiment"):
            if entry.get(key) is not None:
                item[key] = entry[key]
        out.append(item)
    return out


def _last(transcript: Sequence[Mapping[str, Any]], role: str) -> Optional[Mapping[str, Any]]:
    for entry in reversed(transcript):
        if entry["role"] == role:
            return entry
    return None


# --- account snapshot ---------------------------------------------------------------------------


def _order(order: queries.OrderInfo) -> Dict[str, Any]:
    return {
        "id": str(order.id),
        "status": order.status,
        "created_at": _iso(order.created_at),
        "items": ", ".join(f"{line.quantity}× {line.name}" for line in order.lines),
        "products": list(dict.fromkeys(line.name for line in order.lines)),
        "total": _money(order.total, order.currency),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "estimated_delivery": _iso(order.estimated_delivery),
        "invoices": [{"id": ref.id, "status": ref.status} for ref in order.invoices],
    }


def _invoice(invoice: queries.InvoiceInfo) -> Dict[str, Any]:
    return {
        "id": invoice.id,
        "status": invoice.status,
        "description": invoice.description,
        "total": _money(invoice.total, invoice.currency),
        "issued_at": _iso(invoice.issued_at),
        "due_at": _iso(invoice.due_at),
        "order_id": None if invoice.order_id is None else str(invoice.order_id),
    }


def _subscription(subscription: queries.SubscriptionInfo) -> Dict[str, Any]:
    return {
        "product": subscription.product_name,
        "plan": subscription.plan,
        "status": subscription.status,
        "price": _money(subscription.price, subscription.currency),
        "renews_at": _iso(subscription.renews_at),
    }


def account_snapshot(session: Session, slots: Mapping[str, Any], *, recent: int = RECENT) -> Optional[Dict[str, Any]]:
    """The customer behind the conversation's order id, invoice id or e-mail (in that order of
    trust): tier, recent orders and invoices with their status, subscriptions, and the order /
    invoice in question. None when the slots name nothing to look up; ``found: False`` when
    nothing matches. ``warnings`` flag an invoice or e-mail that belongs to someone else."""
    slots = slots or {}
    order_id = normalise_order_id(_slot(slots, "order_id"))
    invoice_id = normalise_invoice_id(_slot(slots, "invoice_id"))
    email = _slot(slots, "email")
    email = email.lower() if isinstance(email, str) and "@" in email else None
    looked_up = {k: v for k, v in (("order_id", order_id), ("invoice_id", invoice_id), ("email", email)) if v}
    if not looked_up:
        return None
    order = queries.get_order(session, order_id) if order_id else None
    invoice = queries.get_invoice(session, invoice_id) if invoice_id else None
    customer = order.customer if order else invoice.customer if invoice else None
    if customer is None and email:
        customer = queries.customer_by_email(session, email)
    if customer is None:
        return {"found": False, "looked_up_by": looked_up}
    warnings = []
    if invoice is not None and invoice.customer.id != customer.id:
        warnings.append(f"invoice {invoice.id} belongs to another customer")
    if email and email != customer.email:
        warnings.append(f"the e-mail given ({email}) is not the account's ({customer.email})")
    if order_id and order is None:
        warnings.append(f"order {order_id} was not found")
    if invoice_id and invoice is None:
        warnings.append(f"invoice {invoice_id} was not found")
    orders = queries.orders_for_customer(session, customer.email)
    invoices = queries.invoices_for_customer(session, customer.email)
    return {
        "found": True,
        "looked_up_by": looked_up,
        "customer": {"name": customer.name, "email": customer.email, "tier": customer.tier, "country": customer.country},
        "tier": customer.tier,
        "order": _order(order) if order else None,
        "invoice": _invoice(invoice) if invoice else None,
        "orders": [_order(o) for o in orders[:recent]],
        "orders_total": len(orders),
        "invoices": [_invoice(i) for i in invoices[:recent]],
        "invoices_total": len(invoices),
        "unpaid_invoices": [i.id for i in invoices if i.status in ("open", "overdue")],
        "subscriptions": [_subscription(s) for s in queries.subscriptions_for_customer(session, customer.email)],
        "warnings": warnings,
    }


def lookup_account(slots: Mapping[str, Any], url: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """`account_snapshot` on the business database at `url` (default: $BACKLINE_BUSINESS_DB_URL)."""
    from backline.business import db

    with db.session_scope(url) as session:
        return account_snapshot(session, slots)


# --- brief, reasons, next step ------------------------------------------------------------------


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
_CATEGORY_WORDS = {
    "refund_over_limit": "refund above the limit",
    "legal": "legal matter",
    "formal_complaint": "formal complaint",
    "account_security": "possible account compromise",
}


def _amount(record: Mapping[str, Any], slots: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    evidence = record.get("evidence") or {}
    found = evidence.get("amount") if isinstance(evidence, Mapping) else None
    if not isinstance(found, Mapping):
        topic = evidence.get("sensitive_topic") if isinstance(evidence, Mapping) else None
        found = topic if isinstance(topic, Mapping) and "amount" in topic else None
    if isinstance(found, Mapping) and _number(found.get("amount")) is not None:
        value, currency = _number(found.get("amount")), str(found.get("currency") or "EUR").upper()
        eur = _number(found.get("amount_eur"))
    else:
        value = _number(_slot(slots, "amount"))
        if value is None:
            return None
        currency = str(_slot(slots, "currency") or "EUR").upper()
        eur = value if currency == "EUR" else None
    return {"value": value, "currency": currency, "amount_eur": eur, "display": format_money(value, currency)}


def _product(slots: Mapping[str, Any], account: Optional[Mapping[str, Any]]) -> Optional[str]:
    product = _slot(slots, "product")
    if isinstance(product, str) and product:
        return product
    if account and account.get("found"):
        if account.get("order"):
            return ", ".join(account["order"]["products"]) or None
        if account.get("invoice"):
            return account["invoice"]["description"] or None
    return None


def _fmt_conf(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{number:.2f}"


def _grounds(key: str, evidence: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """One sentence of why, from a trigger's evidence."""
    phrase = evidence.get("phrase")
    said = f' ("{phrase}")' if isinstance(phrase, str) and phrase else ""
    if key == "explicit_request":
        if said:
            return f"the customer asked for a person{said}"
        return f"the customer asked for a person (intent {evidence.get('intent')}, {_fmt_conf(evidence.get('confidence'))})"
    if key == "sensitive_topic":
        category = str(evidence.get("category") or record.get("detail") or "sensitive topic")
        words = _CATEGORY_WORDS.get(category, category.replace("_", " "))
        if evidence.get("no_rate") and _number(evidence.get("amount")) is not None:
            amount = format_money(evidence.get("amount"), evidence.get("currency"))
            return (f"{amount}: no rate is configured for {evidence.get('currency')}, so it was not compared "
                    "with the limit")
        if evidence.get("limit_eur") is not None and _number(evidence.get("amount")) is not None:
            amount = format_money(evidence.get("amount"), evidence.get("currency"))
            limit = format_money(evidence.get("limit_eur"), "EUR")
            return f"{words}: {amount} is above the {limit} limit"
        if evidence.get("route") in ("classifier", "both") and not said:
            return f"{words} (intent {evidence.get('intent')}, {_fmt_conf(evidence.get('confidence'))})"
        return f"{words}{said}"
    if key == "no_convergence":
        if evidence.get("kind") == "answer_rejected":
            return "the customer rejected the AI's answer"
        overlap = _number(evidence.get("overlap"))
        share = f", answers {overlap:.0%} alike" if overlap is not None else ""
        return f"no progress: the same intent {evidence.get('turns')} turns in a row{share}"
    if key == "confidence":
        tier = evidence.get("tier") or record.get("tier")
        return (f"confidence {_fmt_conf(evidence.get('confidence', record.get('confidence')))} for "
                f"{record.get('intent') or 'an unknown intent'} ({tier} tier: high ≥ {_fmt_conf(evidence.get('high'))}, "
                f"low < {_fmt_conf(evidence.get('low'))}; the AI may {evidence.get('ai_may') or 'answer'})")
    if key == "negative_sentiment":
        return f"negative sentiment ({_fmt_conf(evidence.get('sentiment'))} ≤ {_fmt_conf(evidence.get('negative_below'))})"
    if key == "repeated_frustration":
        return f"repeated frustration ({evidence.get('count')} messages)"
    if key == "high_value":
        if evidence.get("kind") == "high_value_customer":
            return f"high-value customer ({evidence.get('customer_tier')} tier)"
        amount = format_money(evidence.get("amount_eur"), "EUR")
        return f"high amount ({amount} ≥ {format_money(evidence.get('limit_eur'), 'EUR')})"
    return key.replace("_", " ")


def _reasons(record: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The deciding reason first, then every other trigger or modifier that fired, each with its
    grounds and evidence."""
    evidence = record.get("evidence") if isinstance(record.get("evidence"), Mapping) else {}
    reason, detail = record.get("reason"), record.get("detail")
    out: List[Dict[str, Any]] = []
    used = set()
    if reason:
        key = _REASON_EVIDENCE.get(reason, reason)
        if reason == "negative_sentiment" and detail == "repeated_frustration":
            key = "repeated_frustration"
        if key not in evidence and "confidence" in evidence and reason in ("high_value", "explicit_request",
                                                                          "sensitive_topic", "no_convergence"):
            key = "confidence"  # a row that routes by itself (ai_may: never) at high confidence
        item = evidence.get(key) if isinstance(evidence.get(key), Mapping) else {}
        out.append({"reason": reason, "detail": detail, "grounds": _grounds(key, item, record), "evidence": dict(item)})
        used.add(key)
    for trigger in record.get("triggers") or ():
        if trigger in used or not isinstance(evidence.get(trigger), Mapping):
            continue
        item = evidence[trigger]
        out.append({
            "reason": _TRIGGER_REASON.get(trigger, trigger),
            "detail": item.get("category") or item.get("kind") or (trigger if trigger == "repeated_frustration" else None),
            "grounds": _grounds(trigger, item, record),
            "evidence": dict(item),
        })
        used.add(trigger)
    return out


def _reference(slots: Mapping[str, Any]) -> str:
    order_id = normalise_order_id(_slot(slots, "order_id"))
    invoice_id = normalise_invoice_id(_slot(slots, "invoice_id"))
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
        return f"High-value case: handle the {_intent_label(intent)} request with priority"
    return "Read the conversation and reply to the customer"


def _sentiment(record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]], score: Optional[float]) -> Dict[str, Any]:
    evidence = record.get("evidence") if isinstance(record.get("evidence"), Mapping) else {}
    value = _number(score)
    if value is None and isinstance(evidence.get("negative_sentiment"), Mapping):
        value = _number(evidence["negative_sentiment"].get("sentiment"))
    if value is None:
        customer = _last(transcript, "customer")
        value = _number(customer.get("sentiment")) if customer else None
    if value is None:
        label = "unknown"
    else:
        value = max(-1.0, min(1.0, value))
        label = ("very negative" if value <= -0.5 else "negative" if value <= -0.05
                 else "positive" if value >= 0.05 else "neutral")
    trend = [v for v in (_number(e.get("sentiment")) for e in transcript if e["role"] == "customer") if v is not None]
    return {
        "score": value,
        "label": label,
        "frustrated": "repeated_frustration" in evidence,
        "trend": trend[-RECENT:],
    }


def _ranking(record: Mapping[str, Any], ranking: Sequence[Any]) -> List[Dict[str, Any]]:
    source = ranking or record.get("ranking") or record.get("intent_ranking") or ()
    out = []
    for item in source:
        if isinstance(item, Mapping):
            name, confidence = item.get("name") or item.get("intent"), item.get("confidence")
        elif isinstance(item, (list, tuple)) and len(item) >= 2:
            name, confidence = item[0], item[1]
        else:
            continue
        number = _number(confidence)
        if isinstance(name, str) and name and number is not None:
            out.append({"intent": name, "confidence": round(number, 4)})
    return out[:RECENT]


def _documents(record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]], documents: Sequence[str]) -> List[str]:
    found: List[str] = []
    for source in (documents, record.get("documents") or (), record.get("responses") or ()):
        found += [d for d in source if isinstance(d, str)]
    for entry in transcript:
        if entry["role"] == "assistant":
            found += [entry[k] for k in ("response", "document") if isinstance(entry.get(k), str)]
    return list(dict.fromkeys(d.strip() for d in found if d.strip()))


def _ai_attempts(record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    attempts = [{"text": e["text"], "at": e["at"]} for e in transcript if e["role"] == "assistant"]
    evidence = record.get("evidence") if isinstance(record.get("evidence"), Mapping) else {}
    stuck = evidence.get("no_convergence") if isinstance(evidence.get("no_convergence"), Mapping) else {}
    last = stuck.get("last_answer")
    if isinstance(last, str) and last.strip() and all(_clean(a["text"]) != _clean(last) for a in attempts):
        attempts.append({"text": last.strip(), "at": None})
    return attempts[-RECENT:]


def _amount_mismatch(amount: Optional[Mapping[str, Any]], account: Optional[Mapping[str, Any]]) -> Optional[str]:
    """A ground of its own: the amount asked for is more than the order or invoice in question."""
    if not amount or not account or not account.get("found"):
        return None
    for kind in ("order", "invoice"):
        record = account.get(kind)
        if not record:
            continue
        total = record["total"]
        value = _number(total.get("value"))
        if value is not None and total.get("currency") == amount.get("currency") and amount["value"] > value + 0.005:
            return f"the amount ({amount['display']}) is more than {kind} {record['id']}'s total ({total['display']})"
    return None


def build_context(
    routing: Mapping[str, Any],
    transcript: Sequence[Mapping[str, Any]] = (),
    slots: Optional[Mapping[str, Any]] = None,
    fields: Optional[Sequence[str]] = None,
    account: Optional[Mapping[str, Any]] = None,
    *,
    package: Optional[str] = None,
    ai_draft: Optional[str] = None,
    sentiment: Optional[float] = None,
    ranking: Sequence[Any] = (),
    documents: Sequence[str] = (),
) -> Dict[str, Any]:
    """The masked context package for one escalation.

    ``fields``: the row's context package (default: the record's ``context_fields``, else all);
    the brief is always there. ``account``: an `account_snapshot`. ``ai_draft``: the draft
    (default: the ``ai_draft`` slot). ``sentiment``: the latest message's polarity when known.
    ``ranking``: the NLU intent ranking as (intent, confidence) pairs or dicts.
    ``documents``: responses / FAQ keys the AI used (also read from the record and transcript)."""
    record: Mapping[str, Any] = routing or {}
    slots = slots or {}
    chosen = list(fields) if fields is not None else list(record.get("context_fields") or FIELDS)
    unknown = [f for f in chosen if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown context package fields: {', '.join(map(str, unknown))}")
    wanted = {"brief", *chosen}
    lines = normalise_transcript(transcript)
    amount = _amount(record, slots)
    reasons = _reasons(record)
    customer = _last(lines, "customer")
    claim = _trim(_clean(customer["text"]), CLAIM_MAX) if customer else None
    priority = str(record.get("priority") or "normal")
    grounds = [r["grounds"] for r in reasons]
    mismatch = _amount_mismatch(amount, account)
    if mismatch:
        grounds.append(mismatch)
    collected = ((record.get("evidence") or {}).get("collected") or {}).get("fields")
    brief = {
        "intent": record.get("intent"),
        **({"collected": dict(collected)} if isinstance(collected, Mapping) and collected else {}),
        "amount": amount,
        "product": _product(slots, account),
        "user_claim": claim,
        "risk": {"level": _RISK_LEVEL.get(priority, "medium"), "grounds": grounds},
    }
    draft = ai_draft if ai_draft is not None else _slot(slots, "ai_draft")
    thresholds = record.get("thresholds") if isinstance(record.get("thresholds"), Mapping) else {}
    values: Dict[str, Any] = {
        "brief": brief,
        "sentiment": lambda: _sentiment(record, lines, sentiment),
        "account_snapshot": lambda: dict(account) if account else None,
        "ai_attempts": lambda: _ai_attempts(record, lines),
        "documents_used": lambda: _documents(record, lines, documents),
        "confidence": lambda: {
            "intent": record.get("intent"),
            "confidence": _number(record.get("confidence")),
            "tier": record.get("tier"),
            "thresholds": {"high": _number(thresholds.get("high")), "low": _number(thresholds.get("low"))},
            "ranking": _ranking(record, ranking),
        },
        "ai_draft": lambda: draft if isinstance(draft, str) and draft.strip() else None,
        "reasons": lambda: reasons,
        "next_step": lambda: next_step(record, slots, amount),
        "transcript": lambda: [{"role": e["role"], "text": e["text"], "at": e["at"]} for e in lines],
    }
    out: Dict[str, Any] = {
        "package": package or record.get("context_package"),
        "fields": [f for f in FIELDS if f in wanted],
        "case": {
            "mode": "consult" if record.get("action") == "consult" else "handoff",
            "queue": record.get("queue"),
            "priority": priority,
            "reason": record.get("reason"),
            "detail": record.get("detail"),
            "sla_minutes": record.get("sla_minutes"),
        },
    }
    for name in FIELDS:
        if name in wanted:
            value = values[name]
            out[name] = value() if callable(value) else value
    return mask_data(out)


# --- renderings ----------------------------------------------------------------------------------

_TITLES = {
    "sentiment": "Sentiment",
    "account_snapshot": "Account",
    "ai_attempts": "What the AI already answered",
    "documents_used": "Responses and documents the AI used",
    "confidence": "Confidence",
    "ai_draft": "AI draft",
    "reasons": "Why this was escalated",
}


def _lines_for(name: str, value: Any) -> List[str]:
    if value is None or value == [] or value == {}:
        return ["none"]
    if name == "sentiment":
        score = "" if value.get("score") is None else f" ({value['score']:+.2f})"
        frustrated = ", repeated frustration" if value.get("frustrated") else ""
        return [f"{value.get('label')}{score}{frustrated}"]
    if name == "account_snapshot":
        if not value.get("found"):
            keys = ", ".join(f"{k} {v}" for k, v in (value.get("looked_up_by") or {}).items())
            return [f"no account found ({keys})"]
        who = value["customer"]
        out = [f"{who['name']} <{who['email']}>, {who['tier']} tier, {who['country']}"]
        out += [f"! {warning}" for warning in value.get("warnings") or ()]
        if value.get("order"):
            order = value["order"]
            out.append(f"Order {order['id']}: {order['status']}, {order['items']}, {order['total']['display']}")
        if value.get("invoice"):
            invoice = value["invoice"]
            out.append(f"Invoice {invoice['id']}: {invoice['status']}, {invoice['total']['display']}")
        orders = "; ".join(f"{o['id']} {o['status']} {o['total']['display']}" for o in value.get("orders") or ())
        invoices = "; ".join(f"{i['id']} {i['status']} {i['total']['display']}" for i in value.get("invoices") or ())
        subs = "; ".join(f"{s['product']} {s['plan']} {s['status']}" for s in value.get("subscriptions") or ())
        out.append(f"Recent orders ({value.get('orders_total', 0)}): {orders or 'none'}")
        out.append(f"Recent invoices ({value.get('invoices_total', 0)}): {invoices or 'none'}")
        out.append(f"Subscriptions: {subs or 'none'}")
        return out
    if name == "ai_attempts":
        return [f"- {a['text']}" for a in value]
    if name == "documents_used":
        return [", ".join(value)]
    if name == "confidence":
        ranking = ", ".join(f"{r['intent']} {r['confidence']:.2f}" for r in value.get("ranking") or ())
        limits = value.get("thresholds") or {}
        line = (f"{value.get('intent')} {_fmt_conf(value.get('confidence'))} ({value.get('tier')} tier; "
                f"high ≥ {_fmt_conf(limits.get('high'))}, low < {_fmt_conf(limits.get('low'))})")
        return [line] + ([f"Ranking: {ranking}"] if ranking else [])
    if name == "ai_draft":
        return [str(value)]
    if name == "reasons":
        return [f"- {r['reason']}{'/' + r['detail'] if r.get('detail') else ''}: {r['grounds']}" for r in value]
    return [str(value)]


def render_structured(package: Mapping[str, Any]) -> Dict[str, Any]:
    """The package laid out for Slack / the dashboard: title, labelled brief, next step,
    titled sections (lines of text) and the transcript. Masked."""
    case = package.get("case") or {}
    brief = package.get("brief") or {}
    amount = brief.get("amount") or {}
    risk = brief.get("risk") or {}
    mode = "Consultation" if case.get("mode") == "consult" else "Handoff"
    title = f"{mode}: {_intent_label(brief.get('intent'))} · {case.get('queue') or 'support'} · {case.get('priority') or 'normal'} priority"
    grounds = "; ".join(risk.get("grounds") or ())
    summary = [
        {"field": "intent", "label": "Intent", "value": brief.get("intent") or "unknown"},
        {"field": "amount", "label": "Amount", "value": amount.get("display") or "—"},
        {"field": "product", "label": "Product", "value": brief.get("product") or "—"},
        {"field": "user_claim", "label": "Customer says", "value": brief.get("user_claim") or "—"},
        {"field": "risk", "label": "Risk", "value": f"{risk.get('level') or 'unknown'}" + (f" — {grounds}" if grounds else "")},
    ]
    summary[1:1] = [
        {"field": f"collected.{name}", "label": COLLECTED_LABELS.get(name, name),
         "value": format_money(value.get("value"), value.get("currency")) if isinstance(value, Mapping) else str(value)}
        for name, value in (brief.get("collected") or {}).items()
    ]
    sections = [
        {"field": name, "title": _TITLES[name], "lines": _lines_for(name, package.get(name))}
        for name in package.get("fields") or ()
        if name in _TITLES and name in package
    ]
    return mask_data({
        "title": title,
        "brief": summary,
        "next_step": package.get("next_step"),
        "sections": sections,
        "transcript": [dict(line) for line in package.get("transcript") or ()],
    })


def _clock(at: Optional[str]) -> str:
    if not at:
        return ""
    try:
        return datetime.fromisoformat(at).strftime("%H:%M") + " "
    except ValueError:
        return ""


def render_text(package: Mapping[str, Any], max_chars: Optional[int] = None) -> str:
    """Plain text for e-mail and Telegram. With ``max_chars``, the oldest transcript lines go
    first, then the text is cut (ending with "…")."""
    view = render_structured(package)
    head = [view["title"], ""]
    head += [f"{item['label']}: {item['value']}" for item in view["brief"]]
    if view.get("next_step"):
        head += ["", f"Next step: {view['next_step']}"]
    for section in view["sections"]:
        head += ["", f"{section['title']}:"] + [f"  {line}" for line in section["lines"]]
    lines = [f"  {_clock(t.get('at'))}{t['role']}: {_clean(t['text'])}" for t in view["transcript"]]
    has_transcript = "transcript" in (package.get("fields") or ())

    def compose(kept: List[str], dropped: int) -> str:
        tail: List[str] = []
        if has_transcript:
            tail = ["", "Transcript:"] + ([f"  ({dropped} earlier messages not shown)"] if dropped else []) + kept
        return "\n".join(head + tail)

    text = compose(lines, 0)
    if max_chars is None or len(text) <= max_chars:
        return text
    for dropped in range(1, len(lines) + 1):
        text = compose(lines[dropped:], dropped)
        if len(text) <= max_chars:
            return text
    return text[: max(0, max_chars - 1)] + "…"

