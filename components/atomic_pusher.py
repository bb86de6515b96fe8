"""AtomicPusher: TFX's Pusher, but a model version appears in the serving folder only complete.

TFX 1.16's Pusher (`tfx/components/pusher/executor.py`) copies the model straight into
`<base_directory>/<version>/`, file by file, `saved_model.pb` last. A model server (or anyone
listing the versions) that looks in the middle of the copy sees a half-written numeric version
folder. Here the copy goes to a hidden temporary folder beside it (`.<version>.incomplete`, not a
number, so TF Serving ignores it), which is then renamed to `<version>`: on a local or POSIX
filesystem the rename is atomic. (On object stores such as GCS a rename is a copy: there, rely on
`saved_model.pb` being written last, as TFX does.)

A model identical (file by file) to the latest pushed version is not pushed again: a rerun whose
Trainer result came from the cache, blessed again against itself as baseline, reports that
version instead of adding a copy under a new number.

Everything else (blessing check, UNIX-timestamp versions, MLMD properties, the archive copy in
the pushed_model artifact) is the standard executor's.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from serving.model_version import SAVED_MODEL_FILE, newest_whole_version, version_dir

__all__ = [
    "AtomicPusher",
    "AtomicPusherExecutor",
    "copy_model_atomically",
    "directory_fingerprint",
]


def _walk_files(directory: str):
    for root, _, files in fileio.walk(directory):
        for name in files:
            yield os.path.join(root, name)


def directory_fingerprint(directory: str) -> str:
    """SHA-256 over the relative paths and contents of every file under `directory`."""
    digest = hashlib.sha256()
    for path in sorted(_walk_files(directory)):
        digest.update(os.path.relpath(path, directory).encode("utf-8") + b"\0")
        with fileio.open(path, "rb") as file:
            digest.update(hashlib.sha256(file.read()).digest())
    return digest.hexdigest()


def copy_model_atomically(model_path: str, base_directory: str, version: str) -> str | None:
    """Copies a SavedModel folder to `<base_directory>/<version>` through a temporary folder.

    Args:
        model_path: the SavedModel folder to copy.
        base_directory: the serving folder holding one sub-folder per version.
        version: the new version (a number, as TF Serving expects).
    Returns:
        The new version folder, or None if it already existed (nothing is copied then).
    """
    serving_path = os.path.join(base_directory, version)
    if fileio.exists(serving_path):
        logging.info("Pusher: %s already exists, skipping the push.", serving_path)
        return None
    temporary_path = os.path.join(base_directory, f".{version}.incomplete")
    if fileio.exists(temporary_path):
        fileio.rmtree(temporary_path)  # left over by an interrupted push
    fileio.makedirs(base_directory)
    io_utils.copy_dir(model_path, temporary_path, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(
        os.path.join(model_path, SAVED_MODEL_FILE), os.path.join(temporary_path, SAVED_MODEL_FILE)
    )
    fileio.rename(temporary_path, serving_path)
    return serving_path


class AtomicPusherExecutor(pusher_executor.Executor):
    """Pusher executor that publishes a version folder with one rename (see the module doc)."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            logging.info("Pusher: the model is not blessed; nothing pushed.")
            return
        model_path = self.GetModelPath(input_dict)
        push_destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], push_destination
        )
        if push_destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(
                "Invalid value for `push_destination`. Expected a filesystem destination. "
                f"Received: push_destination={push_destination}"
            )
        base_directory = push_destination.filesystem.base_directory
        # Compared with the newest *whole* version: a half-written one is no reason to skip.
        newest = newest_whole_version(base_directory)
        previous = None if newest is None else version_dir(base_directory, newest)
        if previous is not None and directory_fingerprint(previous) == directory_fingerprint(
            model_path
        ):
            version = str(newest)
            serving_path = previous
            logging.info("Pusher: this model is already version %s; not copied again.", version)
        else:
            version = str(int(time.time()))
            serving_path = os.path.join(base_directory, version)
            copy_model_atomically(model_path, base_directory, version)
            logging.info("Pusher: model pushed to %s", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


class AtomicPusher(pusher_component.Pusher):
    """TFX Pusher whose filesystem push is atomic (see the module doc); same arguments."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)
