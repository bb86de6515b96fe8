"""Which SavedModel to serve: the newest numeric version of a serving folder, or a named one."""

from __future__ import annotations

import os

import tensorflow as tf


def resolve_model_dir(serving_dir: str, version: str | None = None) -> str:
    """The SavedModel directory to load.

    Args:
        serving_dir: a Pusher destination (`<serving_dir>/<numeric version>/saved_model.pb`, as TF
            Serving reads it) or a SavedModel directory itself.
        version: a version to use instead of the newest one.
    Returns:
        The directory holding `saved_model.pb`.
    Raises:
        ValueError: if the folder is missing, holds no numeric version, or `version` is not there.
    """
    if not tf.io.gfile.isdir(serving_dir):
        raise ValueError(
            "Invalid value for `serving_dir`. Expected an existing folder of numbered model "
            f"versions or a SavedModel. Received: serving_dir={serving_dir!r}"
        )
    if version is None and tf.io.gfile.exists(os.path.join(serving_dir, "saved_model.pb")):
        return serving_dir
    versions = sorted(
        (int(name.rstrip("/")) for name in tf.io.gfile.listdir(serving_dir)
         if name.rstrip("/").isdigit()
         and tf.io.gfile.exists(os.path.join(serving_dir, name.rstrip("/"), "saved_model.pb"))),
    )  # fmt: skip
    if version is not None:
        if not str(version).isdigit() or int(version) not in versions:
            raise ValueError(
                f"Invalid value for `version`. Expected one of the versions in {serving_dir}: "
                f"{versions}. Received: version={version!r}"
            )
        return os.path.join(serving_dir, str(int(version)))
    if not versions:
        raise ValueError(
            "Invalid value for `serving_dir`. Expected a folder holding numbered SavedModel "
            f"versions (e.g. {serving_dir}/1795478441/saved_model.pb) or a SavedModel. "
            f"Received: serving_dir={serving_dir!r} with no version"
        )
    return os.path.join(serving_dir, str(versions[-1]))
