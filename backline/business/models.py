"""SQLAlchemy models of the demo tenant's business database (portable: SQLite and PostgreSQL)."""

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Time,
)
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:  # mypy cannot subclass declarative_base()'s dynamic class (SQLAlchemy 1.4 ships no stubs for it)

    class Base:
        metadata: MetaData

        def __init__(self, **kwargs: Any) -> None: ...

else:
    Base = declarative_base()

CUSTOMER_TIERS = ("standard", "plus", "enterprise")
PRODUCT_KINDS = ("subscription", "license", "hardware")
ORDER_STATUSES = (
    "processing",
    "shipped",
    "in_transit",
    "delivered",
    "delayed",
    "cancelled",
    "returned",
)
INVOICE_STATUSES = ("paid", "open", "overdue", "refunded")
SUBSCRIPTION_STATUSES = ("active", "cancelled", "past_due")
SUBSCRIPTION_PLANS = ("monthly", "yearly")
LICENSE_STATUSES = ("active", "expired", "revoked")

CENT = Decimal("0.01")


def _in(column: str, values: tuple) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Decimal2(TypeDecorator):
    """A Decimal with two places (money, percentages) stored as integer hundredths: exact everywhere."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Optional[int]:
        if value is None:
            return None
        cents = (Decimal(str(value)) / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(cents)

    def process_result_value(self, value: Any, dialect: Any) -> Optional[Decimal]:
        if value is None:
            return None
        return (Decimal(value) * CENT).quantize(CENT)


class TenantSetting(Base):
    """Key/value facts about the tenant (company name, time zone, billing portal)."""

    __tablename__ = "tenant_settings"

    key = Column(String(64), primary_key=True)
    value = Column(String(500), nullable=False)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(_in("tier", CUSTOMER_TIERS), name="ck_customers_tier"),)

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    email = Column(String(254), nullable=False, unique=True)
    tier = Column(String(20), nullable=False)
    country = Column(String(2), nullable=False)
    created_at = Column(DateTime, nullable=False)

    orders = relationship("Order", back_populates="customer", order_by="Order.id")


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint(_in("kind", PRODUCT_KINDS), name="ck_products_kind"),)

    sku = Column(String(40), primary_key=True)
    name = Column(String(200), nullable=False, unique=True)
    kind = Column(String(20), nullable=False)
    price = Column(Decimal2, nullable=False)
    currency = Column(String(3), nullable=False)
    period = Column(String(20))
    aliases = Column(JSON, nullable=False, default=list)
    position = Column(Integer, nullable=False)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="ck_orders_status"),
        CheckConstraint("id BETWEEN 10000 AND 99999", name="ck_orders_id_range"),
    )

    id = Column(Integer, primary_key=True, autoincrement=False)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False)
    carrier = Column(String(40))
    tracking_number = Column(String(60))
    tracking_url = Column(String(500))
    created_at = Column(DateTime, nullable=False)
    shipped_at = Column(DateTime)
    estimated_delivery = Column(Date)
    delivered_at = Column(DateTime)
    total = Column(Decimal2, nullable=False)
    currency = Column(String(3), nullable=False)

    customer = relationship("Customer", back_populates="orders")
    lines = relationship("OrderLine", back_populates="order", order_by="OrderLine.id")
    invoices = relationship("Invoice", back_populates="order", order_by="Invoice.id")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_order_lines_quantity"),)

    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id"), nullable=False, index=True)
    sku = Column(String(40), ForeignKey("products.sku"), nullable=False)
    quantity = Column(Integer, nullable=False)
    unit_price = Column(Decimal2, nullable=False)

    order = relationship("Order", back_populates="lines")
    product = relationship("Product")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint(_in("status", INVOICE_STATUSES), name="ck_invoices_status"),)

    id = Column(String(20), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    order_id = Column(Integer, ForeignKey("orders.id"), index=True)
    description = Column(String(300), nullable=False)
    amount = Column(Decimal2, nullable=False)
    vat_rate = Column(Decimal2, nullable=False)
    vat = Column(Decimal2, nullable=False)
    currency = Column(String(3), nullable=False)
    status = Column(String(20), nullable=False)
    issued_at = Column(Date, nullable=False)
    due_at = Column(Date, nullable=False)

    customer = relationship("Customer")
    order = relationship("Order", back_populates="invoices")


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIPTION_STATUSES), name="ck_subscriptions_status"),
        CheckConstraint(_in("plan", SUBSCRIPTION_PLANS), name="ck_subscriptions_plan"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    sku = Column(String(40), ForeignKey("products.sku"), nullable=False)
    plan = Column(String(20), nullable=False)
    status = Column(String(20), nullable=False)
    started_at = Column(Date, nullable=False)
    renews_at = Column(Date)
    price = Column(Decimal2, nullable=False)
    currency = Column(String(3), nullable=False)

    customer = relationship("Customer")
    product = relationship("Product")


class License(Base):
    __tablename__ = "licenses"
    __table_args__ = (
        CheckConstraint(_in("status", LICENSE_STATUSES), name="ck_licenses_status"),
        CheckConstraint("activations_used <= seats", name="ck_licenses_activations"),
    )

    key = Column(String(20), primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    sku = Column(String(40), ForeignKey("products.sku"), nullable=False)
    seats = Column(Integer, nullable=False)
    activations_used = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False)
    expires_at = Column(Date)

    customer = relationship("Customer")
    product = relationship("Product")


class OpeningHours(Base):
    """One opening interval of customer support on one weekday (0 = Monday), in local time."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_opening_hours_weekday"),
        CheckConstraint("closes > opens", name="ck_opening_hours_interval"),
    )

    id = Column(Integer, primary_key=True)
    weekday = Column(Integer, nullable=False)
    opens = Column(Time, nullable=False)
    closes = Column(Time, nullable=False)
    timezone = Column(String(64), nullable=False)
