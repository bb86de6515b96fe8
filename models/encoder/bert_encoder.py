"""A BERT encoder (Devlin et al., 2019) as one Keras 3 layer, in `keras.ops` only.

The architecture of Hugging Face's `BertModel` without its pooler: word-piece, position and
segment embeddings summed and layer-normalised, then `num_layers` post-norm transformer layers
(Vaswani et al., 2017): multi-head self-attention over the real pieces, residual and layer norm,
a GELU feed-forward layer (the exact, erf form), residual and layer norm. The output is the last
layer's vector of every piece. `assign_checkpoint` loads the weights of a Hugging Face checkpoint
(`models.encoder.checkpoint`); the tests compare the forward pass with `transformers`' own
`BertModel` on the same weights (`tests/models/encoder/test_bert_encoder_reference.py`).

Our own ~150 lines rather than keras-hub's `BertBackbone`: keras-hub would add a dependency (and
tensorflow-text for its tokenizer) to the TFX 1.16 / TF 2.16 stack for one backbone, and its
converter downloads from the Hub; this layer runs on every Keras backend, exports as plain
TensorFlow ops in the SavedModel, and its weights come from any local folder in the usual layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np
from keras import layers, ops

from models.encoder.checkpoint import EncoderConfig

__all__ = ["BertEncoder", "bert_encoder_for"]


@keras.saving.register_keras_serializable(package="ner_tfx")
class BertEncoder(layers.Layer):
    """Contextual vectors of word pieces.

    Call arguments:
        piece_ids: int `(batch_size, num_pieces)` word-piece ids, [CLS] first; any id at padding.
        mask: bool `(batch_size, num_pieces)`, True at real pieces ([CLS] and [SEP] included).
    Returns:
        float32 `(batch_size, num_pieces, hidden_dim)`, the last layer's vectors (meaningless at
        padding).

    Args:
        vocabulary_size: rows of the word-piece embedding.
        hidden_dim: size of every vector.
        num_layers: transformer layers.
        num_heads: attention heads (`hidden_dim` divisible by it).
        intermediate_dim: hidden size of the feed-forward layers.
        max_positions: rows of the position embedding (the longest input).
        type_vocabulary_size: rows of the segment embedding (only segment 0 is used).
        layer_norm_epsilon: epsilon of the layer normalisations.
        dropout: dropout rate of the hidden vectors while training.
        attention_dropout: dropout rate of the attention weights while training.
        learning_rate_multiplier: the layer's weights are stored divided by this and multiplied
            back in `call`. Adam's step in a weight does not depend on its gradient's scale, so
            the stored weights move by the optimizer's learning rate and the encoder's real
            weights by this times it: a smaller learning rate for a pretrained encoder inside a
            model trained at a larger one, with one optimizer.
    """

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        max_positions: int,
        type_vocabulary_size: int = 2,
        layer_norm_epsilon: float = 1e-12,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        learning_rate_multiplier: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(
                "Invalid value for `num_heads`. Expected a divisor of `hidden_dim`. "
                f"Received: num_heads={num_heads}, hidden_dim={hidden_dim}"
            )
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_positions = max_positions
        self.type_vocabulary_size = type_vocabulary_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.learning_rate_multiplier = learning_rate_multiplier
        self.hidden_dropout_layer = layers.Dropout(dropout)
        self.attention_dropout_layer = layers.Dropout(attention_dropout)

    def build(self, input_shape=None):
        def weight(name, shape, initializer="zeros"):
            return self.add_weight(shape=shape, initializer=initializer, name=name)

        normal = keras.initializers.TruncatedNormal(stddev=0.02)
        hidden, inner = self.hidden_dim, self.intermediate_dim
        self.word_embeddings = weight("word_embeddings", (self.vocabulary_size, hidden), normal)
        self.position_embeddings = weight(
            "position_embeddings", (self.max_positions, hidden), normal
        )
        self.type_embeddings = weight(
            "type_embeddings", (self.type_vocabulary_size, hidden), normal
        )
        self.embeddings_norm = (
            weight("embeddings_norm_scale", (hidden,), "ones"),
            weight("embeddings_norm_offset", (hidden,)),
        )
        self.transformer_layers = []
        for index in range(self.num_layers):
            prefix = f"layer_{index}_"
            self.transformer_layers.append(
                {
                    "query": (
                        weight(prefix + "query_kernel", (hidden, hidden), normal),
                        weight(prefix + "query_bias", (hidden,)),
                    ),
                    "key": (
                        weight(prefix + "key_kernel", (hidden, hidden), normal),
                        weight(prefix + "key_bias", (hidden,)),
                    ),
                    "value": (
                        weight(prefix + "value_kernel", (hidden, hidden), normal),
                        weight(prefix + "value_bias", (hidden,)),
                    ),
                    "attention_output": (
                        weight(prefix + "attention_output_kernel", (hidden, hidden), normal),
                        weight(prefix + "attention_output_bias", (hidden,)),
                    ),
                    "attention_norm": (
                        weight(prefix + "attention_norm_scale", (hidden,), "ones"),
                        weight(prefix + "attention_norm_offset", (hidden,)),
                    ),
                    "intermediate": (
                        weight(prefix + "intermediate_kernel", (hidden, inner), normal),
                        weight(prefix + "intermediate_bias", (inner,)),
                    ),
                    "output": (
                        weight(prefix + "output_kernel", (inner, hidden), normal),
                        weight(prefix + "output_bias", (hidden,)),
                    ),
                    "output_norm": (
                        weight(prefix + "output_norm_scale", (hidden,), "ones"),
                        weight(prefix + "output_norm_offset", (hidden,)),
                    ),
                }
            )
        self.built = True

    def _real(self, weight):
        """The weight's value (stored divided by `learning_rate_multiplier`)."""
        if self.learning_rate_multiplier == 1.0:
            return weight
        return weight * self.learning_rate_multiplier

    def _layer_norm(self, x, scale_offset):
        scale, offset = (self._real(w) for w in scale_offset)
        mean = ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.layer_norm_epsilon) * scale + offset

    def _dense(self, x, kernel_bias):
        kernel, bias = (self._real(w) for w in kernel_bias)
        return ops.matmul(x, kernel) + bias

    def call(self, piece_ids, mask, training=None):
        batch_size, num_pieces = ops.shape(piece_ids)[0], ops.shape(piece_ids)[1]
        head_dim = self.hidden_dim // self.num_heads
        positions = ops.arange(num_pieces)
        x = self._real(
            ops.take(self.word_embeddings, piece_ids, axis=0)
            + ops.expand_dims(ops.take(self.position_embeddings, positions, axis=0), 0)
            + self.type_embeddings[0]
        )  # (batch_size, num_pieces, hidden_dim)
        x = self.hidden_dropout_layer(self._layer_norm(x, self.embeddings_norm), training=training)
        # Padded keys get a large negative score: exp() of it is 0 beside any real key's.
        key_bias = ops.where(ops.cast(mask, "bool"), 0.0, -1e9)[:, None, None, :]  # (b, 1, 1, n)

        def heads(y):  # (b, n, hidden) -> (b, heads, n, head_dim)
            y = ops.reshape(y, (batch_size, num_pieces, self.num_heads, head_dim))
            return ops.transpose(y, (0, 2, 1, 3))

        for weights in self.transformer_layers:
            query = heads(self._dense(x, weights["query"]))
            key = heads(self._dense(x, weights["key"]))
            value = heads(self._dense(x, weights["value"]))
            scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(head_dim)
            probabilities = ops.softmax(scores + key_bias, axis=-1)  # (b, heads, n, n)
            probabilities = self.attention_dropout_layer(probabilities, training=training)
            context = ops.transpose(ops.matmul(probabilities, value), (0, 2, 1, 3))
            context = ops.reshape(context, (batch_size, num_pieces, self.hidden_dim))
            attended = self.hidden_dropout_layer(
                self._dense(context, weights["attention_output"]), training=training
            )
            x = self._layer_norm(x + attended, weights["attention_norm"])
            inner = ops.gelu(self._dense(x, weights["intermediate"]), approximate=False)
            output = self.hidden_dropout_layer(
                self._dense(inner, weights["output"]), training=training
            )
            x = self._layer_norm(x + output, weights["output_norm"])
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:2], self.hidden_dim)

    def assign_checkpoint(self, weights: Mapping[str, np.ndarray]) -> None:
        """Loads a Hugging Face BERT checkpoint's weights (`EncoderCheckpoint.weights`).

        PyTorch stores a dense layer's kernel as `(out, in)`; it is transposed here. Old
        checkpoints name layer-norm parameters `gamma`/`beta`, newer ones `weight`/`bias`: both
        are read.

        Raises:
            ValueError: if a weight is missing or has another shape (naming it).
        """
        if not self.built:
            self.build()

        def take(name, transpose=False):
            candidates = [name]
            if name.endswith("LayerNorm.weight"):
                candidates.append(name[: -len("weight")] + "gamma")
            if name.endswith("LayerNorm.bias"):
                candidates.append(name[: -len("bias")] + "beta")
            for candidate in candidates:
                if candidate in weights:
                    array = np.asarray(weights[candidate], np.float32)
                    return array.T if transpose else array
            raise ValueError(
                f"Invalid checkpoint: the weight {name!r} is missing. Expected the weights of a "
                f"BERT encoder with {self.num_layers} layers. Received: {len(weights)} weights, "
                f"e.g. {sorted(weights)[:3]}"
            )

        def assign(variable, array, name, transposed=False):
            if tuple(variable.shape) != array.shape:
                expected = tuple(variable.shape)[::-1] if transposed else tuple(variable.shape)
                received = array.shape[::-1] if transposed else array.shape
                raise ValueError(
                    f"Invalid checkpoint: the weight {name!r} has shape {received}. Expected "
                    f"{expected} (from config.json)."
                )
            variable.assign(array / self.learning_rate_multiplier)

        def pair(target, name, dense=False):
            weight = take(name + ".weight", transpose=dense)
            assign(target[0], weight, name + ".weight", transposed=dense)
            assign(target[1], take(name + ".bias"), name + ".bias")

        assign(self.word_embeddings, take("embeddings.word_embeddings.weight"), "word_embeddings")
        assign(self.position_embeddings, take("embeddings.position_embeddings.weight"), "positions")
        assign(self.type_embeddings, take("embeddings.token_type_embeddings.weight"), "types")
        pair(self.embeddings_norm, "embeddings.LayerNorm")
        for index, target in enumerate(self.transformer_layers):
            prefix = f"encoder.layer.{index}."
            pair(target["query"], prefix + "attention.self.query", dense=True)
            pair(target["key"], prefix + "attention.self.key", dense=True)
            pair(target["value"], prefix + "attention.self.value", dense=True)
            pair(target["attention_output"], prefix + "attention.output.dense", dense=True)
            pair(target["attention_norm"], prefix + "attention.output.LayerNorm")
            pair(target["intermediate"], prefix + "intermediate.dense", dense=True)
            pair(target["output"], prefix + "output.dense", dense=True)
            pair(target["output_norm"], prefix + "output.LayerNorm")

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "max_positions": self.max_positions,
            "type_vocabulary_size": self.type_vocabulary_size,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }


def bert_encoder_for(architecture: EncoderConfig, **kwargs) -> BertEncoder:
    """A `BertEncoder` of a checkpoint's architecture (`EncoderCheckpoint.config`); `kwargs` are
    the layer's other arguments (dropout, `learning_rate_multiplier`, `name`, ...)."""
    return BertEncoder(
        vocabulary_size=architecture.vocabulary_size,
        hidden_dim=architecture.hidden_dim,
        num_layers=architecture.num_layers,
        num_heads=architecture.num_heads,
        intermediate_dim=architecture.intermediate_dim,
        max_positions=architecture.max_positions,
        type_vocabulary_size=architecture.type_vocabulary_size,
        layer_norm_epsilon=architecture.layer_norm_epsilon,
        **kwargs,
    )
