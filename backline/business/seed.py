"""Seed the business DB from the tenant directory (demo.yml + products.yml): drop, create, insert.

Seeding is idempotent: the business tables are dropped and recreated, so running it twice on
the same day gives the same database. Every record is validated before the database is touched;
a malformed file raises `SeedError` naming the file, the record and the field.
"""

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backline.business import db, models
from backline.business.ids import INVOICE_ID_PATTERN
from backline.business.models import (
    Base,
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
from backline.utc import naive_utc

DEFAULT_TENANT_DIR = db.PROJECT_ROOT / "tenant"
RELATIVE_TIME_OF_DAY = time(9, 30)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHIPPING_STATUSES = ("shipped", "in_transit", "delayed")
SHIPPED_STATUSES = SHIPPING_STATUSES + ("delivered", "returned")

_RELATIVE = re.compile(r"^(?:(?P<ago>\d+) days? ago|in (?P<ahead>\d+) days?)$")
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LICENSE_KEY = re.compile(r"^[A-Z]{3}-[A-Z0-9]{4}-[A-Z0-9]{4}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class SeedError(ValueError):
    """The tenant files are malformed; the message names the file, record and field."""


@dataclass
class _Clock:
    today: date
    tz: ZoneInfo


class _Record:
    """One mapping in a tenant file, with typed accessors that fail with a precise message."""

    def __init__(self, where: str, data: Any, allowed: Iterable[str], clock: Optional[_Clock] = None):
        self.where = where
        self.clock = clock
        if not isinstance(data, dict):
            raise SeedError(f"{where}: expected a mapping of fields, got {data!r}")
        self.data = data
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise SeedError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")

    def fail(self, field: str, problem: str) -> SeedError:
        return SeedError(f"{self.where}: field '{field}': {problem}")

    def has(self, field: str) -> bool:
        return self.data.get(field) is not None

    def raw(self, field: str, required: bool = True) -> Any:
        value = self.data.get(field)
        if value is None and required:
            raise self.fail(field, "is required")
        return value

    @overload
    def text(self, field: str, required: Literal[True] = True) -> str: ...
    @overload
    def text(self, field: str, required: bool) -> Optional[str]: ...
    def text(self, field: str, required: bool = True) -> Optional[str]:
        value = self.raw(field, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"must be a non-empty text (quote numbers), got {value!r}")
        return value.strip()

    def choice(self, field: str, choices: Sequence[str]) -> str:
        value = self.text(field)
        if value not in choices:
            raise self.fail(field, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, field: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
        value = self.raw(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"must be a whole number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise self.fail(field, f"must be {bound}, got {value}")
        return value

    @overload
    def decimal(self, field: str, required: Literal[True] = True) -> Decimal: ...
    @overload
    def decimal(self, field: str, required: bool) -> Optional[Decimal]: ...
    def decimal(self, field: str, required: bool = True) -> Optional[Decimal]:
        value = self.raw(field, required)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.fail(field, f"must be a number, got {value!r}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(field, f"must be a number, got {value!r}") from None
        if not number.is_finite() or number < 0:
            raise self.fail(field, f"must be a positive number, got {value!r}")
        return number.quantize(models.CENT, rounding=ROUND_HALF_UP)

    def currency(self, field: str = "currency", default: str = "EUR") -> str:
        value = self.text(field, required=False) or default
        if not _CURRENCY.match(value):
            raise self.fail(field, f"must be an ISO 4217 code such as EUR, got {value!r}")
        return value

    def time_zone(self, field: str = "timezone") -> ZoneInfo:
        """The IANA time zone the field names, e.g. Europe/Berlin."""
        name = self.text(field)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(field, f"unknown time zone {name!r}") from None

    @overload
    def day(self, field: str, required: Literal[True] = True) -> date: ...
    @overload
    def day(self, field: str, required: bool) -> Optional[date]: ...
    def day(self, field: str, required: bool = True) -> Optional[date]:
        value = self.raw(field, required)
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            relative = self._relative(value)
            if relative is not None:
                return relative
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.fail(field, f"must be a date (2025-01-07, 'today', '3 days ago', 'in 2 days'), got {value!r}")

    def moment(self, field: str, required: bool = True) -> Optional[datetime]:
        """A local date-time of the tenant, returned as naive UTC (how the DB stores time)."""
        value = self.raw(field, required)
        if value is None:
            return None
        local: Optional[datetime] = None
        if isinstance(value, datetime):
            local = value
        elif isinstance(value, date):
            local = datetime.combine(value, RELATIVE_TIME_OF_DAY)
        elif isinstance(value, str):
            relative = self._relative(value)
            if relative is not None:
                local = datetime.combine(relative, RELATIVE_TIME_OF_DAY)
            else:
                try:
                    local = datetime.fromisoformat(value.strip())
                except ValueError:
                    local = None
        if local is None:
            raise self.fail(field, f"must be a date or date-time (2025-01-07 14:12, '2 days ago'), got {value!r}")
        assert self.clock is not None
        if local.tzinfo is None:
            local = local.replace(tzinfo=self.clock.tz)
        return naive_utc(local)

    def _relative(self, value: str) -> Optional[date]:
        assert self.clock is not None
        text = " ".join(value.strip().lower().split())
        named = {"today": 0, "yesterday": -1, "tomorrow": 1}
        if text in named:
            return self.clock.today + timedelta(days=named[text])
        match = _RELATIVE.match(text)
        if match is None:
            return None
        if match.group("ago") is not None:
            return self.clock.today - timedelta(days=int(match.group("ago")))
        return self.clock.today + timedelta(days=int(match.group("ahead")))


def _load_yaml(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise SeedError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise SeedError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SeedError(f"{path}: expected a mapping at the top level")
    return data


def _section(path: Path, data: Dict[str, Any], name: str) -> List[Any]:
    items = data.get(name)
    if not isinstance(items, list) or not items:
        raise SeedError(f"{path}: '{name}' must be a non-empty list")
    return items


def _label(path: Path, section: str, index: int, item: Any, key: str) -> str:
    ident = item.get(key) if isinstance(item, dict) else None
    return f"{path}: {section}[{index}]" + (f" ({key} {ident})" if ident is not None else "")


def _unique(record: _Record, field: str, value: Any, seen: Dict[Any, str]) -> None:
    if value in seen:
        raise record.fail(field, f"duplicate value {value!r} (also used by {seen[value]})")
    seen[value] = record.where


def _products(path: Path) -> List[Product]:
    data = _load_yaml(path)
    products: List[Product] = []
    seen_sku: Dict[Any, str] = {}
    seen_name: Dict[Any, str] = {}
    allowed = ("sku", "name", "kind", "price", "currency", "period", "aliases")
    for index, item in enumerate(_section(path, data, "products")):
        record = _Record(_label(path, "products", index, item, "sku"), item, allowed)
        sku, name = record.text("sku"), record.text("name")
        _unique(record, "sku", sku, seen_sku)
        _unique(record, "name", name, seen_name)
        aliases = record.raw("aliases", required=False) or []
        if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            raise record.fail("aliases", "must be a list of texts")
        products.append(
            Product(
                sku=sku,
                name=name,
                kind=record.choice("kind", models.PRODUCT_KINDS),
                price=record.decimal("price"),
                currency=record.currency(),
                period=record.text("period", required=False),
                aliases=[alias.strip() for alias in aliases],
                position=index,
            )
        )
    return products


def _company(path: Path, data: Dict[str, Any], today: Optional[date]) -> Tuple[List[TenantSetting], _Clock]:
    allowed = ("name", "timezone", "account_url", "invoices_path")
    record = _Record(f"{path}: company", data.get("company"), allowed)
    settings = {field: record.text(field) for field in allowed}
    tz = record.time_zone()
    clock = _Clock(today=today or datetime.now(tz).date(), tz=tz)
    return [TenantSetting(key=key, value=value) for key, value in settings.items()], clock


def _opening_hours(path: Path, data: Dict[str, Any]) -> List[OpeningHours]:
    record = _Record(f"{path}: support_hours", data.get("support_hours"), ("timezone", "weekly"))
    tz_name = record.time_zone().key
    weekly = _Record(f"{path}: support_hours.weekly", record.raw("weekly"), WEEKDAYS)
    rows: List[OpeningHours] = []
    for weekday, day_name in enumerate(WEEKDAYS):
        intervals = weekly.raw(day_name, required=False) or []
        if not isinstance(intervals, list):
            raise weekly.fail(day_name, f"must be a list like ['08:00-18:00'] (or [] when closed), got {intervals!r}")
        for interval in intervals:
            match = _INTERVAL.match(str(interval).strip())
            if match is None:
                raise weekly.fail(day_name, f"interval must look like '08:00-18:00', got {interval!r}")
            hour_open, minute_open, hour_close, minute_close = map(int, match.groups())
            try:
                opens, closes = time(hour_open, minute_open), time(hour_close, minute_close)
            except ValueError:
                raise weekly.fail(day_name, f"invalid time in {interval!r}") from None
            if closes <= opens:
                raise weekly.fail(day_name, f"closing time must be after opening time in {interval!r}")
            rows.append(OpeningHours(weekday=weekday, opens=opens, closes=closes, timezone=tz_name))
    if not rows:
        raise weekly.fail("monday", "support must be open at least once a week")
    return rows


def _carriers(path: Path, data: Dict[str, Any]) -> Dict[str, str]:
    carriers = data.get("carriers") or {}
    if not isinstance(carriers, dict):
        raise SeedError(f"{path}: 'carriers' must map carrier names to tracking URL templates")
    for name, template in carriers.items():
        if not isinstance(template, str) or "{tracking_number}" not in template:
            raise SeedError(f"{path}: carriers.{name}: URL template must contain {{tracking_number}}")
    return {str(name): template for name, template in carriers.items()}


def _customers(path: Path, data: Dict[str, Any], clock: _Clock) -> Dict[str, Customer]:
    customers: Dict[str, Customer] = {}
    allowed = ("email", "name", "tier", "country", "created_at")
    for index, item in enumerate(_section(path, data, "customers")):
        record = _Record(_label(path, "customers", index, item, "email"), item, allowed, clock)
        email = record.text("email").lower()
        if not _EMAIL.match(email):
            raise record.fail("email", f"not an e-mail address: {email!r}")
        if email in customers:
            raise record.fail("email", f"duplicate customer {email!r}")
        country = record.text("country")
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise record.fail("country", f"must be an ISO 3166 alpha-2 code such as DE (quote it), got {country!r}")
        customers[email] = Customer(
            id=index + 1,
            email=email,
            name=record.text("name"),
            tier=record.choice("tier", models.CUSTOMER_TIERS),
            country=country,
            created_at=record.moment("created_at"),
        )
    return customers


def _customer_ref(record: _Record, customers: Dict[str, Customer]) -> Customer:
    email = record.text("customer").lower()
    if email not in customers:
        raise record.fail("customer", f"no customer with e-mail {email!r} in 'customers'")
    return customers[email]


def _product_ref(record: _Record, field: str, products: Dict[str, Product]) -> Product:
    sku = record.text(field)
    if sku not in products:
        raise record.fail(field, f"unknown product sku {sku!r}; known: {', '.join(products)}")
    return products[sku]


def _orders(
    path: Path,
    data: Dict[str, Any],
    clock: _Clock,
    customers: Dict[str, Customer],
    products: Dict[str, Product],
    carriers: Dict[str, str],
) -> Dict[int, Order]:
    orders: Dict[int, Order] = {}
    allowed = (
        "id",
        "customer",
        "status",
        "lines",
        "carrier",
        "tracking_number",
        "created_at",
        "shipped_at",
        "estimated_delivery",
        "delivered_at",
        "currency",
    )
    for index, item in enumerate(_section(path, data, "orders")):
        record = _Record(_label(path, "orders", index, item, "id"), item, allowed, clock)
        order_id = record.integer("id", 10000, 99999)
        if order_id in orders:
            raise record.fail("id", f"duplicate order id {order_id}")
        status = record.choice("status", models.ORDER_STATUSES)
        currency = record.currency()
        lines = record.raw("lines")
        if not isinstance(lines, list) or not lines:
            raise record.fail("lines", "must be a non-empty list of {sku, quantity}")
        order_lines = []
        for line_index, line in enumerate(lines):
            line_record = _Record(f"{record.where}: lines[{line_index}]", line, ("sku", "quantity"))
            product = _product_ref(line_record, "sku", products)
            if product.currency != currency:
                raise line_record.fail("sku", f"priced in {product.currency}, the order is in {currency}")
            order_lines.append(
                OrderLine(sku=product.sku, quantity=line_record.integer("quantity", 1), unit_price=product.price)
            )
        carrier = record.text("carrier", required=False)
        tracking_number = record.text("tracking_number", required=False)
        physical = any(products[line.sku].kind == "hardware" for line in order_lines)
        if status in SHIPPING_STATUSES and not physical:
            raise record.fail("status", f"an order without hardware cannot be '{status}'")
        if physical and status in SHIPPED_STATUSES and not (carrier and tracking_number):
            raise record.fail("carrier", f"a '{status}' order with hardware needs a carrier and a tracking_number")
        if bool(carrier) != bool(tracking_number):
            raise record.fail("tracking_number", "carrier and tracking_number go together")
        if carrier and carrier not in carriers:
            raise record.fail("carrier", f"unknown carrier {carrier!r}; add it under 'carriers'")
        order = Order(
            id=order_id,
            customer_id=_customer_ref(record, customers).id,
            status=status,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=carriers[carrier].format(tracking_number=tracking_number) if carrier else None,
            created_at=record.moment("created_at"),
            shipped_at=record.moment("shipped_at", required=physical and status in SHIPPED_STATUSES),
            estimated_delivery=record.day("estimated_delivery", required=status in SHIPPING_STATUSES),
            delivered_at=record.moment("delivered_at", required=status in ("delivered", "returned")),
            total=sum((line.unit_price * line.quantity for line in order_lines), Decimal("0.00")),
            currency=currency,
            lines=order_lines,
        )
        if order.shipped_at is not None and order.shipped_at < order.created_at:
            raise record.fail("shipped_at", "is before created_at")
        if order.delivered_at is not None and order.delivered_at < (order.shipped_at or order.created_at):
            raise record.fail("delivered_at", "is before the order shipped")
        orders[order_id] = order
    return orders


def _describe_lines(order: Order, products: Dict[str, Product]) -> str:
    items = ", ".join(f"{line.quantity} × {products[line.sku].name}" for line in order.lines)
    return f"Order {order.id}: {items}"


def _invoices(
    path: Path,
    data: Dict[str, Any],
    clock: _Clock,
    customers: Dict[str, Customer],
    orders: Dict[int, Order],
    products: Dict[str, Product],
) -> List[Invoice]:
    invoices: List[Invoice] = []
    seen: Dict[Any, str] = {}
    allowed = (
        "id",
        "customer",
        "order",
        "description",
        "amount",
        "vat_rate",
        "currency",
        "status",
        "issued_at",
        "due_at",
    )
    for index, item in enumerate(_section(path, data, "invoices")):
        record = _Record(_label(path, "invoices", index, item, "id"), item, allowed, clock)
        invoice_id = record.text("id")
        if not INVOICE_ID_PATTERN.match(invoice_id):
            raise record.fail("id", f"must look like INV-2025-0107, got {invoice_id!r}")
        _unique(record, "id", invoice_id, seen)
        customer = _customer_ref(record, customers)
        order: Optional[Order] = None
        if record.has("order"):
            order_id = record.integer("order", 10000, 99999)
            if order_id not in orders:
                raise record.fail("order", f"no order {order_id} in 'orders'")
            order = orders[order_id]
            if order.customer_id != customer.id:
                raise record.fail("order", f"order {order_id} belongs to another customer")
        amount = record.decimal("amount", required=order is None)
        if amount is None:
            assert order is not None
            amount = order.total
        description = record.text("description", required=order is None)
        if description is None:
            assert order is not None
            description = _describe_lines(order, products)
        vat_rate = record.decimal("vat_rate")
        if vat_rate > 100:
            raise record.fail("vat_rate", f"is a percentage (0-100), got {vat_rate}")
        currency = record.currency(default=order.currency if order is not None else "EUR")
        if order is not None and currency != order.currency:
            raise record.fail("currency", f"differs from order {order.id}'s currency {order.currency}")
        issued_at, due_at = record.day("issued_at"), record.day("due_at")
        if due_at < issued_at:
            raise record.fail("due_at", "is before issued_at")
        invoices.append(
            Invoice(
                id=invoice_id,
                customer_id=customer.id,
                order_id=order.id if order is not None else None,
                description=description,
                amount=amount,
                vat_rate=vat_rate,
                vat=(amount * vat_rate / 100).quantize(models.CENT, rounding=ROUND_HALF_UP),
                currency=currency,
                status=record.choice("status", models.INVOICE_STATUSES),
                issued_at=issued_at,
                due_at=due_at,
            )
        )
    return invoices


def _subscriptions(
    path: Path, data: Dict[str, Any], clock: _Clock, customers: Dict[str, Customer], products: Dict[str, Product]
) -> List[Subscription]:
    subscriptions: List[Subscription] = []
    allowed = ("customer", "sku", "plan", "status", "started_at", "renews_at", "price", "currency")
    for index, item in enumerate(_section(path, data, "subscriptions")):
        record = _Record(f"{path}: subscriptions[{index}]", item, allowed, clock)
        product = _product_ref(record, "sku", products)
        if product.kind != "subscription":
            raise record.fail("sku", f"{product.sku} is a {product.kind}, not a subscription")
        plan = record.choice("plan", models.SUBSCRIPTION_PLANS)
        status = record.choice("status", models.SUBSCRIPTION_STATUSES)
        price = record.decimal("price", required=plan != "monthly") or product.price
        subscriptions.append(
            Subscription(
                customer_id=_customer_ref(record, customers).id,
                sku=product.sku,
                plan=plan,
                status=status,
                started_at=record.day("started_at"),
                renews_at=record.day("renews_at", required=status != "cancelled"),
                price=price,
                currency=record.currency(default=product.currency),
            )
        )
    return subscriptions


def _licenses(
    path: Path, data: Dict[str, Any], clock: _Clock, customers: Dict[str, Customer], products: Dict[str, Product]
) -> List[License]:
    licenses: List[License] = []
    seen: Dict[Any, str] = {}
    allowed = ("key", "customer", "sku", "seats", "activations_used", "status", "expires_at")
    for index, item in enumerate(_section(path, data, "licenses")):
        record = _Record(_label(path, "licenses", index, item, "key"), item, allowed, clock)
        key = record.text("key")
        if not _LICENSE_KEY.match(key):
            raise record.fail("key", f"must look like KOS-7Q2M-4HXD, got {key!r}")
        _unique(record, "key", key, seen)
        product = _product_ref(record, "sku", products)
        if product.kind != "license":
            raise record.fail("sku", f"{product.sku} is a {product.kind}, not a license")
        seats = record.integer("seats", 1)
        used = record.integer("activations_used", 0)
        if used > seats:
            raise record.fail("activations_used", f"{used} activations exceed {seats} seats")
        licenses.append(
            License(
                key=key,
                customer_id=_customer_ref(record, customers).id,
                sku=product.sku,
                seats=seats,
                activations_used=used,
                status=record.choice("status", models.LICENSE_STATUSES),
                expires_at=record.day("expires_at", required=False),
            )
        )
    return licenses


def load_tenant(tenant_dir: Path, today: Optional[date] = None) -> Dict[str, List[Any]]:
    """Validate the tenant files and build the model objects, table by table (nothing is written)."""
    tenant_dir = Path(tenant_dir)
    products = _products(tenant_dir / "products.yml")
    demo_path = tenant_dir / "demo.yml"
    data = _load_yaml(demo_path)
    known = {"company", "support_hours", "carriers", "customers", "orders", "invoices", "subscriptions", "licenses"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise SeedError(f"{demo_path}: unknown section(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    settings, clock = _company(demo_path, data, today)
    by_sku = {product.sku: product for product in products}
    customers = _customers(demo_path, data, clock)
    orders = _orders(demo_path, data, clock, customers, by_sku, _carriers(demo_path, data))
    return {
        "tenant_settings": settings,
        "products": products,
        "customers": list(customers.values()),
        "orders": list(orders.values()),
        "order_lines": [line for order in orders.values() for line in order.lines],
        "invoices": _invoices(demo_path, data, clock, customers, orders, by_sku),
        "subscriptions": _subscriptions(demo_path, data, clock, customers, by_sku),
        "licenses": _licenses(demo_path, data, clock, customers, by_sku),
        "opening_hours": _opening_hours(demo_path, data),
    }


def seed(url: str, tenant_dir: Path = DEFAULT_TENANT_DIR, today: Optional[date] = None) -> Dict[str, int]:
    """Replace the business tables at `url` with the tenant's data; returns the row count per table."""
    tables = load_tenant(tenant_dir, today)
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            Base.metadata.drop_all(connection)
            Base.metadata.create_all(connection)
            session = Session(bind=connection, future=True)
            for name in (
                "tenant_settings",
                "products",
                "customers",
                "orders",
                "invoices",
                "subscriptions",
                "licenses",
                "opening_hours",
            ):
                session.add_all(tables[name])
                session.flush()
            session.close()
    finally:
        engine.dispose()
    return {name: len(rows) for name, rows in tables.items()}


def main(argv: Optional[List[str]] = None) -> int:
    """CLI: `python -m backline seed [--url URL] [--tenant-dir DIR]`."""
    parser = argparse.ArgumentParser(prog="backline seed", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help=f"SQLAlchemy URL (default: ${db.ENV_URL} or var/business.db)")
    parser.add_argument("--tenant-dir", type=Path, default=DEFAULT_TENANT_DIR, help="folder with demo.yml")
    args = parser.parse_args(argv)
    url = args.url or db.database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        counts = seed(url, args.tenant_dir)
    except SeedError as error:
        print(f"seed failed: {error}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:
        print(f"seed failed: cannot write to {shown}: {error}", file=sys.stderr)
        return 1
    print(f"Seeded {shown} from {args.tenant_dir}:")
    for name, count in counts.items():
        print(f"  {name:<16} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
