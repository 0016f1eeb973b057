"""Amounts of money a routing decision weighs: from the message's entities (else the slots), each
converted to EUR through the matrix's ``currency_rates``, with the evidence the record keeps. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from backline.routing.decision import Conversation, Parse, _number
from backline.routing.matrix import EscalationMatrix, ExceptionCategory


@dataclass(frozen=True)
class _Amount:
    amount: float
    currency: str
    amount_eur: Optional[float]
    source: str
    currency_assumed: bool = False

    def evidence(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "amount": self.amount,
            "currency": self.currency,
            "amount_eur": None if self.amount_eur is None else round(self.amount_eur, 2),
            "source": self.source,
        }
        if self.currency_assumed:
            out["currency_assumed"] = True
        if self.amount_eur is None:
            out["no_rate"] = True
        return out


def _convert(matrix: EscalationMatrix, amount: float, currency: str, source: str, assumed: bool) -> _Amount:
    try:
        eur: Optional[float] = matrix.to_eur(amount, currency)
    except ValueError:
        eur = None
    return _Amount(amount, currency.strip().upper(), eur, source, assumed)


def _unrated_evidence(
    amount: _Amount, matrix: EscalationMatrix, category: Optional[ExceptionCategory] = None
) -> Dict[str, Any]:
    """What the record says about an amount that could not be converted to EUR. No ``limit_eur``:
    nothing was compared with the limit (readers take ``limit_eur`` as "the amount is above it")."""
    rated = ", ".join(sorted(matrix.currency_rates))
    why = f"no rate configured for {amount.currency} (currency_rates: {rated})"
    limit = category.amount_above if category is not None else None
    if limit is not None:
        why += f", so it cannot be compared with the {limit.value:g} {limit.currency} limit"
    return {**amount.evidence(), "why": why}


def _message_amounts(parse: Parse, conversation: Conversation, matrix: EscalationMatrix) -> List[_Amount]:
    """Amounts in the message's entities, each with its currency (same span, else the nearest)."""
    entities = [e for e in parse.entities or () if isinstance(e, Mapping)]
    currencies = [
        e for e in entities if e.get("entity") == "currency" and isinstance(e.get("value"), str) and e["value"].strip()
    ]
    found: List[_Amount] = []
    for entity in entities:
        if entity.get("entity") != "amount":
            continue
        value = _number(entity.get("value"))
        if value is None:
            continue
        currency, assumed = _currency_for(entity, currencies), False
        if currency is None:
            slot = conversation.currency
            currency, assumed = (slot if isinstance(slot, str) and slot.strip() else "EUR"), True
        found.append(_convert(matrix, value, currency, "message", assumed))
    return found


def _currency_for(amount: Mapping[str, Any], currencies: Sequence[Mapping[str, Any]]) -> Optional[str]:
    if not currencies:
        return None
    start, end = amount.get("start"), amount.get("end")
    for currency in currencies:
        if currency.get("start") == start and currency.get("end") == end:
            return str(currency["value"])
    if isinstance(start, int):

        def distance(c: Mapping[str, Any]) -> int:
            s = c.get("start")
            return abs(s - start) if isinstance(s, int) else 10**9

        return str(min(currencies, key=distance)["value"])
    return str(currencies[0]["value"])


def resolve_amounts(parse: Parse, conversation: Conversation, matrix: EscalationMatrix) -> List[_Amount]:
    """Every amount of the message, else the one of the amount / currency slots (or none)."""
    found = _message_amounts(parse, conversation, matrix)
    if found:
        return found
    value = _number(conversation.amount)
    if value is None:
        return []
    slot = conversation.currency
    currency = slot if isinstance(slot, str) and slot.strip() else None
    return [_convert(matrix, value, currency or "EUR", "slots", currency is None)]
