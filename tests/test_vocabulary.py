"""Known words: the vocabulary check (pure) and the Rasa component that trains, persists and applies it."""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from backline.nlp.vocabulary import build_vocabulary, has_no_known_words, stem, words
from backline.rasa.signals import SIGNALS
from backline.rasa.vocabulary import KnownWordsDetector

VOCABULARY = build_vocabulary(["Where is my order?", "I want a refund of 50 euros", "talk to a human please"])


def test_words_are_lower_cased_letter_runs() -> None:
    assert words("Where's order #10023?") == ["where", "s", "order"]
    assert VOCABULARY == {
        "where",
        "is",
        "my",
        "order",
        "want",
        "refund",
        "of",
        "euros",
        "euro",
        "talk",
        "to",
        "human",
        "please",
    }


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("humans", "human"),
        ("charged", "charg"),
        ("charges", "charg"),
        ("refunding", "refund"),
        ("agents", "agent"),
        ("bus", "bus"),
        ("yes", "yes"),
        ("asdf", "asdf"),
    ],
)
def test_stems_drop_one_ending_and_keep_three_letters(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize("text", ["humans?", "ORDERS", "refunded", "wanting my euro"])
def test_an_inflected_known_word_is_known(text: str) -> None:
    assert not has_no_known_words(text, VOCABULARY)


def test_the_vocabulary_holds_stems_so_another_inflection_is_known() -> None:
    vocabulary = build_vocabulary(["you charged me twice"])
    assert "charg" in vocabulary and not has_no_known_words("charges??", vocabulary)


@pytest.mark.parametrize(
    "text",
    [
        "asdfghjkl",
        "jkjkjk qwe",
        "qwertz uiop",
        "hola necesito ayuda",
        "ASDFS!!",
        "sdfsdf ghgh",
        "qweqweqwe 🙂",
        "ghjk1234",
        "wo ist meine bestellung",
    ],
)
def test_text_with_no_known_word_is_flagged(text: str) -> None:
    assert has_no_known_words(text, VOCABULARY)


@pytest.mark.parametrize("text", ["wher is my ordr", "REFUND!!", "10023", "🙂", "x", "a b c", ""])
def test_a_known_word_or_no_word_to_judge_is_not_flagged(text: str) -> None:
    assert not has_no_known_words(text, VOCABULARY)


def test_without_a_vocabulary_nothing_is_flagged() -> None:
    assert not has_no_known_words("asdfghjkl", frozenset())


def _component(tmp_path: Path, name: str = "known_words") -> tuple:
    storage = LocalModelStorage(tmp_path)
    resource = Resource(name)
    context = ExecutionContext(GraphSchema({}), node_name=name)
    return storage, resource, context


def test_the_component_trains_persists_loads_and_flags(tmp_path: Path) -> None:
    storage, resource, context = _component(tmp_path)
    trained = KnownWordsDetector.create({}, storage, resource, context)
    data = TrainingData(
        [
            Message({TEXT: "where is my order", "intent": "order_status"}),
            Message({TEXT: "talk to a human", "intent": "request_human"}),
        ]
    )
    trained.train(data)
    loaded = KnownWordsDetector.load({}, storage, resource, context)
    assert loaded.vocabulary == {"where", "is", "my", "order", "talk", "to", "human"}

    mash = Message({TEXT: "qwerty zxcv", SIGNALS: [{"name": "legal", "phrase": "x", "start": 0, "end": 1}]})
    known = Message({TEXT: "my order?"})
    number = Message({TEXT: "zzz 10023", ENTITIES: [{"entity": "order_id", "value": "10023", "start": 4, "end": 9}]})
    loaded.process([mash, known, number])
    assert mash.get(SIGNALS) == [
        {"name": "legal", "phrase": "x", "start": 0, "end": 1},
        {"name": "no_known_words", "phrase": "qwerty zxcv", "start": 0, "end": 11},
    ]
    assert known.get(SIGNALS) is None and number.get(SIGNALS) is None


def test_a_model_without_a_vocabulary_loads_and_flags_nothing(tmp_path: Path) -> None:
    storage, resource, context = _component(tmp_path, "never_trained")
    loaded = KnownWordsDetector.load({}, storage, resource, context)
    message = Message({TEXT: "asdfghjkl"})
    loaded.process([message])
    assert loaded.vocabulary == frozenset() and message.get(SIGNALS) is None
