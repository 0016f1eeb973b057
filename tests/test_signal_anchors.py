"""The signal detector's pattern anchors: which words a pattern needs, and that skipping a pattern
whose anchors a message lacks never changes what is found (checked against one spaCy Matcher
holding every pattern of signals.yml, over every message text in the project's data)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest
from spacy.language import Language
from spacy.matcher import Matcher

from backline.nlp.signals import SignalDetector, message_words, pattern_anchors
from backline.paths import BENCHMARKS
from backline.routing import load_matrix
from tests._spacy_fixture import kestrel_nlp, kestrel_pipeline_path  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
AGENT = ["agent", "human"]


@pytest.mark.parametrize(
    "pattern, anchors",
    [
        # a required token: its words; optional ones ("?", "*") add nothing
        (
            [{"LOWER": {"IN": ["talk", "speak"]}}, {"LOWER": "to", "OP": "?"}, {"LOWER": {"IN": AGENT}, "OP": "*"}],
            [("word", {"talk", "speak"})],
        ),
        # "+" and "{n}" / "{n,m}" with n >= 1 are required; "{0,2}", "!" are not
        (
            [
                {"LOWER": "get", "OP": "+"},
                {"LOWER": "me", "OP": "{1,2}"},
                {"LOWER": "a", "OP": "{0,2}"},
                {"LOWER": "bot", "OP": "!"},
                {"LOWER": "now", "OP": "{2}"},
            ],
            [("word", {"get"}), ("word", {"me"}), ("word", {"now"})],
        ),
        # predicates other than a plain LOWER / IN, and other attributes alone: no anchor
        (
            [
                {"LOWER": {"NOT_IN": ["a"]}},
                {"LOWER": {"REGEX": "^agent"}},
                {"IS_PUNCT": True},
                {"LOWER": {"IN": AGENT, "NOT_IN": ["human"]}},
                {"TEXT": "Agent"},
            ],
            [],
        ),
        # the message's edges: the same words, also at the start / the end
        (
            [{"LOWER": {"IN": AGENT}, "_": {"starts_message": True, "ends_message": True}}],
            [("word", set(AGENT)), ("starts_message", set(AGENT)), ("ends_message", set(AGENT))],
        ),
        (
            [{"LOWER": "real", "_": {"starts_message": False}}, {"LOWER": "person", "_": {"ends_message": True}}],
            [("word", {"real"}), ("word", {"person"}), ("ends_message", {"person"})],
        ),
        # a token repeated counts once
        ([{"LOWER": "very"}, {"LOWER": "very"}], [("word", {"very"})]),
    ],
)
def test_pattern_anchors(pattern: List[Dict[str, Any]], anchors: List[Tuple[str, Set[str]]]) -> None:
    assert [(scope, set(words)) for scope, words in pattern_anchors(pattern)] == anchors


def test_message_words_by_edge(kestrel_nlp: Language) -> None:  # noqa: F811
    words = message_words(kestrel_nlp("... agent, please now!!"))
    assert words == {
        "word": {"...", "agent", ",", "please", "now", "!"},
        "starts_message": {"...", "agent"},  # up to the first word
        "ends_message": {"now", "!"},  # from the last word
    }
    # no word at all: every token is at both edges (as the starts_message / ends_message getters say)
    assert message_words(kestrel_nlp("?!")) == {
        "word": {"?", "!"},
        "starts_message": {"?", "!"},
        "ends_message": {"?", "!"},
    }


def _texts() -> List[str]:
    """Every message text of the project's NLU data, stories, held-out split and phrasing families,
    and a third of CLINC150's and BANKING77's: what customers write, near and far from the domain."""
    texts: Set[str] = set()
    sources = [*ROOT.glob("data/**/*.yml"), *ROOT.glob("heldout/*.yml"), *ROOT.glob("tests/fixtures/families/*.yml")]
    for path in sources:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = line.strip()
            if item.startswith("- ") and not item.startswith("- intent:"):
                texts.add(item[2:].strip().strip('"'))
    assert BENCHMARKS.is_dir(), f"no benchmark data at {BENCHMARKS}: set BACKLINE_BENCHMARKS to the folder"
    clinc = json.loads((BENCHMARKS / "clinc150" / "data_full_train_val.json").read_text(encoding="utf-8"))
    texts.update(row[0] for rows in clinc.values() for row in rows[::3])
    with (BENCHMARKS / "banking77" / "train.csv").open(encoding="utf-8") as rows:
        texts.update(row[0] for row in list(csv.reader(rows))[1::3])
    return sorted(t for t in texts if t)


def test_skipping_patterns_without_their_anchors_changes_no_match(kestrel_nlp: Language) -> None:  # noqa: F811
    detector = SignalDetector(load_matrix(ROOT / "escalation.yml").signal_specs(), kestrel_nlp)
    every = Matcher(kestrel_nlp.vocab)
    for _, matcher in detector._patterns:
        for key in list(matcher._patterns):
            every.add(kestrel_nlp.vocab.strings[key], matcher.get(key)[1])
    texts = _texts()
    assert len(texts) > 10_000 and len(detector._patterns) >= 30
    matched = 0
    for text in texts:
        doc = kestrel_nlp(text.lower())
        expected = sorted(every(doc))
        assert sorted(detector._pattern_matches(doc)) == expected, text
        matched += bool(expected)
    assert matched >= 200  # the comparison covers real matches, not only misses


def test_a_message_without_anchors_runs_no_pattern(kestrel_nlp: Language, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    detector = SignalDetector(load_matrix(ROOT / "escalation.yml").signal_specs(), kestrel_nlp)
    ran: List[int] = []

    def counted(number: int, matcher: Matcher) -> Any:
        return lambda doc: ran.append(number) or matcher(doc)

    monkeypatch.setattr(
        detector, "_patterns", [(anchors, counted(i, m)) for i, (anchors, m) in enumerate(detector._patterns)]
    )
    assert (
        detector.detect(kestrel_nlp("what are your opening hours on sunday?"), "what are your opening hours on sunday?")
        == []
    )
    assert ran == []
    text = "agent?"
    assert [s.name for s in detector.detect(kestrel_nlp(text), text)] == ["explicit_request"]
    assert 0 < len(ran) < len(detector._patterns) / 2  # only the patterns anchored on "agent" at both edges
    assert all(any("agent" in words for _, words in detector._patterns[i][0]) for i in ran)
