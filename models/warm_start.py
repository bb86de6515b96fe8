"""Warm start: begin training from the weights of a previous model when they still fit.

The Trainer's `base_model` (the latest blessed model, see `pipeline.pipeline`) is a Model artifact
whose `Format-Serving/` folder is what the Pusher publishes. Reading Keras weights back out of that
SavedModel (a `tf.Module` holding the TFT graph and the Keras 3 model) would tie this to the
export's layout, so `run_fn` also writes, beside `Format-Serving/` and never pushed:

    <model artifact>/warm_start/tagger.weights.h5      the Keras 3 weights
    <model artifact>/warm_start/compatibility.json     what the weights depend on

The weights are reused only if `compatibility.json` is equal: the word and character
vocabularies (the rows of the embedding matrices; a new span usually brings new words, so
the rows would mean other words), the tag vocabulary, the model configuration and the sizes. Else
the model trains from its fresh initialisation and the reason is logged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import keras
import tensorflow as tf
from absl import logging

WARM_START_DIR = "warm_start"
WEIGHTS_FILE = "tagger.weights.h5"
COMPATIBILITY_FILE = "compatibility.json"


def vocabulary_fingerprint(words) -> str:
    """SHA-256 of a vocabulary, in id order (bytes or str entries)."""
    digest = hashlib.sha256()
    for word in words:
        digest.update(word if isinstance(word, bytes) else word.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def compatibility_record(tagger_config, token_vocabulary, char_vocabulary) -> dict:
    """What a model's weights depend on: two models with equal records have the same shapes
    and the same meaning of every embedding row and tag id.

    Args:
        tagger_config: `models.config.TaggerConfig`.
        token_vocabulary: the word vocabulary in id order (Transform's output).
        char_vocabulary: the character vocabulary in id order.
    """
    model = dataclasses.asdict(tagger_config.model)
    # The embeddings file only initialises the weights: the weights themselves replace it.
    model.pop("pretrained_embeddings_path", None)
    return {
        "token_vocabulary": vocabulary_fingerprint(token_vocabulary),
        "char_vocabulary": vocabulary_fingerprint(char_vocabulary),
        "tag_vocabulary": list(tagger_config.preprocessing.tag_vocabulary),
        "max_length": tagger_config.preprocessing.max_length,
        "max_word_length": tagger_config.preprocessing.max_word_length,
        "model": model,
    }


def model_artifact_dir(serving_model_dir: str) -> str:
    """The Model artifact's folder from its `Format-Serving` folder (`fn_args.serving_model_dir`
    or `fn_args.base_model`)."""
    return os.path.dirname(serving_model_dir.rstrip("/"))


def save_warm_start_state(model: keras.Model, record: dict, serving_model_dir: str) -> str:
    """Writes the weights and their compatibility record beside `serving_model_dir`.

    Returns:
        The folder written.
    """
    directory = os.path.join(model_artifact_dir(serving_model_dir), WARM_START_DIR)
    tf.io.gfile.makedirs(directory)
    model.save_weights(os.path.join(directory, WEIGHTS_FILE))
    with tf.io.gfile.GFile(os.path.join(directory, COMPATIBILITY_FILE), "w") as file:
        json.dump(record, file, indent=1, sort_keys=True)
    return directory


def warm_start(model: keras.Model, record: dict, base_model: str | None) -> str | None:
    """Loads the base model's weights into `model` if their compatibility records are equal.

    Args:
        model: the freshly built tagger.
        record: `compatibility_record` of this run.
        base_model: `fn_args.base_model` (the base model's `Format-Serving` folder), or None.
    Returns:
        None if the weights were loaded, else why not (a sentence, also logged).
    """
    if not base_model:
        reason = "no base model (no blessed model yet, or warm start disabled)"
    else:
        directory = os.path.join(model_artifact_dir(base_model), WARM_START_DIR)
        compatibility_path = os.path.join(directory, COMPATIBILITY_FILE)
        if not tf.io.gfile.exists(compatibility_path):
            reason = f"the base model has no warm-start weights ({compatibility_path} missing)"
        else:
            with tf.io.gfile.GFile(compatibility_path) as file:
                base_record = json.load(file)
            changed = sorted(
                key
                for key in set(record) | set(base_record)
                if record.get(key) != base_record.get(key)
            )
            if changed:
                reason = f"changed since the base model: {', '.join(changed)}"
            else:
                model.load_weights(os.path.join(directory, WEIGHTS_FILE))
                logging.info("Trainer: warm start from the weights of %s", base_model)
                return None
    logging.info("Trainer: no warm start, training from scratch: %s.", reason)
    return reason
