"""Known words: the vocabulary of the training data, and whether a message has any word in it.

Pure Python. A message with letters but no word the assistant was trained on (keyboard mash such as
"asdfghjkl", or a language it does not speak) cannot be understood, so it should be asked to rephrase
rather than guessed at; `backline.rasa.vocabulary.KnownWordsDetector` adds the ``no_known_words``
signal for it, and the routing engine asks to rephrase once, then hands off.
"""

from __future__ import annotations

import re
from typing import FrozenSet, Iterable, List

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MIN_LETTERS = 2
"""Shorter tokens ("a", "i", "x") never decide anything: too easy to hit by chance."""


def words(text: str) -> List[str]:
    """The lower-cased letter runs of a text ("where's order #10023?" -> ["where", "s", "order"])."""
    return [w.lower() for w in _WORD.findall(text or "")]


SUFFIXES = ("ing", "ed", "es", "s")
"""Endings dropped to compare inflected forms ("humans" / "human", "charged" / "charges")."""
MIN_STEM = 3


def stem(word: str) -> str:
    """The word without one of `SUFFIXES`, if at least `MIN_STEM` letters remain; else the word."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            return word[: -len(suffix)]
    return word


def build_vocabulary(texts: Iterable[str]) -> FrozenSet[str]:
    """Every word of at least `MIN_LETTERS` letters in the texts, and its `stem`."""
    found = {w for text in texts for w in words(text) if len(w) >= MIN_LETTERS}
    return frozenset(found | {stem(w) for w in found})


def is_known(word: str, vocabulary: FrozenSet[str]) -> bool:
    """Whether the word, or its `stem`, is in the vocabulary."""
    return word in vocabulary or stem(word) in vocabulary


def has_no_known_words(text: str, vocabulary: FrozenSet[str]) -> bool:
    """Whether a message has words (of at least `MIN_LETTERS` letters) and none of them is known.

    A message without such words (digits, an id, emoji, "ok") is not judged here: the routing engine
    handles text without letters itself, and numbers are answers to questions ("10023")."""
    candidates = [w for w in words(text) if len(w) >= MIN_LETTERS]
    return bool(candidates) and bool(vocabulary) and not any(is_known(w, vocabulary) for w in candidates)
