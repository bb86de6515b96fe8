"""End-to-end: the whole TFX pipeline on tiny CoNLL data with LocalDagRunner (Beam DirectRunner).

Asserts on what the run produced: the ML Metadata store (every component executed, then cached
on a rerun), the blessed model under a numeric version folder, its three signatures answering
in this process, the Evaluator's entity F1 against independent scorings of the pushed model's
tags (by signature, as the report tags, and `ner-tag --conll`), and
a run with an unknown tag stopped before Transform with a message naming the tag and its line.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from components.conll_format import read_conll
from components.validation_gate import DataValidationError
from models.entity_scoring import score_entities
from models.features import SIGNATURES
from pipeline import report
from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.pipeline import create_pipeline
from pipeline.run_summary import latest_run_executions, summarize
from serving.cli import main as ner_tag
from serving.evaluate import main as ner_eval

pytestmark = pytest.mark.e2e

SAMPLE_DIR = os.path.join(REPOSITORY_ROOT, "data", "sample")
NODES = {
    "ConllExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "ValidationGate",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "AtomicPusher",
}
# Everything upstream of the Evaluator is reused on a rerun. The Evaluator runs again because
# its baseline input changed (the model blessed by the first run), and so does the Pusher.
CACHED_ON_RERUN = NODES - {"latest_blessed_model_resolver", "Evaluator", "AtomicPusher"}


def write_subset(source: str, destination: str, num_sentences: int, replace=None) -> None:
    """Writes the first sentences of a CoNLL file, optionally replacing one tag everywhere."""
    sentences = list(read_conll(source))[:num_sentences]
    with open(destination, "w", encoding="utf-8") as file:
        for sentence in sentences:
            for token, tag in zip(sentence.tokens, sentence.tags):
                if replace and tag == replace[0]:
                    tag = replace[1]
                file.write(f"{token}\t{tag}\n")
            file.write("\n")


def tiny_config(data_dir, output_dir) -> PipelineConfig:
    return PipelineConfig.from_args(
        [
            "--data-dir", str(data_dir),
            "--output-dir", str(output_dir),
            "--max-length", "16",
            "--max-word-length", "8",
            "--word-embedding-dim", "16",
            "--no-embeddings",
            "--lstm-units", "8",
            "--char-filters", "8",
            "--epochs", "2",
            "--batch-size", "16",
            "--min-entity-f1", "0",
        ],
        environ={},
    )  # fmt: skip


def connection(config):
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)


def tag_with_signature(model, sentences):
    tokens = [list(sentence.tokens) for sentence in sentences]
    width = max(len(t) for t in tokens)
    padded = tf.constant([t + [""] * (width - len(t)) for t in tokens])
    return model.signatures["serve_tokens"](tokens=padded)


def test_pipeline_runs_blesses_pushes_and_caches(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_subset(os.path.join(SAMPLE_DIR, "train.conll"), data_dir / "train.conll", 80)
    write_subset(os.path.join(SAMPLE_DIR, "eval.conll"), data_dir / "eval.conll", 40)
    config = tiny_config(data_dir, tmp_path / "outputs")

    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))

    executions = latest_run_executions(connection(config))
    assert {e.node_id for e in executions} == NODES
    assert all(e.state == "COMPLETE" for e in executions), executions

    summary = summarize(connection(config))
    assert summary.blessed and summary.pushed
    version = os.path.basename(summary.pushed_destination)
    assert version.isdigit()
    assert os.path.dirname(summary.pushed_destination) == config.serving_dir
    assert os.listdir(config.serving_dir) == [version]
    assert os.path.isfile(os.path.join(summary.pushed_destination, "saved_model.pb"))

    # The pushed model answers its three signatures in this process.
    model = tf.saved_model.load(summary.pushed_destination)
    assert set(SIGNATURES) <= set(model.signatures)
    eval_sentences = list(read_conll(str(data_dir / "eval.conll")))
    max_length = config.tagger.preprocessing.max_length
    assert max(len(s.tokens) for s in eval_sentences) > max_length  # windows are exercised
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "tokens": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[b"Obama", b"visited", b"Paris"])
                )
            }
        )
    )
    result = model.signatures["serving_default"](
        examples=tf.constant([example.SerializeToString()])
    )
    tags = result["tags"].numpy()
    assert tags.shape == (1, 3)
    assert set(tags[0]) <= {t.encode() for t in config.tagger.preprocessing.tag_names}
    np.testing.assert_array_equal(result["lengths"].numpy(), [3])

    # One tagging path: the Evaluator's entity F1 (serving_default, in TFMA), the report's
    # (serve_sentences) and ner-tag's output on the eval file, scored independently, agree.
    gold = [list(sentence.tags) for sentence in eval_sentences]
    outputs = tag_with_signature(model, eval_sentences)
    by_tokens = [[t.decode() for t in row if t] for row in outputs["tags"].numpy()]
    assert [len(tags) for tags in by_tokens] == [len(tags) for tags in gold]  # whole sentences
    expected = score_entities(gold, by_tokens)
    assert summary.entity_f1 == pytest.approx(expected.f1, abs=0.01)
    assert summary.token_accuracy == pytest.approx(expected.token_accuracy, abs=0.01)
    artifacts = report.latest_run_artifacts(connection(config))
    by_report = report.predict_tags(
        artifacts.candidate_model_dir, [list(s.tokens) for s in eval_sentences]
    )
    assert score_entities(gold, by_report).f1 == pytest.approx(summary.entity_f1, abs=0.01)
    tagged = tmp_path / "tagged.conll"
    command = ["--conll", str(data_dir / "eval.conll"), "-o", str(tagged), "--no-progress"]
    assert ner_tag(command + ["--serving-dir", config.serving_dir]) == 0
    by_ner_tag = [[line.split("\t")[1] for line in block.splitlines()]
                  for block in tagged.read_text(encoding="utf-8").strip("\n").split("\n\n")]  # fmt: skip
    assert score_entities(gold, by_ner_tag).f1 == pytest.approx(summary.entity_f1, abs=0.01)
    # ner-eval on the same file gives the Evaluator's figure, with counts that add up.
    scores_path = tmp_path / "scores.json"
    command = [str(data_dir / "eval.conll"), "--json", str(scores_path), "--no-progress"]
    assert ner_eval(command + ["--serving-dir", config.serving_dir]) == 0
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    assert scores["f1"] == pytest.approx(summary.entity_f1, abs=0.01)
    assert scores["sentences"] == len(eval_sentences)
    gold_entities = sum(t["support"] for t in scores["per_type"].values())
    assert scores["true_positives"] + scores["false_negatives"] == gold_entities

    # A second run reuses the cached results; the same model stays the one pushed version.
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    states = {e.node_id: e.state for e in latest_run_executions(connection(config))}
    assert set(states) == NODES
    assert {node for node, state in states.items() if state == "CACHED"} >= CACHED_ON_RERUN
    assert summarize(connection(config)).pushed_destination == summary.pushed_destination
    assert os.listdir(config.serving_dir) == [version]


def test_unknown_tag_stops_the_run_before_transform(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_subset(
        os.path.join(SAMPLE_DIR, "train.conll"),
        data_dir / "train.conll",
        40,
        replace=("B-person", "B-persn"),
    )
    write_subset(os.path.join(SAMPLE_DIR, "eval.conll"), data_dir / "eval.conll", 10)
    config = tiny_config(data_dir, tmp_path / "outputs")

    with pytest.raises(DataValidationError) as raised:
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    message = str(raised.value)
    assert "unknown tag 'B-persn'" in message
    # Where: the file and line of the sentence (ConllExampleGen's sentence_id) and the token.
    first = next(s for s in read_conll(str(data_dir / "train.conll")) if "B-persn" in s.tags)
    position = first.tags.index("B-persn")
    assert f"train.conll:{first.line} token {position + 1} {first.tokens[position]!r}" in message

    ran = {e.node_id for e in latest_run_executions(connection(config))}
    assert "ValidationGate" in ran
    assert not ran & {"Transform", "Trainer", "Evaluator", "AtomicPusher"}
    assert not os.path.exists(config.serving_dir)
