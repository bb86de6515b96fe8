"""The BiLSTM-CRF named-entity tagger (Lample et al., 2016; Ma & Hovy, 2016), Keras 3.

Per token: a word embedding of the lowercased token (optionally initialised from pretrained
vectors, optionally with a second, frozen copy of them: `frozen_pretrained_channel`; while
training, `word_dropout` replaces words by the OOV id), a casing-class embedding (the case the
lowercased word lost) and a character CNN with max pooling over the characters (Ma & Hovy,
2016); concatenated, dropout, a bidirectional LSTM (or `lstm_layers` stacked ones),
dropout, a Dense layer giving per-tag emission scores, and a linear-chain CRF (Lafferty et al.,
2001) that scores whole tag paths and decodes with Viterbi. With `ModelConfig.encoder_path`, a
pretrained BERT-family encoder (`models.encoder`) reads each sentence's word pieces and each
word's vector from it (its first piece's, or the mean of its pieces': `WordPiecePooling`) joins
the token representation, before the BiLSTM (the contextual-embedding taggers of Devlin et al.,
2019, with the CRF of Lample et al. on top). `ModelConfig.output="softmax"` replaces
the CRF by an independent softmax per token (the ablation of Lample et al., 2016, Table 1).

Inputs are the transformed features of `models.preprocessing`; padding positions (token id 0) are
masked in the BiLSTM and the CRF. The softmax ablation's loss ignores padding through sample
weights (`loss_sample_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

from models.config import ModelConfig, TrainingConfig
from models.encoder.bert_encoder import bert_encoder_for
from models.encoder.checkpoint import EncoderCheckpoint
from models.features import (
    CASING_IDS_KEY,
    CASINGS,
    CHAR_IDS_KEY,
    ENCODER_INPUT_KEYS,
    ENCODER_VECTORS_KEY,
    LENGTHS_KEY,
    MODEL_INPUT_KEYS,
    OOV_ID,
    PIECE_IDS_KEY,
    TOKEN_IDS_KEY,
    WORD_PIECES_KEY,
)

__all__ = [
    "PieceMask",
    "PretrainedWordEmbedding",
    "WordPiecePooling",
    "build_tagger",
    "compile_tagger",
    "cut_to_longest",
    "loss_sample_weights",
    "model_input_keys",
    "predicted_tag_ids",
    "training_model_inputs",
    "WordDropout",
]


@keras.saving.register_keras_serializable(package="ner_tfx")
class WordDropout(layers.Layer):
    """While training, replaces each real word id by the OOV id with probability `rate`.

    The model then learns to tag from the characters, the casing and the context when the word
    is unknown, which is what happens to every word missing from the vocabulary at serving time
    (the "UNK replacement" of Lample et al., 2016). Padding (id 0) is kept; inference is unchanged.

    Args:
        rate: probability of replacing a word id, in [0, 1).
        oov_id: the id that replaces it.
        seed: seed of the replacement draws.
    """

    def __init__(self, rate: float, oov_id: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.oov_id = oov_id
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=None):
        if not training or self.rate == 0:
            return ids
        draws = keras.random.uniform(ops.shape(ids), seed=self.seed_generator)
        replace = ops.logical_and(ops.less(draws, self.rate), ops.greater(ids, 0))
        return ops.where(replace, ops.full_like(ids, self.oov_id), ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "oov_id": self.oov_id, "seed": self.seed}


@keras.saving.register_keras_serializable(package="ner_tfx")
class PretrainedWordEmbedding(layers.Layer):
    """Pretrained word vectors, fine-tuned only in the rows that training can reach.

    Holds the pretrained table, frozen, for every word of the vocabulary (`frozen`), a trainable
    copy of the rows of the `tuned_ids` (`tuned`, the words the training data holds) and, per
    word id, its row in `tuned` or -1 (`tuned_row`). For word ids it returns two tensors
    `(batch, length, output_dim)`: the tuned vectors (the tuned row where the word has one, else
    the pretrained vector) and the frozen pretrained vectors (the tagger's second channel).

    This is the same model as a whole trainable copy of the table, for less: under Adam (no weight
    decay), a row that no training batch holds gets zero gradients, keeps zero moments and never
    moves, so leaving those rows out of the trainable weights gives the same weights, while the
    optimizer's work per step and the size of the model follow the training vocabulary (about
    20,000 words on WNUT-17) instead of the vectors' (400,000), and the model holds one copy of
    the pretrained table instead of two.

    Args:
        num_words: rows of the vocabulary, reserved ids included.
        output_dim: vector size.
        num_tuned: number of tuned rows (`len(tuned_ids)` of `assign_vectors`).
    """

    def __init__(self, num_words: int, output_dim: int, num_tuned: int, **kwargs):
        super().__init__(**kwargs)
        self.num_words = num_words
        self.output_dim = output_dim
        self.num_tuned = num_tuned

    def build(self, input_shape=None):
        self.frozen = self.add_weight(
            shape=(self.num_words, self.output_dim),
            initializer="zeros",
            trainable=False,
            name="frozen",
        )
        self.tuned = self.add_weight(
            shape=(self.num_tuned, self.output_dim), initializer="zeros", name="tuned"
        )
        self.tuned_row = self.add_weight(
            shape=(self.num_words,),
            dtype="int32",
            initializer=keras.initializers.Constant(-1),
            trainable=False,
            name="tuned_row",
        )
        self.built = True

    def assign_vectors(self, vectors: np.ndarray, tuned_ids: np.ndarray) -> None:
        """Sets the pretrained table and the tuned rows (copies of `vectors[tuned_ids]`)."""
        tuned_ids = np.unique(np.asarray(tuned_ids, dtype=np.int64))
        if len(tuned_ids) != self.num_tuned or vectors.shape != (self.num_words, self.output_dim):
            raise ValueError(
                f"Invalid value for `vectors` / `tuned_ids`. Expected {self.num_tuned} distinct "
                f"ids and a matrix of shape {(self.num_words, self.output_dim)}. Received: "
                f"{len(tuned_ids)} ids, vectors.shape={vectors.shape}"
            )
        rows = np.full(self.num_words, -1, dtype=np.int32)
        rows[tuned_ids] = np.arange(len(tuned_ids), dtype=np.int32)
        self.frozen.assign(vectors)
        self.tuned.assign(vectors[tuned_ids])
        self.tuned_row.assign(rows)

    def call(self, ids):
        rows = ops.take(self.tuned_row, ids, axis=0)
        frozen = ops.take(self.frozen, ids, axis=0)
        tuned = ops.take(self.tuned, ops.maximum(rows, 0), axis=0)
        return ops.where(ops.expand_dims(ops.greater_equal(rows, 0), -1), tuned, frozen), frozen

    def compute_output_shape(self, input_shape):
        shape = (*input_shape, self.output_dim)
        return shape, shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_words": self.num_words,
            "output_dim": self.output_dim,
            "num_tuned": self.num_tuned,
        }


def _char_features(char_ids, config: ModelConfig, num_chars: int, seed: int):
    """Character CNN of Ma & Hovy (2016): embed, convolve over characters, max-pool.

    Args:
        char_ids: int `(batch_size, length, max_word_length)` KerasTensor, 0 at padding.
    Returns:
        float32 `(batch_size, length, char_filters)` KerasTensor; 0 for padding tokens.
    """
    char_mask = ops.expand_dims(ops.greater(char_ids, 0), -1)  # (batch, length, word_length, 1)
    chars = layers.Embedding(num_chars, config.char_embedding_dim, name="char_embedding")(char_ids)
    chars = layers.Dropout(config.dropout, seed=seed, name="char_dropout")(chars)
    # A (1, k) kernel over (tokens, characters) is a 1-D convolution over each token's characters.
    convolved = layers.Conv2D(
        config.char_filters, (1, config.char_kernel_size), padding="same", name="char_cnn"
    )(chars)  # (batch, length, word_length, char_filters)
    # Max over real characters only: padding characters get -1e9 added (a broadcast add, cheaper
    # than selecting from a full-size tensor). The tanh comes after the max: tanh is increasing,
    # so tanh of the max is the max of the tanh, computed on max_word_length times fewer values.
    padding_bias = ops.where(char_mask, 0.0, -1e9)  # (batch, length, word_length, 1)
    pooled = ops.tanh(ops.max(convolved + padding_bias, axis=2))  # (batch, length, char_filters)
    # A padding token (no character) gets 0.
    has_chars = ops.any(char_mask, axis=2)  # (batch, length, 1)
    return ops.where(has_chars, pooled, ops.zeros_like(pooled))


@keras.saving.register_keras_serializable(package="ner_tfx")
class PieceMask(layers.Layer):
    """True at the real pieces of the encoder's input: [CLS], every word's pieces, [SEP].

    Call arguments:
        piece_ids: int `(batch_size, num_pieces)`.
        word_pieces: int `(batch_size, length, max_pieces_per_word)`, positions of each word's
            pieces (from 1), 0 at padding; [SEP] follows the last one.
    Returns:
        bool `(batch_size, num_pieces)`.
    """

    def call(self, piece_ids, word_pieces):
        num_pieces = ops.max(word_pieces, axis=(1, 2)) + 2  # (batch_size,)
        positions = ops.arange(ops.shape(piece_ids)[1], dtype=num_pieces.dtype)
        return ops.expand_dims(positions, 0) < ops.expand_dims(num_pieces, 1)

    def compute_output_shape(self, piece_ids_shape, word_pieces_shape):
        return piece_ids_shape


@keras.saving.register_keras_serializable(package="ner_tfx")
class WordPiecePooling(layers.Layer):
    """Each word's vector from the encoder's vectors of its pieces.

    Call arguments:
        vectors: float `(batch_size, num_pieces, hidden_dim)`, the encoder's output.
        word_pieces: int `(batch_size, length, max_pieces_per_word)`, positions of each word's
            pieces in `vectors`, 0 at padding.
    Returns:
        float32 `(batch_size, length, hidden_dim)`; 0 at padding words.

    Args:
        pooling: "first" (the first piece's vector, as Devlin et al., 2019 do for NER) or "mean"
            (the mean of the word's pieces' vectors).
    """

    def __init__(self, pooling: str, **kwargs):
        super().__init__(**kwargs)
        self.pooling = pooling

    def call(self, vectors, word_pieces):
        batch_size, length, per_word = (ops.shape(word_pieces)[i] for i in range(3))
        hidden_dim = ops.shape(vectors)[2]
        flat = ops.reshape(word_pieces, (batch_size, length * per_word, 1))
        gathered = ops.take_along_axis(vectors, flat, axis=1)  # (batch, length * per_word, hidden)
        gathered = ops.reshape(gathered, (batch_size, length, per_word, hidden_dim))
        is_piece = ops.expand_dims(ops.cast(ops.greater(word_pieces, 0), vectors.dtype), -1)
        if self.pooling == "first":
            return gathered[:, :, 0] * is_piece[:, :, 0]
        total = ops.sum(gathered * is_piece, axis=2)  # (batch_size, length, hidden_dim)
        return total / ops.maximum(ops.sum(is_piece, axis=2), 1.0)

    def compute_output_shape(self, vectors_shape, word_pieces_shape):
        return (*tuple(word_pieces_shape)[:2], vectors_shape[2])

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling}


def build_tagger(
    config: ModelConfig,
    *,
    tag_names: Sequence[str],
    num_words: int,
    num_chars: int,
    max_word_length: int,
    pretrained_word_embeddings: np.ndarray | None = None,
    tuned_word_ids: np.ndarray | Sequence[int] | None = None,
    encoder: EncoderCheckpoint | None = None,
    encoder_learning_rate_multiplier: float = 1.0,
    seed: int = 0,
) -> keras.Model:
    """Builds the (uncompiled) tagger.

    Args:
        config: architecture.
        tag_names: tag name of each tag id, `[PAD]` at 0 (`PreprocessingConfig.tag_vocabulary`).
        num_words: size of the word vocabulary, reserved ids (padding, OOV) included.
        num_chars: size of the character vocabulary, reserved ids included.
        max_word_length: characters per (padded) token.
        pretrained_word_embeddings: optional float `(num_words, word_embedding_dim)` initial word
            embedding (`models.embeddings.load_embedding_matrix`).
        tuned_word_ids: with pretrained vectors and `trainable_word_embeddings`, the word ids
            whose rows are fine-tuned (`PretrainedWordEmbedding`): those of the training data's
            words, padding and OOV (`models.train.training_word_ids`); the others keep their
            pretrained vectors, as they would if tuned, since no batch reaches them. None: all.
        encoder: the pretrained encoder of `config.encoder_path`, read
            (`models.encoder.checkpoint.read_checkpoint`); None without one.
        encoder_learning_rate_multiplier: the encoder's learning rate over the optimizer's
            (`BertEncoder`'s `learning_rate_multiplier`).
        seed: seed of the dropout layers.
    Returns:
        A Keras model taking a dict of int tensors `token_ids` `(batch_size, length)`,
        `casing_ids` `(batch_size, length)`, `char_ids` `(batch_size, length, max_word_length)`
        (with an encoder also `piece_ids` `(batch_size, num_pieces)` and `word_pieces`
        `(batch_size, length, max_pieces_per_word)`, `models.preprocessing.encoder_inputs`)
        and returning, for `output="crf"`, the CRF layer's float32 outputs
        `(batch_size, length, 2 * num_tags + 1)`, for `output="softmax"`, float32 tag
        probabilities `(batch_size, length, num_tags)`. Read tag ids with `predicted_tag_ids`.
        Any `length` will do: padding is masked, so a batch cut to its longest sentence gets the
        same tags as one padded to `PreprocessingConfig.max_length`.
    Raises:
        ValueError: if the pretrained matrix does not have shape `(num_words, word_embedding_dim)`.
    """
    num_tags = len(tag_names)
    if pretrained_word_embeddings is not None and pretrained_word_embeddings.shape != (
        num_words,
        config.word_embedding_dim,
    ):
        raise ValueError(
            "Invalid value for `pretrained_word_embeddings`. Expected shape "
            f"{(num_words, config.word_embedding_dim)}. "
            f"Received: pretrained_word_embeddings.shape={pretrained_word_embeddings.shape}"
        )
    token_ids = keras.Input((None,), dtype="int64", name=TOKEN_IDS_KEY)
    casing_ids = keras.Input((None,), dtype="int64", name=CASING_IDS_KEY)
    char_ids = keras.Input((None, max_word_length), dtype="int64", name=CHAR_IDS_KEY)

    # True at real tokens: token id 0 is padding, OOV is 1. The mask is passed explicitly to the
    # BiLSTM and the CRF: Keras 3's Concatenate merges a masked and an unmasked input into an
    # all-True mask (and fails to trace it with an unknown batch size).
    mask = ops.greater(token_ids, 0)  # (batch_size, length)
    word_ids = token_ids
    if config.word_dropout > 0:
        word_ids = WordDropout(config.word_dropout, OOV_ID, seed=seed, name="word_dropout")(
            word_ids
        )
    # Built in this order (word, casing, characters): the seeded initial draws follow it.
    pretrained = pretrained_word_embeddings is not None
    tuned_layer = None
    tuned_ids = np.arange(num_words)
    word_features = []
    if pretrained and config.trainable_word_embeddings:
        if tuned_word_ids is not None:
            tuned_ids = np.unique(np.asarray(tuned_word_ids, dtype=np.int64))
        tuned_layer = PretrainedWordEmbedding(
            num_words, config.word_embedding_dim, len(tuned_ids), name="word_embedding"
        )
        words, frozen_words = tuned_layer(word_ids)
        word_features = [words, frozen_words] if config.frozen_pretrained_channel else [words]
    else:
        words = layers.Embedding(
            num_words,
            config.word_embedding_dim,
            trainable=not pretrained,
            # Pretrained vectors are assigned once the model is built (below), not given as a
            # `Constant` initializer: an initializer's config holds its value, so the model
            # config (TensorBoard's graph summary, `.keras` files) carried the matrix as JSON.
            embeddings_initializer="zeros" if pretrained else "uniform",
            name="word_embedding",
        )(word_ids)
        # Frozen already: the second channel would be the same vectors.
        word_features = (
            [words, words] if config.frozen_pretrained_channel and pretrained else [words]
        )
    casings = layers.Embedding(len(CASINGS), config.casing_embedding_dim, name="casing_embedding")(
        casing_ids
    )
    chars = _char_features(char_ids, config, num_chars, seed)
    # The frozen channel last, where it always was: the order of the concatenated features.
    features = [word_features[0], casings, chars, *word_features[1:]]
    inputs = {TOKEN_IDS_KEY: token_ids, CASING_IDS_KEY: casing_ids, CHAR_IDS_KEY: char_ids}
    encoder_layer = None
    if (encoder is None) != (config.encoder_path is None):
        raise ValueError(
            "Invalid value for `encoder`. Expected the checkpoint of `config.encoder_path` "
            f"({config.encoder_path!r}), read. Received: encoder="
            f"{None if encoder is None else encoder.path!r}"
        )
    if encoder is not None:
        piece_ids = keras.Input((None,), dtype="int64", name=PIECE_IDS_KEY)
        word_pieces = keras.Input((None, None), dtype="int64", name=WORD_PIECES_KEY)
        inputs.update({PIECE_IDS_KEY: piece_ids, WORD_PIECES_KEY: word_pieces})
        encoder_layer = bert_encoder_for(
            encoder.config,
            dropout=0.1 if config.encoder_trainable else 0.0,  # BERT's own, when fine-tuned
            attention_dropout=0.1 if config.encoder_trainable else 0.0,
            learning_rate_multiplier=encoder_learning_rate_multiplier,
            trainable=config.encoder_trainable,
            name="encoder",
        )
        vectors = encoder_layer(piece_ids, PieceMask(name="piece_mask")(piece_ids, word_pieces))
        features.append(
            WordPiecePooling(config.encoder_pooling, name="word_piece_pooling")(
                vectors, word_pieces
            )
        )
    tokens = layers.Concatenate(name="token_representation")(features)
    tokens = layers.Dropout(config.dropout, seed=seed, name="token_dropout")(tokens)
    hidden = tokens
    for layer in range(config.lstm_layers):
        # Fixed names (the first layer's without a suffix): warm start matches weights by name.
        suffix = f"_{layer + 1}" if layer else ""
        hidden = layers.Bidirectional(
            layers.LSTM(
                config.lstm_units,
                return_sequences=True,
                # Unseeded: the draws follow keras.utils.set_random_seed.
                recurrent_dropout=config.recurrent_dropout,
                name="lstm",
            ),
            name=f"bilstm{suffix}",
        )(hidden, mask=mask)
        hidden = layers.Dropout(config.dropout, seed=seed, name=f"bilstm{suffix}_dropout")(hidden)
    if config.output == "crf":
        from linear_crf.crf import CRF  # The softmax ablation does not need the CRF.

        emissions = layers.Dense(num_tags, name="emissions")(hidden)
        # The CRF's loss is a few percent of this model's training step: compiling it with XLA
        # inside the graph (the layer's default) made later epochs 0.96x as long, within this
        # VM's noise, and cost 4 s of compilations (one per padded batch length) in the first
        # epoch on WNUT-17 (benchmarks/tagger_crf_compiled.py, BENCHMARKS.md).
        outputs = CRF(
            num_tags,
            tag_names=list(tag_names),
            tag_scheme=config.tag_scheme,
            jit_compile=False,
            name="crf",
        )(emissions, mask=mask)
    else:
        outputs = layers.Dense(num_tags, activation="softmax", name="tag_probabilities")(hidden)
    model = keras.Model(inputs, outputs, name=f"bilstm_{config.output}_tagger")
    if encoder_layer is not None and encoder is not None:
        encoder_layer.assign_checkpoint(encoder.weights)
    if tuned_layer is not None and pretrained_word_embeddings is not None:
        tuned_layer.assign_vectors(pretrained_word_embeddings, tuned_ids)
    elif pretrained:
        model.get_layer("word_embedding").embeddings.assign(pretrained_word_embeddings)
    return model


def compile_tagger(model: keras.Model, model_config: ModelConfig, training: TrainingConfig):
    """Compiles with Adam, global-norm gradient clipping and the output's loss.

    With `training.weight_averaging`, Adam also keeps the moving average of the weights; the
    callbacks of `models.train.training_callbacks` swap it in for evaluation and keep it.

    The CRF's loss is its mean negative log-likelihood per sentence; the softmax's the masked
    token-level cross-entropy (padding excluded through the Keras mask).
    """
    optimizer = keras.optimizers.Adam(
        training.learning_rate,
        global_clipnorm=training.clipnorm,
        use_ema=training.weight_averaging > 0,
        ema_momentum=training.weight_averaging,  # Read by Keras only with use_ema.
    )
    if model_config.output == "crf":
        loss = model.get_layer("crf").loss
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=optimizer, loss=loss, jit_compile=training.jit_compile)


def predicted_tag_ids(outputs, output: str, lengths):
    """Best tag id of every token from the model's outputs; 0 at padding.

    Args:
        outputs: the model's outputs (see `build_tagger`).
        output: `ModelConfig.output`, "crf" or "softmax".
        lengths: int `(batch_size,)` real tokens per sentence.
    Returns:
        int32 `(batch_size, max_length)` tag ids.
    """
    if output == "crf":
        from linear_crf.crf import CRF

        tag_ids = ops.cast(CRF.tag_ids(outputs), "int32")
    else:
        # Id 0 is the padding tag: never predicted at a real token.
        tag_ids = ops.cast(ops.argmax(outputs[..., 1:], axis=-1) + 1, "int32")
    mask = ops.arange(ops.shape(tag_ids)[1])[None, :] < ops.cast(lengths, "int32")[:, None]
    return ops.where(mask, tag_ids, ops.zeros_like(tag_ids))


def loss_sample_weights(tag_ids, output: str):
    """Per-token loss weights for the softmax output (1 at real tokens, 0 at padding), else None.

    Args:
        tag_ids: int `(batch_size, max_length)` gold tag ids, 0 at padding.
    Returns:
        float32 `(batch_size, max_length)` or None (the CRF loss masks padding itself).
    """
    if output == "crf":
        return None
    return ops.cast(ops.greater(tag_ids, 0), "float32")


def model_input_keys(features: Mapping[str, object]) -> tuple[str, ...]:
    """The keys of the model's inputs among transformed features (the encoder's if present, or
    the frozen encoder's cached word vectors: `models.frozen_encoder`)."""
    if ENCODER_VECTORS_KEY in features:
        return (*MODEL_INPUT_KEYS, ENCODER_VECTORS_KEY)
    return MODEL_INPUT_KEYS + tuple(key for key in ENCODER_INPUT_KEYS if key in features)


def training_model_inputs(features: Mapping[str, object]) -> dict[str, object]:
    """The model's inputs picked from a dict of transformed features."""
    return {key: features[key] for key in model_input_keys(features)}


def cut_to_longest(features: Mapping, keys: Sequence[str]) -> dict:
    """The `keys` of a batch of transformed features, cut from `max_length` tokens to the batch's
    longest sentence (and `piece_ids` to its longest piece sequence). The model masks padding:
    the tags stay the same, the work shrinks.

    Args:
        features: transformed features with `lengths` `(batch_size,)` (and `word_pieces` if
            `piece_ids` is among the keys); those of `keys` are `(batch_size, max_length, ...)`.
    """
    longest = ops.maximum(ops.max(features[LENGTHS_KEY]), 1)
    cut = {key: features[key][:, :longest] for key in keys if key != PIECE_IDS_KEY}
    if PIECE_IDS_KEY in keys:
        # [CLS], the pieces, [SEP]: the last word piece's position + 2.
        num_pieces = ops.max(features[WORD_PIECES_KEY]) + 2
        cut[PIECE_IDS_KEY] = features[PIECE_IDS_KEY][:, :num_pieces]
    return cut
