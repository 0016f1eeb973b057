"""Money as people read it (`backline.money`), the one home of currency symbols and amount formats."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from backline import money
from backline.money import CURRENCY_SYMBOLS, format_amount, format_money, format_with_code, to_number

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "value, currency, text",
    [
        (780, "EUR", "€780"),
        ("780.5", "eur", "€780.50"),
        (1234.567, "USD", "$1,234.57"),
        (12.3, "GBP", "£12.30"),
        (1200, "CHF", "CHF 1,200"),
        (Decimal("49.90"), "EUR", "€49.90"),
        (-5, "EUR", "-€5"),
        ("1,200.50", None, "€1,200.50"),
        (12, " usd ", "$12"),
        (12, "", "€12"),
    ],
)
def test_format_money_is_short_for_experts(value: object, currency: object, text: str) -> None:
    assert format_money(value, currency) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, True, "abc", float("nan"), float("inf"), [], {}])
def test_format_money_of_what_is_not_a_number_is_none(value: object) -> None:
    assert format_money(value, "EUR") is None


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (Decimal("1290"), "EUR", "€1,290.00"),
        (Decimal("9"), "USD", "$9.00"),
        (Decimal("12.5"), "CHF", "CHF 12.50"),
        (Decimal("0.125"), "GBP", "£0.12"),
        (Decimal("-5"), "EUR", "€-5.00"),
    ],
)
def test_format_amount_shows_every_cent_for_customers(amount: Decimal, currency: str, text: str) -> None:
    assert format_amount(amount, currency) == text


def test_format_with_code_puts_the_code_after_the_amount() -> None:
    assert format_with_code(Decimal("249"), "EUR") == "249.00 EUR"
    assert format_with_code(Decimal("1249.5"), "USD") == "1249.50 USD"


def test_to_number_reads_numbers_and_numeric_strings_only() -> None:
    assert to_number("1,200.50") == 1200.5 and to_number(Decimal("2.5")) == 2.5 and to_number(7) == 7.0
    assert to_number(None) is None and to_number(False) is None and to_number("12 EUR") is None


def test_the_other_modules_write_money_with_these_functions() -> None:
    from backline.business import answers
    from backline.consult import context

    assert context.format_money is format_money
    assert answers.format_money is format_amount and answers.CURRENCY_SYMBOLS is CURRENCY_SYMBOLS
    assert CURRENCY_SYMBOLS == {"EUR": "€", "USD": "$", "GBP": "£"}


def test_no_other_module_keeps_a_table_of_currency_symbols() -> None:
    table = re.compile(r"""["'][A-Z]{3}["']\s*:\s*["'][€$£¥]["']""")
    found = [
        str(path.relative_to(ROOT))
        for folder in ("backline", "actions")
        for path in (ROOT / folder).rglob("*.py")
        if table.search(path.read_text(encoding="utf-8"))
    ]
    assert found == [str(Path(money.__file__).relative_to(ROOT))]
