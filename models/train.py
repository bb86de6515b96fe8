"""Training the tagger, apart from TFX: batches of transformed features in, a trained model out.

The Trainer's `models.run_fn`, the quality benchmark and the tests all train through `train`:

    result = train(config, train_features, eval_features, words, chars, log_dir=...)
    result.model, result.history, result.compatibility

`train_features` and `eval_features` are `tf.data.Dataset`s of batches of transformed features
(dicts keyed by `models.features`' names, as `models.preprocessing.preprocessing_fn` writes them);
`words` and `chars` are the Transform output's vocabularies (`models.preprocessing.word_vocabulary`
and the character vocabulary file). Nothing here imports TFX, TensorFlow Transform or tfx-bsl:
where the batches come from (TFX's data accessor, TFRecords read by hand, tensors built in a test)
is the caller's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from models.config import ModelConfig, TaggerConfig
from models.embeddings import load_embedding_matrix
from models.encoder.checkpoint import read_checkpoint
from models.entity_scoring import score_entities
from models.features import NUM_RESERVED_IDS, PIECE_IDS_KEY, TAG_IDS_KEY, TOKEN_IDS_KEY
from models.frozen_encoder import (
    cached_eval_features,
    cached_train_features,
    frozen_encoder_models,
)
from models.tagger import (
    build_tagger,
    compile_tagger,
    cut_to_longest,
    loss_sample_weights,
    model_input_keys,
    predicted_tag_ids,
    training_model_inputs,
)
from models.warm_start import base_tuned_words, compatibility_record, warm_start

__all__ = [
    "EntityF1Callback",
    "EpochLogger",
    "TrainingResult",
    "model_batches",
    "pretrained_embeddings",
    "train",
    "training_callbacks",
    "training_word_ids",
]


class EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's losses and duration through absl (the pipeline log)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{name}={value:.4f}" for name, value in sorted((logs or {}).items()))
        logging.info(
            "Trainer: epoch %d/%d done in %.1f s: %s",
            epoch + 1,
            self.epochs,
            time.monotonic() - self._start,
            values,
        )


class EntityF1Callback(keras.callbacks.Callback):
    """Adds `val_entity_f1` (percent, conlleval semantics) on the eval split to each epoch's logs.

    Early stopping then watches what the Evaluator blesses on, not the CRF loss (on small data the
    loss starts rising epochs before the entity F1 stops improving).

    Args:
        eval_dataset: the eval split as (inputs, tag_ids[, sample weights]) batches
            (`model_batches`).
        tag_vocabulary: tag name of every tag id, `[PAD]` at 0.
        output: `ModelConfig.output`.
        scheme: the tag scheme.
    """

    def __init__(
        self,
        eval_dataset: tf.data.Dataset,
        tag_vocabulary: tuple[str, ...],
        output: str,
        scheme: str,
    ):
        super().__init__()
        self._inputs = eval_dataset.map(lambda inputs, *_: inputs)
        gold_ids = np.concatenate([batch[1].numpy() for batch in eval_dataset])
        self._lengths = (gold_ids > 0).sum(axis=1)  # (num_sentences,)
        self._vocabulary = np.asarray(tag_vocabulary, dtype=object)
        self._gold = [list(self._vocabulary[ids[:n]]) for ids, n in zip(gold_ids, self._lengths)]
        self._output = output
        self._scheme = scheme

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self._inputs, verbose=0)
        predicted_ids = np.asarray(predicted_tag_ids(outputs, self._output, self._lengths))
        predicted = [
            list(self._vocabulary[ids[:n]]) for ids, n in zip(predicted_ids, self._lengths)
        ]
        scores = score_entities(self._gold, predicted, self._scheme)
        if logs is not None:
            logs["val_entity_f1"] = scores.f1


def training_callbacks(eval_dataset: tf.data.Dataset, config: TaggerConfig) -> list:
    """The callbacks that decide how the tagger trains.

    The learning-rate schedule (`TrainingConfig.learning_rate_decay`), the eval entity F1 and
    early stopping on it, keeping the best epoch's weights. With `weight_averaging` (the model
    compiled by `compile_tagger`), the averaged weights are swapped in at every epoch's end, so
    the eval F1 and early stopping judge, and keep, the averaged weights.
    """
    training = config.training
    callbacks: list = []
    if training.weight_averaging > 0:
        # First: the callbacks after it see the averaged weights at the epoch's end.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if training.learning_rate_decay > 0:
        # Ma & Hovy (2016): lr / (1 + decay * epoch), epoch counted from 0.
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: training.learning_rate / (1.0 + training.learning_rate_decay * epoch)
            )
        )
    return callbacks + [
        # Before EarlyStopping: it adds the value that EarlyStopping watches to the logs.
        EntityF1Callback(
            eval_dataset,
            config.preprocessing.tag_vocabulary,
            config.model.output,
            config.model.tag_scheme,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_entity_f1",
            mode="max",
            patience=training.early_stopping_patience,
            start_from_epoch=config.early_stopping_start_epoch,
            restore_best_weights=True,
        ),
    ]


def model_batches(features: tf.data.Dataset, output: str, trim: bool = False) -> tf.data.Dataset:
    """(model inputs, tag_ids int64 `(batch_size, length)`[, sample weights]) from batches of
    transformed features, as `keras.Model.fit` takes them.

    With `trim`, each batch is cut to its longest sentence instead of `max_length` tokens: the
    same values at the real tokens, about half the work on WNUT-17's training split (its batches
    of 32 are 32 tokens long on average, padded to 64). Without it the batches keep
    `max_length` tokens (predictions of equal width concatenate), but the encoder's pieces, if
    any, are still cut to the batch's longest: the encoder would otherwise attend over
    `max_length * max_pieces_per_word + 2` positions, almost all padding, in every batch.
    """

    def split(batch):
        if trim:
            batch = cut_to_longest(batch, (*model_input_keys(batch), TAG_IDS_KEY))
        elif PIECE_IDS_KEY in batch:
            batch = {**batch, PIECE_IDS_KEY: cut_to_longest(batch, (PIECE_IDS_KEY,))[PIECE_IDS_KEY]}
        tag_ids = batch[TAG_IDS_KEY]
        sample_weights = loss_sample_weights(tag_ids, output)
        if sample_weights is None:
            return training_model_inputs(batch), tag_ids
        return training_model_inputs(batch), tag_ids, sample_weights

    return features.map(split).prefetch(tf.data.AUTOTUNE)


def pretrained_embeddings(
    model_config: ModelConfig, vocabulary: Sequence[str], seed: int
) -> np.ndarray | None:
    """The word embedding matrix from `pretrained_embeddings_path`, rows in word-id order.

    Args:
        vocabulary: the words of ids `NUM_RESERVED_IDS`, ... (`preprocessing.word_vocabulary`).
    Raises:
        ValueError: if the file's vectors are not `word_embedding_dim` long.
    """
    path = model_config.pretrained_embeddings_path
    if path is None:
        return None
    embeddings = load_embedding_matrix(path, vocabulary, num_reserved=NUM_RESERVED_IDS, seed=seed)
    if embeddings.matrix.shape[1] != model_config.word_embedding_dim:
        raise ValueError(
            "Invalid value for `word_embedding_dim`. Expected the size of the vectors in "
            f"{path} ({embeddings.matrix.shape[1]}). "
            f"Received: word_embedding_dim={model_config.word_embedding_dim}"
        )
    logging.info(
        "Trainer: %d of %d vocabulary words found in %s",
        embeddings.num_found,
        len(vocabulary),
        path,
    )
    return embeddings.matrix


def training_word_ids(
    train_features: tf.data.Dataset, words: Sequence[str], also: AbstractSet[str] = frozenset()
) -> np.ndarray:
    """The word ids that training can reach: every `token_ids` value of the training batches
    (one pass over them), the reserved ids (padding; OOV, which word dropout also produces) and
    the ids of the words in `also` (a warm start's base model's tuned words), sorted."""
    seen = [np.arange(NUM_RESERVED_IDS)]
    for batch in train_features:
        seen.append(np.unique(np.asarray(batch[TOKEN_IDS_KEY])))
    if also:
        seen.append(
            np.asarray(
                [NUM_RESERVED_IDS + row for row, word in enumerate(words) if word in also], np.int64
            )
        )
    return np.unique(np.concatenate(seen).astype(np.int64))


@dataclasses.dataclass
class TrainingResult:
    """What `train` returns.

    Attributes:
        model: the trained Keras 3 tagger, with the weights of the best eval epoch.
        history: every epoch's logs (`keras.callbacks.History.history`), `val_entity_f1` included.
        compatibility: the warm-start record of this model (`models.warm_start`).
    """

    model: keras.Model
    history: dict[str, list[float]]
    compatibility: dict


def train(
    config: TaggerConfig,
    train_features: tf.data.Dataset,
    eval_features: tf.data.Dataset,
    words: Sequence[str],
    chars: Sequence[str],
    *,
    base_model: str | None = None,
    log_dir: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Builds, compiles, warm-starts and fits the tagger.

    Trains for at most `TaggerConfig.epochs` epochs with early stopping on the eval entity F1
    (best weights kept), seeded with `TrainingConfig.seed`. A frozen encoder runs once per split,
    its word vectors kept in a temporary folder for the later epochs (`models.frozen_encoder`).

    Args:
        config: the tagger's configuration.
        train_features: batches of transformed features to train on, shuffled by the caller.
        eval_features: batches of transformed features of the eval split (in a fixed order).
        words: the word vocabulary, ids `NUM_RESERVED_IDS`, ... (`preprocessing.word_vocabulary`).
        chars: the character vocabulary, ids `NUM_RESERVED_IDS`, ....
        base_model: a previous model artifact to warm-start from (`models.warm_start`), or None.
        log_dir: TensorBoard logs of every epoch go there, if given.
        callbacks: more callbacks, after the training ones.
    """
    training = config.training
    output = config.model.output
    vectors = pretrained_embeddings(config.model, words, training.seed)
    tuned_ids = None
    if vectors is not None and config.model.trainable_word_embeddings:
        # Only these rows can move (models.tagger.PretrainedWordEmbedding).
        tuned_ids = training_word_ids(train_features, words, base_tuned_words(base_model))
        logging.info(
            "Trainer: fine-tuning the vectors of %d of %d words (those of the training data)",
            len(tuned_ids),
            NUM_RESERVED_IDS + len(words),
        )
    encoder = None
    if config.model.encoder_path is not None:
        encoder = read_checkpoint(config.model.encoder_path)
        logging.info(
            "Trainer: encoder %s (%d layers, %d dims), %s at learning rate %g",
            config.model.encoder_path,
            encoder.config.num_layers,
            encoder.config.hidden_dim,
            "fine-tuned" if config.model.encoder_trainable else "frozen",
            training.encoder_learning_rate,
        )
    keras.utils.set_random_seed(training.seed)
    model = build_tagger(
        config.model,
        tag_names=config.preprocessing.tag_vocabulary,
        num_words=NUM_RESERVED_IDS + len(words),
        num_chars=NUM_RESERVED_IDS + len(chars),
        max_word_length=config.preprocessing.max_word_length,
        pretrained_word_embeddings=vectors,
        tuned_word_ids=tuned_ids,
        encoder=encoder,
        encoder_learning_rate_multiplier=training.encoder_learning_rate / training.learning_rate,
        seed=training.seed,
    )
    # A frozen encoder runs once per split, not every epoch: the layers after it are fitted on
    # its cached word vectors (they share the tagger's weights).
    frozen = None
    if (
        encoder is not None
        and not config.model.encoder_trainable
        and training.cache_encoder_vectors
    ):
        frozen = frozen_encoder_models(model)
    fit_model = frozen.head if frozen is not None else model
    compile_tagger(fit_model, config.model, training)
    compatibility = compatibility_record(config, list(words), list(chars))
    warm_start(model, compatibility, base_model)
    logging.info(
        "Trainer: %s, %d parameters, %d words, %d characters, %d tags",
        model.name,
        model.count_params(),
        NUM_RESERVED_IDS + len(words),
        NUM_RESERVED_IDS + len(chars),
        config.preprocessing.num_tags,
    )
    with contextlib.ExitStack() as stack:
        if frozen is not None:
            cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="frozen_encoder_"))
            logging.info(
                "Trainer: the frozen encoder's word vectors are computed once, in %s", cache
            )
            train_features = cached_train_features(
                train_features,
                frozen.word_vectors,
                os.path.join(cache, "train"),
                batch_size=training.batch_size,
                shuffle_buffer_size=training.shuffle_buffer_size,
                seed=training.seed,
            )
            eval_features = cached_eval_features(
                eval_features, frozen.word_vectors, os.path.join(cache, "eval")
            )
        eval_batches = model_batches(eval_features, output)  # whole batches of one width
        history = keras.callbacks.History()
        all_callbacks = [*training_callbacks(eval_batches, config), history]
        if log_dir:
            all_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
        all_callbacks += [EpochLogger(config.epochs), *callbacks]
        with warnings.catch_warnings():
            # Keras warns at the end of every epoch of a dataset of unknown length; that end is
            # how an epoch ends here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit_model.fit(
                model_batches(train_features, output, trim=True),
                validation_data=eval_batches,
                epochs=config.epochs,
                callbacks=all_callbacks,
                verbose=0,  # EpochLogger logs each epoch through absl.
            )
    return TrainingResult(model, dict(history.history), compatibility)
