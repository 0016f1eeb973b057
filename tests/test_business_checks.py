"""The collect forms' checks against the seeded business database (backline/business/checks.py)."""

import pytest

from backline.business.checks import (
    CHECKS,
    check_amount,
    check_details,
    check_email,
    check_invoice,
    check_order,
    check_plan,
    check_product,
)
from backline.routing.collect import FIELDS


def test_every_collectable_field_has_a_check() -> None:
    assert set(CHECKS) == set(FIELDS)


def test_orders_and_invoices_must_exist(business_env: str) -> None:
    assert check_order("#10023", {}).value == "10023"
    missing = check_order("99999", {})
    assert missing.value is None and "99999" in missing.text
    assert check_invoice("inv 2025 0107", {}).value == "INV-2025-0107"
    assert check_invoice("INV-1999-0001", {}).value is None


def test_an_amount_is_positive_and_not_above_the_orders_total(business_env: str) -> None:
    assert (check_amount("49.90 usd", {}).value, check_amount("49.90 usd", {}).extra) == (49.9, {"currency": "USD"})
    assert (check_amount(50.0, {"currency": "eur"}).value, check_amount(50.0, {"currency": "eur"}).extra) == (
        50.0,
        {"currency": "EUR"},
    )
    over = check_amount(9999, {"order_id": "10023"})
    assert (
        over.value is None
        and over.text == "The total of order 10023 is 249.00 EUR. How much should it be, at most that?"
    )
    assert check_amount(249, {"order_id": "10023"}).value == 249.0
    for bad in ("-5", "0", "lots", None):
        assert check_amount(bad, {}).value is None


def test_an_email_must_be_well_formed_and_never_says_whether_it_has_an_account(business_env: str) -> None:
    assert check_email("not an address", {}).value is None
    stranger = check_email("Nobody@Example.ORG", {})
    assert (stranger.value, stranger.text, stranger.extra) == ("nobody@example.org", "", {})


def test_products_plans_and_details(business_env: str) -> None:
    assert check_product("hub x1", {}).value == "Kestrel Hub X1"
    unknown = check_product("flux capacitor", {})
    assert unknown.value is None and unknown.text.startswith("I don't know the product 'flux capacitor'. We offer ")
    assert [check_plan(text, {}).value for text in ("the annual one", "monthly please", "month or year?", "gold")] == [
        "yearly",
        "monthly",
        None,
        None,
    ]
    assert check_details("too small", {}).value == "too small"
    assert check_details("bad", {}).value is None
    assert check_details("  it   is\nbroken  ", {}).value == "it is broken"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_missing_value_asks_again(field: str, business_env: str) -> None:
    assert CHECKS[field](None, {}).value is None
