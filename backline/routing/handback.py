"""Hand-back limits: what an expert may leave to the AI when handing a conversation back.

The rules live in escalation.yml (``hand_back``, ``while_waiting``); this module is their typed
model, built by `backline.routing.matrix` and shared by the routing engine (which enforces the
limits), the consultation replies (which record them) and the expert channels (which offer them).
Pure Python. The intents a hand-back allows expire after ``hand_back.expires_after_minutes`` or with
the session, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

DEFAULT_HAND_BACK_MINUTES = 240


class UnknownFollowup(ValueError):
    """A follow-up type that escalation.yml's ``hand_back.followups`` does not define."""


@dataclass(frozen=True)
class Followup:
    """One follow-up type an expert may leave to the AI (``hand_back.followups.<name>``)."""

    name: str
    label: str
    """How the customer and the expert see it ("order status and tracking")."""
    intents: Tuple[str, ...]
    aliases: Tuple[str, ...] = ()
    """Other words an expert may write for it ("tracking" for order_status)."""


@dataclass(frozen=True)
class HandBack:
    """escalation.yml's ``hand_back`` and ``while_waiting`` sections."""

    expires_after_minutes: int = DEFAULT_HAND_BACK_MINUTES
    followups: Mapping[str, Followup] = field(default_factory=dict)
    always_allowed: Tuple[str, ...] = ()
    """Small talk the AI may always handle after a hand-back, whatever the limits."""
    while_waiting: Optional[str] = None
    """The follow-up type whose intents the AI may answer while a handoff waits for a person."""

    @property
    def labels(self) -> Dict[str, str]:
        """Follow-up type -> label, in file order."""
        return {name: followup.label for name, followup in self.followups.items()}

    @property
    def informational(self) -> Tuple[str, ...]:
        """What the AI may answer while a handoff waits for a person (DESIGN.md: `human_joined` false)."""
        followup = self.followups.get(self.while_waiting or "")
        return followup.intents if followup else ()

    @property
    def words(self) -> Dict[str, str]:
        """Every word an expert may write for a follow-up type -> the type: its name with spaces for
        underscores, and its aliases (lower case)."""
        words: Dict[str, str] = {}
        for name, followup in self.followups.items():
            words[name.replace("_", " ")] = name
            for alias in followup.aliases:
                words.setdefault(alias.lower(), name)
        return words

    def check(self, followups: Sequence[str]) -> None:
        """Raises `UnknownFollowup` naming the types escalation.yml does not define."""
        unknown = [f for f in followups if f not in self.followups]
        if unknown:
            raise UnknownFollowup(f"unknown follow-up types {unknown}; known: {', '.join(self.followups)}")

    def allowed_intents(self, followups: Sequence[str]) -> List[str]:
        """The intents the follow-up types allow, in file order, without repeats."""
        self.check(followups)
        return list(dict.fromkeys(intent for f in followups for intent in self.followups[f].intents))

    def intents(self) -> Dict[str, Tuple[str, ...]]:
        """Every intent the section names, by where it names it (for validation against the rows)."""
        named: Dict[str, Tuple[str, ...]] = {"hand_back.always_allowed": self.always_allowed}
        for name, followup in self.followups.items():
            named[f"hand_back.followups.{name}.intents"] = followup.intents
        return named
