"""TFX Trainer entry point: train the tagger on transformed examples, export the serving model.

`run_fn(fn_args)` is called by the generic TFX Trainer (`Trainer(run_fn="models.run_fn.run_fn")`).

Keras versions in this process: TensorFlow Transform sets `TF_USE_LEGACY_KERAS=1` when it is
imported (`tensorflow_transform/keras_lib.py`), which makes `tf.keras` mean tf-keras 2.16 here. It
does not change the `keras` package: `import keras` stays Keras 3, and the model is Keras 3. The TFT
layer (`TFTransformOutput.transform_features_layer()`) is a tf-keras model and cannot be a layer of
a Keras 3 model, so the export below is a plain `tf.Module` holding both, each called as a function
inside the serving `tf.function`s, saved with `tf.saved_model.save`.

The exported SavedModel has two signatures:

- `serving_default`: `examples` string `(batch_size,)`, serialized tf.Examples with a `tokens` bytes
  list (the TFX / TF Serving convention; the TFT graph is applied inside);
- `serve_tokens`: `tokens` string `(batch_size, None)`, sentences right-padded with "".

Both return `tags` string `(batch_size, max_length)` (the tag of each token, "" at padding and
beyond `max_length`), `tag_ids` int32 `(batch_size, max_length)` and `lengths` int64 `(batch_size,)`.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx_bsl.public import tfxio

from models import preprocessing
from models.config import ModelConfig, TaggerConfig
from models.embeddings import load_embedding_matrix
from models.entity_scoring import score_entities
from models.tagger import (
    INPUT_KEYS,
    build_tagger,
    compile_tagger,
    loss_sample_weights,
    predicted_tag_ids,
    training_model_inputs,
)
from models.warm_start import compatibility_record, save_warm_start_state, warm_start

SERVING_SIGNATURE = "serving_default"
TOKENS_SIGNATURE = "serve_tokens"
SENTENCES_SIGNATURE = "serve_sentences"


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
        eval_dataset: the eval split as (inputs, tag_ids[, sample weights]) batches.
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
    """The callbacks that decide how the tagger trains (shared by `run_fn` and the benchmark).

    The learning-rate schedule (`TrainingConfig.learning_rate_decay`), the eval entity F1 and
    early stopping on it, keeping the best epoch's weights. With `weight_averaging` (the model
    compiled by `compile_tagger`), the averaged weights are swapped in at every epoch's end, so
    the eval F1 and early stopping judge, and keep, the averaged weights.
    """
    training = config.training
    callbacks = []
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
            start_from_epoch=training.early_stopping_start_epoch,
            restore_best_weights=True,
        ),
    ]


def _dataset(
    file_pattern: list[str],
    data_accessor: Any,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    seed: int,
    shuffle_buffer_size: int,
    output: str,
    trim: bool = False,
) -> tf.data.Dataset:
    """One pass of (model inputs, tag_ids int64 `(batch_size, max_length)`[, sample weights]).

    With `trim`, each batch is cut to its longest sentence instead of `max_length` tokens: the
    same values at the real tokens, about half the work on WNUT-17's training split (its batches
    of 32 are 32 tokens long on average, padded to 64).
    """
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            shuffle=shuffle,
            shuffle_seed=seed,
            shuffle_buffer_size=shuffle_buffer_size,
            num_epochs=1,
        ),
        tf_transform_output.transformed_metadata.schema,
    )

    def split(features):
        if trim:
            features = _cut_to_longest(features, (*INPUT_KEYS, preprocessing.TAG_IDS_KEY))
        tag_ids = features[preprocessing.TAG_IDS_KEY]
        sample_weights = loss_sample_weights(tag_ids, output)
        if sample_weights is None:
            return training_model_inputs(features), tag_ids
        return training_model_inputs(features), tag_ids, sample_weights

    return dataset.map(split).prefetch(tf.data.AUTOTUNE)


def _cut_to_longest(features: dict[str, tf.Tensor], keys) -> dict[str, tf.Tensor]:
    """The `keys` of a batch of transformed features, cut from `max_length` tokens to the batch's
    longest sentence. The model masks padding: the tags stay the same, the work shrinks."""
    longest = tf.maximum(tf.reduce_max(features[preprocessing.LENGTHS_KEY]), 1)
    return {key: features[key][:, :longest] for key in keys}


class TaggerServingModule(tf.Module):
    """The exported model: raw input -> TFT graph -> Keras 3 tagger -> tag names.

    Args:
        model: the trained Keras 3 tagger.
        tf_transform_output: the Transform component's output (its graph is saved inside).
        tag_vocabulary: tag name of every tag id, `[PAD]` at 0.
        output: `ModelConfig.output` ("crf" or "softmax").
        max_length: tokens per window of `serve_sentences`: the Transform graph's `max_length`.
    """

    def __init__(
        self,
        model: keras.Model,
        tf_transform_output: tft.TFTransformOutput,
        tag_vocabulary: tuple[str, ...],
        output: str,
        max_length: int,
    ):
        super().__init__(name="tagger_serving")
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._output = output
        self._tag_vocabulary = tf.constant(tag_vocabulary)
        self._tag_names = tuple(tag_vocabulary)
        self._max_length = int(max_length)
        # serve_sentences decodes the stitched emissions itself: stop before the CRF layer,
        # whose own Viterbi pass over each window would be thrown away.
        self._scores_model = (
            keras.Model(model.input, model.get_layer("emissions").output)
            if output == "crf"
            else model
        )
        # The raw `tokens` feature as the curated schema declares it: a variable-length bytes list.
        self._token_spec = {preprocessing.TOKENS_KEY: tf.io.VarLenFeature(tf.string)}

    def _tag(self, raw_features: dict[str, Any]) -> dict[str, tf.Tensor]:
        transformed = self.tft_layer(raw_features)
        outputs = self.model(_cut_to_longest(transformed, INPUT_KEYS), training=False)
        lengths = transformed[preprocessing.LENGTHS_KEY]  # (batch_size,)
        tag_ids = predicted_tag_ids(outputs, self._output, lengths)  # (batch_size, longest)
        tag_ids = tf.pad(tag_ids, [[0, 0], [0, self._max_length - tf.shape(tag_ids)[1]]])
        tags = tf.gather(self._tag_vocabulary, tag_ids)  # (batch_size, max_length)
        mask = tf.sequence_mask(lengths, tf.shape(tag_ids)[1])
        return {
            "tags": tf.where(mask, tags, tf.constant("")),
            "tag_ids": tag_ids,
            "lengths": lengths,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags serialized tf.Examples holding a `tokens` bytes list."""
        return self._tag(tf.io.parse_example(examples, self._token_spec))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def serve_tokens(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags sentences given as token strings `(batch_size, None)`, right-padded with ""."""
        # from_dense keeps the non-empty strings: the padding drops out.
        return self._tag({preprocessing.TOKENS_KEY: tf.sparse.from_dense(tokens)})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def serve_sentences(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags raw sentences `(batch_size,)`, tokenised by `models.tokenization`, at any length.

        Sentences longer than `max_length` are tagged whole, through overlapping windows whose
        scores the CRF decodes as one sequence (`serving.sentence_graph`). Returns `tokens`,
        `tags` string `(batch_size, max_tokens)` ("" at padding), `tag_ids` int32, `confidences`
        float32 (the CRF marginal of each chosen tag, 0 at padding), `lengths` int64
        `(batch_size,)` and the entity spans of `serving.sentence_graph.entity_spans`.
        """
        from models.tokenization import tokenize_tensor

        return self.tag_token_lists(tokenize_tensor(sentences))

    def tag_token_lists(self, tokens: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """Tags tokenised sentences, string `(batch_size, None)` ragged, at any length.

        What `serve_sentences` does after tokenising (and returns the same), for callers that
        have their own tokens, such as a CoNLL test split: sentences longer than `max_length`
        are tagged whole through overlapping windows.
        """
        from models.crf import marginals, viterbi_decode
        from serving import sentence_graph

        num_tags = len(self._tag_names)
        lengths = tokens.row_lengths()  # (batch_size,)
        windows, token_indices = sentence_graph.window_tokens(tokens, self._max_length)
        transformed = self.tft_layer({preprocessing.TOKENS_KEY: windows.to_sparse()})
        outputs = self._scores_model(_cut_to_longest(transformed, INPUT_KEYS), training=False)
        # CRF: the emissions; softmax: the probabilities. (num_windows, longest, num_tags)
        window_scores = tf.cast(outputs[..., :num_tags], tf.float32)
        scores = sentence_graph.stitch(
            window_scores, token_indices, tf.size(tokens.flat_values, out_type=tf.int64)
        )  # (num_tokens, num_tags)
        # One extra padding column keeps the decoders away from zero-length sequences.
        width = tf.reduce_max(tf.concat([lengths, [0]], 0)) + 1
        scores = tf.RaggedTensor.from_row_lengths(scores, lengths).to_tensor(
            shape=tf.stack([tf.size(lengths, out_type=tf.int64), width, num_tags])
        )  # (batch_size, width, num_tags)
        mask = tf.sequence_mask(lengths, width)  # (batch_size, width)
        if self._output == "crf":
            potentials = self.model.get_layer("crf").potentials()
            tag_ids = tf.cast(viterbi_decode(scores, mask, *potentials)[0], tf.int32)
            probabilities = marginals(scores, mask, *potentials)
        else:
            tag_ids = tf.cast(tf.argmax(scores[..., 1:], axis=-1) + 1, tf.int32)
            probabilities = scores
        tag_ids = tf.where(mask, tag_ids, 0)[:, :-1]  # (batch_size, max_tokens)
        mask = mask[:, :-1]
        confidences = tf.where(
            mask, tf.gather(probabilities[:, :-1], tag_ids, batch_dims=2), 0.0
        )  # (batch_size, max_tokens)
        padded_tokens = tokens.to_tensor("", shape=tf.shape(tag_ids, out_type=tf.int64))
        result = {
            "tokens": padded_tokens,
            "tags": tf.where(mask, tf.gather(self._tag_vocabulary, tag_ids), ""),
            "tag_ids": tag_ids,
            "confidences": confidences,
            "lengths": lengths,
        }
        result.update(
            sentence_graph.entity_spans(
                tag_ids, lengths, padded_tokens, confidences, self._tag_names
            )
        )
        return result


def export_serving_model(
    model: keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    config: TaggerConfig,
    export_dir: str,
) -> None:
    """Saves the SavedModel with the `serving_default`, `serve_tokens` and `serve_sentences`
    signatures."""
    module = TaggerServingModule(
        model,
        tf_transform_output,
        config.preprocessing.tag_vocabulary,
        config.model.output,
        max_length=config.preprocessing.max_length,
    )
    signatures = {
        SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
        TOKENS_SIGNATURE: module.serve_tokens.get_concrete_function(),
        SENTENCES_SIGNATURE: module.serve_sentences.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    logging.info("Trainer: serving model exported to %s", export_dir)


def _pretrained_embeddings(
    model_config: ModelConfig, vocabulary: tuple[str, ...], seed: int
) -> np.ndarray | None:
    """The word embedding matrix from `pretrained_embeddings_path`, rows in word-id order.

    Args:
        vocabulary: the words of ids `NUM_RESERVED_IDS`, ... (`preprocessing.word_vocabulary`).
    """
    path = model_config.pretrained_embeddings_path
    if path is None:
        return None
    embeddings = load_embedding_matrix(
        path, vocabulary, num_reserved=preprocessing.NUM_RESERVED_IDS, seed=seed
    )
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


def run_fn(fn_args: Any) -> None:
    """Trains the tagger and exports the serving model (TFX generic Trainer entry point).

    Reads `fn_args.custom_config` (see `TaggerConfig`), the transformed `train` and `eval` splits
    and the transform graph; trains for at most `TrainingConfig.epochs` epochs with early stopping
    on the eval entity F1 (best weights kept), starting from `fn_args.base_model`'s weights when
    they fit (`models.warm_start`), writes TensorBoard logs to `fn_args.model_run_dir` and the
    SavedModel to `fn_args.serving_model_dir`. `fn_args.train_steps`, when set (TrainArgs
    num_steps), caps the number of training steps per epoch.
    """
    config = TaggerConfig.from_custom_config(fn_args.custom_config)
    training = config.training
    logging.info(
        "Trainer: keras %s (backend %s); tf.keras is %s",
        keras.__version__,
        keras.backend.backend(),
        tf.keras.__name__,
    )
    keras.utils.set_random_seed(training.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def dataset(files, shuffle):
        return _dataset(
            files,
            fn_args.data_accessor,
            tf_transform_output,
            training.batch_size,
            shuffle,
            training.seed,
            training.shuffle_buffer_size,
            config.model.output,
            trim=shuffle,  # The eval F1 wants whole batches of one width.
        )

    train_dataset = dataset(fn_args.train_files, shuffle=True)
    eval_dataset = dataset(fn_args.eval_files, shuffle=False)
    if fn_args.train_steps:
        train_dataset = train_dataset.take(fn_args.train_steps)

    words = preprocessing.word_vocabulary(tf_transform_output, config)
    num_words = preprocessing.NUM_RESERVED_IDS + len(words)
    num_chars = preprocessing.NUM_RESERVED_IDS + tf_transform_output.vocabulary_size_by_name(
        preprocessing.CHAR_VOCABULARY_NAME
    )
    model = build_tagger(
        config.model,
        tag_names=config.preprocessing.tag_vocabulary,
        num_words=num_words,
        num_chars=num_chars,
        max_word_length=config.preprocessing.max_word_length,
        pretrained_word_embeddings=_pretrained_embeddings(config.model, words, training.seed),
        seed=training.seed,
    )
    compile_tagger(model, config.model, training)
    compatibility = compatibility_record(
        config, words, tf_transform_output.vocabulary_by_name(preprocessing.CHAR_VOCABULARY_NAME)
    )
    # `base_model`: the latest blessed model when the pipeline warm-starts (else None).
    warm_start(model, compatibility, getattr(fn_args, "base_model", None))
    logging.info(
        "Trainer: %s, %d parameters, %d words, %d characters, %d tags",
        model.name,
        model.count_params(),
        num_words,
        num_chars,
        config.preprocessing.num_tags,
    )
    callbacks = [
        *training_callbacks(eval_dataset, config),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        EpochLogger(training.epochs),
    ]
    with warnings.catch_warnings():
        # Keras warns at the end of every epoch of a dataset of unknown length; that end is
        # how an epoch ends here.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            train_dataset,
            validation_data=eval_dataset,
            epochs=training.epochs,
            callbacks=callbacks,
            verbose=0,  # EpochLogger logs each epoch through absl.
        )
    # Beside Format-Serving, never pushed: what a later run warm-starts from.
    save_warm_start_state(model, compatibility, fn_args.serving_model_dir)
    export_serving_model(model, tf_transform_output, config, fn_args.serving_model_dir)
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
