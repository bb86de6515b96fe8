"""What a local run tells Beam its workers need: this project's setup.py (`with_this_package`),
checked against TFX's own rule (`make_beam_dependency_flags`) and a DirectRunner run."""

import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from tfx.utils import dependency_utils

from pipeline.config import DEFAULT_BEAM_ARGS, REPOSITORY_ROOT
from pipeline.local_runner import with_this_package


def test_the_default_arguments_name_this_projects_setup_file():
    args = with_this_package(DEFAULT_BEAM_ARGS)
    assert args[: len(DEFAULT_BEAM_ARGS)] == DEFAULT_BEAM_ARGS
    assert args[-1] == f"--setup_file={os.path.join(REPOSITORY_ROOT, 'setup.py')}"
    assert os.path.isfile(args[-1].split("=", 1)[1])


@pytest.mark.parametrize(
    "given",
    [
        ("--setup_file=/elsewhere/setup.py",),
        ("--extra_package", "/dist/tfx_ner-1.0.tar.gz"),
        ("--extra_packages=/dist/a.tar.gz",),
        ("--requirements_file=req.txt",),
        ("--sdk_container_image=gcr.io/p/ner:1",),
        ("--worker_harness_container_image=gcr.io/p/ner:1",),
    ],
)
def test_arguments_that_name_the_workers_code_are_kept(given):
    args = (*DEFAULT_BEAM_ARGS, *given)
    assert with_this_package(args) == args


def test_tfx_then_packages_nothing_and_the_direct_runner_ignores_the_option(monkeypatch):
    """TFX's Beam executors call `make_beam_dependency_flags` at every start; with the option it
    must not build its sdist of TFX (1.5 s and 42 MB a component)."""

    def build_ephemeral_package():
        raise AssertionError("TFX packaged its own installation")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build_ephemeral_package)
    args = list(with_this_package(DEFAULT_BEAM_ARGS))
    assert dependency_utils.make_beam_dependency_flags(args) == args
    with pytest.raises(AssertionError, match="packaged"):  # the check can fail
        dependency_utils.make_beam_dependency_flags(list(DEFAULT_BEAM_ARGS))
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        doubled = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: 2 * x)
        assert_that(doubled, equal_to([2, 4, 6]))
