"""Turn the spaCy doc's entities into Rasa-style entity dicts with normalised values.

Entity names: amount (float), currency (ISO 4217 code), order_id (digits), invoice_id
("INV-2025-0107"), product (canonical catalogue name), email. Offsets point into the
original message text even when the doc was built from its lower-cased form, as
Rasa's SpacyNLP does by default. A money mention gives two entities, amount and
currency, over the same span; money.py normalises it and also catches formats the
spaCy patterns miss.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from backline.nlp import patterns
from backline.nlp.money import Money, find_money, parse_money

if TYPE_CHECKING:
    from spacy.tokens import Doc

AMOUNT = "amount"
CURRENCY = "currency"
ORDER_ID = "order_id"
INVOICE_ID = "invoice_id"
PRODUCT = "product"
EMAIL = "email"
ENTITY_NAMES = (AMOUNT, CURRENCY, ORDER_ID, INVOICE_ID, PRODUCT, EMAIL)

_ORDER_DIGITS = re.compile(r"[1-9][0-9]{4}(?![0-9])")
_DIGIT = re.compile(r"[0-9]")

Span = Tuple[int, int]


def original_positions(processed: str, original: str) -> Optional[List[int]]:
    """Positions in `original` for each position in `processed`; None when they coincide.

    `processed` must be `original` or `original.lower()`; lower-casing can lengthen a
    string ("İ" becomes two characters), so the positions are rebuilt char by char.
    """
    if processed == original or (len(processed) == len(original) and processed == original.lower()):
        return None
    if processed != original.lower():
        raise ValueError("the spaCy doc was not built from this text or its lower-cased form")
    positions = [i for i, char in enumerate(original) for _ in char.lower()]
    positions.append(len(original))
    return positions


def span_in_original(span: Span, positions: Optional[List[int]]) -> Span:
    """`span` of the processed text as offsets into the original (see `original_positions`)."""
    if positions is None:
        return span
    start, end = span
    return positions[start], positions[end - 1] + 1 if end > start else positions[start]


def _entity(name: str, span: Span, value: Any) -> Dict[str, Any]:
    return {
        "entity": name,
        "start": span[0],
        "end": span[1],
        "value": value,
        "confidence_entity": 1.0,
    }


def _money_entities(span: Span, money: Money) -> List[Dict[str, Any]]:
    return [_entity(AMOUNT, span, float(money.amount)), _entity(CURRENCY, span, money.currency)]


def _overlaps(span: Span, others: List[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


def _from_ent(label: str, ent_id: str, span: Span, text: str) -> List[Dict[str, Any]]:
    raw = text[span[0] : span[1]]
    if label == patterns.PRODUCT:
        return [_entity(PRODUCT, span, ent_id or raw)]
    if label == patterns.EMAIL:
        return [_entity(EMAIL, span, raw)]
    if label == patterns.ORDER_ID:
        digits = _ORDER_DIGITS.search(raw)
        if not digits:
            return []
        narrowed = (span[0] + digits.start(), span[0] + digits.end())
        return [_entity(ORDER_ID, narrowed, digits.group())]
    if label == patterns.INVOICE_ID:
        invoice_digits = "".join(_DIGIT.findall(raw))
        if len(invoice_digits) != 8:
            return []
        return [_entity(INVOICE_ID, span, f"INV-{invoice_digits[:4]}-{invoice_digits[4:]}")]
    if label == patterns.MONEY:
        money = parse_money(raw)
        return _money_entities(span, money) if money else []
    return []


def extract(doc: Optional["Doc"], text: Optional[str]) -> List[Dict[str, Any]]:
    """Rasa entity dicts for `text` from `doc` (built from `text` or `text.lower()`).

    Money mentions that money.py finds in `text` but the spaCy patterns missed are
    added when they overlap no other entity; one that contains a spaCy money span
    replaces it. Without a doc only money is extracted. Sorted by start offset.
    """
    if not text:
        return []
    found: List[Tuple[Span, List[Dict[str, Any]]]] = []
    if doc is not None:
        positions = original_positions(doc.text, text)
        for ent in doc.ents:
            span = span_in_original((ent.start_char, ent.end_char), positions)
            entities = _from_ent(ent.label_, ent.ent_id_, span, text)
            if entities:
                found.append((span, entities))
    for start, end, money in find_money(text):
        span = (start, end)
        covered = [
            item for item in found if item[1][0]["entity"] == AMOUNT and start <= item[0][0] and item[0][1] <= end
        ]
        others = [item[0] for item in found if item not in covered]
        if _overlaps(span, others) or any(item[0] == span for item in covered):
            continue
        found = [item for item in found if item not in covered]
        found.append((span, _money_entities(span, money)))
    found.sort(key=lambda item: item[0])
    return [entity for _, entities in found for entity in entities]
