"""Pretrained static token embeddings that ship inside a PyPI package: WordLlama's table and tokenizer.

The NLU pipeline learns words from about a hundred examples per intent; pretrained vectors
tell it that "parcel" is near "package" and "refund" near "money back" before it sees a
single example (docs/routing-experiments.md has the measurements). The vectors come from
the `wordllama` wheel (MIT; a 32,000 x 256 table trained from the Llama 2 token-embedding
codebook, see docs/routing-experiments.md for the licence terms): its files
`wordllama/weights/l2_supercat_256.safetensors` and
`wordllama/tokenizers/l2_supercat_tokenizer_config.json` are read here with `safetensors`
and `tokenizers`. The `wordllama` package itself is never imported (its code wants
pydantic 2, Rasa 3.6 pins 1.x, so `make setup` installs it with `--no-deps`), and nothing
is downloaded: the files are located through the installed distribution's metadata.

A text is tokenized once (Llama 2 subwords with character offsets, no special tokens); a
word's vector is the mean of the subwords inside its span, the sentence vector the mean
of all subwords, L2-normalised (WordLlama's own pooling).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

PACKAGE = "wordllama"
WEIGHTS = "wordllama/weights/l2_supercat_256.safetensors"
TOKENIZER = "wordllama/tokenizers/l2_supercat_tokenizer_config.json"
INSTALL_HINT = "`make setup` installs it (pip install --no-deps wordllama==0.3.3.post0, pinned in requirements.lock)"

Span = Tuple[int, int]


class MissingEmbeddings(RuntimeError):
    """The package or one of its files is not installed."""


def package_file(package: str, relative: str, hint: str = INSTALL_HINT) -> Path:
    """The path of `relative` inside the installed distribution `package`, without importing it;
    `hint` says how to install the package when it is missing."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingEmbeddings(f"the package {package!r} is not installed; {hint}") from None
    path = Path(str(distribution.locate_file(relative)))
    if not path.is_file():
        raise MissingEmbeddings(f"{relative} is missing from the installed {package} {distribution.version}")
    return path


@dataclass(frozen=True)
class StaticEmbeddings:
    """A token-embedding table and the tokenizer whose ids index it."""

    table: np.ndarray  # (vocabulary, dimensions), float32
    tokenizer: object  # tokenizers.Tokenizer
    lowercase: bool = True

    @property
    def dimensions(self) -> int:
        return int(self.table.shape[1])

    def _encode(self, texts: Sequence[str]) -> List[Tuple[np.ndarray, List[Span]]]:
        prepared = [text.lower() if self.lowercase else text for text in texts]
        encodings = self.tokenizer.encode_batch(prepared, add_special_tokens=False)  # type: ignore[attr-defined]
        vocabulary = self.table.shape[0]
        return [(np.clip(np.asarray(e.ids, dtype=np.int64), 0, vocabulary - 1), list(e.offsets)) for e in encodings]

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised mean vector per text (zeros for a text with no subword)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, (ids, _) in enumerate(self._encode(texts)):
            if len(ids):
                out[row] = _normalise(self.table[ids].mean(axis=0))
        return out

    def word_vectors(self, text: str, spans: Sequence[Span]) -> np.ndarray:
        """One vector per (start, end) character span: the mean of the subwords that overlap it
        (zeros where none does, e.g. a span of only whitespace)."""
        return self.vectors(text, spans)[0]

    def vectors(self, text: str, spans: Sequence[Span]) -> Tuple[np.ndarray, np.ndarray]:
        """`word_vectors` and the sentence vector of one text from a single tokenization (the
        featurizer's path: one encode per message, not one per kind of feature)."""
        ids, offsets = self._encode([text])[0]
        sentence = _normalise(self.table[ids].mean(axis=0)) if len(ids) else np.zeros(self.dimensions, np.float32)
        out = np.zeros((len(spans), self.dimensions), dtype=np.float32)
        kept = [i for i, (s, e) in enumerate(offsets) if e > s]  # no zero-width pieces
        starts = np.asarray([offsets[i][0] for i in kept], dtype=np.int64)
        ends = np.asarray([offsets[i][1] for i in kept], dtype=np.int64)
        vectors = self.table[ids[kept]] if kept else np.zeros((0, self.dimensions), dtype=np.float32)
        for row, (start, end) in enumerate(spans):
            # Offsets are in text order: the pieces ending after `start` and starting before `end`.
            first = int(np.searchsorted(ends, start, side="right"))
            last = int(np.searchsorted(starts, end, side="left"))
            if last > first:
                out[row] = vectors[first:last].mean(axis=0)
        return out, sentence.astype(np.float32)


def _normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@lru_cache(maxsize=4)
def load(
    package: str = PACKAGE, weights: str = WEIGHTS, tokenizer: str = TOKENIZER, lowercase: bool = True
) -> StaticEmbeddings:
    """The table (as float32) and tokenizer from the installed package; cached per process,
    so training and every loaded model share one copy (16 MB on disk, 32 MB in memory)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tensors = load_file(str(package_file(package, weights)))
    if len(tensors) != 1:
        raise MissingEmbeddings(f"{weights} holds {len(tensors)} tensors; expected one embedding table")
    (table,) = tensors.values()
    if table.ndim != 2:
        raise MissingEmbeddings(f"{weights}: expected a 2-D table, found shape {table.shape}")
    return StaticEmbeddings(
        table=np.ascontiguousarray(table, dtype=np.float32),
        tokenizer=Tokenizer.from_file(str(package_file(package, tokenizer))),
        lowercase=lowercase,
    )
