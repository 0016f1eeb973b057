"""Rule-based trigger signals in a message, found with spaCy's PhraseMatcher and Matcher.

The escalation matrix describes what to look for as `SignalSpec`s (backline.routing.signals):
`explicit_request` (a request for a person) and one spec per exception category
(`legal`, `formal_complaint`, `account_security`, ...). `SignalDetector(specs).detect(doc, text)`
returns the `Signal`s found, with offsets into the original text:

- `phrases` match whole tokens, case-insensitively (PhraseMatcher on LOWER);
- `patterns` are spaCy Matcher token patterns. Rasa's SpacyNLP builds the doc from the
  lower-cased text by default, so patterns should match on LOWER (or on attributes
  without case, such as IS_DIGIT or LIKE_EMAIL), not on TEXT / ORTH with capitals;
- a match that overlaps one of its spec's `not_phrases` is dropped, and every
  not-phrase found gives a `not_<name>` signal (`not_explicit_request` for
  "human resources", "human-readable", ...), so the evidence shows why nothing fired;
- overlapping matches of one signal are merged into one; the result is sorted by
  position;
- patterns may use the custom token attributes ``{_: {starts_message: true}}`` and
  ``{_: {ends_message: true}}`` (no letter or digit before / after the token) to match a whole
  short message ("agent?", "a real person please") and not the same words in a longer one.

The doc is the one Rasa's pipeline already made (built from `text` or `text.lower()`);
without one, or for a doc of some other text, the detector tokenises `text` itself.

Each pattern has its own Matcher and runs only on a doc that holds its anchors (`pattern_anchors`:
for every token the pattern cannot skip, the words its LOWER may be). spaCy evaluates an ``IN``
list and a ``_`` attribute in Python for every token, so signals.yml's patterns were the largest
cost of the routing layer's NLU components, though most messages hold no anchor of any of them.
The filter is exact: a pattern it skips could not have matched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from backline.nlp.entities import Span, original_positions, span_in_original
from backline.routing.signals import Signal, SignalSpec

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.matcher import Matcher
    from spacy.tokens import Doc

NOT_PREFIX = "not_"
_POSITIVE = "+"
_NEGATIVE = "-"


class SignalSpecError(ValueError):
    """A SignalSpec cannot be compiled (empty phrase, invalid token pattern, ...)."""


def negative_name(name: str) -> str:
    """The name of the signal a not-phrase of `name` gives: `not_explicit_request`."""
    return f"{NOT_PREFIX}{name}"


def _merge(spans: Iterable[Span]) -> List[Span]:
    """Union of overlapping spans (touching spans stay apart), sorted."""
    merged: List[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlaps(span: Span, others: Sequence[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


_AT_LEAST_ONCE = re.compile(r"\{([1-9][0-9]*)(,[0-9]*)?\}")
"""A Matcher quantifier ``{n}``, ``{n,}`` or ``{n,m}`` with n >= 1: the token must be there."""


def _required(token: Mapping[str, Any]) -> bool:
    op = token.get("OP")
    return op is None or op == "+" or (isinstance(op, str) and _AT_LEAST_ONCE.fullmatch(op) is not None)


def _lower_words(token: Mapping[str, Any]) -> Optional[FrozenSet[str]]:
    lower = token.get("LOWER")
    if isinstance(lower, str):
        return frozenset([lower])
    if isinstance(lower, Mapping) and set(lower) == {"IN"} and isinstance(lower["IN"], (list, tuple)):
        if all(isinstance(word, str) for word in lower["IN"]):
            return frozenset(lower["IN"])
    return None


Anchor = Tuple[str, FrozenSet[str]]
"""Where (``word``: anywhere, or an `EDGE_GETTERS` name: at that edge of the message) one of the words
must be for a pattern to match."""


def pattern_anchors(pattern: Sequence[Any]) -> Tuple[Anchor, ...]:
    """What a doc must hold for the Matcher token `pattern` to match: for every token the pattern
    cannot skip (no ``OP``, ``+`` or ``{n...}`` with n >= 1) whose ``LOWER`` is a word or an ``IN``
    list, that set of words somewhere in the doc (``word``), and at the message's edge when the token
    also asks for ``_: {starts_message: true}`` or ``ends_message``. Other tokens (optional, negated,
    other attributes or predicates) add nothing: the anchors are a necessary condition only."""
    anchors: List[Anchor] = []
    for token in pattern:
        if not isinstance(token, Mapping) or not _required(token):
            continue
        words = _lower_words(token)
        if words is None:
            continue
        extensions = token.get("_")
        edges = [e for e in EDGE_GETTERS if isinstance(extensions, Mapping) and extensions.get(e) is True]
        for anchor in [("word", words), *((edge, words) for edge in edges)]:
            if anchor not in anchors:
                anchors.append(anchor)
    return tuple(anchors)


def message_words(doc: "Doc") -> Dict[str, Set[str]]:
    """The lower-cased tokens of `doc` by `Anchor` scope: ``word`` all of them; ``starts_message`` /
    ``ends_message`` those for which that `EDGE_GETTERS` attribute is true."""
    first, last = _word_bounds(doc)
    lowers = [token.lower_ for token in doc]
    return {
        "word": set(lowers),
        "starts_message": set(lowers[: first + 1]),
        "ends_message": set(lowers[max(last, 0) :]),
    }


def _word_bounds(doc: "Doc") -> Tuple[int, int]:
    """The indices of the doc's first and last token with a letter or digit, once per doc."""
    key = "backline_word_bounds"
    if key not in doc.user_data:
        words = [token.i for token in doc if any(ch.isalnum() for ch in token.text)]
        doc.user_data[key] = (words[0], words[-1]) if words else (len(doc), -1)
    return doc.user_data[key]


