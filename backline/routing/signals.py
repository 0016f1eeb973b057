"""Rule-based trigger signals: what the matrix asks the NLU signal detector to look for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

EXPLICIT_REQUEST = "explicit_request"
NOT_EXPLICIT_REQUEST = "not_explicit_request"
NO_KNOWN_WORDS = "no_known_words"
"""A message with letters but no word of the training data (backline.rasa.vocabulary)."""


@dataclass(frozen=True)
class SignalSpec:
    """One signal: `explicit_request` or an exception category's name, with its phrases.

    `phrases` match case-insensitively on whole tokens; `patterns` are spaCy Matcher
    token patterns; a match overlapping one of `not_phrases` does not count.
    """

    name: str
    phrases: Tuple[str, ...] = ()
    patterns: Tuple[Tuple[Dict[str, Any], ...], ...] = ()
    not_phrases: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Signal:
    """A detected signal in one message: its name, the matched text and its offsets."""

    name: str
    phrase: str
    start: int
    end: int

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "phrase": self.phrase, "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Signal":
        return cls(str(data["name"]), str(data.get("phrase", "")), int(data.get("start", 0)), int(data.get("end", 0)))


def signal_names(signals: List[Signal]) -> List[str]:
    """The distinct signal names, in order of first appearance."""
    return list(dict.fromkeys(signal.name for signal in signals))


# --- spaCy Matcher token patterns: what the matrix may use --------------------------------
#
# Checked here, without importing spaCy, so `validate-matrix` and the loader report a bad
# pattern at its line in escalation.yml. The whitelist follows spaCy 3.4's token pattern
# schema, minus the attributes the project's pipeline (blank English + entity rules, see
# backline/nlp/build.py) never sets: a pattern on them would silently never match.

TokenPattern = Tuple[Dict[str, Any], ...]

STRING_ATTRS = ("ORTH", "TEXT", "LOWER", "NORM", "SHAPE", "ENT_TYPE", "ENT_ID", "ENT_KB_ID")
NUMBER_ATTRS = ("LENGTH",)
BOOL_ATTRS = (
    "IS_ALPHA", "IS_ASCII", "IS_DIGIT", "IS_LOWER", "IS_UPPER", "IS_TITLE", "IS_PUNCT",
    "IS_SPACE", "IS_BRACKET", "IS_QUOTE", "IS_LEFT_PUNCT", "IS_RIGHT_PUNCT", "IS_CURRENCY",
    "IS_STOP", "IS_SENT_START", "SENT_START", "SPACY", "LIKE_NUM", "LIKE_URL", "LIKE_EMAIL",
)  # fmt: skip
OP = "OP"
EXTENSION = "_"
MESSAGE_EDGES = {
    "starts_message": "no letter or digit before the token",
    "ends_message": "no letter or digit after the token (punctuation and emoji may follow)",
}
"""Custom token attributes (``{_: {ends_message: true}}``), set by backline/nlp/signals.py: a pattern
whose first token starts the message and whose last token ends it matches only a whole message
("agent?", "a real person please") and not the same words inside a longer one ("live agent hours?")."""
TOKEN_ATTRS = STRING_ATTRS + NUMBER_ATTRS + BOOL_ATTRS + (OP, EXTENSION)
"""Keys a token dict may use."""
UNSET_ATTRS = {
    "LEMMA": "a lemmatizer",
    "POS": "a tagger",
    "TAG": "a tagger",
    "MORPH": "a morphologizer",
    "DEP": "a parser",
}
"""Valid spaCy attributes that need a trained component the project's pipeline does not have."""
SIMPLE_OPS = ("!", "?", "+", "*")
_MIN_MAX_OP = re.compile(r"^\{(\d+)\}$|^\{(\d+),(\d*)\}$|^\{(\d*),(\d+)\}$")
LIST_PREDICATES = ("IN", "NOT_IN", "IS_SUBSET", "IS_SUPERSET", "INTERSECTS")
COMPARE_PREDICATES = ("==", "!=", ">=", "<=", ">", "<")
CASED_ATTRS = ("LOWER", "TEXT", "ORTH")
"""Rasa's SpacyNLP builds the doc from the lower-cased text (case_sensitive: false), and
LOWER is lower case by definition: an upper-case letter in these values never matches."""

PatternProblem = Tuple[Tuple[Any, ...], str]
"""(key path inside the pattern, message)."""


def _op_min(op: str) -> Optional[int]:
    """The least number of tokens an OP value matches; None when it is not a valid operator."""
    if op in SIMPLE_OPS:
        return 1 if op == "+" else 0
    found = _MIN_MAX_OP.match(op)
    if not found:
        return None
    exact, low, _, _, _ = found.groups()
    if exact is not None:
        return int(exact)
    return int(low) if low else 0


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_cased(attr: str, value: str, keys: Tuple[Any, ...]) -> List[PatternProblem]:
    if attr in CASED_ATTRS and value != value.lower():
        hint = "" if attr == "LOWER" else "; use LOWER"
        return [
            (keys, f"{value!r} has upper-case letters: messages are matched lower-cased, so it never matches{hint}")
        ]
    return []


