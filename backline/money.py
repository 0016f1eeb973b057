"""Money as people read it, one home for the whole project: the currency symbols, and the two ways an
amount is written.

- `format_money`: what an expert reads in a context package or a collected field, short:
  ``€780``, ``€780.50``, ``$1,234.57``, ``-€5``, ``CHF 1,200``; None for what is not a number.
- `format_amount`: what a customer reads in an answer, every cent: ``€1,290.00``, ``$9.00``,
  ``CHF 12.50``.
- `format_with_code`: an amount with its ISO code after it, every cent, no grouping: ``249.00 EUR``
  (what a form tells the customer when an amount is more than a total).

With `format_money` and `format_amount` a currency that has a symbol (`CURRENCY_SYMBOLS`) gets the
symbol in front, any other its code and a space. Reading amounts out of text is `backline.nlp.money`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Dict, Optional

CURRENCY_SYMBOLS: Dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£"}
"""The currencies written with a symbol; every other is written with its ISO code."""


def to_number(value: Any) -> Optional[float]:
    """``value`` as a finite float (numbers, and strings such as ``"1,200.50"``); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", "").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _written(sign: str, digits: str, code: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{code} {digits}"


def format_money(value: Any, currency: Optional[str]) -> Optional[str]:
    """€780, €780.50, $12.30, CHF 1,200; None when `value` is not a number. The currency defaults to
    EUR and is read case-insensitively; cents are shown only when there are any."""
    number = to_number(value)
    if number is None:
        return None
    code = (currency or "EUR").strip().upper() or "EUR"
    whole = abs(number - round(number)) < 0.005
    digits = f"{abs(number):,.0f}" if whole else f"{abs(number):,.2f}"
    return _written("-" if number < 0 else "", digits, code)


def format_amount(amount: Decimal, currency: str) -> str:
    """€1,290.00 / $9.00 / CHF 12.50: every cent, as a customer answer writes a price or a total."""
    return _written("", f"{Decimal(amount):,.2f}", currency)


def format_with_code(amount: Decimal, currency: str) -> str:
    """249.00 EUR: every cent, the ISO code after the amount."""
    return f"{Decimal(amount):.2f} {currency}"
