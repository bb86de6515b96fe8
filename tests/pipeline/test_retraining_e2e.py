"""End-to-end retraining over spans: blessing against the latest blessed model, a corrupted span
rejected, warm start, and a run killed mid-way then resumed by the scheduler.

Data: a tiny synthetic language (templates with person and location names, `{SPAN}` folders), so
that a tiny BiLSTM-CRF learns it in a few epochs and a model trained on shuffled tags clearly
loses. Every span holds the same clean eval file: each candidate is judged on the same sentences.

    span 1: 100 sentences               -> blessed, pushed: version A
    span 2: span 1's sentences twice (same vocabularies), warm start from A -> evaluated against A;
            pushed as B if no worse
    span 3: span 2's tokens, tags shuffled among tokens (valid IOB2, valid names) -> not blessed,
            nothing pushed, the newest version unchanged
    span 4: new clean sentences, through `python -m pipeline.scheduler --once`, killed (SIGKILL to
            its process group) once Transform has started, then run again: completes, with the
            components that had finished reused from the cache, and the serving folder holds
            only whole versions.

A second test runs `--span-window 2` over three spans and checks in ML Metadata which spans
Transform and the Trainer read, and that Transform's analyzer cache passes from run to run.
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from tfx import v1 as tfx

from pipeline import scheduler
from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.learned_tags import prepared_config
from pipeline.pipeline import create_pipeline
from pipeline.run_summary import latest_run_executions, summarize

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAIN_PATTERN = "span-{SPAN}/train.conll"
EVAL_PATTERN = "span-{SPAN}/eval.conll"
PEOPLE = ["Alice", "Bruno", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana"]
SURNAMES = ["Smith", "Okafor", "Ivanova", "Tanaka"]
PLACES = ["Paris", "Lagos", "Kyoto", "Lima", "Oslo", "Cairo"]
TEMPLATES = [
    "yesterday i met {P} in {L} .",
    "{P} lives in {L} now .",
    "we flew to {L} with {P} {S} .",
    "did you see {P} {S} at the station ?",
    "the weather in {L} is nice today .",
    "{P} said hello to {Q} .",
]


def sentence(rng):
    """One (tokens, tags) pair of the synthetic language."""
    tokens, tags = [], []
    for word in rng.choice(TEMPLATES).split():
        if word in ("{P}", "{Q}"):
            tokens.append(rng.choice(PEOPLE))
            tags.append("B-person")
        elif word == "{S}":  # a surname continues the person before it
            tokens.append(rng.choice(SURNAMES))
            tags.append("I-person")
        elif word == "{L}":
            tokens.append(rng.choice(PLACES))
            tags.append("B-location")
        else:
            tokens.append(word)
            tags.append("O")
    return tokens, tags


def corrupt(sentences, seed):
    """Shuffles the tags among all tokens, then makes the result valid IOB2 again (an `I-x` not
    after `B-x`/`I-x` becomes `B-x`): valid tag names, labels unrelated to the tokens."""
    all_tags = [tag for _, tags in sentences for tag in tags]
    random.Random(seed).shuffle(all_tags)
    result, position = [], 0
    for tokens, _ in sentences:
        tags = all_tags[position : position + len(tokens)]
        position += len(tokens)
        for i, tag in enumerate(tags):
            previous = tags[i - 1] if i else "O"
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                tags[i] = "B-" + tag[2:]
        result.append((tokens, tags))
    return result


def write_conll(path, sentences):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        for tokens, tags in sentences:
            file.writelines(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags))
            file.write("\n")


def write_span(data_dir, span, train, eval_sentences):
    # As the scheduler's doc asks: write aside, then rename into place.
    staging = data_dir / f".staging-{span}"
    write_conll(staging / "train.conll", train)
    write_conll(staging / "eval.conll", eval_sentences)
    os.rename(staging, data_dir / f"span-{span}")


def pipeline_argv(data_dir, output_dir, *extra):
    return [
        "--data-dir", str(data_dir),
        "--output-dir", str(output_dir),
        "--train-pattern", TRAIN_PATTERN,
        "--eval-pattern", EVAL_PATTERN,
        "--max-length", "12",
        "--max-word-length", "8",
        "--word-embedding-dim", "16",
        "--no-embeddings",
        "--lstm-units", "16",
        "--char-filters", "8",
        "--epochs", "8",
        "--learning-rate", "0.03",
        "--batch-size", "8",
        "--token-frequency-threshold", "1",
        "--min-entity-f1", "30",
        *extra,
    ]  # fmt: skip


def connection(config):
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)


def versions(serving_dir):
    """The numeric version folders (the local runner also writes `*.report.html` files there)."""
    if not os.path.isdir(serving_dir):
        return []
    return sorted((name for name in os.listdir(serving_dir) if name.isdigit()), key=int)


def assert_only_whole_versions(serving_dir):
    """Every folder is a whole numeric version; nothing else but the runs' HTML reports."""
    for name in os.listdir(serving_dir):
        path = os.path.join(serving_dir, name)
        if os.path.isfile(path) and name.endswith(".report.html") and not name.startswith("."):
            continue
        assert name.isdigit(), f"not a version folder: {name!r} in {os.listdir(serving_dir)}"
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isfile(os.path.join(path, "variables", "variables.index"))


