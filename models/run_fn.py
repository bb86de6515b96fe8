"""TFX Trainer entry point: glue between TFX's `fn_args` and `models.train` / `models.export`.

`run_fn(fn_args)` is called by the Trainer (`components.tagger_trainer.TaggerTrainer`, a generic
TFX Trainer with `run_fn="models.run_fn.run_fn"`). It reads the transformed splits through TFX's
data accessor, trains with `models.train.train` and writes the SavedModel with
`models.export.export_serving_model` (its signatures are described there).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx_bsl.public import tfxio

from models import preprocessing
from models.config import TaggerConfig
from models.export import export_serving_model
from models.features import CHAR_VOCABULARY_NAME
from models.train import train
from models.warm_start import save_warm_start_state

__all__ = ["run_fn", "transformed_batches"]


def transformed_batches(
    file_pattern: list[str],
    data_accessor: Any,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
    seed: int,
    shuffle_buffer_size: int,
) -> tf.data.Dataset:
    """One pass over transformed examples, as batches of feature dicts (`models.features`)."""
    return data_accessor.tf_dataset_factory(
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


def run_fn(fn_args: Any) -> None:
    """Trains the tagger and exports the serving model (TFX generic Trainer entry point).

    Reads `fn_args.custom_config` (see `TaggerConfig`), the transformed `train` and `eval` splits
    and the transform graph; trains (`models.train.train`) starting from `fn_args.base_model`'s
    weights when they fit (`models.warm_start`), writes TensorBoard logs to `fn_args.model_run_dir`
    and the SavedModel to `fn_args.serving_model_dir`. `fn_args.train_steps`, when set (TrainArgs
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
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def batches(files, shuffle):
        return transformed_batches(
            files,
            fn_args.data_accessor,
            tf_transform_output,
            training.batch_size,
            shuffle,
            training.seed,
            training.shuffle_buffer_size,
        )

    train_features = batches(fn_args.train_files, shuffle=True)
    if fn_args.train_steps:
        train_features = train_features.take(fn_args.train_steps)
    result = train(
        config,
        train_features,
        batches(fn_args.eval_files, shuffle=False),
        preprocessing.word_vocabulary(tf_transform_output, config),
        tf_transform_output.vocabulary_by_name(CHAR_VOCABULARY_NAME),
        # The latest blessed model when the pipeline warm-starts (else None).
        base_model=getattr(fn_args, "base_model", None),
        log_dir=fn_args.model_run_dir,
    )
    # Beside Format-Serving, never pushed: what a later run warm-starts from.
    save_warm_start_state(result.model, result.compatibility, fn_args.serving_model_dir)
    export_serving_model(
        result.model,
        tf_transform_output.transform_features_layer(),
        config,
        fn_args.serving_model_dir,
    )
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
