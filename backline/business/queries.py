"""Read-only queries on the business DB, returning plain frozen records (no session leaks out)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.business.models import (
    Customer,
    Invoice,
    License,
    OpeningHours,
    Order,
    OrderLine,
    Product,
    Subscription,
    TenantSetting,
)
from backline.utc import as_utc  # naive means UTC: how the DB stores time


@dataclass(frozen=True)
class TenantInfo:
    name: str
    timezone: str
    account_url: str
    invoices_path: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self, now: datetime) -> date:
        """The tenant's calendar day at the instant `now` (naive means UTC)."""
        return as_utc(now).astimezone(self.tz).date()


@dataclass(frozen=True)
class CustomerInfo:
    id: int
    name: str
    email: str
    tier: str
    country: str


@dataclass(frozen=True)
class ProductInfo:
    sku: str
    name: str
    kind: str
    price: Decimal
    currency: str
    period: Optional[str]
    aliases: Tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderLineInfo:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class InvoiceRef:
    id: str
    status: str


@dataclass(frozen=True)
class OrderInfo:
    id: int
    status: str
    customer: CustomerInfo
    lines: Tuple[OrderLineInfo, ...]
    total: Decimal
    currency: str
    created_at: datetime
    carrier: Optional[str] = None
    tracking_number: Optional[str] = None
    tracking_url: Optional[str] = None
    shipped_at: Optional[datetime] = None
    estimated_delivery: Optional[date] = None
    delivered_at: Optional[datetime] = None
    invoices: Tuple[InvoiceRef, ...] = ()


@dataclass(frozen=True)
class InvoiceInfo:
    id: str
    customer: CustomerInfo
    description: str
    amount: Decimal
    vat_rate: Decimal
    vat: Decimal
    currency: str
    status: str
    issued_at: date
    due_at: date
    order_id: Optional[int] = None

    @property
    def total(self) -> Decimal:
        return self.amount + self.vat


@dataclass(frozen=True)
class SubscriptionInfo:
    sku: str
    product_name: str
    plan: str
    status: str
    started_at: date
    renews_at: Optional[date]
    price: Decimal
    currency: str


@dataclass(frozen=True)
class LicenseInfo:
    key: str
    customer: CustomerInfo
    sku: str
    product_name: str
    seats: int
    activations_used: int
    status: str
    expires_at: Optional[date]


@dataclass(frozen=True)
class Interval:
    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True)
class OpeningStatus:
    is_open: bool
    local_now: datetime
    closes_at: Optional[datetime]
    next_opening: Optional[datetime]


