"""Normalisation of the identifiers customers type: order numbers and invoice numbers."""

import re
from typing import Any, Optional

ORDER_ID_MIN, ORDER_ID_MAX = 10000, 99999

_ORDER_ID = re.compile(r"(?<![\d-])(\d{5})(?![\d-])")
_INVOICE_ID = re.compile(r"\bINV[\s_-]*(\d{4})[\s_-]*(\d{1,4})\b", re.IGNORECASE)
INVOICE_ID_PATTERN = re.compile(r"^INV-\d{4}-\d{4}$")


def normalise_order_id(value: Any) -> Optional[str]:
    """'#10023', 'order 10023', 10023 → '10023'; None when there is no plausible 5-digit order number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    else:
        text = str(value).strip()
    matches = _ORDER_ID.findall(text)
    if len(matches) != 1:
        return None
    number = int(matches[0])
    return matches[0] if ORDER_ID_MIN <= number <= ORDER_ID_MAX else None


def normalise_invoice_id(value: Any) -> Optional[str]:
    """'inv-2025-0107', 'INV 2025 107' → 'INV-2025-0107'; None when there is no invoice number."""
    if value is None or isinstance(value, bool):
        return None
    match = _INVOICE_ID.search(str(value))
    if match is None:
        return None
    year, number = match.groups()
    return f"INV-{year}-{int(number):04d}"
