"""The sentence encoder's forward pass as an ONNX graph, built in memory from its safetensors weights.

all-MiniLM-L6-v2 is a 6-layer, 384-wide BERT (12 heads, GELU, post-LayerNorm) followed by
sentence-transformers' mean pooling over the real tokens and L2 normalisation, the model's
own configuration (modules.json). `build` writes exactly that computation as ONNX operators
(opset 17) with the weights as initializers; backline/nlp/sentence_encoder.py runs it with
ONNX Runtime. Why not NumPy: a message of 14 word pieces multiplies with every weight
matrix, and NumPy's BLAS re-packs each matrix on every call (about 1 ms a layer on 2 cores,
12 ms a message); ONNX Runtime packs the constant weights once when the session is created
(about 4 ms a message, and 5-8 times faster on training batches), with the same float32
arithmetic. Nothing is exported from PyTorch and nothing is written to disk.

Inputs: `ids` (int64, texts x word pieces, 0-padded) and `mask` (float32, 1 for a real
word piece). Output: `vectors` (float32, texts x 384), each of unit length.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from backline.nlp.static_embeddings import MissingEmbeddings

OPSET = 17  # LayerNormalization is a standard operator from opset 17
IR_VERSION = 8  # the IR version of opset 17; ONNX Runtime 1.18 reads up to 9


class _Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self.tensors = tensors
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._count = 0

    def weight(self, name: str) -> np.ndarray:
        if name not in self.tensors:
            raise MissingEmbeddings(f"the encoder's weights have no tensor {name!r}")
        return np.ascontiguousarray(self.tensors[name], dtype=np.float32)

    def constant(self, name: str, value: object, dtype: type = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str = "", **attributes: Any) -> str:
        self._count += 1
        output = output or f"{op_type}_{self._count}"
        # Every node named: ONNX Runtime's graph optimizer refuses duplicate (empty) node names.
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def linear(self, x: str, prefix: str) -> str:
        """x @ W.T + b for a PyTorch Linear (weights stored as out x in)."""
        w = self.constant(prefix + ".w", self.weight(prefix + ".weight").T)
        b = self.constant(prefix + ".b", self.weight(prefix + ".bias"))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        gain = self.constant(prefix + ".g", self.weight(prefix + ".weight"))
        bias = self.constant(prefix + ".beta", self.weight(prefix + ".bias"))
        return self.op("LayerNormalization", [x, gain, bias], axis=-1, epsilon=eps)


def build(tensors: Mapping[str, np.ndarray], config: Dict) -> onnx.ModelProto:
    """The encoder as an `onnx.ModelProto`, checked by the ONNX checker. `tensors` are the
    model.safetensors tensors, `config` its config.json; a missing tensor raises MissingEmbeddings."""
    heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
    size, eps = hidden // heads, float(config.get("layer_norm_eps", 1e-12))
    g = _Graph(tensors)
    i64 = np.int64

    # Embeddings: word piece + position (the first L rows) + token type 0, then LayerNorm.
    word = g.constant("word", g.weight("embeddings.word_embeddings.weight"))
    position = g.constant("position", g.weight("embeddings.position_embeddings.weight"))
    token_type = g.constant("token_type", g.weight("embeddings.token_type_embeddings.weight")[0])
    length = g.op("Slice", [g.op("Shape", ["ids"]), g.constant("one", [1], i64), g.constant("two", [2], i64)])
    positions = g.op("Slice", [position, g.constant("zero", [0], i64), length])
    x = g.op("Add", [g.op("Add", [g.op("Gather", [word, "ids"]), positions]), token_type])
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Padding keys get -1e9 before the softmax, so no real word piece attends to them.
    key_bias = g.op("Mul", [g.op("Sub", [g.constant("f_one", 1.0), "mask"]), g.constant("f_neg", -1e9)])
    key_bias = g.op("Unsqueeze", [key_bias, g.constant("axes_heads_queries", [1, 2], i64)])
    split_heads = g.constant("shape_qkv", [0, 0, 3, heads, size], i64)  # (n, L, q/k/v, heads, size)
    merge_heads = g.constant("shape_hidden", [0, 0, hidden], i64)
    scale = g.constant("scale", 1.0 / np.sqrt(size))
    half, one, root_half = g.constant("half", 0.5), g.constant("f_one_gelu", 1.0), g.constant("root_half", 0.5**0.5)
    picks = [g.constant(f"pick_{i}", i, i64) for i in range(3)]

    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}."
        a = p + "attention."
        # Q, K and V in one product: the three weight matrices side by side.
        qkv_w = np.concatenate([g.weight(a + f"self.{n}.weight") for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([g.weight(a + f"self.{n}.bias") for n in ("query", "key", "value")])
        qkv = g.op("Add", [g.op("MatMul", [x, g.constant(a + "qkv.w", qkv_w)]), g.constant(a + "qkv.b", qkv_b)])
        qkv = g.op("Transpose", [g.op("Reshape", [qkv, split_heads])], perm=[2, 0, 3, 1, 4])  # (3, n, h, L, size)
        q, k, v = (g.op("Gather", [qkv, pick], axis=0) for pick in picks)
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        weights = g.op("Softmax", [g.op("Add", [g.op("Mul", [scores, scale]), key_bias])], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [weights, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        x = g.layer_norm(g.op("Add", [g.linear(context, a + "output.dense"), x]), a + "output.LayerNorm", eps)
        # Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
        up = g.linear(x, p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [up, root_half])])
        up = g.op("Mul", [g.op("Mul", [up, half]), g.op("Add", [erf, one])])
        x = g.layer_norm(g.op("Add", [g.linear(up, p + "output.dense"), x]), p + "output.LayerNorm", eps)

    # Mean over the real word pieces, then unit length.
    masked = g.op("Mul", [x, g.op("Unsqueeze", ["mask", g.constant("axis_hidden", [2], i64)])])
    sequence_axis = g.constant("axis_sequence", [1], i64)
    pooled = g.op(
        "Div",
        [
            g.op("ReduceSum", [masked, sequence_axis], keepdims=0),
            g.op("ReduceSum", ["mask", sequence_axis], keepdims=1),
        ],
    )
    g.op("LpNormalization", [pooled], output="vectors", axis=1, p=2)

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["texts", "pieces"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["texts", "pieces"]),
        ],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["texts", hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="backline")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
