"""A context package as an expert reads it: `render_structured` for Slack and the dashboard (title,
labelled brief, next step, titled sections, transcript) and `render_text` for e-mail and Telegram
(clock times on the transcript, cut to a length with the oldest lines first). Also the few words the
package's grounds share with its renderings (`intent_label`, `confidence_text`, `one_line`).

Renderings mask again (`backline.consult.masking`); the package is built in `backline.consult.context`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional

from backline.consult.masking import mask_data
from backline.money import format_money
from backline.money import to_number as _number
from backline.routing.collect import LABELS as COLLECTED_LABELS


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping (a routing record's evidence, thresholds, ...), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def one_line(text: Any) -> str:
    """``text`` with its whitespace runs made single spaces; "" for what is not a string."""
    return " ".join(text.split()) if isinstance(text, str) else ""


def intent_label(intent: Optional[str]) -> str:
    """``refund_request`` → ``refund request``; ``faq/hours`` → ``faq: hours``."""
    return (intent or "unknown").replace("/", ": ").replace("_", " ")


def confidence_text(value: Any) -> str:
    """A confidence with two decimals, ``?`` when it is not a number."""
    number = _number(value)
    return "?" if number is None else f"{number:.2f}"


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
        line = (
            f"{value.get('intent')} {confidence_text(value.get('confidence'))} ({value.get('tier')} tier; "
            f"high ≥ {confidence_text(limits.get('high'))}, low < {confidence_text(limits.get('low'))})"
        )
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
    title = f"{mode}: {intent_label(brief.get('intent'))} · {case.get('queue') or 'support'} · {case.get('priority') or 'normal'} priority"
    grounds = "; ".join(risk.get("grounds") or ())
    summary = [
        {"field": "intent", "label": "Intent", "value": brief.get("intent") or "unknown"},
        {"field": "amount", "label": "Amount", "value": amount.get("display") or "—"},
        {"field": "product", "label": "Product", "value": brief.get("product") or "—"},
        {"field": "user_claim", "label": "Customer says", "value": brief.get("user_claim") or "—"},
        {
            "field": "risk",
            "label": "Risk",
            "value": f"{risk.get('level') or 'unknown'}" + (f" — {grounds}" if grounds else ""),
        },
    ]
    summary[1:1] = [
        {
            "field": f"collected.{name}",
            "label": COLLECTED_LABELS.get(name, name),
            "value": format_money(value.get("value"), value.get("currency"))
            if isinstance(value, Mapping)
            else str(value),
        }
        for name, value in (brief.get("collected") or {}).items()
    ]
    sections = [
        {"field": name, "title": _TITLES[name], "lines": _lines_for(name, package.get(name))}
        for name in package.get("fields") or ()
        if name in _TITLES and name in package
    ]
    return mask_data(
        {
            "title": title,
            "brief": summary,
            "next_step": package.get("next_step"),
            "sections": sections,
            "transcript": [dict(line) for line in package.get("transcript") or ()],
        }
    )


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
    lines = [f"  {_clock(t.get('at'))}{t['role']}: {one_line(t['text'])}" for t in view["transcript"]]
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
