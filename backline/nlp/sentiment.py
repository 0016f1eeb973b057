"""Message sentiment from VADER (vaderSentiment 3.3.2), a lexicon- and rule-based analyser.

`score(text)` returns VADER's four scores and a label, using VADER's own convention:
compound <= -0.05 is negative, >= 0.05 positive, in between neutral. `compound` is the
normalised polarity in [-1, 1] that the escalation matrix's `triggers.sentiment.negative_below`
is compared with.

VADER reads emoji through their Unicode descriptions; a few that customers use to show
frustration have descriptions without sentiment words ("pouting face" for 😡), so this
module gives them descriptions VADER's lexicon knows (`EMOJI_DESCRIPTIONS`).

Robust for any input: None, "", emoji-only, control characters and very long messages
(only the last `MAX_CHARS` characters, cut at a word boundary, are analysed: the end of
a long message is where the customer's current state shows, and VADER's cost grows with
length).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

NEGATIVE = "negative"
NEUTRAL = "neutral"
POSITIVE = "positive"
LABELS = (NEGATIVE, NEUTRAL, POSITIVE)
THRESHOLD = 0.05
"""VADER's convention: compound <= -0.05 is negative, >= 0.05 positive."""
MAX_CHARS = 2000
"""Longer texts are analysed from their last MAX_CHARS characters."""

EMOJI_DESCRIPTIONS: Dict[str, str] = {
    "😡": "furious face",
    "🤬": "furious face",
    "😤": "frustrated face",
    "🙄": "annoyed face",
    "😒": "unimpressed face",
    "🤦": "exasperated",
    "👎": "thumbs down dislike",
    "👍": "thumbs up good",
    "🙏": "thanks",
}
"""Emoji whose VADER description carries no sentiment, with one that does."""


@dataclass(frozen=True)
class Sentiment:
    """VADER scores of one message; positive + negative + neutral is 1 (0 for no words)."""

    compound: float
    positive: float
    negative: float
    neutral: float
    label: str

    def as_dict(self) -> Dict[str, Any]:
        return {
            "compound": self.compound,
            "positive": self.positive,
            "negative": self.negative,
            "neutral": self.neutral,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Sentiment":
        compound = float(data.get("compound", 0.0))
        return cls(
            compound=compound,
            positive=float(data.get("positive", 0.0)),
            negative=float(data.get("negative", 0.0)),
            neutral=float(data.get("neutral", 0.0)),
            label=str(data.get("label") or label_for(compound)),
        )


NO_SENTIMENT = Sentiment(compound=0.0, positive=0.0, negative=0.0, neutral=0.0, label=NEUTRAL)


def label_for(compound: float) -> str:
    """negative / neutral / positive for a compound score (VADER's ±0.05 convention)."""
    if compound <= -THRESHOLD:
        return NEGATIVE
    if compound >= THRESHOLD:
        return POSITIVE
    return NEUTRAL


@lru_cache(maxsize=1)
def analyzer() -> "SentimentIntensityAnalyzer":
    """The shared VADER analyser (its lexicon is read once), with `EMOJI_DESCRIPTIONS`."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    vader.emojis.update(EMOJI_DESCRIPTIONS)
    return vader


def tail(text: str, max_chars: int = MAX_CHARS) -> str:
    """The last `max_chars` characters of `text`, starting at a word boundary when one is near."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be a positive number of characters, not {max_chars!r}")
    if len(text) <= max_chars:
        return text
    cut = text[-max_chars:]
    boundary = next((i for i, char in enumerate(cut[:100]) if char.isspace()), None)
    return cut[boundary + 1 :] if boundary is not None else cut


def score(text: Optional[str], max_chars: int = MAX_CHARS) -> Sentiment:
    """VADER sentiment of `text` (its last `max_chars` characters); neutral zeros without words."""
    if not isinstance(text, str) or not text.strip():
        return NO_SENTIMENT
    scores = analyzer().polarity_scores(tail(text, max_chars))
    compound = float(scores["compound"])
    return Sentiment(
        compound=compound,
        positive=float(scores["pos"]),
        negative=float(scores["neg"]),
        neutral=float(scores["neu"]),
        label=label_for(compound),
    )
