"""Imports every module of this repository's packages: the Kubeflow image's build-time check.

    python -m kubeflow.image_check          # exit 0, or 1 naming each module that fails to import

A component's executor imports modules by path at run time (Transform's `preprocessing_fn`, the
Trainer's `run_fn`, the Evaluator's metric, the custom executors), and those import more inside
their functions (the Trainer's export imports the serving signatures). Importing only the entry
modules, as the image once did, passed while `serving/` was missing from the image, and every run
then died in the Trainer's export after paying for training. Importing every module of every
package the image installs catches a missing folder, a missing dependency and a module that only
works from the checkout, when the image is built rather than when a run reaches that line.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

__all__ = ["PACKAGES", "import_all", "main"]

PACKAGES = ("linear_crf", "models", "components", "pipeline", "kubeflow", "serving")
"""The repository's packages, as setup.py installs them."""


def import_all(packages: Sequence[str] = PACKAGES) -> tuple[list[str], dict[str, str]]:
    """Imports each package and every module under it.

    Returns:
        (the modules imported, {module: the error's last traceback line} for those that failed).
    """
    imported, failed = [], {}
    for package_name in packages:
        try:
            package = importlib.import_module(package_name)
        except Exception:  # noqa: BLE001 (reported, not swallowed)
            failed[package_name] = traceback.format_exc().strip().splitlines()[-1]
            continue
        imported.append(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            if module.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(module.name)
            except Exception:  # noqa: BLE001
                failed[module.name] = traceback.format_exc().strip().splitlines()[-1]
            else:
                imported.append(module.name)
    return imported, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Imports every module; prints how many, or each failure. Exit 1 on any failure."""
    packages = tuple(argv) if argv else PACKAGES
    imported, failed = import_all(packages)
    for name, error in sorted(failed.items()):
        print(f"cannot import {name}: {error}", file=sys.stderr)
    if failed:
        return 1
    print(f"Imported {len(imported)} modules of {', '.join(packages)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
