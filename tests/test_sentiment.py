"""VADER sentiment: the pure scorer and SentimentAnalyzer as a Rasa 3.6 graph component."""

from __future__ import annotations

import time
from functools import partial
from typing import Any, List

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp import sentiment
from backline.nlp.sentiment import NO_SENTIMENT, Sentiment, label_for, score, tail
from backline.rasa.sentiment import SENTIMENT, SentimentAnalyzer
from tests._spacy_fixture import (  # noqa: F401
    build_component,
    execution_context,
    kestrel_pipeline_path,
    model_storage,
    spacy_nlp,
    spacy_pipeline,
    tokenizer,
)

COMPONENT = "backline.rasa.sentiment.SentimentAnalyzer"

NEGATIVE = [
    "This is ridiculous, I am so angry with your service",
    "Worst support ever. Nobody helps and I'm furious.",
    "I hate this product, it's broken and useless",
    "terrible, TERRIBLE experience!!!",
    "I'm really disappointed, the hub stopped working again",
]
POSITIVE = [
    "Thanks, that was really helpful!",
    "Great, the refund arrived. You are awesome",
    "I love the new Kestrel Hub, works perfectly",
    "Perfect, thank you so much :)",
]
NEUTRAL = [
    "Where is my order #10023?",
    "What is the warranty period for the Hub X1",
    "I need to change the delivery address",
    "Invoice INV-2025-0107",
]


# --- the scorer -------------------------------------------------------------------


@pytest.mark.parametrize("text", NEGATIVE)
def test_clearly_negative_messages(text: str) -> None:
    result = score(text)
    assert result.label == "negative"
    assert result.compound <= -0.5, result
    assert result.negative > result.positive


@pytest.mark.parametrize("text", POSITIVE)
def test_clearly_positive_messages(text: str) -> None:
    result = score(text)
    assert result.label == "positive"
    assert result.compound >= 0.5, result
    assert result.positive > result.negative


@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral_support_questions(text: str) -> None:
    result = score(text)
    assert result.label == "neutral"
    assert result.compound == 0.0
    assert result.neutral == 1.0


def test_scores_are_vaders() -> None:
    result = score("I am so angry, this is ridiculous")
    assert result == Sentiment(compound=-0.7745, positive=0.0, negative=0.574, neutral=0.426, label="negative")
    assert abs(result.positive + result.negative + result.neutral - 1.0) < 0.01


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (-1.0, "negative"),
        (-0.05, "negative"),
        (-0.0499, "neutral"),
        (0.0, "neutral"),
        (0.0499, "neutral"),
        (0.05, "positive"),
        (1.0, "positive"),
    ],
)
def test_label_uses_vaders_thresholds(compound: float, label: str) -> None:
    assert label_for(compound) == label


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t", 42, b"bytes"])
def test_no_text_is_neutral_zero(text: Any) -> None:
    assert score(text) == NO_SENTIMENT
    assert NO_SENTIMENT.as_dict() == {
        "compound": 0.0,
        "positive": 0.0,
        "negative": 0.0,
        "neutral": 0.0,
        "label": "neutral",
    }


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("😡😡😡", "negative"),
        ("🤬", "negative"),
        ("👎", "negative"),
        ("😠", "negative"),
        ("😭😭", "negative"),
        ("👍", "positive"),
        ("🙂", "positive"),
        ("🙏", "positive"),
        ("🦜", "neutral"),
        ("🚚📦", "neutral"),
        ("❤️", "neutral"),
        ("my parcel is late 😡", "negative"),
    ],
)
def test_emoji_only_and_emoji_messages(text: str, label: str) -> None:
    result = score(text)
    assert result.label == label, result
    assert -1.0 <= result.compound <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02",
        "���",
        "asdfghjkl qwertz",
        "!!!???...",
        "1234567890",
        "\u202e\u200b\u00a0",
        "💩" * 500,
        "ü" * 3000,
        "İstanbul ŞİRKET",
    ],
)
def test_garbage_input_does_not_crash(text: str) -> None:
    result = score(text)
    assert result.label in sentiment.LABELS
    assert -1.0 <= result.compound <= 1.0


def test_ten_thousand_characters_are_fast_and_scored_on_their_end() -> None:
    text = "great product, love it. " * 420 + "But now it is broken and I am furious."
    assert len(text) > 10_000
    score("warm up")  # the lexicon loads on first use; that is not what is timed
    started = time.thread_time()
    result = score(text)
    elapsed = time.thread_time() - started
    assert elapsed < 1.0, elapsed
    assert -1.0 <= result.compound <= 1.0
    assert score("x" * 10_000).label == "neutral"
    assert score("no " * 5_000).label in sentiment.LABELS
    # The cap: only the last MAX_CHARS count, so an angry ending wins over a kind start.
    long_angry_tail = "thank you " * 1000 + "this is terrible, I hate it " * 80
    assert score(long_angry_tail).label == "negative"
    assert score(long_angry_tail, max_chars=100_000).label == "positive"


