"""Retention: the last N serving versions and the artifacts of the last K runs; the rest is pruned.

Every retrain adds a serving version (one SavedModel) and a run's worth of pipeline artifacts
(examples, statistics, transformed data, the Trainer's model and logs, the Pusher's copy). Without
pruning, a daily retrain on a corpus the size of WNUT-17 with GloVe adds about 400 MB a day until
the disk is full and every run fails. `apply_retention` runs at the end of each successful local
run (`pipeline.local_runner`, and so after each run of `pipeline.scheduler`), while the run still
holds the pipeline's `RunLock`; `python -m pipeline.retention` applies it by hand, taking the lock.

**Serving versions** (`keep_versions`, 0 keeps all): the newest N whole versions stay
(`serving.model_version.whole_versions`): the newest of them is the newest blessed model, as the
Pusher only pushes blessed ones. A version being written is never touched: the Pusher writes a
hidden `.<version>.incomplete` folder (on object stores, a numeric folder without
`saved_model.pb` yet), and neither is a whole version. An older version is first renamed to a
hidden `.<version>.pruning` folder, one atomic step after which no server or `ner-tag` sees it,
then deleted; a prune killed in between leaves only that hidden folder, which the next prune
removes. Each removed version's `<version>.report.html` goes with it; of the reports of rejected
models (`not-pushed-<id>.report.html`), the newest N stay.

**Pipeline artifacts** (`keep_runs`, 0 keeps all): the artifacts that the newest K pipeline runs
read or wrote (their executions' input and output events: a component reused from the cache links
the earlier run's artifacts to the new run) stay, and so does what the next run may reach back for:
the newest blessed model and its blessing (the Evaluator's baseline, the warm start), the newest
`ConllExampleGen` examples of each of the last `span_window` spans (the rolling window) and the
newest Transform analyzer cache. Every other artifact of the pipeline whose folder lies under the
pipeline root is pruned, in this order:

1. all of them are marked `MARKED_FOR_DELETION` in ML Metadata, in one write. From then on TFX
   never hands them out: its cache only reuses executions whose outputs are all LIVE
   (`tfx/orchestration/portable/cache_utils.py`), its input resolution reads LIVE artifacts only
   (`node_inputs_resolver.py`): a component whose cached result was pruned simply runs again;
2. each one's folder is deleted, then the artifact is marked `DELETED`, with the custom property
   `pruned_at`.
A prune killed at any point has deleted only marked artifacts, and the next prune finishes them.
The executions and their lineage stay in ML Metadata (a few KB per run), so the history of what
was trained on what remains readable; so do the executor's empty `.system` folders.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import PipelineConfig
from pipeline.run_lock import EXIT_LOCKED, RunLock
from serving.model_version import version_dir, whole_versions

__all__ = [
    "apply_retention",
    "main",
    "protected_artifact_ids",
    "prune_pipeline_artifacts",
    "prune_serving_versions",
    "PrunedArtifact",
    "RetentionResult",
]

logger = logging.getLogger("pipeline.retention")

Artifact = metadata_store_pb2.Artifact
_PRUNING_SUFFIX = ".pruning"
_NOT_PUSHED_PREFIX = "not-pushed-"
_REPORT_SUFFIX = ".report.html"
_EXAMPLE_GEN_NODE = "ConllExampleGen"

_KILL_AFTER_VARIABLE = "NER_TEST_KILL_PRUNING_AFTER"
"""For the kill test only (tests/pipeline/test_retention_e2e.py): the pruning process kills itself
with SIGKILL after this many deletions, to stop it at a chosen point. Unset in normal use."""


@dataclasses.dataclass(frozen=True)
class PrunedArtifact:
    """One artifact whose files were deleted: its MLMD id, type and folder."""

    artifact_id: int
    type_name: str
    uri: str


@dataclasses.dataclass(frozen=True)
class RetentionResult:
    """What one application of the policy removed, and the bytes it freed."""

    removed_versions: tuple[str, ...] = ()
    removed_reports: tuple[str, ...] = ()
    pruned_artifacts: tuple[PrunedArtifact, ...] = ()
    freed_bytes: int = 0

    def describe(self) -> str:
        """One line for the run's log."""
        return (
            f"Retention: {len(self.removed_versions)} old serving version(s) removed, "
            f"{len(self.pruned_artifacts)} artifact(s) of old runs pruned, "
            f"{self.freed_bytes / 1e6:.1f} MB freed."
        )


