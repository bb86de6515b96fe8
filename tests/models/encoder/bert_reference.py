"""BERT's forward pass in float64 numpy, from the Hugging Face weight names (Devlin et al., 2019).

Written from the architecture, one sentence at a time and without padding, so that it shares
nothing with `models.encoder.bert_encoder` but the weights; `test_bert_encoder_reference.py`
checks it against `transformers`' `BertModel`.
"""

from __future__ import annotations

import math

import numpy as np


def _norm(x, weights, name, epsilon):
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + epsilon)
    return x * weights[name + ".weight"] + weights[name + ".bias"]


def _linear(x, weights, name):
    return x @ weights[name + ".weight"].T + weights[name + ".bias"]


def _gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def forward(piece_ids, weights, num_layers, num_heads, epsilon=1e-12):
    """Last-layer vectors `(len(piece_ids), hidden)` of one unpadded sequence."""
    weights = {name: np.asarray(array, np.float64) for name, array in weights.items()}
    length = len(piece_ids)
    x = (
        weights["embeddings.word_embeddings.weight"][piece_ids]
        + weights["embeddings.position_embeddings.weight"][:length]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = _norm(x, weights, "embeddings.LayerNorm", epsilon)
    hidden = x.shape[1]
    head = hidden // num_heads
    for index in range(num_layers):
        prefix = f"encoder.layer.{index}."
        q = _linear(x, weights, prefix + "attention.self.query")
        k = _linear(x, weights, prefix + "attention.self.key")
        v = _linear(x, weights, prefix + "attention.self.value")
        context = np.zeros_like(x)
        for h in range(num_heads):
            part = slice(h * head, (h + 1) * head)
            scores = q[:, part] @ k[:, part].T / math.sqrt(head)
            scores = np.exp(scores - scores.max(1, keepdims=True))
            context[:, part] = (scores / scores.sum(1, keepdims=True)) @ v[:, part]
        x = _norm(
            x + _linear(context, weights, prefix + "attention.output.dense"),
            weights,
            prefix + "attention.output.LayerNorm",
            epsilon,
        )
        inner = _gelu(_linear(x, weights, prefix + "intermediate.dense"))
        x = _norm(
            x + _linear(inner, weights, prefix + "output.dense"),
            weights,
            prefix + "output.LayerNorm",
            epsilon,
        )
    return x