def test_tail_cuts_at_a_word_boundary() -> None:
    assert tail("short", 10) == "short"
    assert tail("alpha beta gamma", 8) == "gamma"
    assert tail("x" * 50, 10) == "x" * 10
    assert len(tail("word " * 1000)) <= sentiment.MAX_CHARS
    with pytest.raises(ValueError, match="max_chars"):
        tail("text", 0)


def test_sentiment_dict_round_trip() -> None:
    result = score("I hate waiting")
    assert Sentiment.from_dict(result.as_dict()) == result
    assert Sentiment.from_dict({"compound": -0.6}).label == "negative"


# --- the Rasa component -----------------------------------------------------------


make_analyzer = partial(build_component, SentimentAnalyzer, "sentiment")


def run(spacy_nlp: SpacyNLP, tokenizer: SpacyTokenizer, analyzer: Any, messages: List[Message]) -> List[Message]:
    return analyzer.process(spacy_pipeline(spacy_nlp, tokenizer, messages))


def test_registered_with_the_default_recipe() -> None:
    registered = DefaultV1Recipe._from_registry(COMPONENT)
    assert registered.clazz is SentimentAnalyzer
    assert registered.types == {DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR}
    assert not registered.is_trainable
    assert SentimentAnalyzer.required_packages() == ["vaderSentiment"]


def test_sets_sentiment_on_real_messages(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    texts = [NEGATIVE[0], POSITIVE[0], NEUTRAL[0], "", "😡😡", "x" * 10_000]
    analyzer = make_analyzer(model_storage, execution_context)
    processed = run(spacy_nlp, tokenizer, analyzer, [Message(data={TEXT: t}) for t in texts])
    labels = [message.get(SENTIMENT)["label"] for message in processed]
    assert labels == ["negative", "positive", "neutral", "neutral", "negative", "neutral"]
    first = processed[0]
    assert first.get(SENTIMENT) == score(NEGATIVE[0]).as_dict()
    assert SENTIMENT in first.output_properties
    # What Rasa's processor copies into the parse data (and so into UserUttered.parse_data).
    assert first.as_dict(only_output_properties=True)[SENTIMENT] == score(NEGATIVE[0]).as_dict()
    assert processed[3].as_dict(only_output_properties=True)[SENTIMENT] == NO_SENTIMENT.as_dict()


def test_message_without_text_gets_neutral_sentiment(
    model_storage: LocalModelStorage, execution_context: ExecutionContext
) -> None:
    analyzer = make_analyzer(model_storage, execution_context)
    [processed] = analyzer.process([Message(data={"intent": {"name": "greet"}})])
    assert processed.get(SENTIMENT) == NO_SENTIMENT.as_dict()


def test_max_chars_is_configurable(model_storage: LocalModelStorage, execution_context: ExecutionContext) -> None:
    text = "I hate this, it is awful and I am furious, worst service ever. " + "ok thanks. " * 3
    default = make_analyzer(model_storage, execution_context)
    short = make_analyzer(model_storage, execution_context, {"max_chars": 20})
    [whole] = default.process([Message(data={TEXT: text})])
    [end_only] = short.process([Message(data={TEXT: text})])
    assert whole.get(SENTIMENT)["label"] == "negative"
    assert end_only.get(SENTIMENT)["label"] == "positive"


@pytest.mark.parametrize("max_chars", [0, -5, "2000", 1.5, True, None])
def test_invalid_max_chars_is_a_config_error(
    max_chars: Any, model_storage: LocalModelStorage, execution_context: ExecutionContext
) -> None:
    with pytest.raises(InvalidConfigException, match="max_chars"):
        make_analyzer(model_storage, execution_context, {"max_chars": max_chars})


def test_load_round_trip(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    created = make_analyzer(model_storage, execution_context, {"max_chars": 500})
    loaded = make_analyzer(model_storage, execution_context, {"max_chars": 500}, "load")
    assert isinstance(loaded, SentimentAnalyzer)
    text = "Worst support ever 😡"
    [from_created] = run(spacy_nlp, tokenizer, created, [Message(data={TEXT: text})])
    [from_loaded] = run(spacy_nlp, tokenizer, loaded, [Message(data={TEXT: text})])
    assert from_loaded.get(SENTIMENT) == from_created.get(SENTIMENT)
    assert from_loaded.get(SENTIMENT)["label"] == "negative"
