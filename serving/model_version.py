"""Which SavedModel to serve: the newest loadable numeric version of a serving folder, or a named one.

A serving folder holds one sub-folder per version (`<serving_dir>/<number>/saved_model.pb`), as
TF Serving reads it. A version counts once its `saved_model.pb` exists (the Pusher writes it last,
and publishes the folder with one rename; hidden `.<number>.incomplete` folders are never read).
Like TF Serving, which keeps serving the previous version when a new one fails to load,
`load_newest` falls back to the next newest version when the newest cannot be loaded (a truncated
`saved_model.pb`, a missing variables file), with a warning naming the broken one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf

__all__ = [
    "SAVED_MODEL_FILE",
    "load_newest",
    "newest_whole_version",
    "resolve_model_dir",
    "version_dir",
    "whole_versions",
]

logger = logging.getLogger("serving.model_version")

Loaded = TypeVar("Loaded")

SAVED_MODEL_FILE = "saved_model.pb"


def whole_versions(serving_dir: str) -> list[int]:
    """The numeric versions under `serving_dir` that hold a `saved_model.pb`, oldest first.

    The one reader of a serving folder's versions: `ner-tag`, the Pusher, the Kubeflow baseline
    (`components.latest_served_model`) and the run report all go through it. Versions compare as
    numbers; hidden `.<version>.incomplete` folders, numeric folders without `saved_model.pb`
    (being written, e.g. on GCS where there is no rename) and files are not versions. A missing
    `serving_dir` has none.
    """
    return sorted(_version_names(serving_dir))


def _version_names(serving_dir: str) -> dict[int, str]:
    """{version number: its folder's name} of the whole versions. A name may be zero-padded
    (`007` is version 7, as TF Serving reads it); where two names give one number, the unpadded
    one wins, else the first in sorted order."""
    if not tf.io.gfile.isdir(serving_dir):
        return {}
    names = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(serving_dir))
    found: dict[int, str] = {}
    for name in names:
        if not (name.isascii() and name.isdigit()):
            continue
        if not tf.io.gfile.exists(os.path.join(serving_dir, name, SAVED_MODEL_FILE)):
            continue
        number = int(name)
        if number not in found or name == str(number):
            found[number] = name
    return found


def version_dir(serving_dir: str, version: int) -> str:
    """The folder of whole version `version` under `serving_dir` (its name as written, e.g.
    `007`); `<serving_dir>/<version>` when there is no such version."""
    name = _version_names(serving_dir).get(int(version), str(int(version)))
    return os.path.join(serving_dir, name)


def newest_whole_version(serving_dir: str) -> int | None:
    """The newest of `whole_versions(serving_dir)`, or None when there is none."""
    versions = whole_versions(serving_dir)
    return versions[-1] if versions else None


def resolve_model_dir(serving_dir: str, version: str | None = None) -> str:
    """The SavedModel directory to load (the newest whole version; not loaded here).

    Args:
        serving_dir: a Pusher destination (`<serving_dir>/<numeric version>/saved_model.pb`, as TF
            Serving reads it) or a SavedModel directory itself.
        version: a version to use instead of the newest one.
    Returns:
        The directory holding `saved_model.pb`.
    Raises:
        ValueError: if the folder is missing, holds no numeric version, or `version` is not there.
    """
    return _candidates(serving_dir, version)[0]


def _candidates(serving_dir: str, version: str | None) -> list[str]:
    """The directories to try, newest first: one when `version` is given or `serving_dir` is a
    SavedModel itself."""
    if not tf.io.gfile.isdir(serving_dir):
        raise ValueError(
            "Invalid value for `serving_dir`. Expected an existing folder of numbered model "
            f"versions or a SavedModel. Received: serving_dir={serving_dir!r}"
        )
    if version is None and tf.io.gfile.exists(os.path.join(serving_dir, SAVED_MODEL_FILE)):
        return [serving_dir]
    names = _version_names(serving_dir)
    versions = sorted(names)
    if version is not None:
        if not str(version).isdigit() or int(version) not in names:
            raise ValueError(
                f"Invalid value for `version`. Expected one of the versions in {serving_dir}: "
                f"{versions}. Received: version={version!r}"
            )
        return [os.path.join(serving_dir, names[int(version)])]
    if not versions:
        raise ValueError(
            "Invalid value for `serving_dir`. Expected a folder holding numbered SavedModel "
            f"versions (e.g. {serving_dir}/1795478441/saved_model.pb) or a SavedModel. "
            f"Received: serving_dir={serving_dir!r} with no version"
        )
    return [os.path.join(serving_dir, names[number]) for number in reversed(versions)]


def load_newest(
    serving_dir: str, load: Callable[[str], Loaded], version: str | None = None
) -> tuple[str, Loaded]:
    """Loads the newest version that loads, falling back past broken ones with a warning.

    Args:
        serving_dir: as in `resolve_model_dir`.
        load: `load(model_dir)` returns the loaded model, or raises if it cannot be loaded.
        version: load this version only (no fallback: the user asked for it).
    Returns:
        (the directory loaded, what `load` returned).
    Raises:
        ValueError: as `resolve_model_dir`; or when no version loads, naming each and its error.
    """
    candidates = _candidates(serving_dir, version)
    explicit = version is not None or candidates == [serving_dir]
    errors = []
    for model_dir in candidates:
        try:
            loaded = load(model_dir)
        except Exception as error:  # noqa: BLE001 (any load failure: try the previous version)
            message = f"{type(error).__name__}: {(str(error).strip() or '?').splitlines()[0][:300]}"
            errors.append(f"{model_dir} ({message})")
            if explicit:
                break
            logger.warning(
                "Model version %s cannot be loaded (%s); trying the next newest version.",
                model_dir,
                message,
            )
            continue
        if errors:
            logger.warning("Serving %s instead of the newer version(s) that failed.", model_dir)
        return model_dir, loaded
    if explicit:
        raise ValueError(
            "Invalid value for `serving_dir`/`version`. Expected a loadable SavedModel. "
            f"Received: {errors[0]}"
        )
    raise ValueError(
        f"Invalid value for `serving_dir`. Expected at least one loadable model version in "
        f"{serving_dir}. Received: versions that all failed to load: {'; '.join(errors)}"
    )
