"""The Kubeflow pipeline as deployed: the image's contents built as kubeflow/Dockerfile builds them,
and the compiled spec's tasks run from there, as KFP runs them, on the bundled sample.

No Docker and no cluster run here; what stands in for them:
- the base image `gcr.io/tfx-oss-public/tfx:1.16.0`: a fresh virtual environment with the stack
  of requirements/main.lock (the same TFX 1.16, TensorFlow, TFT, TFMA, Beam), outside the
  checkout and without its editable install;
- `docker build`: the Dockerfile itself, read instruction by instruction: `WORKDIR` and `ENV` as
  written (absolute paths under a folder that stands for the image's `/`), `COPY` from the
  checkout exactly what it lists (a folder not listed is absent, as in the image), `RUN` through
  bash in the working directory with the environment's `python` first on PATH;
- KFP's driver and launcher: `kfp_launcher_stand_in.run_pipeline_spec`, which runs each task's
  container command with the executor input KFP would give it.

A module the image lacks (the bug this test was written for: `serving/`, imported by the Trainer's
export) fails the build's import check, or the Trainer task.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml
from kfp_launcher_stand_in import run_pipeline_spec

from kubeflow.compile import main as compile_main
from kubeflow.config import IMAGE_BEAM_PACKAGE, IMAGE_EMBEDDINGS_PATH, IMAGE_ENCODER_PATH

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKERFILE = os.path.join(REPO, "kubeflow", "Dockerfile")


def dockerfile_instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuation lines joined."""
    instructions, pending = [], ""
    with open(path, encoding="utf-8") as file:
        for line in file:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            text = pending + stripped
            pending = ""
            keyword, _, arguments = text.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def build_image_stand_in(directory) -> dict:
    """Builds the image's file system under `directory` (see the module docstring).

    Returns:
        {"root": the folder standing for `/`, "workdir": the image's WORKDIR there,
         "environment": the processes' environment, "python": the image's python}.
    """
    venv = os.path.join(directory, "base-image-python")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    lock = os.path.join(REPO, "requirements", "main.lock")
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", python, "--no-deps",
         "-r", lock],
        check=True,
    )  # fmt: skip
    root = os.path.join(directory, "image-root")

    def in_image(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    environment = {
        "PATH": f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.path.join(directory, "home"),
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # A container's own /tmp: the test run's temporary folder (tests/conftest.py), where what
        # the image's processes leave (Beam's staging folders, `mktemp`) is removed with it.
        "TMPDIR": tempfile.gettempdir(),
    }
    workdir = root
    for keyword, arguments in dockerfile_instructions(DOCKERFILE):
        if keyword in ("ARG", "FROM"):
            continue  # the base image: the environment above
        if keyword == "WORKDIR":
            workdir = in_image(arguments)
            os.makedirs(workdir, exist_ok=True)
        elif keyword == "ENV":
            name, _, value = arguments.partition("=")
            environment[name] = in_image(value) if value.startswith("/") else value
        elif keyword == "COPY":
            *sources, destination = shlex.split(arguments)
            target = in_image(destination) if destination.startswith("/") else (
                os.path.join(workdir, destination)
            )  # fmt: skip
            for source in sources:
                origin = os.path.join(REPO, source)
                if os.path.isdir(origin):
                    shutil.copytree(
                        origin, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )  # fmt: skip
                else:
                    into = target if destination.endswith("/") else os.path.dirname(target)
                    os.makedirs(into, exist_ok=True)
                    shutil.copy(origin, target if not destination.endswith("/") else into)
        elif keyword == "RUN":
            completed = subprocess.run(
                ["bash", "-c", arguments], cwd=workdir, env=environment,
                capture_output=True, text=True,
            )  # fmt: skip
            assert completed.returncode == 0, (
                f"RUN {arguments}\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}"
            )
        else:
            raise AssertionError(f"the stand-in does not know {keyword}: extend it")
    return {"root": root, "workdir": workdir, "environment": environment, "python": python}


def test_dockerfile_copies_every_package_setup_py_installs():
    copied = {
        shlex.split(arguments)[0].rstrip("/")
        for keyword, arguments in dockerfile_instructions(DOCKERFILE)
        if keyword == "COPY"
    }
    from kubeflow.image_check import PACKAGES

    # The top folder of the checkout each package comes from (linear_crf: models/crf/linear_crf).
    folders = {
        os.path.relpath(importlib.util.find_spec(package).origin, REPO).split(os.sep)[0]
        for package in PACKAGES
    }
    assert folders <= copied
    with open(os.path.join(REPO, "kubeflow", "Dockerfile.dockerignore"), encoding="utf-8") as file:
        allowed = {line.strip()[1:].rstrip("/") for line in file if line.startswith("!")}
    assert copied <= allowed  # BuildKit would leave out of the context what is not allowed


def test_image_pins_come_from_the_lock():
    run_lines = [a for k, a in dockerfile_instructions(DOCKERFILE) if k == "RUN"]
    assert not any(re.search(r"[\w.-]==\d", line) for line in run_lines), "a pin by hand"
    assert any("requirements/main.lock" in line for line in run_lines)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image_stand_in(str(tmp_path_factory.mktemp("image")))


def test_image_does_not_import_from_the_checkout(image):
    completed = subprocess.run(
        [image["python"], "-c", "import serving, models; print(serving.__file__, models.__file__)"],
        cwd=image["workdir"], env=image["environment"], capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert REPO not in completed.stdout
    assert completed.stdout.startswith(image["workdir"])


def _in_image(image, path: str) -> str:
    """Where the stand-in keeps the image's absolute `path`."""
    return os.path.join(image["root"], path.lstrip("/"))


def _compile(image, tmp_path, name: str) -> dict:
    workdir = image["workdir"]
    path = tmp_path / f"{name}.yaml"
    flags = [
        "--image", "stand-in", "--pipeline-root", str(tmp_path / "root"),
        "--data-uri", os.path.join(workdir, "data", "sample"),
        "--serving-uri", str(tmp_path / "serving"),
        "--schema-uri", os.path.join(workdir, "pipeline", "schema", "schema.pbtxt"),
        # The default vectors are compiled in as the image's absolute path, which the stand-in
        # keeps under its own root: test_the_image_holds_the_default_vectors checks them there.
        "--no-embeddings",
        # The image's sdist as the stand-in holds it (the compiled default names the image's
        # absolute path, test_kubeflow_config); the DirectRunner ignores it, but TFX
        # then skips its own package (checked in the run below).
        "--beam-args=--direct_running_mode=in_memory --direct_num_workers=1 "
        f"--extra_package={_in_image(image, IMAGE_BEAM_PACKAGE)}",
        "--output", str(path),
    ]  # fmt: skip
    assert compile_main(flags) == 0
    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file)


def test_the_image_holds_an_installable_sdist_of_this_project(image, tmp_path):
    """What a remote runner's workers do with `--extra_package`: pip installs the file and
    imports the code that Transform and the Evaluator name, away from the image's /pipeline."""
    sdist = _in_image(image, IMAGE_BEAM_PACKAGE)
    assert os.path.isfile(sdist)
    target = tmp_path / "worker-site-packages"
    completed = subprocess.run(
        [image["python"], "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), sdist],
        cwd=tmp_path, env=image["environment"], capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    script = (
        "import components.conll_example_gen, linear_crf, models.preprocessing, serving\n"
        "print(models.preprocessing.__file__)\n"
    )
    completed = subprocess.run(
        [image["python"], "-c", script], cwd=tmp_path,
        env={**image["environment"], "PYTHONPATH": str(target)}, capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().startswith(str(target))


def test_the_image_holds_the_encoder(image):
    folder = _in_image(image, IMAGE_ENCODER_PATH)
    script = (
        "import sys\n"
        "from models.encoder.checkpoint import read_checkpoint\n"
        "checkpoint = read_checkpoint(sys.argv[1])\n"
        "print(checkpoint.config.num_layers, len(checkpoint.vocabulary))\n"
    )
    completed = subprocess.run(
        [image["python"], "-c", script, folder], cwd=image["workdir"],
        env=image["environment"], capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["6", "30522"]


def test_the_image_holds_the_default_vectors(image):
    folder = _in_image(image, IMAGE_EMBEDDINGS_PATH)
    script = (
        "import sys\n"
        "from models.embeddings import load_embedding_matrix, vector_size, vector_words\n"
        "print(vector_size(sys.argv[1]), len(vector_words(sys.argv[1], 400_000)),"
        " load_embedding_matrix(sys.argv[1], ['paris', 'obama']).num_found)\n"
    )
    completed = subprocess.run(
        [image["python"], "-c", script, folder], cwd=image["workdir"],
        env=image["environment"], capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["50", "400000", "2"]


def _serving_check(image, version_dir) -> dict:
    script = (
        "import json, sys, tensorflow as tf\n"
        "model = tf.saved_model.load(sys.argv[1])\n"
        "out = model.signatures['serve_sentences'](sentences=tf.constant(['Obama visited Paris']))\n"
        "print(json.dumps({'signatures': sorted(model.signatures),"
        " 'tokens': [t.decode() for t in out['tokens'].numpy()[0]]}))\n"
    )
    completed = subprocess.run(
        [image["python"], "-c", script, str(version_dir)], cwd=image["workdir"],
        env=image["environment"], capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_compiled_pipeline_runs_from_the_image(image, tmp_path):
    spec = _compile(image, tmp_path, "oss")
    # KFP's cache, on as compiled: the second run reuses what did not change.
    run = dict(working_dir=image["workdir"], environment=image["environment"], cache={})
    # Run 1: nothing served yet. The run parameters set 1 epoch and a floor of 0.
    outputs = run_pipeline_spec(
        spec, **run, arguments={"epochs": 1, "min_entity_f1": 0.0},
        run_root=str(tmp_path / "root" / "run-1"), log_dir=str(tmp_path / "logs-1"),
    )  # fmt: skip
    assert outputs["latest-served-model"]["model"]["metadata"]["served_version"] == ""
    assert outputs["Evaluator"]["blessing"]["metadata"]["blessed"] == 1
    # TFX's Beam executors took the image's sdist instead of packaging TFX at each start.
    example_gen_log = (tmp_path / "logs-1" / "ConllExampleGen.log").read_text()
    assert "Nonempty beam arg extra_packages" in example_gen_log, example_gen_log[-3000:]
    trainer_log = (tmp_path / "logs-1" / "Trainer.log").read_text()
    assert "epoch 1/1 done" in trainer_log, trainer_log[-3000:]  # epochs=1 reached the Trainer
    versions = sorted(os.listdir(tmp_path / "serving"))
    assert len(versions) == 1 and versions[0].isdigit()
    served = _serving_check(image, tmp_path / "serving" / versions[0])
    assert {"serving_default", "serve_tokens", "serve_sentences"} <= set(served["signatures"])
    assert served["tokens"] == ["Obama", "visited", "Paris"]

    # Run 2: version 1 is serving and becomes the baseline; a floor of 100 rejects the candidate.
    # Everything up to the Trainer comes from the cache; latest-served-model never does.
    outputs = run_pipeline_spec(
        spec, **run, arguments={"epochs": 1, "min_entity_f1": 100.0},
        run_root=str(tmp_path / "root" / "run-2"), log_dir=str(tmp_path / "logs-2"),
    )  # fmt: skip
    baseline = outputs["latest-served-model"]["model"]
    assert baseline["metadata"]["served_version"] == versions[0]
    assert os.path.exists(os.path.join(baseline["uri"], "Format-Serving", "saved_model.pb"))
    assert sorted(os.listdir(tmp_path / "logs-2")) == [
        "AtomicPusher.log", "Evaluator.log", "latest-served-model.log",
    ]  # fmt: skip
    evaluator_log = (tmp_path / "logs-2" / "Evaluator.log").read_text()
    assert f"baseline is the served version {versions[0]}" in evaluator_log
    assert "entity F1 floor 100.00" in evaluator_log
    assert outputs["Evaluator"]["blessing"]["metadata"]["blessed"] == 0
    assert sorted(os.listdir(tmp_path / "serving")) == versions  # nothing pushed
