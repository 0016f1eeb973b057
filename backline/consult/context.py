"""The context package: what an expert reads to decide in 30 seconds, masked.

Built from plain inputs: the routing record (`Decision.as_record()`), the transcript
(``[{"role": "customer" | "assistant" | "expert", "text", "at"}]``), the slots, the
matrix row's context package (field names from escalation.yml ``context_packages``)
and an account snapshot from the business database (`backline.consult.account.account_snapshot`).

Fields: ``brief`` (always: intent, amount, product, user_claim, risk), ``sentiment``,
``account_snapshot``, ``ai_attempts``, ``documents_used``, ``confidence``, ``ai_draft``,
``reasons``, ``next_step``, ``transcript``; plus ``package`` / ``fields`` / ``case``
(mode, queue, priority, reason, detail) that say what the package is.

Every string of a package is masked (`backline.consult.masking`), and the renderings
(`backline.consult.render`) mask again. Why the case was escalated and what the expert should do
next, in words, is `backline.consult.grounds`; money is written by `backline.money`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from backline.consult.account import RECENT, account_snapshot, lookup_account, slot  # noqa: F401  (re-exported)
from backline.consult.grounds import amount_asked, next_step, reasons_for  # noqa: F401  (re-exported: next_step)
from backline.consult.masking import mask, mask_data  # noqa: F401  (re-exported: the package's masking)
from backline.consult.render import as_mapping, one_line, render_structured, render_text  # noqa: F401  (re-exported)
from backline.money import format_money  # noqa: F401  (re-exported: format_money)
from backline.money import to_number as _number
from backline.routing.matrix import CONTEXT_FIELDS
from backline.utc import iso_any as _iso

FIELDS = CONTEXT_FIELDS
"""Every field a context package may list (escalation.yml ``context_packages``), in display order."""
ROLES = ("customer", "assistant", "expert")
CLAIM_MAX = 300

_ROLE_ALIASES = {"user": "customer", "bot": "assistant", "ai": "assistant", "agent": "expert", "human": "expert"}
_RISK_LEVEL = {"low": "low", "normal": "medium", "high": "high", "urgent": "critical"}


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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


def _product(slots: Mapping[str, Any], account: Optional[Mapping[str, Any]]) -> Optional[str]:
    product = slot(slots, "product")
    if isinstance(product, str) and product:
        return product
    if account and account.get("found"):
        if account.get("order"):
            return ", ".join(account["order"]["products"]) or None
        if account.get("invoice"):
            return account["invoice"]["description"] or None
    return None


# --- the package ----------------------------------------------------------------------------------


def _sentiment(
    record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]], score: Optional[float]
) -> Dict[str, Any]:
    evidence = as_mapping(record.get("evidence"))
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
        label = (
            "very negative"
            if value <= -0.5
            else "negative"
            if value <= -0.05
            else "positive"
            if value >= 0.05
            else "neutral"
        )
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


def _documents(
    record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]], documents: Sequence[str]
) -> List[str]:
    found: List[str] = []
    for source in (documents, record.get("documents") or (), record.get("responses") or ()):
        found += [d for d in source if isinstance(d, str)]
    for entry in transcript:
        if entry["role"] == "assistant":
            found += [entry[k] for k in ("response", "document") if isinstance(entry.get(k), str)]
    return list(dict.fromkeys(d.strip() for d in found if d.strip()))


def _ai_attempts(record: Mapping[str, Any], transcript: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    attempts = [{"text": e["text"], "at": e["at"]} for e in transcript if e["role"] == "assistant"]
    evidence = as_mapping(record.get("evidence"))
    stuck = as_mapping(evidence.get("no_convergence"))
    last = stuck.get("last_answer")
    if isinstance(last, str) and last.strip() and all(one_line(a["text"]) != one_line(last) for a in attempts):
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
    amount = amount_asked(record, slots)
    reasons = reasons_for(record)
    customer = _last(lines, "customer")
    claim = _trim(one_line(customer["text"]), CLAIM_MAX) if customer else None
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
    draft = ai_draft if ai_draft is not None else slot(slots, "ai_draft")
    thresholds = as_mapping(record.get("thresholds"))
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