class _Deletions:
    """Counts deletions; kills this process after `$NER_TEST_KILL_PRUNING_AFTER` of them."""

    def __init__(self):
        value = os.environ.get(_KILL_AFTER_VARIABLE, "")
        self.kill_after = int(value) if value.isdigit() else None
        self.count = 0

    def done(self) -> None:
        self.count += 1
        if self.kill_after is not None and self.count >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def _size(path: str) -> int:
    """Bytes of the files under `path` (a file's own size; 0 if it does not exist)."""
    if not tf.io.gfile.exists(path):
        return 0
    if not tf.io.gfile.isdir(path):
        return tf.io.gfile.stat(path).length
    return sum(
        tf.io.gfile.stat(os.path.join(root, name)).length
        for root, _, names in tf.io.gfile.walk(path)
        for name in names
    )


def _delete(path: str) -> None:
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def prune_serving_versions(
    serving_dir: str, keep: int, deletions: _Deletions | None = None
) -> RetentionResult:
    """Removes all but the newest `keep` whole versions of `serving_dir` (see the module doc).

    Args:
        serving_dir: the Pusher's destination (nothing happens if it does not exist).
        keep: how many of the newest whole versions to keep; 0 keeps all.
    Returns:
        The version folders and reports removed, and the bytes freed.
    """
    if keep < 0:
        raise ValueError(f"Invalid value for `keep`. Expected 0 or more. Received: keep={keep!r}")
    if not tf.io.gfile.isdir(serving_dir):
        return RetentionResult()
    deletions = deletions or _Deletions()
    freed = 0
    # Left by a prune killed between its rename and its delete: already invisible, finish it.
    for name in tf.io.gfile.listdir(serving_dir):
        name = name.rstrip("/")
        if name.startswith(".") and name.endswith(_PRUNING_SUFFIX):
            path = os.path.join(serving_dir, name)
            freed += _size(path)
            _delete(path)
    versions = whole_versions(serving_dir)
    old = versions[:-keep] if keep and len(versions) > keep else []
    removed, reports = [], []
    for version in old:
        path = version_dir(serving_dir, version)
        name = os.path.basename(path)
        hidden = os.path.join(serving_dir, f".{name}{_PRUNING_SUFFIX}")
        size = _size(path)
        tf.io.gfile.rename(path, hidden, overwrite=True)  # gone for readers in one step
        deletions.done()
        _delete(hidden)
        freed += size
        removed.append(path)
        report = os.path.join(serving_dir, f"{name}{_REPORT_SUFFIX}")
        if tf.io.gfile.exists(report):
            freed += _size(report)
            _delete(report)
            reports.append(report)
    if keep:
        rejected = [
            os.path.join(serving_dir, name)
            for name in tf.io.gfile.listdir(serving_dir)
            if name.startswith(_NOT_PUSHED_PREFIX) and name.endswith(_REPORT_SUFFIX)
        ]
        rejected.sort(key=lambda path: tf.io.gfile.stat(path).mtime_nsec)
        for report in rejected[:-keep]:
            freed += _size(report)
            _delete(report)
            reports.append(report)
    return RetentionResult(
        removed_versions=tuple(removed), removed_reports=tuple(reports), freed_bytes=freed
    )


def _store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
    return metadata_store.MetadataStore(config)


