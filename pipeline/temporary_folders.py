"""Temporary folders of a process: removed when it ends and, when it is killed, by the next one.

A folder is named `<prefix><process id>-<random>`. A process killed with SIGKILL cannot remove
its own, so each new one first removes the folders, of the same prefix, whose process is gone.
Used by a local run (`pipeline.local_runner.temporary_files_of_the_run`) and by the tests
(`tests/conftest.py`). The standard library only: every test environment imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def folder_of_this_process(prefix: str, parent: str | None = None) -> str:
    """A new folder in `parent` (the system's temporary folder if None) named after this
    process, once the folders that dead processes left there under `prefix` are removed."""
    parent = tempfile.gettempdir() if parent is None else parent
    remove_folders_of_dead_processes(parent, prefix)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)


def remove_folders_of_dead_processes(parent: str, prefix: str) -> None:
    """Removes the `prefix` folders in `parent` whose process is gone."""
    for name in os.listdir(parent):
        pid = name[len(prefix) :].split("-", 1)[0]
        if not name.startswith(prefix) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # Gone: killed before it could remove its folder.
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        except PermissionError:  # Alive, another user's.
            pass
