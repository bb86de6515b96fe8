"""Training with a frozen encoder: its word vectors computed once, not at every epoch.

A frozen encoder (`ModelConfig.encoder_trainable` false) gives every sentence the same word
vectors at every epoch, and it is most of an epoch's work (all-MiniLM-L6-v2: six transformer
layers over every word piece). So `models.train.train` runs it once over each split, keeps the
pooled word vectors in files of a temporary folder (not in memory: they grow with the corpus,
1.5 KB a word with 384 dimensions), and fits `FrozenEncoderModels.head`: the tagger's layers
after the encoder, with those vectors as an input. The full tagger (the one exported, saved for
warm starts and returned) shares every weight with the head, so nothing is copied back, and it
tags as the head does (tested).

TensorFlow only (`tf.data`), as the Trainer is.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import tensorflow as tf

from models.features import (
    ENCODER_INPUT_KEYS,
    ENCODER_VECTORS_KEY,
    LENGTHS_KEY,
    MODEL_INPUT_KEYS,
    TAG_IDS_KEY,
    TOKEN_IDS_KEY,
)
from models.tagger import cut_to_longest

__all__ = [
    "FrozenEncoderModels",
    "cached_eval_features",
    "cached_train_features",
    "frozen_encoder_models",
]

_WORD_KEYS = (*MODEL_INPUT_KEYS, TAG_IDS_KEY)
"""What the head's batches keep of the transformed features, besides the lengths and vectors."""


@dataclasses.dataclass(frozen=True)
class FrozenEncoderModels:
    """Two models over the layers of a tagger with an encoder (`models.tagger.build_tagger`).

    Attributes:
        word_vectors: `piece_ids`, `word_pieces` -> float32 `(batch_size, length, hidden_dim)`,
            each word's pooled encoder vector (0 at padding words).
        head: `token_ids`, `casing_ids`, `char_ids`, `encoder_vectors` -> the tagger's outputs.
    """

    word_vectors: keras.Model
    head: keras.Model


def frozen_encoder_models(model: keras.Model) -> FrozenEncoderModels:
    """Splits `model` at its pooled encoder vectors (the `word_piece_pooling` layer's output).

    Both models share the tagger's layers (and so its weights): training the head trains the
    tagger.
    """
    inputs = model.input
    pooled = model.get_layer("word_piece_pooling").output
    with warnings.catch_warnings():
        # The dict key names the new input; Keras would like the tensor to carry the same name,
        # but this tensor is the pooling layer's output, named by Keras. Inputs match by key.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        head = keras.Model(
            {**{key: inputs[key] for key in MODEL_INPUT_KEYS}, ENCODER_VECTORS_KEY: pooled},
            model.output,
            name=f"{model.name}_head",
        )
    word_vectors = keras.Model(
        {key: inputs[key] for key in ENCODER_INPUT_KEYS}, pooled, name="encoder_word_vectors"
    )
    return FrozenEncoderModels(word_vectors, head)


def _add_vectors(word_vectors: keras.Model, cut_words: bool):
    """A `tf.data` map: a batch of transformed features -> the model inputs but the encoder's,
    the tag ids and the lengths (cut to the batch's longest sentence with `cut_words`, else kept
    as they are), and the encoder's word vectors (always cut: the encoder runs on the batch's
    longest piece sequence)."""

    def add(batch):
        cut = cut_to_longest(batch, (*_WORD_KEYS, *ENCODER_INPUT_KEYS))
        kept = {key: (cut if cut_words else batch)[key] for key in _WORD_KEYS}
        kept[LENGTHS_KEY] = batch[LENGTHS_KEY]
        kept[ENCODER_VECTORS_KEY] = word_vectors(
            {key: cut[key] for key in ENCODER_INPUT_KEYS}, training=False
        )
        return kept

    return add


def cached_train_features(
    features: tf.data.Dataset,
    word_vectors: keras.Model,
    cache_file: str,
    *,
    batch_size: int,
    shuffle_buffer_size: int,
    seed: int,
) -> tf.data.Dataset:
    """The training split's batches with `encoder_vectors` instead of the encoder's inputs.

    The first pass runs the encoder and writes every sentence (cut to its own length) to
    `cache_file`; every pass, the first included, reshuffles the sentences (seeded) and pads each
    batch to its longest sentence, as `models.train.model_batches` with `trim` would.

    Args:
        features: batches of transformed features with the encoder's inputs (one pass).
        word_vectors: `FrozenEncoderModels.word_vectors`.
        cache_file: a path in a folder that outlives the training (`tf.data.Dataset.cache`).
    """

    def own_length(sentence):
        length = sentence[LENGTHS_KEY]
        return {
            key: value if key == LENGTHS_KEY else value[:length] for key, value in sentence.items()
        }

    sentences = (
        features.map(_add_vectors(word_vectors, cut_words=True))
        .unbatch()
        .map(own_length)
        .cache(cache_file)
    )
    return sentences.shuffle(
        shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True
    ).padded_batch(batch_size)


def cached_eval_features(
    features: tf.data.Dataset, word_vectors: keras.Model, cache_file: str
) -> tf.data.Dataset:
    """The eval split's batches with `encoder_vectors` instead of the encoder's inputs, in their
    order and at their width (`max_length`: the eval predictions of all batches concatenate).

    The first pass runs the encoder and writes the batches, the vectors of their longest
    sentence's words only, to `cache_file`; every pass pads the vectors back to the batch's width.
    """

    def pad_vectors(batch):
        vectors = batch[ENCODER_VECTORS_KEY]
        missing = tf.shape(batch[TOKEN_IDS_KEY])[1] - tf.shape(vectors)[1]
        return {**batch, ENCODER_VECTORS_KEY: tf.pad(vectors, [[0, 0], [0, missing], [0, 0]])}

    return (
        features.map(_add_vectors(word_vectors, cut_words=False)).cache(cache_file).map(pad_vectors)
    )