def _runs_newest_first(store, pipeline_context) -> list[tuple[metadata_store_pb2.Context, list]]:
    """[(run context, its executions)] of the pipeline, newest run first."""
    run_type = store.get_context_type("pipeline_run")
    runs: dict[int, tuple[metadata_store_pb2.Context, list]] = {}
    for execution in store.get_executions_by_context(pipeline_context.id):
        for context in store.get_contexts_by_execution(execution.id):
            if context.type_id == run_type.id:
                runs.setdefault(context.id, (context, []))[1].append(execution)
    return sorted(
        runs.values(), key=lambda run: (run[0].create_time_since_epoch, run[0].id), reverse=True
    )


def _newest(
    artifacts: Iterable[metadata_store_pb2.Artifact],
) -> metadata_store_pb2.Artifact | None:
    return max(artifacts, key=lambda a: (a.create_time_since_epoch, a.id), default=None)


def protected_artifact_ids(
    store: metadata_store.MetadataStore,
    pipeline_name: str,
    keep_runs: int,
    span_window: int = 1,
) -> set[int]:
    """The artifacts of `pipeline_name` that a prune must not touch (see the module doc).

    Args:
        store: the pipeline's ML Metadata store.
        keep_runs: the newest runs whose inputs and outputs all stay; 0 protects every artifact.
        span_window: the pipeline's `span_window`: how many spans back the next run reads.
    """
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return set()
    artifacts = store.get_artifacts_by_context(pipeline_context.id)
    if keep_runs == 0:
        return {artifact.id for artifact in artifacts}
    protected: set[int] = set()
    kept_executions = [
        execution.id
        for _, executions in _runs_newest_first(store, pipeline_context)[:keep_runs]
        for execution in executions
    ]
    if kept_executions:
        protected |= {
            event.artifact_id for event in store.get_events_by_execution_ids(kept_executions)
        }
    types = {t.id: t.name for t in store.get_artifact_types()}
    live = [a for a in artifacts if a.state == Artifact.LIVE]

    def of_type(name: str) -> list[metadata_store_pb2.Artifact]:
        return [a for a in live if types.get(a.type_id) == name]

    # The baseline and the warm start: the newest blessed model and its blessing.
    blessings = [
        a for a in of_type("ModelBlessing") if a.custom_properties["blessed"].int_value == 1
    ]
    blessing = _newest(blessings)
    if blessing is not None:
        protected.add(blessing.id)
        protected.add(blessing.custom_properties["current_model_id"].int_value)
    # The rolling window: the newest ingestion of each of the last `span_window` spans.
    example_gen = store.get_context_by_type_and_name("node", f"{pipeline_name}.{_EXAMPLE_GEN_NODE}")
    if example_gen is not None:
        ingested = {
            a.id: a
            for a in store.get_artifacts_by_context(example_gen.id)
            if a.state == Artifact.LIVE and types.get(a.type_id) == "Examples"
        }
        by_span: dict[int, list[metadata_store_pb2.Artifact]] = {}
        for artifact in ingested.values():
            by_span.setdefault(artifact.custom_properties["span"].int_value, []).append(artifact)
        for span in sorted(by_span, reverse=True)[:span_window]:
            newest = _newest(by_span[span])
            if newest is not None:
                protected.add(newest.id)
    # Transform's next run starts from the newest analyzer cache.
    cache = _newest(of_type("TransformCache"))
    if cache is not None:
        protected.add(cache.id)
    return protected


def _under(uri: str, root: str) -> bool:
    root = root.rstrip("/") + "/"
    return bool(uri) and uri.startswith(root)


