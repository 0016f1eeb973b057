"""Money mentions: find them in free text and normalise them to an amount and an ISO 4217 code.

Pure Python (stdlib `re` only). Supported shapes: a currency symbol or code before the
number ("€780", "EUR 1,200.50", "US$ 99.99", "CHF 80") or a symbol, code or word after
it ("780 euros", "780eur", "1.200,50 €", "45 quid", "500 bucks"), a "k" suffix for
thousands ("€1.5k", "2k euros") and spaces, no-break spaces or thin spaces as thousands
separators ("1 200,50 EUR"). A bare number is never money.

Separators: with both "." and "," the last one is the decimal separator; with one kind
only, exactly three digits after a single separator mean thousands ("1.200 €" → 1200,
"1,200" → 1200), one or two digits mean decimals ("1,5 €" → 1.5, "12,50" → 12.5), and
repeated separators must group thousands ("1.200.000"). Anything else ("1.2.3.4 €",
"1.2345 €") and amounts above `MAX_AMOUNT` are rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Dict, List, Optional, Tuple

MAX_AMOUNT = Decimal(10) ** 12

SYMBOLS: Dict[str, str] = {
    "€": "EUR",
    "$": "USD",
    "us$": "USD",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "a$": "AUD",
    "au$": "AUD",
    "c$": "CAD",
    "ca$": "CAD",
}
CODES: Dict[str, str] = {
    code.lower(): code
    for code in (
        "EUR",
        "USD",
        "GBP",
        "CHF",
        "JPY",
        "CAD",
        "AUD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "INR",
        "CNY",
    )
}
WORDS: Dict[str, str] = {
    "euro": "EUR",
    "euros": "EUR",
    "dollar": "USD",
    "dollars": "USD",
    "buck": "USD",
    "bucks": "USD",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "franc": "CHF",
    "francs": "CHF",
    "swiss franc": "CHF",
    "swiss francs": "CHF",
    "yen": "JPY",
}
PREFIX_CURRENCIES: Dict[str, str] = {**SYMBOLS, **CODES}
"""Lower-case currency markers that may precede the number."""
SUFFIX_CURRENCIES: Dict[str, str] = {**SYMBOLS, **CODES, **WORDS}
"""Lower-case currency markers that may follow the number."""
CURRENCIES: Tuple[str, ...] = tuple(sorted(set(SUFFIX_CURRENCIES.values())))
"""Every ISO 4217 code a money mention can be normalised to."""


def markers_for(currency: str) -> Tuple[str, ...]:
    """The lower-case markers (symbols, codes, words) that money.py reads as ``currency``, sorted."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    return tuple(sorted(marker for marker, value in SUFFIX_CURRENCIES.items() if value == code))


@dataclass(frozen=True)
class Money:
    """An amount of money in one currency."""

    amount: Decimal
    currency: str


def _alternation(markers: Dict[str, str]) -> str:
    """Regex alternation of the markers, longest first, spaces matching any one blank."""
    ordered = sorted(markers, key=len, reverse=True)
    return "|".join(r"\s".join(re.escape(part) for part in m.split(" ")) for m in ordered)


_BLANK = "[ \u00a0\u202f]"
_GROUPED = rf"[0-9]{{1,3}}(?:{_BLANK}[0-9]{{3}})+(?:[.,][0-9]{{1,2}})?"
_PLAIN = r"[0-9]+(?:[.,][0-9]+)*"
_NUMBER = rf"{_GROUPED}|{_PLAIN}"
# A blank-grouped number never starts right after "digit blank": keeps long runs linear.
_SUFFIX_NUMBER = rf"(?<![0-9]{_BLANK}){_GROUPED}|{_PLAIN}"
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NUMBER_START = r"(?<!\w)(?<![0-9][.,])"
_NUMBER_END = r"(?!\w)(?![.,][0-9])"
_PREFIX = (
    rf"{_NOT_LETTER_BEFORE}(?P<pcur>{_alternation(PREFIX_CURRENCIES)})"
    rf"{_BLANK}{{0,2}}(?P<pnum>{_NUMBER})(?P<pk>k)?{_NUMBER_END}"
)
_SUFFIX = (
    rf"{_NUMBER_START}(?P<snum>{_SUFFIX_NUMBER})(?P<sk>k)?"
    rf"{_BLANK}{{0,2}}(?P<scur>{_alternation(SUFFIX_CURRENCIES)})(?!\w)"
)
MONEY_RE = re.compile(rf"{_PREFIX}|{_SUFFIX}", re.IGNORECASE)
"""One money mention; `find_money` and `parse_money` both use it."""

_BLANKS = re.compile(_BLANK)


def _thousands_groups_ok(groups: List[str]) -> bool:
    return 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


def parse_number(raw: str) -> Optional[Decimal]:
    """Parse the digits of a money mention ("1.200,50", "1 200", "12,5"); None if ambiguous."""
    text = _BLANKS.sub(" ", raw)
    if " " in text:
        head, _, tail = text.rpartition(" ")
        groups = head.split(" ") + [tail[:3]]
        if not _thousands_groups_ok(groups):
            return None
        text = "".join(groups) + tail[3:]
    separators = {c for c in text if c in ".,"}
    if not separators:
        integer, fraction = text, ""
    elif len(separators) == 2:
        decimal_sep = text[max(text.rfind("."), text.rfind(","))]
        thousands_sep = "," if decimal_sep == "." else "."
        head, _, fraction = text.rpartition(decimal_sep)
        groups = head.split(thousands_sep)
        if decimal_sep in head or not _thousands_groups_ok(groups) or len(fraction) > 2:
            return None
        integer = "".join(groups)
    else:
        groups = re.split(r"[.,]", text)
        if len(groups) > 2:
            if not _thousands_groups_ok(groups):
                return None
            integer, fraction = "".join(groups), ""
        elif len(groups[1]) == 3 and len(groups[0]) <= 3 and groups[0] != "0":
            integer, fraction = "".join(groups), ""
        elif len(groups[1]) <= 2:
            integer, fraction = groups
        else:
            return None
    if not integer or not integer.isdigit() or (fraction and not fraction.isdigit()):
        return None
    try:
        return Decimal(f"{integer}.{fraction}" if fraction else integer)
    except InvalidOperation:
        return None


def _money_from_match(match: "re.Match[str]") -> Optional[Money]:
    if match.group("pcur") is not None:
        marker, number, k = match.group("pcur"), match.group("pnum"), match.group("pk")
        currency = PREFIX_CURRENCIES[marker.lower()]
    else:
        marker, number, k = match.group("scur"), match.group("snum"), match.group("sk")
        currency = SUFFIX_CURRENCIES[" ".join(marker.lower().split())]
    amount = parse_number(number)
    if amount is None:
        return None
    if k:
        amount *= 1000
    if amount > MAX_AMOUNT:
        return None
    return Money(amount=amount, currency=currency)


def parse_money(text: Optional[str]) -> Optional[Money]:
    """Parse text that is exactly one money mention (surrounding blanks allowed), else None."""
    if not isinstance(text, str):
        return None
    match = MONEY_RE.fullmatch(text.strip())
    return _money_from_match(match) if match else None


def find_money(text: Optional[str]) -> List[Tuple[int, int, Money]]:
    """All money mentions in free text as (start, end, Money), offsets into `text`."""
    if not isinstance(text, str):
        return []
    found = []
    for match in MONEY_RE.finditer(text):
        money = _money_from_match(match)
        if money is not None:
            found.append((match.start(), match.end(), money))
    return found