def run(argv):
    # As `python -m pipeline.local_runner argv` runs it: the tag set learned from the data.
    config, _ = prepared_config(PipelineConfig.from_args(argv, environ={}))
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
    return config, summarize(connection(config))


def test_retraining_over_spans(tmp_path):
    rng = random.Random(7)
    data_dir, output_dir = tmp_path / "data", tmp_path / "outputs"
    data_dir.mkdir()
    eval_sentences = [sentence(rng) for _ in range(40)]
    span_1 = [sentence(rng) for _ in range(100)]
    # Twice as many sentences with the same word and character counts, doubled: the vocabularies
    # (ordered by frequency) stay the same, so the Trainer warm-starts from A.
    span_2 = span_1 + rng.sample(span_1, len(span_1))
    span_4 = [sentence(rng) for _ in range(120)]
    argv = pipeline_argv(data_dir, output_dir)
    environment = {**os.environ, "PYTHONPATH": REPOSITORY_ROOT}

    # Span 1: the first model is blessed (floor only: no baseline yet) and pushed.
    write_span(data_dir, 1, span_1, eval_sentences)
    config, first = run(argv)
    assert first.blessed and first.pushed, first
    assert first.entity_f1 >= 30
    version_a = os.path.basename(first.pushed_destination)
    assert versions(config.serving_dir) == [version_a]

    # Span 2: trained from A's weights (same vocabularies),
    # compared with A, pushed as a new version if no worse.
    write_span(data_dir, 2, span_2, eval_sentences)
    time.sleep(1.1)  # versions are UNIX seconds
    # Through the local runner in a child process: its progress log has the Trainer's lines.
    warm = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", *argv, "--warm-start"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stderr[-3000:]
    warm_start_lines = [line for line in warm.stderr.splitlines() if "warm start" in line]
    assert any("Trainer: warm start from the weights of" in text for text in warm_start_lines), (
        warm_start_lines
    )
    second = summarize(connection(config))
    assert second.entity_f1 >= 30
    if second.entity_f1 >= first.entity_f1:
        assert second.blessed and second.pushed, second
        version_b = os.path.basename(second.pushed_destination)
        assert versions(config.serving_dir) == [version_a, version_b]
    else:
        assert not second.blessed and not second.pushed, second
        version_b = version_a
    newest = versions(config.serving_dir)[-1]
    assert newest == version_b

    # Span 3: shuffled tags. Validation passes (valid names, valid IOB2), the model is rejected.
    corrupted = corrupt(span_2, seed=3)
    assert sorted(t for _, tags in corrupted for t in tags if t != "O") != []
    write_span(data_dir, 3, corrupted, eval_sentences)
    config, third = run(argv)
    assert {e.node_id: e.state for e in latest_run_executions(connection(config))}[
        "Evaluator"
    ] == "COMPLETE"
    assert not third.blessed and not third.pushed, third
    assert third.entity_f1 < 30 or third.entity_f1 < max(first.entity_f1, second.entity_f1)
    assert versions(config.serving_dir)[-1] == version_b

    # Span 4 through the scheduler: killed once Transform runs, then resumed.
    write_span(data_dir, 4, span_4, eval_sentences)
    command = [sys.executable, "-m", "pipeline.scheduler", "--once", *argv]
    log_path = tmp_path / "killed_run.log"
    with open(log_path, "w") as log:
        killed = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=environment,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 600
        while "Component Transform is running." not in log_path.read_text():
            assert killed.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "Transform never started"
            time.sleep(0.5)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    paths = scheduler.SchedulerPaths.for_config(config)
    assert scheduler.read_last_span(paths) is None  # spans 1-3 ran without the scheduler
    assert_only_whole_versions(config.serving_dir)

    resumed = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert scheduler.read_last_span(paths) == 4
    states = {e.node_id: e.state for e in latest_run_executions(connection(config))}
    # What had finished before the kill is reused; what was interrupted runs again.
    assert states["ConllExampleGen"] == "CACHED"
    assert states["StatisticsGen"] == "CACHED"
    assert states["Transform"] == "COMPLETE"
    assert states["AtomicPusher"] == "COMPLETE"
    assert_only_whole_versions(config.serving_dir)
    assert not [n for n in os.listdir(config.serving_dir) if n.startswith(".")]
    fourth = summarize(connection(config))
    if fourth.pushed:
        assert versions(config.serving_dir)[-1] == os.path.basename(fourth.pushed_destination)
    # A second check finds nothing new and runs nothing.
    again = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, timeout=300)
    assert again.returncode == 0
    assert b"already trained on" in again.stderr
    assert summarize(connection(config)) == fourth