def prune_pipeline_artifacts(
    metadata_path: str,
    pipeline_name: str,
    pipeline_root: str,
    keep_runs: int,
    span_window: int = 1,
    deletions: _Deletions | None = None,
) -> RetentionResult:
    """Deletes the artifacts of runs older than the newest `keep_runs` (see the module doc).

    Args:
        metadata_path: the SQLite ML Metadata store (nothing happens if it does not exist).
        pipeline_name: the pipeline whose artifacts to prune.
        pipeline_root: only artifacts whose folder lies under it are deleted.
        keep_runs: how many of the newest runs keep their artifacts; 0 keeps all.
        span_window: the pipeline's `span_window`.
    Returns:
        The artifacts pruned and the bytes freed.
    """
    if keep_runs < 0:
        raise ValueError(
            f"Invalid value for `keep_runs`. Expected 0 or more. Received: keep_runs={keep_runs!r}"
        )
    if keep_runs == 0 or not os.path.exists(metadata_path):
        return RetentionResult()
    deletions = deletions or _Deletions()
    store = _store(metadata_path)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return RetentionResult()
    protected = protected_artifact_ids(store, pipeline_name, keep_runs, span_window)
    types = {t.id: t.name for t in store.get_artifact_types()}
    # LIVE: to prune now; MARKED_FOR_DELETION: left by a prune that was killed, to finish.
    doomed = [
        artifact
        for artifact in store.get_artifacts_by_context(pipeline_context.id)
        if artifact.state in (Artifact.LIVE, Artifact.MARKED_FOR_DELETION)
        and artifact.id not in protected
        and _under(artifact.uri, pipeline_root)
    ]
    if not doomed:
        return RetentionResult()
    for artifact in doomed:
        artifact.state = Artifact.MARKED_FOR_DELETION
    store.put_artifacts(doomed)  # one write: TFX stops handing all of them out at once
    pruned, freed = [], 0
    for artifact in sorted(doomed, key=lambda a: a.id):
        freed += _size(artifact.uri)
        _delete(artifact.uri)
        deletions.done()
        artifact.state = Artifact.DELETED
        artifact.custom_properties["pruned_at"].double_value = time.time()
        store.put_artifacts([artifact])
        pruned.append(PrunedArtifact(artifact.id, types.get(artifact.type_id, "?"), artifact.uri))
    return RetentionResult(pruned_artifacts=tuple(pruned), freed_bytes=freed)


def apply_retention(config) -> RetentionResult:
    """Applies `config.keep_versions` and `config.keep_runs` to a `PipelineConfig`'s serving folder
    and pipeline root. Call it only while holding the pipeline's `RunLock`."""
    deletions = _Deletions()
    versions = prune_serving_versions(config.serving_dir, config.keep_versions, deletions)
    artifacts = prune_pipeline_artifacts(
        config.metadata_path,
        config.pipeline_name,
        config.pipeline_root,
        config.keep_runs,
        config.span_window,
        deletions,
    )
    return RetentionResult(
        removed_versions=versions.removed_versions,
        removed_reports=versions.removed_reports,
        pruned_artifacts=artifacts.pruned_artifacts,
        freed_bytes=versions.freed_bytes + artifacts.freed_bytes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.retention [pipeline flags]`: applies the retention settings now.

    Takes the same flags (and NER_* variables, --config) as `pipeline.local_runner`, of which
    `--output-dir`, `--pipeline-name`, `--keep-versions`, `--keep-runs` and `--span-window`
    matter here; waits for a run in progress to end unless `--no-wait`.
    """

    argv = list(sys.argv[1:] if argv is None else argv)
    wait = "--no-wait" not in argv
    argv = [arg for arg in argv if arg != "--no-wait"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = PipelineConfig.from_args(argv)
    except ValueError as error:
        print(f"python -m pipeline.retention: error: {error}", file=sys.stderr)
        return 2
    lock = RunLock(config.run_lock_path)
    if not lock.acquire(wait=wait):
        print(f"A run of {config.pipeline_name!r} is in progress: not pruned.", file=sys.stderr)
        return EXIT_LOCKED
    with lock:
        result = apply_retention(config)
    for path in result.removed_versions:
        print(f"removed serving version {path}")
    for artifact in result.pruned_artifacts:
        print(f"pruned {artifact.type_name} {artifact.artifact_id}: {artifact.uri}")
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
