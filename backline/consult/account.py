"""The account snapshot of a context package: who the customer is, from the business database.

The conversation's order id, invoice id or e-mail (in that order of trust) names the customer; the
snapshot gives their tier, recent orders and invoices with their status, subscriptions, and the
order / invoice in question, with warnings when an invoice or an e-mail belongs to someone else.
This is the only part of the context package that reads `backline.business`; the package itself is
built in `backline.consult.context`.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from sqlalchemy.orm import Session

from backline.business import queries
from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.money import format_money
from backline.utc import iso_any as _iso

RECENT = 5
"""How many of the latest orders, invoices, AI answers, ranked intents... a package lists."""


def slot(slots: Mapping[str, Any], name: str) -> Any:
    """The slot's value, a string stripped."""
    value = slots.get(name)
    return value.strip() if isinstance(value, str) else value


def _money(value: Any, currency: Optional[str]) -> Dict[str, Any]:
    return {"value": str(value), "currency": currency, "display": format_money(value, currency)}


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
    order_id = normalise_order_id(slot(slots, "order_id"))
    invoice_id = normalise_invoice_id(slot(slots, "invoice_id"))
    email = slot(slots, "email")
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
        "customer": {
            "name": customer.name,
            "email": customer.email,
            "tier": customer.tier,
            "country": customer.country,
        },
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
