"""The demo tenant's business DB: seeding, queries, support hours and the formatted answers."""

import shutil
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from sqlalchemy import inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from backline.business import answers, db, queries, replies
from backline.business.ids import normalise_invoice_id, normalise_order_id
from backline.business.models import ORDER_STATUSES, Base
from backline.business.seed import SeedError, load_tenant, main, seed
from tests.conftest import SEED_DAY, TENANT_DIR, sqlite_url

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def noon_on(day: date) -> datetime:
    return utc(day.year, day.month, day.day, 11, 0)


def dump(url: str) -> Dict[str, List[tuple]]:
    """Every row of every business table, in primary-key order."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def demo_data() -> Dict[str, Any]:
    return yaml.safe_load((TENANT_DIR / "demo.yml").read_text(encoding="utf-8"))


# --- database URL and engine -------------------------------------------------------------


def test_database_url_defaults_to_var_business_db_under_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(db.ENV_URL, raising=False)
    expected = Path(__file__).resolve().parents[1] / "var" / "business.db"
    assert db.database_url() == f"sqlite:///{expected}"
    assert expected.is_absolute()


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(db.ENV_URL, "postgresql://backline@db/business")
    assert db.database_url() == "postgresql://backline@db/business"


def test_make_engine_creates_the_sqlite_directory(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "var" / "business.db"
    engine = db.make_engine(sqlite_url(target))
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
    assert target.parent.is_dir()


def test_schema_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()
    ddl = "\n".join(str(CreateTable(table).compile(dialect=dialect)) for table in Base.metadata.sorted_tables)
    assert "CREATE TABLE orders" in ddl
    assert "CHECK (status IN ('processing', 'shipped'" in ddl
    assert "JSON" in ddl and "DATETIME" not in ddl


def test_seed_and_answers_on_postgresql(postgres_url: str) -> None:
    url = postgres_url
    counts = seed(url, TENANT_DIR, today=SEED_DAY)
    assert counts["orders"] == len(demo_data()["orders"])
    reply = replies.order_status_reply("10023", now=noon_on(SEED_DAY), url=url)
    assert "DHL" in reply.text and "00340434161094012345" in reply.text
    invoice = replies.invoice_reply("INV-2025-0107", now=noon_on(SEED_DAY), url=url)
    assert "€236.81" in invoice.text
    assert seed(url, TENANT_DIR, today=SEED_DAY) == counts
    db.dispose_engines()


# --- seeding ------------------------------------------------------------------------------


def test_seed_counts_match_the_tenant_files(business_url_fixed_day: str) -> None:
    data = demo_data()
    products = yaml.safe_load((TENANT_DIR / "products.yml").read_text(encoding="utf-8"))["products"]
    rows = dump(business_url_fixed_day)
    assert len(rows["customers"]) == len(data["customers"]) >= 8
    assert len(rows["orders"]) == len(data["orders"]) >= 15
    assert len(rows["invoices"]) == len(data["invoices"]) >= 15
    assert len(rows["subscriptions"]) == len(data["subscriptions"])
    assert len(rows["licenses"]) == len(data["licenses"])
    assert len(rows["products"]) == len(products)
    assert len(rows["opening_hours"]) == 6


def test_seed_covers_every_order_status_and_customer_tier(business_session) -> None:
    orders = [queries.get_order(business_session, item["id"]) for item in demo_data()["orders"]]
    assert {order.status for order in orders} == set(ORDER_STATUSES)
    assert {order.customer.tier for order in orders} == {"standard", "plus", "enterprise"}


def test_seed_is_idempotent(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "twice.db")
    first_counts = seed(url, TENANT_DIR, today=SEED_DAY)
    first = dump(url)
    assert seed(url, TENANT_DIR, today=SEED_DAY) == first_counts
    assert dump(url) == first
    fresh = sqlite_url(tmp_path / "fresh.db")
    seed(fresh, TENANT_DIR, today=SEED_DAY)
    assert dump(fresh) == first


def test_seed_replaces_stale_rows(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "stale.db")
    seed(url, TENANT_DIR, today=SEED_DAY)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE orders SET status = 'cancelled' WHERE id = 10023")
        connection.exec_driver_sql("DELETE FROM invoices WHERE id = 'INV-2025-0107'")
    engine.dispose()
    seed(url, TENANT_DIR, today=SEED_DAY)
    with db.session_scope(url) as session:
        assert queries.get_order(session, "10023").status == "shipped"
        assert queries.get_invoice(session, "INV-2025-0107") is not None


def test_relative_dates_follow_the_seed_day(tmp_path: Path) -> None:
    later = SEED_DAY + timedelta(days=10)
    url = sqlite_url(tmp_path / "later.db")
    seed(url, TENANT_DIR, today=later)
    with db.session_scope(url) as session:
        order = queries.get_order(session, "10023")
        historic = queries.get_order(session, "10007")
    assert order.estimated_delivery == later + timedelta(days=2)
    assert answers.local_day(order.shipped_at, queries.ZoneInfo(BERLIN)) == later - timedelta(days=2)
    assert historic.estimated_delivery == date(2025, 1, 7)


def _broken_tenant(tmp_path: Path, mutate: Callable[[Dict[str, Any]], None]) -> Path:
    tenant = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, tenant)
    data = demo_data()
    mutate(data)
    (tenant / "demo.yml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return tenant


def _order(data: Dict[str, Any], order_id: int) -> Dict[str, Any]:
    return next(order for order in data["orders"] if order["id"] == order_id)


def _order_index(order_id: int) -> int:
    return next(i for i, order in enumerate(demo_data()["orders"]) if order["id"] == order_id)


BROKEN = {
    "status typo": (
        lambda d: _order(d, 10023).update(status="shiped"),
        ["orders[{i10023}] (id 10023)", "field 'status'", "'shiped'", "in_transit"],
    ),
    "unknown sku": (
        lambda d: _order(d, 10023)["lines"][0].update(sku="KH-X9"),
        ["orders[{i10023}] (id 10023): lines[0]", "field 'sku'", "'KH-X9'"],
    ),
    "shipped without tracking": (
        lambda d: _order(d, 10023).pop("tracking_number"),
        ["(id 10023)", "field 'carrier'", "needs a carrier and a tracking_number"],
    ),
    "bad date": (
        lambda d: _order(d, 10023).update(shipped_at="last tuesday"),
        ["(id 10023)", "field 'shipped_at'", "'last tuesday'"],
    ),
    "unknown field": (
        lambda d: _order(d, 10023).update(shiped_at="2 days ago"),
        ["(id 10023)", "unknown field(s) shiped_at"],
    ),
    "duplicate order": (
        lambda d: _order(d, 10031).update(id=10023),
        ["field 'id'", "duplicate order id 10023"],
    ),
    "bad invoice id": (
        lambda d: d["invoices"][0].update(id="INV-25-107"),
        ["invoices[0] (id INV-25-107)", "field 'id'", "INV-2025-0107"],
    ),
    "unknown customer": (
        lambda d: d["invoices"][0].update(customer="nobody@example.com"),
        ["invoices[0] (id INV-2025-0107)", "field 'customer'", "nobody@example.com"],
    ),
    "bad tier": (
        lambda d: d["customers"][1].update(tier="gold"),
        ["customers[1] (email ben.carter@example.org)", "field 'tier'", "'gold'"],
    ),
    "too many activations": (
        lambda d: d["licenses"][0].update(activations_used=5),
        ["licenses[0] (key KOS-7Q2M-4HXD)", "field 'activations_used'", "exceed 1 seats"],
    ),
    "digital order in transit": (
        lambda d: _order(d, 10019).update(status="in_transit"),
        ["(id 10019)", "field 'status'", "an order without hardware cannot be 'in_transit'"],
    ),
    "missing section": (lambda d: d.pop("orders"), ["'orders' must be a non-empty list"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_demo_yml_names_record_and_field(tmp_path: Path, case: str) -> None:
    mutate, fragments = BROKEN[case]
    tenant = _broken_tenant(tmp_path, mutate)
    with pytest.raises(SeedError) as raised:
        load_tenant(tenant, today=SEED_DAY)
    message = str(raised.value)
    assert message.startswith(f"{tenant / 'demo.yml'}: ")
    for fragment in fragments:
        assert fragment.format(i10023=_order_index(10023)) in message


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    tenant = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, tenant)
    (tenant / "demo.yml").write_text("orders: [unclosed\n", encoding="utf-8")
    with pytest.raises(SeedError, match="not valid YAML"):
        load_tenant(tenant)


def test_failed_seed_leaves_the_database_untouched(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "keep.db")
    seed(url, TENANT_DIR, today=SEED_DAY)
    before = dump(url)
    tenant = _broken_tenant(tmp_path, lambda d: _order(d, 10023).update(status="lost"))
    with pytest.raises(SeedError):
        seed(url, tenant, today=SEED_DAY)
    assert dump(url) == before


def test_main_prints_counts_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = sqlite_url(tmp_path / "cli.db")
    assert main(["--url", url, "--tenant-dir", str(TENANT_DIR)]) == 0
    out = capsys.readouterr().out
    assert url in out
    assert f"orders           {len(demo_data()['orders'])}" in out
    assert set(inspect(db.make_engine(url)).get_table_names()) >= {"orders", "invoices", "opening_hours"}
    tenant = _broken_tenant(tmp_path, lambda d: d["customers"][0].update(country="Germany"))
    assert main(["--url", url, "--tenant-dir", str(tenant)]) == 2
    err = capsys.readouterr().err
    assert "customers[0] (email ann@example.com)" in err and "field 'country'" in err


# --- identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10023", "10023"),
        ("#10023", "10023"),
        (" order 10023 ", "10023"),
        (10023, "10023"),
        ("order no. 10023.", "10023"),
        ("1002", None),
        ("100234", None),
        ("01234", None),
        ("", None),
        (None, None),
        ("10023 and 10031", None),
        ("INV-2025-0107", None),
    ],
)
def test_normalise_order_id(value: Any, expected: Any) -> None:
    assert normalise_order_id(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("INV-2025-0107", "INV-2025-0107"),
        ("inv-2025-0107", "INV-2025-0107"),
        ("INV 2025 0107", "INV-2025-0107"),
        ("invoice inv2025-107 please", "INV-2025-0107"),
        ("10023", None),
        ("INV-2025", None),
        (None, None),
    ],
)
def test_normalise_invoice_id(value: Any, expected: Any) -> None:
    assert normalise_invoice_id(value) == expected


# --- queries ------------------------------------------------------------------------------


def test_order_10023_is_shipped_with_tracking(business_session) -> None:
    order = queries.get_order(business_session, "#10023")
    assert order.id == 10023 and order.status == "shipped"
    assert (order.carrier, order.tracking_number) == ("DHL", "00340434161094012345")
    assert order.tracking_url.endswith("tracking-id=00340434161094012345")
    assert order.estimated_delivery == SEED_DAY + timedelta(days=2)
    assert answers.local_day(order.shipped_at, queries.ZoneInfo(BERLIN)) == SEED_DAY - timedelta(days=2)
    assert order.customer.email == "ann@example.com" and order.customer.tier == "plus"
    assert [(line.sku, line.quantity) for line in order.lines] == [("KH-X1", 1)]
    assert order.total == Decimal("249.00") and order.currency == "EUR"
    assert order.invoices == (queries.InvoiceRef("INV-2026-0290", "paid"),)


def test_local_times_are_stored_as_utc(business_session) -> None:
    assert queries.get_order(business_session, "10023").shipped_at == utc(2026, 11, 21, 8, 30)  # 09:30 CET
    assert queries.get_order(business_session, "10007").created_at == utc(2025, 1, 3, 9, 41)  # 10:41 CET
    assert queries.get_order(business_session, "10019").created_at == utc(2025, 6, 3, 17, 2)  # 19:02 CEST


def test_order_total_sums_its_lines(business_session) -> None:
    order = queries.get_order(business_session, 10034)
    assert order.total == Decimal("7445.00")  # 5 × 1,290 + 5 × 199


def test_unknown_order_and_invoice_are_none(business_session) -> None:
    assert queries.get_order(business_session, "99999") is None
    assert queries.get_order(business_session, "abc") is None
    assert queries.get_invoice(business_session, "INV-2099-0001") is None
    assert not queries.order_exists(business_session, "99999")
    assert queries.order_exists(business_session, "10023")


def test_invoice_amounts_are_exact(business_session) -> None:
    invoice = queries.get_invoice(business_session, "inv 2025 0107")
    assert invoice.id == "INV-2025-0107" and invoice.order_id == 10007
    assert (invoice.amount, invoice.vat_rate, invoice.vat, invoice.total) == (
        Decimal("199.00"),
        Decimal("19.00"),
        Decimal("37.81"),
        Decimal("236.81"),
    )
    assert (invoice.status, invoice.issued_at, invoice.due_at) == ("paid", date(2025, 1, 7), date(2025, 1, 21))


def test_customer_by_email_is_case_insensitive(business_session) -> None:
    customer = queries.customer_by_email(business_session, "  Ann@Example.COM ")
    assert customer.name == "Ann Becker" and customer.tier == "plus" and customer.country == "DE"
    assert queries.customer_by_email(business_session, "nobody@example.com") is None
    orders = queries.orders_for_customer(business_session, "ann@example.com")
    assert [order.id for order in orders] == [10023, 10007]


def test_subscriptions_and_licenses(business_session) -> None:
    [subscription] = queries.subscriptions_for_customer(business_session, "ann@example.com")
    assert (subscription.sku, subscription.plan, subscription.status) == ("KC-PRO", "monthly", "active")
    assert subscription.renews_at == SEED_DAY + timedelta(days=8) and subscription.price == Decimal("29.00")
    license_ = queries.get_license(business_session, "kos-9tra-2klm")
    assert (license_.seats, license_.activations_used, license_.status) == (3, 3, "active")
    assert license_.customer.email == "ann@example.com"


def test_catalogue_matches_products_yml(business_session) -> None:
    products = yaml.safe_load((TENANT_DIR / "products.yml").read_text(encoding="utf-8"))["products"]
    catalogue = queries.catalogue(business_session)
    assert [(p.sku, p.name, p.kind, p.price, p.period) for p in catalogue] == [
        (p["sku"], p["name"], p["kind"], Decimal(str(p["price"])).quantize(Decimal("0.01")), p.get("period"))
        for p in products
    ]
    assert queries.find_product(business_session, "the router").sku == "KH-X1"
    assert queries.find_product(business_session, "kestrel cloud pro").sku == "KC-PRO"
    assert queries.find_product(business_session, "KL-LAPTOP14").name == "Kestrel Book 14"
    assert queries.find_product(business_session, "Kestrel Fridge") is None


# --- support hours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at, is_open",
    [
        (utc(2026, 11, 23, 9, 0), True),  # Monday 10:00 CET
        (utc(2026, 11, 23, 6, 59), False),  # Monday 07:59 CET
        (utc(2026, 11, 23, 7, 0), True),  # Monday 08:00 CET: opening minute
        (utc(2026, 11, 23, 17, 0), False),  # Monday 18:00 CET: closed on the hour
        (utc(2026, 11, 28, 12, 59), True),  # Saturday 13:59 CET
        (utc(2026, 11, 28, 13, 0), False),  # Saturday 14:00 CET
        (utc(2026, 11, 29, 11, 0), False),  # Sunday
        (utc(2026, 7, 6, 6, 30), True),  # Monday 08:30 CEST (summer time)
        (utc(2026, 11, 23, 6, 30), False),  # Monday 07:30 CET (winter time)
        (datetime(2026, 11, 23, 9, 0), True),  # naive means UTC
        (datetime(2026, 11, 23, 3, 0, tzinfo=queries.ZoneInfo("America/New_York")), True),  # Monday 09:00 CET
        (datetime(2026, 11, 23, 8, 30, tzinfo=queries.ZoneInfo("Asia/Tokyo")), False),  # Monday 00:30 CET
    ],
)
def test_is_open_now(business_session, at: datetime, is_open: bool) -> None:
    assert queries.is_open_now(business_session, at) is is_open


def test_support_status_closing_and_next_opening(business_session) -> None:
    hours = queries.support_hours(business_session)
    assert hours.timezone == BERLIN
    open_status = hours.status(utc(2026, 11, 23, 9, 0))
    assert open_status.is_open and open_status.closes_at.strftime("%H:%M") == "18:00"
    saturday_evening = hours.status(utc(2026, 11, 28, 18, 0))
    assert not saturday_evening.is_open
    assert saturday_evening.next_opening.isoformat() == "2026-11-30T08:00:00+01:00"


# --- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (Decimal("1290"), "EUR", "€1,290.00"),
        (Decimal("9"), "USD", "$9.00"),
        (Decimal("0.5"), "GBP", "£0.50"),
        (Decimal("12.5"), "CHF", "CHF 12.50"),
    ],
)
def test_format_money(amount: Decimal, currency: str, text: str) -> None:
    assert answers.format_money(amount, currency) == text


def test_format_dates() -> None:
    assert answers.format_day(date(2026, 11, 25), SEED_DAY) == "Wednesday 25 November"
    assert answers.format_day(date(2025, 1, 7), SEED_DAY) == "Tuesday 7 January 2025"
    assert answers.on_day(SEED_DAY, SEED_DAY) == "today"
    assert answers.on_day(SEED_DAY + timedelta(days=1), SEED_DAY) == "tomorrow (Tuesday 24 November)"
    assert answers.on_day(SEED_DAY - timedelta(days=1), SEED_DAY) == "yesterday (Sunday 22 November)"
    assert answers.on_day(date(2026, 12, 1), SEED_DAY) == "on Tuesday 1 December"
    assert answers.format_percent(Decimal("19.00")) == "19%" and answers.format_percent(Decimal("5.50")) == "5.5%"


def _order_text(url: str, order_id: str, focus: str = "status") -> str:
    return replies.order_status_reply(order_id, focus=focus, now=noon_on(SEED_DAY), url=url).text


def test_order_status_answer_for_shipped_order(business_url_fixed_day: str) -> None:
    text = _order_text(business_url_fixed_day, "10023")
    assert text.startswith("Order 10023 (Kestrel Hub X1) has shipped: it left our warehouse on Saturday 21 November")
    assert "with DHL" in text and "it should arrive on Wednesday 25 November." in text
    assert "Tracking number: 00340434161094012345 — you can follow it at https://www.dhl.com/" in text


def test_track_shipment_leads_with_tracking(business_url_fixed_day: str) -> None:
    text = _order_text(business_url_fixed_day, "10023", focus="tracking")
    assert text.startswith("Order 10023 (Kestrel Hub X1) is with DHL, tracking number 00340434161094012345")
    processing = _order_text(business_url_fixed_day, "10031", focus="tracking")
    assert processing.startswith("Order 10031 (2 × Kestrel Cam 2) hasn't shipped yet, so there's no tracking number")
    assert "Estimated delivery: Friday 27 November." in processing


@pytest.mark.parametrize(
    "order_id, fragments",
    [
        ("10031", ["is being processed and hasn't shipped yet", "Estimated delivery: Friday 27 November."]),
        ("10042", ["is on its way", "UPS", "should arrive tomorrow (Tuesday 24 November)", "1Z9A4F860312345678"]),
        ("10056", ["is delayed", "GLS", "the new estimated delivery date is Thursday 26 November"]),
        ("10059", ["is delayed", "was expected on Saturday 21 November", "hasn't confirmed a new date yet"]),
        ("10064", ["was delivered on Thursday 12 November", "DPD, tracking number 01505298760064"]),
        ("10019", ["(Kestrel Office Suite) was delivered on Tuesday 3 June 2025."]),
        ("10061", ["was cancelled, so it won't ship.", "Invoice INV-2026-0279 for it has been refunded."]),
        ("10097", ["(2 × Kestrel Dock) was cancelled, so it won't ship."]),
        ("10078", ["was returned to us.", "Invoice INV-2026-0224 for it has been refunded."]),
    ],
)
def test_order_status_answer_per_status(business_url_fixed_day: str, order_id: str, fragments: List[str]) -> None:
    text = _order_text(business_url_fixed_day, order_id)
    for fragment in fragments:
        assert fragment in text


def test_unknown_and_malformed_order_numbers(business_url_fixed_day: str) -> None:
    unknown = replies.order_status_reply("99999", url=business_url_fixed_day)
    assert not unknown.found
    assert unknown.text == "I couldn't find order 99999 — could you check the number?"
    malformed = replies.order_status_reply("12", url=business_url_fixed_day)
    assert not malformed.found and "order numbers have 5 digits" in malformed.text
    assert replies.order_status_reply(None, url=business_url_fixed_day).text == answers.ASK_ORDER_ID


def test_invoice_answer(business_url_fixed_day: str) -> None:
    reply = replies.invoice_reply("INV-2025-0107", now=noon_on(SEED_DAY), url=business_url_fixed_day)
    assert reply.found and reply.customer_tier == "plus" and reply.record_id == "INV-2025-0107"
    assert "Invoice INV-2025-0107 (Order 10007: 1 × Kestrel Dock) was issued on Tuesday 7 January 2025." in reply.text
    assert "Total: €236.81 (€199.00 + €37.81 VAT at 19%). It's paid." in reply.text
    assert "in your Kestrel account at https://account.kestrel.example under Billing → Invoices." in reply.text
    lowered = reply.text.lower()
    assert not any(word in lowered for word in ("e-mail", "email", "sent", "inbox"))


@pytest.mark.parametrize(
    "invoice_id, fragment",
    [
        ("INV-2026-0289", "€888.93 (€747.00 + €141.93 VAT at 19%). It's open and due on Saturday 19 December."),
        ("INV-2026-0257", "€3,890.00 (no VAT charged). It's overdue — payment was due on Tuesday 17 November."),
        ("INV-2026-0224", "It has been refunded."),
    ],
)
def test_invoice_answer_per_status(business_url_fixed_day: str, invoice_id: str, fragment: str) -> None:
    assert fragment in replies.invoice_reply(invoice_id, now=noon_on(SEED_DAY), url=business_url_fixed_day).text


def test_unknown_invoice(business_url_fixed_day: str) -> None:
    reply = replies.invoice_reply("INV-2025-9999", url=business_url_fixed_day)
    assert not reply.found and reply.text == "I couldn't find invoice INV-2025-9999 — could you check the number?"


WEEK = (
    "Our support team is available Monday to Friday 08:00–18:00 and Saturday 10:00–14:00 (Berlin time); "
    "closed on Sunday."
)


@pytest.mark.parametrize(
    "at, status",
    [
        (utc(2026, 11, 23, 9, 0), "We're open right now, until 18:00."),
        (utc(2026, 11, 23, 5, 0), "We're closed right now; we open again today at 08:00."),
        (utc(2026, 11, 27, 18, 0), "We're closed right now; we open again tomorrow at 10:00."),
        (utc(2026, 11, 28, 14, 0), "We're closed right now; we open again on Monday at 08:00."),
    ],
)
def test_opening_hours_answer(business_url_fixed_day: str, at: datetime, status: str) -> None:
    assert replies.opening_hours_reply(now=at, url=business_url_fixed_day).text == f"{WEEK} {status}"


def test_pricing_answers(business_url_fixed_day: str) -> None:
    full = replies.pricing_reply(url=business_url_fixed_day).text
    assert full.startswith("Here are our current prices (excl. VAT):")
    assert "- Subscriptions: Kestrel Cloud Starter €9.00/month, Kestrel Cloud Pro €29.00/month" in full
    assert "Kestrel Office Suite €149.00 one-off (perpetual license), Kestrel Secure €59.00/year" in full
    assert "Kestrel Book 14 €1,290.00" in full
    pro = replies.pricing_reply("Kestrel Cloud Pro", url=business_url_fixed_day)
    assert pro.found and pro.record_id == "KC-PRO"
    assert pro.text.startswith("Kestrel Cloud Pro costs €29.00 per month (excl. VAT).")
    assert "Kestrel Cloud Starter €9.00/month and Kestrel Cloud Business €79.00/month" in pro.text
    hub = replies.pricing_reply("hub x1", url=business_url_fixed_day).text
    assert hub == "Kestrel Hub X1 costs €249.00 (excl. VAT)."
    unknown = replies.pricing_reply("Kestrel Fridge", url=business_url_fixed_day)
    assert not unknown.found
    assert unknown.text.startswith("I couldn't find a product called “Kestrel Fridge” in our catalogue.")
    assert "Kestrel Dock €199.00" in unknown.text
