"""Every command answers `--help` without loading TensorFlow, Keras or TFX (20-50 s on 2 cores).

Checked by what a fresh process has imported, not by a timed test; `benchmarks/start_up_time.py`
measures the seconds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = [
    "pipeline.local_runner",
    "pipeline.scheduler",
    "kubeflow.compile",
    "serving.cli",
    "serving.evaluate",
]
HEAVY = ("tensorflow", "keras", "tfx", "tensorflow_transform", "apache_beam")


@pytest.mark.parametrize("module", COMMANDS)
def test_help_loads_no_heavy_package(module):
    script = (
        "import runpy, sys\n"
        f"sys.argv = [{module!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage:" in completed.stdout
    assert completed.stdout.strip().splitlines()[-1] == "[]", completed.stdout[-500:]


def test_the_crf_package_loads_keras_on_first_use():
    script = (
        "import sys\n"
        "import linear_crf, linear_crf.tag_scheme\n"
        "light = 'keras' not in sys.modules\n"
        "from linear_crf import CRF\n"
        "print(light, 'keras' in sys.modules, CRF.__module__)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-3:] == ["True", "True", "linear_crf.crf"]


def test_the_crf_package_serves_every_name_of_its_crf_module():
    import linear_crf
    from linear_crf import crf

    assert set(linear_crf.__all__) == {*crf.__all__, "allowed_transitions"}
    assert all(getattr(linear_crf, name) is getattr(crf, name) for name in crf.__all__)
