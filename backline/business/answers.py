"""Customer-facing English answers built from business records: pure functions, no DB, no clock."""

from datetime import date, datetime, time
from decimal import Decimal
from typing import Iterable, List, Optional, Sequence, Tuple, Union
from zoneinfo import ZoneInfo

from backline.business.queries import (
    InvoiceInfo,
    OrderInfo,
    ProductInfo,
    SupportHours,
    TenantInfo,
)
from backline.money import CURRENCY_SYMBOLS, format_amount  # noqa: F401  (CURRENCY_SYMBOLS: re-exported)
from backline.utc import as_utc

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
KIND_TITLES = (("subscription", "Subscriptions"), ("license", "Software licenses"), ("hardware", "Hardware"))

ASK_ORDER_ID = "Could you tell me your order number? It's the 5-digit number in your order confirmation, like 10023."
ASK_INVOICE_ID = (
    "Could you tell me the invoice number? It looks like INV-2025-0107 and is printed at the top of the invoice."
)
BACKEND_UNAVAILABLE = (
    "I'm sorry, I can't reach our order and billing system right now. Please try again in a few minutes."
)


format_money = format_amount
"""€1,290.00 / $9.00 / CHF 12.50: every cent (`backline.money.format_amount`)."""


def format_percent(rate: Decimal) -> str:
    """19 → '19%', 5.5 → '5.5%'."""
    return f"{Decimal(rate).normalize():f}%"


def format_day(day: date, today: date) -> str:
    """'Wednesday 25 November', with the year when it is not this year."""
    text = f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {day.strftime('%B')}"
    return text if day.year == today.year else f"{text} {day.year}"


def on_day(day: date, today: date) -> str:
    """'today', 'yesterday (Sunday 22 November)', 'on Wednesday 25 November' — fits after a verb."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == -1:
        return f"yesterday ({format_day(day, today)})"
    if delta == 1:
        return f"tomorrow ({format_day(day, today)})"
    return f"on {format_day(day, today)}"


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day of an instant in the tenant's time zone."""
    return as_utc(moment).astimezone(tz).date()


def items_summary(order: OrderInfo) -> str:
    """'Kestrel Hub X1' / '5 × Kestrel Book 14, 5 × Kestrel Dock'."""
    return ", ".join(line.name if line.quantity == 1 else f"{line.quantity} × {line.name}" for line in order.lines)


def _tracking(order: OrderInfo) -> str:
    if not order.tracking_number:
        return ""
    text = f"Tracking number: {order.tracking_number}"
    return f"{text} — you can follow it at {order.tracking_url}." if order.tracking_url else f"{text}."


def _arrival(order: OrderInfo, today: date) -> str:
    eta = order.estimated_delivery
    if eta is None:
        return "we don't have an estimated delivery date yet."
    if eta >= today:
        return f"it should arrive {on_day(eta, today)}."
    return f"it was expected {on_day(eta, today)}, so it's running late — the carrier's tracking has the latest."


def _invoice_outcome(order: OrderInfo) -> str:
    sentences = []
    for invoice in order.invoices:
        if invoice.status == "refunded":
            sentences.append(f"Invoice {invoice.id} for it has been refunded.")
        elif invoice.status == "paid":
            sentences.append(f"Invoice {invoice.id} is still marked as paid, so the refund hasn't gone through yet.")
        else:
            sentences.append(f"Invoice {invoice.id} for it is still {invoice.status}.")
    return " ".join(sentences)


def order_status(order: OrderInfo, *, today: date, tz: ZoneInfo, focus: str = "status") -> str:
    """The status of an order; focus 'tracking' leads with the tracking details (track_shipment)."""
    head = f"Order {order.id} ({items_summary(order)})"
    shipped = on_day(local_day(order.shipped_at, tz), today) if order.shipped_at else "recently"
    status = order.status
    if status == "processing":
        eta = f" Estimated delivery: {format_day(order.estimated_delivery, today)}." if order.estimated_delivery else ""
        if focus == "tracking":
            return (
                f"{head} hasn't shipped yet, so there's no tracking number yet — it's still being processed.{eta}"
                " As soon as it ships, I can give you the tracking number here."
            )
        return f"{head} is being processed and hasn't shipped yet.{eta}"
    if status in ("shipped", "in_transit"):
        if focus == "tracking":
            link = f" — you can follow it at {order.tracking_url}" if order.tracking_url else ""
            return (
                f"{head} is with {order.carrier}, tracking number {order.tracking_number}{link}. "
                f"It shipped {shipped}, and {_arrival(order, today)}"
            )
        verb = "has shipped" if status == "shipped" else "is on its way"
        return (
            f"{head} {verb}: it left our warehouse {shipped} with {order.carrier}, "
            f"and {_arrival(order, today)} {_tracking(order)}"
        )
    if status == "delayed":
        expected = order.estimated_delivery
        if expected is not None and expected >= today:
            outlook = f"the new estimated delivery date is {format_day(expected, today)}."
        elif expected is not None:
            outlook = f"it was expected {on_day(expected, today)} and the carrier hasn't confirmed a new date yet."
        else:
            outlook = "the carrier hasn't confirmed a new delivery date yet."
        return (
            f"{head} is delayed, I'm sorry about that. It shipped {shipped} with {order.carrier}; "
            f"{outlook} {_tracking(order)}"
        )
    if status == "delivered":
        delivered = on_day(local_day(order.delivered_at, tz), today) if order.delivered_at else "already"
        lead = "was already delivered" if focus == "tracking" else "was delivered"
        text = f"{head} {lead} {delivered}."
        if order.tracking_number:
            text += f" It came with {order.carrier}, tracking number {order.tracking_number}."
        return text
    outcome = _invoice_outcome(order)
    if status == "cancelled":
        text = f"{head} was cancelled, so it won't ship."
    else:
        text = f"{head} was returned to us."
    return f"{text} {outcome}".strip()


