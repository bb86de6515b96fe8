"""Retention with real runs: old versions and artifacts go, what the next run needs stays, and a
prune killed half-way loses nothing that is still needed.

    run 1 (span 1), run 2 (span 2): real pipeline runs, every artifact kept (--keep-runs 0);
        both models blessed and pushed (floor 0, no baseline): versions v1, v2.
    `python -m pipeline.retention --keep-runs 1 --keep-versions 1` in a child process that kills
        itself (SIGKILL) after its second deletion: v1 removed, the first of run 1's artifacts
        deleted, the others only marked. Then: run 2's artifacts all LIVE and on disk, v2 whole,
        and TFX's own cache lookup no longer hands out run 1's results.
    run 3 (span 3): through `python -m pipeline.local_runner` in a child process, as the scheduler
        runs it, with a floor of 100 (rejected: nothing pushed) and --keep-runs 1 --keep-versions 1:
        the killed prune is finished (no artifact left marked, no folder of run 1 left), run 2's
        artifacts are pruned except its blessed model and blessing (the next run's baseline and
        warm start), the disk use is back to about one run's, and v2 still tags.

Serving-folder details (reports, hidden folders of a killed prune, versions being written) are
checked without a pipeline in test_retention.py.
"""

import os
import random
import signal
import subprocess
import sys

import pytest
from ml_metadata.proto import metadata_store_pb2
from test_retraining_e2e import pipeline_argv, sentence, write_span
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.orchestration.portable import cache_utils

from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.learned_tags import prepared_config
from pipeline.pipeline import create_pipeline
from pipeline.run_summary import summarize
from serving.model_version import whole_versions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Artifact = metadata_store_pb2.Artifact


def folder_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def artifacts_by_run(store, pipeline_name):
    """[{artifact id: artifact}] read or written by each run, oldest run first."""
    result = []
    for run in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id):
        executions = [e.id for e in store.get_executions_by_context(run.id)]
        ids = {event.artifact_id for event in store.get_events_by_execution_ids(executions)}
        result.append({a.id: a for a in store.get_artifacts_by_id(sorted(ids))})
    return result


def test_retention_keeps_what_is_needed_through_a_kill(tmp_path):
    rng = random.Random(5)
    data_dir, output_dir = tmp_path / "data", tmp_path / "outputs"
    data_dir.mkdir()
    eval_sentences = [sentence(rng) for _ in range(10)]
    base = pipeline_argv(data_dir, output_dir, "--epochs", "1", "--no-baseline")
    environment = {**os.environ, "PYTHONPATH": REPOSITORY_ROOT}

    sizes = []
    for span in (1, 2):
        write_span(data_dir, span, [sentence(rng) for _ in range(25)], eval_sentences)
        argv = [*base, "--min-entity-f1", "0", "--keep-runs", "0", "--keep-versions", "0"]
        # As `python -m pipeline.local_runner argv` runs it (run 3 goes through it).
        config, _ = prepared_config(PipelineConfig.from_args(argv, environ={}))
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
        assert summarize(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
        ).pushed
        sizes.append(folder_size(output_dir))
    v1, v2 = whole_versions(config.serving_dir)
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    with metadata.Metadata(connection) as handle:
        run_1, run_2 = artifacts_by_run(handle.store, config.pipeline_name)
        only_run_1 = set(run_1) - set(run_2)
        cache_contexts = handle.store.get_contexts_by_type("execution_cache")
        cached_before = [
            c.id for c in cache_contexts if cache_utils.get_cached_outputs(handle, c) is not None
        ]

    # A prune killed after its second deletion (the first: version v1; the second: an artifact).
    keep_one = [*base, "--keep-runs", "1", "--keep-versions", "1"]
    killed = subprocess.run(
        [sys.executable, "-m", "pipeline.retention", *keep_one],
        cwd=tmp_path, env={**environment, "NER_TEST_KILL_PRUNING_AFTER": "2"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert whole_versions(config.serving_dir) == [v2]
    with metadata.Metadata(connection) as handle:
        store = handle.store
        states = {a.id: a.state for a in store.get_artifacts_by_id(sorted(run_1.keys() | run_2))}
        assert {states[i] for i in run_2} == {Artifact.LIVE}
        assert all(os.path.exists(run_2[i].uri) for i in run_2)
        # Every artifact of run 1 alone is marked, one of them already deleted: none is LIVE.
        assert {states[i] for i in only_run_1} == {Artifact.MARKED_FOR_DELETION}
        assert sum(not os.path.exists(run_1[i].uri) for i in only_run_1) == 1
        # TFX's own cache lookup hands out run 2's results only, no longer some of run 1's.
        cached_after = set()
        for context in store.get_contexts_by_type("execution_cache"):
            outputs = cache_utils.get_cached_outputs(handle, context)
            if outputs is not None:
                assert {a.id for found in outputs.values() for a in found} <= set(run_2)
                cached_after.add(context.id)
        assert cached_after < set(cached_before)

    # Run 3, rejected, through the local runner as the scheduler starts it: finishes the prune.
    write_span(data_dir, 3, [sentence(rng) for _ in range(25)], eval_sentences)
    third = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", *keep_one, "--min-entity-f1", "100"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert third.returncode == 0, third.stderr[-3000:]
    assert "Model NOT pushed" in third.stdout and "Retention:" in third.stdout, third.stdout
    assert whole_versions(config.serving_dir) == [v2]
    with metadata.Metadata(connection) as handle:
        store = handle.store
        types = {t.id: t.name for t in store.get_artifact_types()}
        everything = {a.id: a for a in store.get_artifacts()}
        assert not [a for a in everything.values() if a.state == Artifact.MARKED_FOR_DELETION]
        for i in only_run_1:
            assert everything[i].state == Artifact.DELETED
            assert not os.path.exists(everything[i].uri)
        blessing = next(
            a for a in run_2.values() if types[a.type_id] == "ModelBlessing"
        )  # run 2's model was blessed; run 3's was not: run 2's stays the baseline
        model_id = blessing.custom_properties["current_model_id"].int_value
        for kept in (blessing.id, model_id):
            assert everything[kept].state == Artifact.LIVE
            assert os.path.isdir(everything[kept].uri)
        pruned_of_run_2 = [
            i for i in run_2 if i not in (blessing.id, model_id) and i not in artifacts_by_run(
                store, config.pipeline_name
            )[2]
        ]  # fmt: skip
        assert pruned_of_run_2
        assert {everything[i].state for i in pruned_of_run_2} == {Artifact.DELETED}

    sizes.append(folder_size(output_dir))
    print(f"output folder after runs 1, 2, 3: {[round(s / 1e6, 1) for s in sizes]} MB")
    # Without pruning, three runs hold about three runs' worth; with it, one run plus a model.
    assert sizes[2] < sizes[1]

    # The version still served tags, loaded from the folder as ner-tag loads it.
    tagged = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--serving-dir", config.serving_dir,
         "Alice lives in Paris now ."],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tagged.returncode == 0, tagged.stderr[-2000:]
    assert tagged.stdout.strip(), tagged.stderr[-2000:]
