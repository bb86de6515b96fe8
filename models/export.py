"""The served model: a SavedModel with three signatures and one way of tagging behind them.

Keras versions in this process: TensorFlow Transform sets `TF_USE_LEGACY_KERAS=1` when it is
imported (`tensorflow_transform/keras_lib.py`), which makes `tf.keras` mean tf-keras 2.16 here. It
does not change the `keras` package: `import keras` stays Keras 3, and the model is Keras 3. The TFT
layer (`TFTransformOutput.transform_features_layer()`) is a tf-keras model and cannot be a layer of
a Keras 3 model, so the export is a plain `tf.Module` holding both, each called as a function
inside the serving `tf.function`s, saved with `tf.saved_model.save`.

Signatures (names in `models.features`), differing only in how the sentences come in:

- `serving_default`: `examples` string `(batch_size,)`, serialized tf.Examples with a `tokens`
  bytes list (the TFX / TF Serving convention; what the Evaluator scores);
- `serve_tokens`: `tokens` string `(batch_size, None)`, sentences right-padded with "";
- `serve_sentences`: `sentences` string `(batch_size,)`, raw text tokenised inside the model
  (`models.tokenization`, split at whitespace).

Each turns its input into token lists and calls `TaggerServingModule.tag_token_lists`: a sentence
is tagged whole at any length, through overlapping windows of `max_length` tokens whose scores
the CRF decodes as one sequence (`models.sentence_graph`). So every signature, the Evaluator's
F1, the run report and `ner-tag` see the same tags for the same tokens. All three return
`models.features.OUTPUT_KEYS`: `tokens`, `tags` string `(batch_size, max_tokens)` ("" at padding),
`tag_ids` int32, `confidences` float32 (the CRF marginal of each chosen tag, 0 at padding),
`lengths` int64 `(batch_size,)` and the entity spans of `models.sentence_graph.entity_spans`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from absl import logging
from linear_crf.crf import compiled_in_graph, decoding_in_parts, marginals, viterbi_decode

from models import sentence_graph
from models.config import TaggerConfig
from models.features import (
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    SENTENCES_INPUT,
    SENTENCES_SIGNATURE,
    TOKENS_INPUT,
    TOKENS_KEY,
    TOKENS_SIGNATURE,
)
from models.tagger import cut_to_longest, model_input_keys
from models.tokenization import tokenize_tensor

__all__ = ["TaggerServingModule", "export_serving_model"]


class TaggerServingModule(tf.Module):
    """The exported model: raw input -> TFT graph -> Keras 3 tagger -> tags and entities.

    Args:
        model: the trained Keras 3 tagger.
        transform_layer: the Transform component's graph as a layer
            (`TFTransformOutput.transform_features_layer()`); it is saved inside.
        tag_vocabulary: tag name of every tag id, `[PAD]` at 0.
        output: `ModelConfig.output` ("crf" or "softmax").
        max_length: tokens per window: the Transform graph's `max_length`.
    """

    def __init__(
        self,
        model: keras.Model,
        transform_layer: Any,
        tag_vocabulary: tuple[str, ...],
        output: str,
        max_length: int,
    ):
        super().__init__(name="tagger_serving")
        # A new functional model over the same layers (the same variables): unlike the trained
        # one it has no optimizer, so the SavedModel holds no Adam moments (twice the trainable
        # weights: 160 MB for a 400k x 50 tuned word embedding).
        self.model = keras.Model(model.input, model.output, name=model.name)
        self.tft_layer = transform_layer
        self._output = output
        self._tag_vocabulary = tf.constant(tag_vocabulary)
        self._tag_names = tuple(tag_vocabulary)
        self._max_length = int(max_length)
        # The stitched emissions are decoded here, over the whole sentence: stop before the CRF
        # layer, whose own Viterbi pass over each window would be thrown away.
        self._scores_model = (
            keras.Model(model.input, model.get_layer("emissions").output)
            if output == "crf"
            else self.model
        )
        # The raw `tokens` feature as the curated schema declares it: a variable-length bytes list.
        self._token_spec = {TOKENS_KEY: tf.io.VarLenFeature(tf.string)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags serialized tf.Examples holding a `tokens` bytes list.

        An empty string in the list is a token here, tagged like any other, not padding as in
        `serve_tokens`: the tags stay aligned one to one with the example's tokens (and with its
        labels, when the Evaluator scores it). ExampleGen never writes one; see its reader.
        """
        tokens = tf.io.parse_example(examples, self._token_spec)[TOKENS_KEY]
        return self.tag_token_lists(tf.RaggedTensor.from_sparse(tokens))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name=TOKENS_INPUT)])
    def serve_tokens(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags sentences given as token strings `(batch_size, None)`, right-padded with ""."""
        # Every "" is padding: an empty token has no features and cannot be tagged.
        return self.tag_token_lists(tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, "")))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SENTENCES_INPUT)])
    def serve_sentences(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        """Tags raw sentences `(batch_size,)`, tokenised by `models.tokenization`."""
        return self.tag_token_lists(tokenize_tensor(sentences))

    def tag_token_lists(self, tokens: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """Tags tokenised sentences, string `(batch_size, None)` ragged, at any length: the one
        tagging function behind every signature (see the module docstring for the outputs)."""
        num_tags = len(self._tag_names)
        lengths = tokens.row_lengths()  # (batch_size,)
        windows, token_indices = sentence_graph.window_tokens(tokens, self._max_length)
        transformed = self.tft_layer({TOKENS_KEY: windows.to_sparse()})
        outputs = self._scores_model(
            cut_to_longest(transformed, model_input_keys(transformed)), training=False
        )
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
    model: keras.Model, transform_layer: Any, config: TaggerConfig, export_dir: str
) -> None:
    """Saves the SavedModel with its three signatures (see the module docstring).

    Args:
        model: the trained tagger.
        transform_layer: `TFTransformOutput.transform_features_layer()` of the Transform output
            the model was trained on.
        config: the tagger's configuration.
        export_dir: the folder to write (the Trainer's `serving_model_dir`).
    """
    module = TaggerServingModule(
        model,
        transform_layer,
        config.preprocessing.tag_vocabulary,
        config.model.output,
        max_length=config.preprocessing.max_length,
    )
    # No XLA program in the served graphs, whatever the CRF layer's `jit_compile` (TensorFlow
    # Serving runs none unless started with `--xla_cpu_compilation_enabled`). Decoding whole: it
    # runs beside the marginals' loops, which keep the cores busy already (in parts: 0.91-0.99x
    # on 2 cores, BENCHMARKS.md).
    with compiled_in_graph(exporting=True), decoding_in_parts(False):
        signatures = {
            EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
            TOKENS_SIGNATURE: module.serve_tokens.get_concrete_function(),
            SENTENCES_SIGNATURE: module.serve_sentences.get_concrete_function(),
        }
        tf.saved_model.save(module, export_dir, signatures=signatures)
    logging.info("Trainer: serving model exported to %s", export_dir)