EDGE_GETTERS = {
    "starts_message": lambda token: token.i <= _word_bounds(token.doc)[0],
    "ends_message": lambda token: token.i >= _word_bounds(token.doc)[1],
}
"""The getters of backline.routing.signals.MESSAGE_EDGES (the names patterns may use under ``_``)."""


def register_message_edges() -> None:
    """Registers the custom token attributes of `EDGE_GETTERS` (getters: every doc has them)."""
    from spacy.tokens import Token

    for name, getter in EDGE_GETTERS.items():
        if not Token.has_extension(name):
            Token.set_extension(name, getter=getter)


class SignalDetector:
    """Finds the signals of `specs` in spaCy docs; specs sharing a name count as one signal.

    `nlp` supplies the vocabulary and the tokenizer for the phrases; it should be the
    pipeline whose docs `detect` receives (Rasa's SpacyNLP model). Without it a blank
    English pipeline is used, which tokenises like the project's pipeline. Invalid
    specs raise `SignalSpecError` naming the signal and the phrase or pattern.
    """

    def __init__(self, specs: Sequence[SignalSpec], nlp: Optional["Language"] = None) -> None:
        from spacy.matcher import PhraseMatcher

        if nlp is None:
            import spacy

            nlp = spacy.blank("en")
        register_message_edges()
        self.nlp = nlp
        self.specs: Tuple[SignalSpec, ...] = tuple(specs)
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._patterns: List[Tuple[Tuple[Anchor, ...], "Matcher"]] = []
        self._by_word: Dict[str, List[int]] = {}  # a word of a pattern's first anchor -> the pattern's index
        self._unanchored: List[int] = []  # patterns without anchors: tried on every doc
        self._keys: Dict[int, Tuple[str, str]] = {}
        for spec in self.specs:
            self._add(spec)

    @property
    def names(self) -> List[str]:
        """The signal names this detector can report (without the `not_` ones)."""
        return list(dict.fromkeys(spec.name for spec in self.specs))

    def _key(self, kind: str, name: str) -> str:
        key = f"{kind}{name}"
        self._keys[self.nlp.vocab.strings.add(key)] = (kind, name)
        return key

    def _phrase_docs(self, spec: SignalSpec, field: str, phrases: Sequence[str]) -> List["Doc"]:
        docs = []
        for i, phrase in enumerate(phrases):
            if not isinstance(phrase, str) or not phrase.strip():
                raise SignalSpecError(f"signal {spec.name!r}: {field}[{i}] must be non-empty text, not {phrase!r}")
            doc = self.nlp.make_doc(phrase.strip())
            if not any(not token.is_space for token in doc):
                raise SignalSpecError(f"signal {spec.name!r}: {field}[{i}] {phrase!r} has no words")
            docs.append(doc)
        return docs

    def _add(self, spec: SignalSpec) -> None:
        if not isinstance(spec, SignalSpec):
            raise SignalSpecError(f"expected a SignalSpec, got {spec!r}")
        if not isinstance(spec.name, str) or not spec.name.strip():
            raise SignalSpecError(f"a signal needs a name: {spec!r}")
        phrase_docs = self._phrase_docs(spec, "phrases", spec.phrases)
        if phrase_docs:
            self._phrases.add(self._key(_POSITIVE, spec.name), phrase_docs)
        not_docs = self._phrase_docs(spec, "not_phrases", spec.not_phrases)
        if not_docs:
            self._phrases.add(self._key(_NEGATIVE, spec.name), not_docs)
        from spacy.matcher import Matcher

        for i, pattern in enumerate(spec.patterns):
            tokens = [dict(token) if isinstance(token, dict) else token for token in pattern or ()]
            matcher = Matcher(self.nlp.vocab, validate=True)
            try:
                matcher.add(self._key(_POSITIVE, spec.name), [tokens])
                self._index(pattern_anchors(tokens), matcher)
            except ValueError as error:
                detail = " ".join(str(error).split())
                raise SignalSpecError(
                    f"signal {spec.name!r}: patterns[{i}] is not a valid spaCy Matcher token pattern "
                    f"({detail}): {pattern!r}"
                ) from None

    def _doc_for(self, doc: Optional["Doc"], text: str) -> Tuple["Doc", Optional[List[int]]]:
        if doc is not None:
            try:
                return doc, original_positions(doc.text, text)
            except ValueError:
                pass
        return self.nlp.make_doc(text), None

    def detect(self, doc: Optional["Doc"], text: Optional[str]) -> List[Signal]:
        """The signals in `text`; `doc` is its spaCy doc (of `text` or `text.lower()`) or None."""
        if not isinstance(text, str) or not text.strip():
            return []
        doc, positions = self._doc_for(doc, text)
        found: Dict[Tuple[str, str], List[Span]] = {}
        for match_id, start, end in [*self._phrases(doc), *self._pattern_matches(doc)]:
            span = doc[start:end]
            if not span.text.strip():
                continue
            found.setdefault(self._keys[match_id], []).append(
                span_in_original((span.start_char, span.end_char), positions)
            )
        signals: List[Signal] = []
        for (kind, name), spans in found.items():
            if kind == _NEGATIVE:
                signals.extend(self._signals(negative_name(name), spans, text))
                continue
            negatives = found.get((_NEGATIVE, name), [])
            kept = [span for span in spans if not _overlaps(span, negatives)]
            signals.extend(self._signals(name, kept, text))
        signals.sort(key=lambda s: (s.start, s.end, s.name))
        return signals

    def _index(self, anchors: Tuple[Anchor, ...], matcher: "Matcher") -> None:
        number = len(self._patterns)
        self._patterns.append((anchors, matcher))
        if not anchors:
            self._unanchored.append(number)
        for word in anchors[0][1] if anchors else ():  # the first anchor is a ``word`` one
            self._by_word.setdefault(word, []).append(number)

    def _pattern_matches(self, doc: "Doc") -> List[Tuple[int, int, int]]:
        """The matches of the patterns whose anchors are all in `doc` (the others cannot match), each
        once (as one Matcher gives two patterns of a signal matching the same tokens)."""
        words = message_words(doc)
        candidates = set(self._unanchored)
        for word in words["word"].intersection(self._by_word):
            candidates.update(self._by_word[word])
        matches: List[Tuple[int, int, int]] = []
        for number in sorted(candidates):
            anchors, matcher = self._patterns[number]
            if all(not allowed.isdisjoint(words[scope]) for scope, allowed in anchors[1:]):
                matches.extend(matcher(doc))
        return list(dict.fromkeys(matches))

    @staticmethod
    def _signals(name: str, spans: Iterable[Span], text: str) -> List[Signal]:
        return [Signal(name, text[start:end], start, end) for start, end in _merge(spans)]