def _check_value(attr: str, value: Any, keys: Tuple[Any, ...]) -> List[PatternProblem]:
    if attr in BOOL_ATTRS:
        return [] if isinstance(value, bool) else [(keys, f"expected true or false, not {value!r}")]
    is_item = _is_number if attr in NUMBER_ATTRS else _is_text
    kind = "a number" if attr in NUMBER_ATTRS else "text"
    if is_item(value):
        return _check_cased(attr, value, keys) if isinstance(value, str) else []
    if not isinstance(value, Mapping) or not value:
        return [(keys, f"expected {kind} or a mapping of predicates (IN, NOT_IN, REGEX, ...), not {value!r}")]
    problems: List[PatternProblem] = []
    allowed = LIST_PREDICATES + ("REGEX",) + (COMPARE_PREDICATES if attr in NUMBER_ATTRS else ())
    for predicate, operand in value.items():
        where = keys + (predicate,)
        if predicate not in allowed:
            problems.append((where, f"unknown predicate (allowed: {', '.join(allowed)})"))
        elif predicate == "REGEX":
            if not isinstance(operand, str):
                problems.append((where, f"expected a regular expression, not {operand!r}"))
                continue
            try:
                re.compile(operand)
            except re.error as error:
                problems.append((where, f"invalid regular expression {operand!r}: {error}"))
        elif predicate in COMPARE_PREDICATES:
            if not _is_number(operand):
                problems.append((where, f"expected a number, not {operand!r}"))
        elif not isinstance(operand, list) or not operand or not all(is_item(item) for item in operand):
            problems.append((where, f"expected a non-empty list of {'numbers' if attr in NUMBER_ATTRS else 'strings'}"))
        else:
            for i, item in enumerate(operand):
                if isinstance(item, str):
                    problems.extend(_check_cased(attr, item, where + (i,)))
    return problems


def _check_extension(value: Any, keys: Tuple[Any, ...]) -> List[PatternProblem]:
    if not isinstance(value, Mapping) or not value:
        return [(keys, f"expected a mapping such as {{ends_message: true}}, not {value!r}")]
    problems: List[PatternProblem] = []
    for name, flag in value.items():
        if name not in MESSAGE_EDGES:
            problems.append((keys + (name,), f"unknown custom attribute (allowed: {', '.join(MESSAGE_EDGES)})"))
        elif not isinstance(flag, bool):
            problems.append((keys + (name,), f"expected true or false, not {flag!r}"))
    return problems


def check_token_pattern(pattern: Any) -> List[PatternProblem]:
    """Problems of one spaCy Matcher token pattern (a non-empty list of token dicts); empty when valid.

    Each problem is (keys inside the pattern, message): ``((1, "LOWER", "IN"), "...")``.
    """
    example = "e.g. [{LOWER: talk}, {LOWER: to}]"
    if not isinstance(pattern, list) or not pattern:
        return [((), f"a token pattern must be a non-empty list of token dicts, {example}")]
    problems: List[PatternProblem] = []
    least = 0
    for i, token in enumerate(pattern):
        if not isinstance(token, Mapping):
            problems.append(((i,), f"a token must be a mapping of attributes, {example}, not {token!r}"))
            continue
        op = token.get(OP)
        for attr, value in token.items():
            keys: Tuple[Any, ...] = (i, attr)
            if attr in UNSET_ATTRS:
                problems.append(
                    (
                        keys,
                        f"{attr} needs {UNSET_ATTRS[attr]}, which the project's spaCy pipeline "
                        "(blank English + rules) does not have: it would never match",
                    )
                )
            elif attr not in TOKEN_ATTRS:
                problems.append(
                    (
                        keys,
                        f"unknown spaCy token attribute {attr!r} (allowed: "
                        f"{', '.join(STRING_ATTRS + NUMBER_ATTRS)}, IS_*, LIKE_*, SPACY, SENT_START, OP, _)",
                    )
                )
            elif attr == EXTENSION:
                problems.extend(_check_extension(value, keys))
            elif attr == OP:
                if not isinstance(value, str) or _op_min(value) is None:
                    problems.append((keys, f"{value!r} is not a spaCy operator (one of !, ?, +, *, {{n}}, {{n,m}})"))
            else:
                problems.extend(_check_value(attr, value, keys))
        least += 1 if op is None else (_op_min(op) or 0) if isinstance(op, str) else 0
    if not problems and least == 0:
        problems.append(((), "every token is optional or negated, so the pattern can match nothing"))
    return problems


def plain(value: Any) -> Any:
    """YAML mappings and sequences (ruamel's commented ones included) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