def node_executions(store, run_context, pipeline_name):
    """{node id: execution} of one pipeline run, read from ML Metadata."""
    node_type_id = store.get_context_type("node").id
    result = {}
    for execution in store.get_executions_by_context(run_context.id):
        for context in store.get_contexts_by_execution(execution.id):
            if context.type_id == node_type_id:
                result[context.name.removeprefix(pipeline_name + ".")] = execution
    return result


def execution_artifacts(store, execution, event_type):
    """{key: [artifact, ...]} of one execution's input or output events."""
    events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == event_type]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    result = {}
    for event in events:
        result.setdefault(event.path.steps[0].key, []).append(by_id[event.artifact_id])
    return {key: sorted(artifacts, key=lambda a: a.id) for key, artifacts in result.items()}


def span_of(artifact):
    """The span an Examples artifact was recorded with (a property of the Examples type)."""
    if "span" in artifact.properties:
        return artifact.properties["span"].int_value
    return artifact.custom_properties["span"].int_value


def source_files(examples_uri, split):
    """The CoNLL files the tf.Examples of one split came from (`sentence_id` is `file:line`)."""
    import tensorflow as tf

    files = set()
    paths = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    assert paths, f"no examples under {examples_uri}"
    for record in tf.data.TFRecordDataset(paths, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        sentence_id = example.features.feature["sentence_id"].bytes_list.value[0].decode()
        files.add(sentence_id.rsplit(":", 1)[0])
    return files


def count_records(examples_uri, split):
    import tensorflow as tf

    paths = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    return sum(1 for _ in tf.data.TFRecordDataset(paths, compression_type="GZIP"))


def test_span_window_trains_on_the_last_spans_and_reuses_the_analyzer_cache(tmp_path):
    """`--span-window 2` over three spans, one real run per span (ExampleGen ingests the newest
    span only, so each span must have been ingested by a run of its own).

    Evidence independent of the pipeline's code: the span property of the Examples artifacts
    that ML Metadata records as Transform's inputs, the CoNLL files named by the `sentence_id` of
    the tf.Examples in those artifacts, the number of transformed training records, and the
    TransformCache artifacts on the events of Transform's executions.
    """
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration import metadata

    rng = random.Random(11)
    data_dir, output_dir = tmp_path / "data", tmp_path / "outputs"
    data_dir.mkdir()
    eval_sentences = [sentence(rng) for _ in range(10)]
    # Different sizes: the number of transformed records tells which spans went in.
    train_sizes = {1: 30, 2: 20, 3: 25}
    argv = pipeline_argv(
        data_dir, output_dir, "--span-window", "2", "--epochs", "1", "--min-entity-f1", "0"
    )
    for span, size in train_sizes.items():
        write_span(data_dir, span, [sentence(rng) for _ in range(size)], eval_sentences)
        config, _ = run(argv)

    Event = metadata_store_pb2.Event
    with metadata.Metadata(connection(config)) as handle:
        store = handle.store
        runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
        assert len(runs) == 3
        executions = [node_executions(store, r, config.pipeline_name) for r in runs]
        # No node failed, not even the cache resolver of the first run (no cache yet).
        for run_executions in executions:
            failed = [
                node_id
                for node_id, execution in run_executions.items()
                if execution.last_known_state == metadata_store_pb2.Execution.FAILED
            ]
            assert not failed, failed
        for run_executions in executions:
            for node_id in ("ConllExampleGen", "Transform", "Trainer"):
                state = run_executions[node_id].last_known_state
                assert state == metadata_store_pb2.Execution.COMPLETE, (node_id, state)
        inputs = [
            {n: execution_artifacts(store, e, Event.INPUT) for n, e in x.items()}
            for x in executions
        ]  # noqa: E501
        outputs = [
            {n: execution_artifacts(store, e, Event.OUTPUT) for n, e in x.items()}
            for x in executions
        ]  # noqa: E501

        # Each run's ExampleGen ingested that run's span, and only it.
        assert [[span_of(a) for a in o["ConllExampleGen"]["examples"]] for o in outputs] == [
            [1], [2], [3]
        ]  # fmt: skip
        # Transform's inputs: the spans ingested so far, at most the last two.
        assert [sorted(span_of(a) for a in i["Transform"]["examples"]) for i in inputs] == [
            [1], [1, 2], [2, 3]
        ]  # fmt: skip
        last_examples = inputs[2]["Transform"]["examples"]
        ingested = [a.id for o in outputs[1:] for a in o["ConllExampleGen"]["examples"]]
        assert sorted(a.id for a in last_examples) == sorted(ingested)
        # The Trainer of the last run read what that run's Transform wrote, nothing else.
        last_transform, last_trainer = outputs[2]["Transform"], inputs[2]["Trainer"]
        assert [a.id for a in last_trainer["examples"]] == [
            a.id for a in last_transform["transformed_examples"]
        ]
        assert [a.id for a in last_trainer["transform_graph"]] == [
            a.id for a in last_transform["transform_graph"]
        ]

        # Run 1 produced an analyzer cache, run 2's Transform read it (and run 3's read run 2's).
        caches = [o["Transform"]["updated_analyzer_cache"] for o in outputs]
        assert all(len(cache) == 1 for cache in caches)
        assert "analyzer_cache" not in inputs[0]["Transform"]
        assert [a.id for a in inputs[1]["Transform"]["analyzer_cache"]] == [caches[0][0].id]
        assert [a.id for a in inputs[2]["Transform"]["analyzer_cache"]] == [caches[1][0].id]
        cache_files = [
            os.path.join(root, name) for root, _, names in os.walk(caches[0][0].uri) for name in names
        ]  # fmt: skip
        assert cache_files, f"empty analyzer cache {caches[0][0].uri}"

    # The files on disk agree with the span properties: the last Transform read spans 2 and 3.
    read = set()
    for artifact in last_examples:
        read |= source_files(artifact.uri, "train")
    assert {os.path.basename(os.path.dirname(path)) for path in read} == {"span-2", "span-3"}
    transformed = sum(count_records(a.uri, "train") for a in last_transform["transformed_examples"])
    assert transformed == train_sizes[2] + train_sizes[3]
