"""What one routing decision looks at, computed once: the message (intent, confidence, text, amounts),
the conversation, the matrix, and the evidence gathered so far; it builds the `Decision`."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from backline.routing.amounts import _Amount, resolve_amounts
from backline.routing.decision import _MODE_FOR, AI, Conversation, Decision, Parse, Turn, _unit
from backline.routing.matrix import EscalationMatrix, IntentRow


class DecisionContext:
    """Everything one decision looks at, computed once."""

    def __init__(self, parse: Parse, conversation: Conversation, matrix: EscalationMatrix) -> None:
        self.parse = parse
        self.conversation = conversation
        self.matrix = matrix
        self.history: Tuple[Turn, ...] = tuple(t for t in conversation.history or () if isinstance(t, Turn))
        self.text = parse.text if isinstance(parse.text, str) else ""
        self.intent: str = parse.intent if isinstance(parse.intent, str) else ""
        self.confidence = _unit(parse.confidence)
        self.evidence: Dict[str, Any] = {}
        self.tier_cap: Optional[str] = None
        self.mode = conversation.handoff_mode if isinstance(conversation.handoff_mode, str) else AI
        self._amounts: Optional[List[_Amount]] = None

    @property
    def amounts(self) -> List[_Amount]:
        """Every amount of the message (else of the slots); the first look records ``evidence["amount"]``."""
        if self._amounts is None:
            self._amounts = resolve_amounts(self.parse, self.conversation, self.matrix)
            amount = self.amount
            if amount is not None:
                self.evidence["amount"] = amount.evidence()
        return self._amounts

    @property
    def amount(self) -> Optional[_Amount]:
        """The amount that counts: the largest in EUR (see `resolve_amount`)."""
        found = self.amounts
        return max(found, key=lambda a: a.amount_eur if a.amount_eur is not None else -1.0) if found else None

    @property
    def unrated(self) -> List[_Amount]:
        """Amounts whose currency has no rate in the matrix."""
        return [a for a in self.amounts if a.amount_eur is None]

    @property
    def row(self) -> IntentRow:
        return self.matrix.row(self.intent)

    def decision(
        self,
        action: str,
        *,
        reason: Optional[str] = None,
        detail: Optional[str] = None,
        row: Optional[IntentRow] = None,
        queue: Optional[str] = None,
        priority: Optional[str] = None,
        sla_minutes: Optional[int] = None,
        context_package: Optional[str] = None,
        tier: Optional[str] = None,
        modifiers: Tuple[str, ...] = (),
    ) -> Decision:
        own = self.row
        source = row or own
        package = context_package or source.context_package
        if package not in self.matrix.context_packages:
            package = own.context_package
        thresholds = own.thresholds
        return Decision(
            action=action,
            mode=_MODE_FOR.get(action, self.mode),
            reason=reason,
            detail=detail,
            tier=tier if tier is not None else thresholds.tier(self.confidence),
            intent=self.intent or None,
            confidence=self.confidence,
            thresholds=(thresholds.high, thresholds.low),
            queue=queue or source.queue,
            priority=priority or source.priority,
            sla_minutes=sla_minutes or source.sla_minutes,
            context_package=package,
            context_fields=tuple(self.matrix.context_packages.get(package, ())),
            row=own.intent if self.matrix.has_row(self.intent) else None,
            evidence=dict(self.evidence),
            modifiers=modifiers,
        )