@dataclass(frozen=True)
class SupportHours:
    """The weekly support schedule in one time zone; all answers are in that zone's local time."""

    timezone: str
    intervals: Tuple[Interval, ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def on(self, weekday: int) -> List[Interval]:
        return sorted((i for i in self.intervals if i.weekday == weekday), key=lambda i: i.opens)

    def status(self, at: datetime) -> OpeningStatus:
        """Whether support is open at `at` (naive means UTC), until when, and when it opens next."""
        local = as_utc(at).astimezone(self.tz)
        for interval in self.on(local.weekday()):
            if interval.opens <= local.time() < interval.closes:
                closes = datetime.combine(local.date(), interval.closes, tzinfo=self.tz)
                return OpeningStatus(True, local, closes, None)
        return OpeningStatus(False, local, None, self._next_opening(local))

    def is_open(self, at: datetime) -> bool:
        return self.status(at).is_open

    def _next_opening(self, local: datetime) -> Optional[datetime]:
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            for interval in self.on(day.weekday()):
                opening = datetime.combine(day, interval.opens, tzinfo=self.tz)
                if opening > local:
                    return opening
        return None


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    return None if moment is None else as_utc(moment)


def _customer(row: Customer) -> CustomerInfo:
    return CustomerInfo(id=row.id, name=row.name, email=row.email, tier=row.tier, country=row.country)


def _product(row: Product) -> ProductInfo:
    return ProductInfo(
        sku=row.sku,
        name=row.name,
        kind=row.kind,
        price=row.price,
        currency=row.currency,
        period=row.period,
        aliases=tuple(row.aliases or ()),
    )


def tenant(session: Session) -> TenantInfo:
    """The tenant's company facts (name, time zone, billing portal)."""
    settings = {row.key: row.value for row in session.execute(select(TenantSetting)).scalars()}
    return TenantInfo(
        name=settings["name"],
        timezone=settings["timezone"],
        account_url=settings["account_url"],
        invoices_path=settings["invoices_path"],
    )


def get_order(session: Session, order_id: Any) -> Optional[OrderInfo]:
    """The order with this number ('10023', '#10023', 10023), or None."""
    normalised = normalise_order_id(order_id)
    if normalised is None:
        return None
    statement = (
        select(Order)
        .where(Order.id == int(normalised))
        .options(
            selectinload(Order.lines).selectinload(OrderLine.product),
            selectinload(Order.customer),
            selectinload(Order.invoices),
        )
    )
    row = session.execute(statement).scalars().first()
    if row is None:
        return None
    return OrderInfo(
        id=row.id,
        status=row.status,
        customer=_customer(row.customer),
        lines=tuple(
            OrderLineInfo(sku=line.sku, name=line.product.name, quantity=line.quantity, unit_price=line.unit_price)
            for line in row.lines
        ),
        total=row.total,
        currency=row.currency,
        created_at=as_utc(row.created_at),
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=row.tracking_url,
        shipped_at=_aware(row.shipped_at),
        estimated_delivery=row.estimated_delivery,
        delivered_at=_aware(row.delivered_at),
        invoices=tuple(InvoiceRef(id=invoice.id, status=invoice.status) for invoice in row.invoices),
    )


def order_exists(session: Session, order_id: Any) -> bool:
    normalised = normalise_order_id(order_id)
    if normalised is None:
        return False
    return session.execute(select(Order.id).where(Order.id == int(normalised))).first() is not None


def get_invoice(session: Session, invoice_id: Any) -> Optional[InvoiceInfo]:
    """The invoice with this number ('INV-2025-0107', 'inv 2025 0107'), or None."""
    normalised = normalise_invoice_id(invoice_id)
    if normalised is None:
        return None
    statement = select(Invoice).where(Invoice.id == normalised).options(selectinload(Invoice.customer))
    row = session.execute(statement).scalars().first()
    if row is None:
        return None
    return InvoiceInfo(
        id=row.id,
        customer=_customer(row.customer),
        description=row.description,
        amount=row.amount,
        vat_rate=row.vat_rate,
        vat=row.vat,
        currency=row.currency,
        status=row.status,
        issued_at=row.issued_at,
        due_at=row.due_at,
        order_id=row.order_id,
    )


def invoice_exists(session: Session, invoice_id: Any) -> bool:
    normalised = normalise_invoice_id(invoice_id)
    if normalised is None:
        return False
    return session.execute(select(Invoice.id).where(Invoice.id == normalised)).first() is not None


def customer_by_email(session: Session, email: str) -> Optional[CustomerInfo]:
    """The customer with this e-mail address (case-insensitive), or None."""
    cleaned = (email or "").strip().lower()
    if not cleaned:
        return None
    row = session.execute(select(Customer).where(Customer.email == cleaned)).scalars().first()
    return None if row is None else _customer(row)


def orders_for_customer(session: Session, email: str) -> List[OrderInfo]:
    """The customer's orders, newest first."""
    customer = customer_by_email(session, email)
    if customer is None:
        return []
    ids = session.execute(
        select(Order.id).where(Order.customer_id == customer.id).order_by(Order.created_at.desc(), Order.id.desc())
    ).scalars()
    return [order for order in (get_order(session, order_id) for order_id in list(ids)) if order is not None]


def invoices_for_customer(session: Session, email: str) -> List[InvoiceInfo]:
    """The customer's invoices, newest first."""
    customer = customer_by_email(session, email)
    if customer is None:
        return []
    ids = session.execute(
        select(Invoice.id)
        .where(Invoice.customer_id == customer.id)
        .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
    ).scalars()
    return [
        invoice for invoice in (get_invoice(session, invoice_id) for invoice_id in list(ids)) if invoice is not None
    ]


def subscriptions_for_customer(session: Session, email: str) -> List[SubscriptionInfo]:
    customer = customer_by_email(session, email)
    if customer is None:
        return []
    rows = session.execute(
        select(Subscription)
        .where(Subscription.customer_id == customer.id)
        .options(selectinload(Subscription.product))
        .order_by(Subscription.id)
    ).scalars()
    return [
        SubscriptionInfo(
            sku=row.sku,
            product_name=row.product.name,
            plan=row.plan,
            status=row.status,
            started_at=row.started_at,
            renews_at=row.renews_at,
            price=row.price,
            currency=row.currency,
        )
        for row in rows
    ]


def get_license(session: Session, key: str) -> Optional[LicenseInfo]:
    """The license with this key (case-insensitive), or None."""
    cleaned = (key or "").strip().upper()
    row = (
        session.execute(
            select(License)
            .where(License.key == cleaned)
            .options(selectinload(License.customer), selectinload(License.product))
        )
        .scalars()
        .first()
    )
    if row is None:
        return None
    return LicenseInfo(
        key=row.key,
        customer=_customer(row.customer),
        sku=row.sku,
        product_name=row.product.name,
        seats=row.seats,
        activations_used=row.activations_used,
        status=row.status,
        expires_at=row.expires_at,
    )


def catalogue(session: Session) -> List[ProductInfo]:
    """Every product, in catalogue order."""
    rows = session.execute(select(Product).order_by(Product.position)).scalars()
    return [_product(row) for row in rows]


def _normalise_name(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


def match_product(products: Sequence[ProductInfo], text: Optional[str]) -> Optional[ProductInfo]:
    """The product whose name, sku or alias is `text` (case- and spacing-insensitive), or None."""
    wanted = _normalise_name(text or "")
    if not wanted:
        return None
    for product in products:
        names = (product.name, product.sku, *product.aliases)
        if wanted in {_normalise_name(name) for name in names}:
            return product
    return None


def find_product(session: Session, text: Optional[str]) -> Optional[ProductInfo]:
    return match_product(catalogue(session), text)


def support_hours(session: Session) -> SupportHours:
    """The weekly customer-support schedule."""
    rows = session.execute(select(OpeningHours).order_by(OpeningHours.weekday, OpeningHours.opens)).scalars().all()
    if not rows:
        raise LookupError("no support hours in the business DB; run `python -m backline seed`")
    return SupportHours(
        timezone=rows[0].timezone,
        intervals=tuple(Interval(weekday=row.weekday, opens=row.opens, closes=row.closes) for row in rows),
    )


def is_open_now(session: Session, at: datetime) -> bool:
    """Whether customer support is open at the instant `at` (naive means UTC)."""
    return support_hours(session).is_open(at)
