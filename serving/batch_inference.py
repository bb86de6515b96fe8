"""Batch tagging of text files with Apache Beam `RunInference` and a TensorFlow SavedModel handler.

Runs on any Beam runner with the same `--beam-args` as the pipeline (e.g. `--direct_num_workers=0
--direct_running_mode=multi_processing`, or Dataflow/Flink options): files are read with
`ReadFromText` (splittable, so workers share a large file), `RunInference` batches sentences into
`serve_sentences` calls, each worker loading the model once. Output order is not kept (Beam
does not keep it); every output record carries its sentence.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from serving.formats import format_result
from serving.tagging import load_signature, split_outputs

__all__ = [
    "run_batch_inference",
    "SentenceTaggerModelHandler",
]


class SentenceTaggerModelHandler(ModelHandler[str, PredictionResult, Any]):
    """`RunInference` handler: raw sentences in, `serving.tagging.TaggedSentence`s out.

    Args:
        model_dir: the SavedModel directory (see `serving.model_version.resolve_model_dir`).
        min_batch_size: smallest batch RunInference forms.
        max_batch_size: largest batch (sentences per `serve_sentences` call).
    """

    def __init__(self, model_dir: str, min_batch_size: int = 1, max_batch_size: int = 256):
        super().__init__()
        self._model_dir = model_dir
        self._batch_kwargs = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        return load_signature(self._model_dir)

    def run_inference(
        self, batch: Sequence[str], model, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        import tensorflow as tf

        sentences = list(batch)
        outputs = model(sentences=tf.constant(sentences, tf.string))
        results = split_outputs(sentences, {k: v.numpy() for k, v in outputs.items()})
        return [PredictionResult(s, r, self._model_dir) for s, r in zip(sentences, results)]

    def batch_elements_kwargs(self):
        return self._batch_kwargs

    def get_metrics_namespace(self) -> str:
        return "ner_tagger"


def run_batch_inference(
    input_pattern: str,
    output_path: str,
    model_dir: str,
    output_format: str = "jsonl",
    beam_args: str | Sequence[str] = (),
    max_batch_size: int = 256,
) -> None:
    """Tags every line of the files matching `input_pattern`, writes `output_path` (one file).

    Args:
        input_pattern: text files, one sentence a line (any Beam file system).
        output_path: the output file (records in `output_format`, see `serving.formats`).
        model_dir: the SavedModel directory.
        output_format: "jsonl", "text" or "conll".
        beam_args: Beam pipeline options, a string (shell-split) or a list.
        max_batch_size: sentences per `serve_sentences` call.
    """
    if isinstance(beam_args, str):
        beam_args = shlex.split(beam_args)
    options = PipelineOptions(list(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromText(input_pattern)
            | "Tag" >> RunInference(SentenceTaggerModelHandler(model_dir, 1, max_batch_size))
            | "Format" >> beam.Map(lambda result: format_result(result.inference, output_format))
            | "Write" >> beam.io.WriteToText(output_path, shard_name_template="")
        )
