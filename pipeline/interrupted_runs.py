"""After a run that was killed: mark its unfinished executions and remove their orphan folders.

TFX 1.16's LocalDagRunner registers an execution as RUNNING before its executor starts and
publishes it (COMPLETE, with its output artifacts) only when it ends. A run killed in between
(SIGKILL, power loss) leaves the execution RUNNING forever, with no output artifact in ML Metadata,
and its output folders (`<pipeline_root>/<node>/<output key>/<execution id>/`, and
`<node>/.system/executor_execution/<execution id>/`) on disk, referenced by nothing. The next run
never reuses them (each run has its own run context, and the cache considers COMPLETE and CACHED
executions only, tfx/orchestration/portable/cache_utils.py), so nothing is lost by cleaning up;
left alone, each kill leaves another partial Trainer or Transform output behind.

`abandon_interrupted_executions` runs at the start of a run, once it holds the pipeline's
`RunLock`: no other run can be in progress then, so every execution still RUNNING (or NEW) is one
that died. Each is marked CANCELED (TFX's state for an execution that will not finish), with the
custom property `abandoned_at`; any output artifact it had registered is marked ABANDONED; its
folders are deleted.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

__all__ = ["AbandonedExecution", "abandon_interrupted_executions"]

_UNFINISHED = "last_known_state IN (NEW, RUNNING)"


@dataclasses.dataclass(frozen=True)
class AbandonedExecution:
    """One execution of a dead run: its node, MLMD id and the folders removed."""

    node_id: str
    execution_id: int
    removed: tuple[str, ...]


def _node_id(store, execution, pipeline_name: str) -> str:
    prefix = pipeline_name + "."
    for context in store.get_contexts_by_execution(execution.id):
        if context.name.startswith(prefix):
            return context.name[len(prefix) :]
    return ""


def _output_folders(pipeline_root: str, node_id: str, execution_id: int) -> list[str]:
    node_dir = os.path.join(pipeline_root, node_id)
    folders = glob.glob(os.path.join(glob.escape(node_dir), "*", str(execution_id)))
    folders.append(os.path.join(node_dir, ".system", "executor_execution", str(execution_id)))
    return sorted(folder for folder in folders if os.path.isdir(folder))


def abandon_interrupted_executions(
    metadata_path: str, pipeline_name: str, pipeline_root: str
) -> list[AbandonedExecution]:
    """Marks the unfinished executions of `pipeline_name` CANCELED and deletes their folders.

    Call it only while holding the pipeline's `RunLock` (see the module docstring).

    Args:
        metadata_path: the SQLite ML Metadata store (nothing happens if it does not exist yet).
        pipeline_name: the pipeline whose executions to look at.
        pipeline_root: where its components write (local folders; URIs are left alone).
    Returns:
        What was abandoned, oldest first.
    """
    if not os.path.exists(metadata_path):
        return []
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
    store = metadata_store.MetadataStore(config)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    unfinished = store.get_executions_by_context(
        pipeline_context.id, list_options=metadata_store.ListOptions(filter_query=_UNFINISHED)
    )
    result = []
    for execution in sorted(unfinished, key=lambda execution: execution.id):
        node_id = _node_id(store, execution, pipeline_name)
        events = store.get_events_by_execution_ids([execution.id])
        output_types = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT)
        artifact_ids = [event.artifact_id for event in events if event.type in output_types]
        artifacts = store.get_artifacts_by_id(artifact_ids) if artifact_ids else []
        for artifact in artifacts:
            artifact.state = metadata_store_pb2.Artifact.ABANDONED
        if artifacts:
            store.put_artifacts(artifacts)
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        execution.custom_properties["abandoned_at"].double_value = time.time()
        store.put_executions([execution])
        removed = []
        if node_id and "://" not in pipeline_root:
            for folder in _output_folders(pipeline_root, node_id, execution.id):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        result.append(AbandonedExecution(node_id, execution.id, tuple(removed)))
    return result
