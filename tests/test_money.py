"""Money normaliser: formats, separator disambiguation, garbage in, and speed."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Optional

import pytest

from backline.nlp.money import CURRENCIES, MAX_AMOUNT, Money, find_money, markers_for, parse_money, parse_number

PARSED = [
    ("€780", "780", "EUR"),
    ("€ 780", "780", "EUR"),
    ("780€", "780", "EUR"),
    ("780 euros", "780", "EUR"),
    ("780 Euro", "780", "EUR"),
    ("780eur", "780", "EUR"),
    ("780EUR", "780", "EUR"),
    ("eur1200", "1200", "EUR"),
    ("EUR 1,200.50", "1200.5", "EUR"),
    ("eur 1,200.50", "1200.5", "EUR"),
    ("$99", "99", "USD"),
    ("$1,200", "1200", "USD"),
    ("US$ 99.99", "99.99", "USD"),
    ("us$99.99", "99.99", "USD"),
    ("USD 10", "10", "USD"),
    ("500 bucks", "500", "USD"),
    ("20 dollars", "20", "USD"),
    ("1.200,50 €", "1200.5", "EUR"),
    ("1 200,50 EUR", "1200.5", "EUR"),
    ("1\u00a0200,50\u00a0€", "1200.5", "EUR"),
    ("1\u202f200 €", "1200", "EUR"),
    ("£45", "45", "GBP"),
    ("45 quid", "45", "GBP"),
    ("45 pounds", "45", "GBP"),
    ("GBP 45.10", "45.1", "GBP"),
    ("CHF 80", "80", "CHF"),
    ("80 francs", "80", "CHF"),
    ("80 Swiss francs", "80", "CHF"),
    ("€1.5k", "1500", "EUR"),
    ("€1,5k", "1500", "EUR"),
    ("2k euros", "2000", "EUR"),
    ("2K EUR", "2000", "EUR"),
    ("$5k", "5000", "USD"),
    ("1.5k€", "1500", "EUR"),
    ("1.200 €", "1200", "EUR"),
    ("1,5 €", "1.5", "EUR"),
    ("1,200 €", "1200", "EUR"),
    ("12,50 €", "12.5", "EUR"),
    ("0,99€", "0.99", "EUR"),
    ("€1.200.000", "1200000", "EUR"),
    ("€1.000,5", "1000.5", "EUR"),
    ("€10,000.00", "10000", "EUR"),
    ("€0", "0", "EUR"),
    ("  €780  ", "780", "EUR"),
    ("¥500", "500", "JPY"),
    ("A$ 50", "50", "AUD"),
    ("SEK 300", "300", "SEK"),
    ("80000 yen", "80000", "JPY"),
    ("JPY 80,000", "80000", "JPY"),
    ("₹5000", "5000", "INR"),
    ("5000 inr", "5000", "INR"),
    ("C$ 120", "120", "CAD"),
    ("120 cad", "120", "CAD"),
    ("PLN 2000", "2000", "PLN"),
    ("300 nok", "300", "NOK"),
    ("DKK 300", "300", "DKK"),
    ("CZK 900", "900", "CZK"),
    ("CNY 70", "70", "CNY"),
]

NOT_MONEY = [
    "",
    "   ",
    "€",
    "eur",
    "abc",
    "10023",
    "1,200.50",
    "1.2.3.4 €",
    "€1.200.00",
    "€1,2345",
    "€1,000.505",
    "€12.50abc",
    "€2kg",
    "780 europe",
    "€.50",
    "-€5",
    "€780 and $5",
    "refund of €780",
    "🙂",
    "€🙂780",
    "€99999999999999999999999",
    "9" * 40 + " EUR",
    "\x00€780",
]


@pytest.mark.parametrize("text, amount, currency", PARSED)
def test_parse_money_formats(text: str, amount: str, currency: str) -> None:
    assert parse_money(text) == Money(Decimal(amount), currency)


@pytest.mark.parametrize("text", NOT_MONEY)
def test_parse_money_rejects(text: str) -> None:
    assert parse_money(text) is None


@pytest.mark.parametrize("value", [None, 780, 7.8, b"\xe2\x82\xac780", ["€780"]])
def test_parse_money_non_strings_give_none(value: object) -> None:
    assert parse_money(value) is None  # type: ignore[arg-type]
    assert find_money(value) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1.200", "1200"),
        ("1,200", "1200"),
        ("1,5", "1.5"),
        ("12,50", "12.5"),
        ("99.99", "99.99"),
        ("1.200,50", "1200.5"),
        ("1,200.50", "1200.5"),
        ("1 200 300", "1200300"),
        ("1234.567", None),
        ("1.2.3.4", None),
        ("1,200.5.0", None),
        ("12 34", None),
        ("0.500", None),
    ],
)
def test_parse_number_separators(raw: str, expected: Optional[str]) -> None:
    assert parse_number(raw) == (Decimal(expected) if expected else None)


def test_amount_cap_is_a_clear_none() -> None:
    assert parse_money(f"€{MAX_AMOUNT}") == Money(MAX_AMOUNT, "EUR")
    assert parse_money(f"€{MAX_AMOUNT + 1}") is None


def test_money_is_frozen_and_hashable() -> None:
    money = Money(Decimal("1200.50"), "EUR")
    assert money == Money(Decimal("1200.5"), "EUR")
    assert len({money, Money(Decimal("1200.5"), "EUR")}) == 1
    with pytest.raises(AttributeError):
        money.amount = Decimal(1)  # type: ignore[misc]


def test_find_money_offsets_in_free_text() -> None:
    text = "Refund €780 for order 10023, not 1.2.3.4 €; also 2k euros and 45 quid 🙂£5."
    found = [(text[start:end], money) for start, end, money in find_money(text)]
    assert found == [
        ("€780", Money(Decimal(780), "EUR")),
        ("2k euros", Money(Decimal(2000), "EUR")),
        ("45 quid", Money(Decimal(45), "GBP")),
        ("£5", Money(Decimal(5), "GBP")),
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("you owe me 5€/month", ["5€"]),
        ("~€780?", ["€780"]),
        ("(EUR 1,200.50)", ["EUR 1,200.50"]),
        ("order 10023 500 euros", ["500 euros"]),
        ("paid 1.200,50 €, then $99.", ["1.200,50 €", "$99"]),
        ("no money: 10023, 2025, europe 5", []),
        ("xeur 5 and 5 eurx", []),
    ],
)
def test_find_money_boundaries(text: str, expected: list) -> None:
    assert [text[start:end] for start, end, _ in find_money(text)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "1" * 10_000,
        "111 " * 2_500,
        "1," * 5_000,
        "1.2," * 2_500,
        "€" * 10_000,
        "€1" * 5_000,
        "$1," * 3_333,
        "1k" * 5_000,
        "🙂" * 10_000,
        "eur " * 2_500,
        "9 swiss " * 1_250,
        "a" * 9_999 + "€",
    ],
)
def test_long_inputs_finish_fast(text: str) -> None:
    started = time.thread_time()
    parse_money(text)
    find_money(text)
    assert time.thread_time() - started < 0.5


def test_the_currencies_the_parser_knows() -> None:
    """What `validate-matrix` checks escalation.yml's currency_rates against."""
    assert CURRENCIES == (
        "AUD", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "INR", "JPY", "NOK", "PLN", "SEK", "USD",
    )  # fmt: skip


@pytest.mark.parametrize(
    "currency, markers",
    [
        ("JPY", ("jpy", "yen", "¥")),
        ("jpy", ("jpy", "yen", "¥")),
        ("INR", ("inr", "₹")),
        ("AUD", ("a$", "au$", "aud")),
        ("SEK", ("sek",)),
        ("EUR", ("eur", "euro", "euros", "€")),
        ("XYZ", ()),
        ("", ()),
    ],
)
def test_markers_for(currency: str, markers: tuple) -> None:
    assert markers_for(currency) == markers


@pytest.mark.parametrize("currency", CURRENCIES)
def test_every_marker_of_every_currency_parses_to_it(currency: str) -> None:
    for marker in markers_for(currency):
        assert parse_money(f"250 {marker}") == Money(Decimal(250), currency), marker
