"""Tier-1 replies from the business DB: one call per customer request, used by the Rasa actions.

Each function opens its own session, looks the record up and formats the answer. Database
errors (SQLAlchemyError) propagate: the caller decides how to apologise.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Optional, Tuple

from sqlalchemy.orm import Session

from backline.business import answers, queries
from backline.business.db import session_scope
from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.utc import utcnow


@dataclass(frozen=True)
class Reply:
    """What to tell the customer; `found` with the normalised id and the customer's tier when a record matched."""

    text: str
    found: bool = False
    record_id: Optional[str] = None
    customer_tier: Optional[str] = None


utc_now = utcnow
"""The real clock (aware UTC): `backline.utc.utcnow`."""


def _candidates(value: Any) -> Tuple[Any, ...]:
    """Slot values may be lists when several entities were extracted; blanks are dropped."""
    values: Iterable[Any] = value if isinstance(value, (list, tuple)) else (value,)
    return tuple(item for item in values if item is not None and str(item).strip())


def _check(
    value: Any,
    normalise: Callable[[Any], Optional[str]],
    exists: Callable[[Session, str], bool],
    messages: Tuple[str, Callable[[Any], str], Callable[[str], str]],
    verify: bool,
    url: Optional[str],
) -> Reply:
    ask, invalid, not_found = messages
    candidates = _candidates(value)
    if not candidates:
        return Reply(ask)
    valid = [normalised for normalised in map(normalise, candidates) if normalised is not None]
    if not valid:
        return Reply(invalid(candidates[0]))
    if not verify:
        return Reply("", found=True, record_id=valid[0])
    with session_scope(url) as session:
        for record_id in valid:
            if exists(session, record_id):
                return Reply("", found=True, record_id=record_id)
    return Reply(not_found(valid[0]))


def check_order_id(value: Any, *, verify: bool = True, url: Optional[str] = None) -> Reply:
    """Check a customer-typed order number: its format, then (with `verify`) that the order exists."""
    messages = (answers.ASK_ORDER_ID, answers.invalid_order_id, answers.order_not_found)
    return _check(value, normalise_order_id, queries.order_exists, messages, verify, url)


def check_invoice_id(value: Any, *, verify: bool = True, url: Optional[str] = None) -> Reply:
    """Check a customer-typed invoice number: its format, then (with `verify`) that the invoice exists."""
    messages = (answers.ASK_INVOICE_ID, answers.invalid_invoice_id, answers.invoice_not_found)
    return _check(value, normalise_invoice_id, queries.invoice_exists, messages, verify, url)


def order_status_reply(
    value: Any, *, focus: str = "status", now: Optional[datetime] = None, url: Optional[str] = None
) -> Reply:
    """The status of the order `value` names; focus 'tracking' leads with the tracking details."""
    checked = check_order_id(value, url=url)
    if not checked.found:
        return checked
    with session_scope(url) as session:
        order = queries.get_order(session, checked.record_id)
        tenant = queries.tenant(session)
    assert order is not None
    text = answers.order_status(order, today=tenant.today(now or utc_now()), tz=tenant.tz, focus=focus)
    return Reply(text, found=True, record_id=str(order.id), customer_tier=order.customer.tier)


def invoice_reply(value: Any, *, now: Optional[datetime] = None, url: Optional[str] = None) -> Reply:
    """The details of the invoice `value` names and where to download it."""
    checked = check_invoice_id(value, url=url)
    if not checked.found:
        return checked
    with session_scope(url) as session:
        invoice = queries.get_invoice(session, checked.record_id)
        tenant = queries.tenant(session)
    assert invoice is not None
    text = answers.invoice_details(invoice, today=tenant.today(now or utc_now()), tenant=tenant)
    return Reply(text, found=True, record_id=invoice.id, customer_tier=invoice.customer.tier)


def opening_hours_reply(*, now: Optional[datetime] = None, url: Optional[str] = None) -> Reply:
    """Support hours and whether support is open right now."""
    with session_scope(url) as session:
        hours = queries.support_hours(session)
    return Reply(answers.opening_hours(hours, at=now or utc_now()), found=True)


def pricing_reply(product: Optional[str] = None, *, url: Optional[str] = None) -> Reply:
    """The price of `product` (a name, sku or alias) or, without one, the whole catalogue."""
    with session_scope(url) as session:
        products = queries.catalogue(session)
    requested = product.strip() if isinstance(product, str) and product.strip() else None
    match = queries.match_product(products, requested)
    text = answers.pricing(products, product=match, requested=requested)
    return Reply(text, found=match is not None or requested is None, record_id=match.sku if match else None)
