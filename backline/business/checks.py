"""Checks for what a collect form gathers, against the business data (no Rasa).

Each check takes the customer's value (as the slot mapping extracted it) and what was collected so
far, and returns a `Checked`: the normalised value to keep, or None with the sentence that says why
and asks again. Order and invoice numbers reuse `backline.business.replies`; amounts must be positive
and not above the order's total or the invoice's gross amount (same currency); an e-mail address must
be well formed (whether it has an account is not said: the expert sees it in the brief); a product must be in the catalogue; a plan must be one of the
subscription plans; details need a few words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Dict, Mapping, Optional

from backline.business import queries, replies
from backline.business.db import session_scope
from backline.business.models import SUBSCRIPTION_PLANS
from backline.money import format_with_code
from backline.nlp.money import parse_money, parse_number

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PLAN_WORDS = {
    "monthly": "monthly",
    "month": "monthly",
    "yearly": "yearly",
    "year": "yearly",
    "annual": "yearly",
    "annually": "yearly",
}
MIN_DETAIL_WORDS = 2


@dataclass(frozen=True)
class Checked:
    """``value``: what to keep in the slot (None: ask again, after ``text``); ``extra``: other slots to set."""

    value: Any
    text: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _from_reply(reply: replies.Reply) -> Checked:
    return Checked(reply.record_id, "") if reply.found else Checked(None, reply.text)


def check_order(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    return _from_reply(replies.check_order_id(value, url=url))


def check_invoice(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    return _from_reply(replies.check_invoice_id(value, url=url))


def _ceiling(collected: Mapping[str, Any], url: Optional[str]) -> Optional[tuple]:
    """(maximum, currency, what) from the collected order or invoice, if any."""
    with session_scope(url) as session:
        if collected.get("order_id"):
            order = queries.get_order(session, collected["order_id"])
            if order is not None:
                return order.total, order.currency, f"order {order.id}"
        if collected.get("invoice_id"):
            invoice = queries.get_invoice(session, collected["invoice_id"])
            if invoice is not None:
                return invoice.amount + invoice.vat, invoice.currency, f"invoice {invoice.id}"
    return None


def check_amount(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    """A positive amount; its currency from the slot, the text, or EUR; at most the order's / invoice's total."""
    raw = _first(value)
    currency = collected.get("currency")
    amount: Optional[Decimal] = None
    if isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        amount = Decimal(str(raw))
    elif isinstance(raw, str):
        money = parse_money(raw)
        if money is not None:
            amount, currency = money.amount, money.currency
        else:
            amount = parse_number(raw.strip())
    if amount is None or amount <= 0:
        return Checked(None, "I need the amount as a number with its currency, for example 49.90 EUR.")
    currency = (currency or "EUR").strip().upper()
    ceiling = _ceiling(collected, url)
    if ceiling is not None:
        total, total_currency, what = ceiling
        if total_currency == currency and amount > total:
            return Checked(
                None,
                f"The total of {what} is {format_with_code(total, total_currency)}. "
                "How much should it be, at most that?",
            )
    return Checked(float(amount), extra={"currency": currency})


def check_email(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    raw = str(_first(value) or "").strip().strip(".,;")
    if not _EMAIL.match(raw):
        return Checked(None, "That doesn't look like an e-mail address. Which address is your Kestrel account under?")
    with session_scope(url) as session:
        customer = queries.customer_by_email(session, raw.lower())
    if customer is None:
        # Accepted without saying so: telling a stranger which addresses have an account would let them
        # probe for customers. The expert sees in the brief that no account matched (no account snapshot).
        return Checked(raw.lower())
    return Checked(customer.email, extra={"customer_tier": customer.tier})


def check_product(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    raw = str(_first(value) or "").strip()
    with session_scope(url) as session:
        product = queries.find_product(session, raw) if raw else None
        names = [p.name for p in queries.catalogue(session)] if product is None else []
    if product is None:
        return Checked(
            None,
            f"I don't know the product {raw!r}. We offer {', '.join(names)}." if raw else "Which product is it about?",
        )
    return Checked(product.name)


def check_plan(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    words = re.findall(r"[a-z]+", str(_first(value) or "").lower())
    plans = {_PLAN_WORDS[w] for w in words if w in _PLAN_WORDS}
    if len(plans) != 1 or not plans <= set(SUBSCRIPTION_PLANS):
        return Checked(None, f"Which plan would you like: {' or '.join(SUBSCRIPTION_PLANS)}?")
    return Checked(plans.pop())


def check_details(value: Any, collected: Mapping[str, Any], url: Optional[str] = None) -> Checked:
    text = " ".join(str(_first(value) or "").split())
    if len(re.findall(r"[^\W\d_]{2,}", text)) < MIN_DETAIL_WORDS:
        return Checked(None, "Could you describe it in a few more words?")
    return Checked(text[:1000])


CHECKS: Mapping[str, Callable[..., Checked]] = {
    "order_id": check_order,
    "invoice_id": check_invoice,
    "amount": check_amount,
    "email": check_email,
    "product": check_product,
    "target_plan": check_plan,
    "issue_details": check_details,
}
"""A check for every field of `backline.routing.collect.FIELDS`."""
