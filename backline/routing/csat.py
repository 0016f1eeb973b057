"""The satisfaction (CSAT) question: reading a 1-5 rating and whether a turn answers the pending question.

Pure Python (no Rasa): the routing policy (backline/rasa/routing_policy.py) holds the pending
question in the ``csat_pending`` slot (the consultation id) and asks `answer_turn` what the latest
user turn is:

- ``record``: it answers the question, with ``score`` (a ``csat_rating`` button payload with a valid
  ``csat_score``, or a typed rating `read_rating` reads): the policy predicts ``action_record_csat``;
- ``clear``: something else (a new question) while a question was pending: the question is dropped
  and the turn is routed as usual;
- ``none``: nothing pending and no rating: routed as usual.

Human mode comes first (DESIGN.md's routing order): while ``handoff_mode`` is ``human`` the question
is not pending and a rating is not read; the message goes to the person like any other.

A rating is a whole number from 1 to 5 (digits or a word), alone or with a scale word ("5 stars",
"4/5", "3 out of 5") or a short lead-in ("I'd give it a 3", "rating: 4"); "my order 12345", "7" or
"0" are not ratings, and no rating is guessed from a number inside an unrelated sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

RATING_INTENT = "csat_rating"
SCORE_ENTITY = "csat_score"
SCORES = (1, 2, 3, 4, 5)
HUMAN_MODE = "human"

RECORD = "record"
CLEAR = "clear"
NONE = "none"

_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_NUMBER = r"(?P<n>\d{1,3}|" + "|".join(_WORDS) + r")"
_LEAD = (
    r"(?:(?:i(?:'d| would| will|'ll)?|we(?:'d| would)?)\s+(?:give|rate)\s+(?:(?:it|you|this|that|the help|you guys)\s+)?"
    r"|(?:give|rate)\s+(?:(?:it|you|this|that)\s+)?"
    r"|(?:my\s+)?(?:rating|score|answer|vote)(?:\s+is)?\s*:?\s*"
    r"|(?:it's|it is|that's|that is|thats|its)\s+"
    r"|(?:maybe|probably|definitely|easily|solid|a\s+solid)\s+)?"
)
_ARTICLE = r"(?:(?:a|an)\s+)?"
_SCALE = (
    r"(?:\s*(?:/|out\s+of|of)\s*(?P<of>5|five)"
    r"|\s*(?:stars?|points?|\*+|⭐+)"
    r")*"
)
_TAIL = r"(?:\s*[,.!]*\s*(?:thanks|thank\s+you|thx|cheers|ty))?"
_RATING = re.compile(rf"{_LEAD}{_ARTICLE}{_NUMBER}{_SCALE}{_TAIL}")
_STARS = re.compile(r"(?:⭐|★|\*)\s*")


def _normalised(text: str) -> str:
    text = " ".join(str(text).lower().replace("’", "'").split())
    text = re.sub(r"^[\s\"“”(\[]+", "", text)
    return re.sub(r"[\s!?.,;:)\]\"“”~-]+$", "", text)


def _number(token: str) -> Optional[int]:
    if token.isdigit():
        return int(token)
    return _WORDS.get(token)


def read_rating(text: Optional[str]) -> Optional[int]:
    """The 1-5 rating the customer typed, or None when the text is not (only) a rating.

    Ratings: "4", "five", "5 stars", "4/5", "3 out of 5", "I'd give it a 3", "rating: 2", "⭐⭐⭐⭐";
    not ratings: "my order 12345", "7", "0", "6/5", "3/10", "I have 2 questions".
    """
    if not isinstance(text, str):
        return None
    normalised = _normalised(text)
    if not normalised:
        return None
    stars = _STARS.sub("", normalised)
    if not stars and _STARS.search(normalised):
        count = len(_STARS.findall(normalised))
        return count if count in SCORES else None
    match = _RATING.fullmatch(normalised)
    if match is None:
        return None
    score = _number(match.group("n"))
    return score if score in SCORES else None


def score_entity(entities: Iterable[Mapping[str, Any]]) -> Optional[int]:
    """The ``csat_score`` entity of a button payload (``/csat_rating{"csat_score": 4}``), if 1 to 5."""
    for entity in entities or ():
        if not isinstance(entity, Mapping) or entity.get("entity") != SCORE_ENTITY:
            continue
        value = entity.get("value")
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return value if isinstance(value, int) and value in SCORES else None
    return None


@dataclass(frozen=True)
class CsatTurn:
    """What one user turn means for the satisfaction question (see the module docstring)."""

    outcome: str
    """``record`` | ``clear`` | ``none``"""
    score: Optional[int] = None
    consultation_id: Optional[str] = None

    def as_record(self, intent: Optional[str], confidence: Optional[float]) -> Dict[str, Any]:
        """The turn's routing record (the ``routing_decision`` slot), for a recorded answer."""
        return {
            "action": "record_csat",
            "mode": None,
            "reason": None,
            "detail": "csat_answer",
            "tier": None,
            "intent": RATING_INTENT,
            "confidence": confidence,
            "row": RATING_INTENT,
            "triggers": [],
            "modifiers": [],
            "evidence": {
                "csat": {"consultation_id": self.consultation_id, "score": self.score, "classified_as": intent}
            },
        }


def answer_turn(
    pending: Optional[str],
    *,
    text: Optional[str],
    intent: Optional[str],
    entities: Iterable[Mapping[str, Any]] = (),
    handoff_mode: Optional[str] = None,
) -> CsatTurn:
    """Whether the latest user turn answers the pending question (``pending``: its consultation id).

    A ``csat_rating`` button with a valid score is an answer even when nothing is pending any more (a
    late press on an earlier question: the action records it against the case it belongs to, and the
    store keeps a case's first answer); a typed rating counts only while the question is pending."""
    pending = pending if isinstance(pending, str) and pending else None
    if handoff_mode == HUMAN_MODE:
        return CsatTurn(CLEAR if pending else NONE)
    if intent == RATING_INTENT:
        score = score_entity(entities)
        if score is None and pending:
            score = read_rating(text)
        if score is not None:
            return CsatTurn(RECORD, score, pending)
    elif pending:
        score = read_rating(text)
        if score is not None:
            return CsatTurn(RECORD, score, pending)
    return CsatTurn(CLEAR if pending else NONE)


def asks_after(mode: Optional[str], after_modes: Iterable[str], final: bool) -> bool:
    """Whether the question follows a case of ``mode`` that the expert's decision just closed or handed
    back (``final``), given governance.yml's ``csat.after_modes``."""
    return bool(final) and bool(mode) and mode in tuple(after_modes)
