"""Pretrained static embeddings (backline/nlp/static_embeddings.py) and their Rasa featurizer
(backline/rasa/embeddings.py): the shipped table, the vectors, and a real Rasa training round trip."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp import static_embeddings
from backline.nlp.static_embeddings import MissingEmbeddings
from backline.rasa.embeddings import StaticEmbeddingFeaturizer
from tests._rasa_nlu import created, featurizer_config, trained_classifier


@pytest.fixture(scope="module")
def table() -> static_embeddings.StaticEmbeddings:
    return static_embeddings.load()


def test_the_shipped_table_and_tokenizer(table: static_embeddings.StaticEmbeddings) -> None:
    assert table.table.shape == (32000, 256)
    assert table.table.dtype == np.float32
    assert table.dimensions == 256


def test_sentence_vectors_are_unit_length_and_know_synonyms(table: static_embeddings.StaticEmbeddings) -> None:
    parcel, package, refund, empty = table.sentence_vectors(
        ["where is my parcel", "where is my package", "i want my money back", ""]
    )
    assert np.linalg.norm(parcel) == pytest.approx(1.0, abs=1e-5)
    assert float(parcel @ package) > float(parcel @ refund) + 0.2
    assert not empty.any()


def test_case_does_not_change_the_vector(table: static_embeddings.StaticEmbeddings) -> None:
    upper, lower = table.sentence_vectors(["WHERE IS MY PARCEL", "where is my parcel"])
    assert np.allclose(upper, lower)


def test_one_vector_per_span(table: static_embeddings.StaticEmbeddings) -> None:
    text = "refund please"
    vectors = table.word_vectors(text, [(0, 6), (7, 13), (20, 25)])
    assert vectors.shape == (3, 256)
    assert vectors[0].any() and vectors[1].any()
    assert not np.allclose(vectors[0], vectors[1])
    assert not vectors[2].any()  # past the end of the text: no subword inside


def test_ten_thousand_characters_are_fast(table: static_embeddings.StaticEmbeddings) -> None:
    text = ("my order from last week still has not arrived " * 220)[:10_000]
    spans, start = [], 0
    for word in text.split(" "):
        spans.append((start, start + len(word)))
        start += len(word) + 1
    started = time.thread_time()
    vectors = table.word_vectors(text, spans)
    table.sentence_vectors([text])
    assert time.thread_time() - started < 1.0
    assert vectors.shape == (len(spans), 256)


def test_a_missing_package_names_the_fix() -> None:
    with pytest.raises(MissingEmbeddings, match="not installed.*make setup"):
        static_embeddings.package_file("no-such-embeddings-package", "weights.safetensors")
    with pytest.raises(MissingEmbeddings, match="missing from the installed wordllama"):
        static_embeddings.package_file("wordllama", "wordllama/weights/no_such_table.safetensors")


def _featurizer(tmp_path: Path, **config: object) -> StaticEmbeddingFeaturizer:
    return created(StaticEmbeddingFeaturizer, tmp_path, "embeddings", **config)


def test_the_featurizer_adds_word_and_sentence_features(tmp_path: Path) -> None:
    message = Message({TEXT: "My parcel never arrived"})
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process([message])
    _featurizer(tmp_path, scale=2.0).process([message])
    sequence, sentence = message.get_dense_features(TEXT)
    assert sequence is not None and sentence is not None
    assert sequence.features.shape == (4, 256)
    assert sentence.features.shape == (1, 256)
    assert np.linalg.norm(sentence.features) == pytest.approx(2.0, abs=1e-4)


def test_an_empty_message_gets_no_features(tmp_path: Path) -> None:
    message = Message({TEXT: "   "})
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process([message])
    _featurizer(tmp_path).process([message])
    assert message.get_dense_features(TEXT) == (None, None)


@pytest.mark.parametrize("scale", [0, -1, "3", True, None])
def test_scale_must_be_a_positive_number(tmp_path: Path, scale: object) -> None:
    with pytest.raises(InvalidConfigException, match="scale"):
        _featurizer(tmp_path, scale=scale)


CONFIG = featurizer_config("backline.rasa.embeddings.StaticEmbeddingFeaturizer")

DATA = """
version: "3.1"
nlu:
- intent: order_status
  examples: |
    - where is my package
    - my package has not arrived
    - when will my package come
    - track my package
- intent: refund_request
  examples: |
    - i want my money back
    - please give me a refund
    - refund my purchase
    - can i get my money back
"""


def test_a_pipeline_trained_with_rasa_generalises_to_unseen_words(tmp_path: Path) -> None:
    """Trained on "package" only; "parcel" and "reimbursement" never occur in the training data."""
    intent = trained_classifier(tmp_path, CONFIG, DATA)
    assert intent("where is my parcel") == "order_status"
    assert intent("I would like a reimbursement") == "refund_request"


def test_one_tokenization_gives_both_kinds_of_vector(table: static_embeddings.StaticEmbeddings) -> None:
    text, spans = "Where is my parcel?", [(0, 5), (6, 8), (9, 11), (12, 19)]
    words, sentence = table.vectors(text, spans)
    assert np.allclose(words, table.word_vectors(text, spans))
    assert np.allclose(sentence, table.sentence_vectors([text])[0])
    assert np.linalg.norm(sentence) == pytest.approx(1.0, abs=1e-5)