def order_not_found(order_id: str) -> str:
    return f"I couldn't find order {order_id} — could you check the number?"


def invalid_order_id(value: object) -> str:
    return f"“{value}” doesn't look like an order number — order numbers have 5 digits, like 10023."


def invoice_details(invoice: InvoiceInfo, *, today: date, tenant: TenantInfo) -> str:
    """The invoice's amounts, status and where to download it (never claims anything was sent)."""
    total = format_money(invoice.total, invoice.currency)
    if invoice.vat > 0:
        breakdown = (
            f"{format_money(invoice.amount, invoice.currency)} + {format_money(invoice.vat, invoice.currency)} "
            f"VAT at {format_percent(invoice.vat_rate)}"
        )
    else:
        breakdown = "no VAT charged"
    if invoice.status == "paid":
        status = "It's paid."
    elif invoice.status == "open":
        status = f"It's open and due {on_day(invoice.due_at, today)}."
    elif invoice.status == "overdue":
        status = f"It's overdue — payment was due {on_day(invoice.due_at, today)}."
    else:
        status = "It has been refunded."
    return (
        f"Invoice {invoice.id} ({invoice.description}) was issued {on_day(invoice.issued_at, today)}. "
        f"Total: {total} ({breakdown}). {status} "
        f"You can download a PDF copy any time in your {tenant.name} account at {tenant.account_url} "
        f"under {tenant.invoices_path}."
    )


def invoice_not_found(invoice_id: str) -> str:
    return f"I couldn't find invoice {invoice_id} — could you check the number?"


def invalid_invoice_id(value: object) -> str:
    return f"“{value}” doesn't look like an invoice number — invoice numbers look like INV-2025-0107."


def _time(moment: Union[time, datetime]) -> str:
    return moment.strftime("%H:%M")


def _day_ranges(days: Sequence[int]) -> str:
    """[0,1,2,3,4] → 'Monday to Friday'; [5] → 'Saturday'; [0,2] → 'Monday and Wednesday'."""
    groups: List[Tuple[int, int]] = []
    for day in days:
        if groups and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day)
        else:
            groups.append((day, day))
    parts = [
        WEEKDAY_NAMES[a] if a == b else f"{WEEKDAY_NAMES[a]} {'and' if b == a + 1 else 'to'} {WEEKDAY_NAMES[b]}"
        for a, b in groups
    ]
    return _join(parts)


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _place(timezone_name: str) -> str:
    return timezone_name.rsplit("/", 1)[-1].replace("_", " ")


def opening_hours(hours: SupportHours, *, at: datetime) -> str:
    """The weekly schedule and whether support is open at `at`, in the schedule's local time."""
    schedule: List[Tuple[str, List[int]]] = []
    closed: List[int] = []
    for weekday in range(7):
        intervals = hours.on(weekday)
        if not intervals:
            closed.append(weekday)
            continue
        text = " and ".join(f"{_time(i.opens)}–{_time(i.closes)}" for i in intervals)
        if schedule and schedule[-1][0] == text and schedule[-1][1][-1] == weekday - 1:
            schedule[-1][1].append(weekday)
        else:
            schedule.append((text, [weekday]))
    week = _join([f"{_day_ranges(days)} {text}" for text, days in schedule])
    answer = f"Our support team is available {week} ({_place(hours.timezone)} time)"
    answer += f"; closed on {_day_ranges(closed)}." if closed else "."
    status = hours.status(at)
    if status.is_open and status.closes_at is not None:
        return f"{answer} We're open right now, until {_time(status.closes_at)}."
    if status.next_opening is None:
        return answer
    today = status.local_now.date()
    opening_day = status.next_opening.date()
    if opening_day == today:
        when = "today"
    elif (opening_day - today).days == 1:
        when = "tomorrow"
    else:
        when = f"on {WEEKDAY_NAMES[opening_day.weekday()]}"
    return f"{answer} We're closed right now; we open again {when} at {_time(status.next_opening)}."


def _price(product: ProductInfo) -> str:
    money = format_money(product.price, product.currency)
    if product.period == "perpetual":
        return f"{money} one-off (perpetual license)"
    if product.period:
        return f"{money}/{product.period}"
    return money


def _price_sentence(product: ProductInfo) -> str:
    money = format_money(product.price, product.currency)
    if product.period == "perpetual":
        return f"{product.name} costs {money} as a one-off purchase (perpetual license, excl. VAT)."
    if product.period:
        return f"{product.name} costs {money} per {product.period} (excl. VAT)."
    return f"{product.name} costs {money} (excl. VAT)."


def catalogue_prices(products: Iterable[ProductInfo]) -> str:
    """The whole price list, grouped by kind."""
    products = list(products)
    lines = ["Here are our current prices (excl. VAT):"]
    for kind, title in KIND_TITLES:
        entries = [f"{product.name} {_price(product)}" for product in products if product.kind == kind]
        if entries:
            lines.append(f"- {title}: {', '.join(entries)}")
    return "\n".join(lines)


def pricing(
    products: Sequence[ProductInfo], product: Optional[ProductInfo] = None, requested: Optional[str] = None
) -> str:
    """One product's price (with the other plans for a subscription), or the whole catalogue."""
    if product is not None:
        text = _price_sentence(product)
        if product.kind == "subscription":
            others = [
                f"{other.name} {_price(other)}"
                for other in products
                if other.kind == "subscription" and other.sku != product.sku
            ]
            if others:
                text += f" Our other plans: {_join(others)}."
        return text
    listing = catalogue_prices(products)
    if requested:
        return f"I couldn't find a product called “{requested}” in our catalogue. {listing}"
    return listing
