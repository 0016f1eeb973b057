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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

from backline.nlp.entities import Span, original_positions, span_in_original
from backline.routing.signals import Signal, SignalSpec

if TYPE_CHECKING:
    from spacy.language import Language
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
        from spacy.matcher import Matcher, PhraseMatcher

        if nlp is None:
            import spacy

            nlp = spacy.blank("en")
        register_message_edges()
        self.nlp = nlp
        self.specs: Tuple[SignalSpec, ...] = tuple(specs)
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._patterns = Matcher(nlp.vocab, validate=True)
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
        for i, pattern in enumerate(spec.patterns):
            tokens = [dict(token) if isinstance(token, dict) else token for token in pattern or ()]
            try:
                self._patterns.add(self._key(_POSITIVE, spec.name), [tokens])
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
        for match_id, start, end in [*self._phrases(doc), *self._patterns(doc)]:
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

    @staticmethod
    def _signals(name: str, spans: Iterable[Span], text: str) -> List[Signal]:
        return [Signal(name, text[start:end], start, end) for start, end in _merge(spans)]
