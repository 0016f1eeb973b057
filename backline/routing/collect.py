"""What a `collect_then_route` row collects before it routes: the field catalogue and the form names.

Pure Python. A row of escalation.yml with ``ai_may: collect_then_route`` lists the fields to collect
(``collect: [order_id, issue_details]``); the domain defines one Rasa form per such row, named
`form_name(intent)`, whose required slots are exactly those fields (checked when the model is trained
and by ``validate-matrix``). The actions validate each field against the business data; when the form
is complete, the routing policy opens a consultation to the row's queue with the collected facts.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

FORM_PREFIX = "collect_"

FIELDS: Mapping[str, str] = {
    "order_id": "the order number (checked against the orders)",
    "invoice_id": "the invoice number (checked against the invoices)",
    "amount": "an amount with its currency (positive; for an order, not above its total)",
    "email": "the e-mail address of a customer account",
    "product": "a product of the catalogue",
    "target_plan": "the subscription plan wanted (monthly or yearly)",
    "issue_details": "what happened, in the customer's words (at least a few words)",
}
"""Field name (the slot it fills) -> what it holds and how it is checked."""

LABELS: Mapping[str, str] = {
    "order_id": "Order",
    "invoice_id": "Invoice",
    "amount": "Amount",
    "email": "E-mail",
    "product": "Product",
    "target_plan": "Plan wanted",
    "issue_details": "Details",
}


def form_name(intent: str) -> str:
    """The form that collects a row's fields: ``collect_<intent>``."""
    return f"{FORM_PREFIX}{intent}"


def form_intent(form: Optional[str]) -> Optional[str]:
    """The row a collect form belongs to, or None for any other loop."""
    if isinstance(form, str) and form.startswith(FORM_PREFIX):
        return form[len(FORM_PREFIX) :] or None
    return None


def collected(fields: Sequence[str], slots: Mapping[str, Any]) -> Dict[str, Any]:
    """The collected facts, in the row's order (the amount with its currency)."""
    facts: Dict[str, Any] = {}
    for name in fields:
        value = slots.get(name)
        if value is None or value == "":
            continue
        if name == "amount":
            facts[name] = {"value": value, "currency": slots.get("currency") or "EUR"}
        else:
            facts[name] = value
    return facts
