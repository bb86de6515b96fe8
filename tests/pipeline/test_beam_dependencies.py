"""What a local run tells Beam its workers need: this project's sdist (`with_this_package`),
checked against TFX's own rule (`make_beam_dependency_flags`) and a DirectRunner run."""

import tarfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from tfx.utils import dependency_utils

from pipeline.config import DEFAULT_BEAM_ARGS
from pipeline.local_runner import with_this_package


def test_the_default_arguments_name_this_projects_sdist(tmp_path):
    args = with_this_package(DEFAULT_BEAM_ARGS, str(tmp_path))
    assert args[: len(DEFAULT_BEAM_ARGS)] == DEFAULT_BEAM_ARGS
    option, sdist = args[-1].split("=", 1)
    assert option == "--extra_package" and sdist.startswith(str(tmp_path))
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    # The code remote workers import, and the requirements they install with it.
    for needed in (
        "components/conll_example_gen.py",
        "models/preprocessing.py",
        "pipeline/pipeline.py",
        "setup.py",
    ):
        assert needed in names, needed


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
def test_arguments_that_name_the_workers_code_are_kept(given, tmp_path):
    args = (*DEFAULT_BEAM_ARGS, *given)
    assert with_this_package(args, str(tmp_path)) == args
    assert list(tmp_path.iterdir()) == []  # nothing built


def test_tfx_then_packages_nothing_and_the_direct_runner_runs(monkeypatch, tmp_path):
    """TFX's Beam executors call `make_beam_dependency_flags` at every start; with the option it
    must not build its sdist of TFX (1.5 s and 42 MB a component)."""

    def build_ephemeral_package():
        raise AssertionError("TFX packaged its own installation")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build_ephemeral_package)
    args = list(with_this_package(DEFAULT_BEAM_ARGS, str(tmp_path)))
    assert dependency_utils.make_beam_dependency_flags(args) == args
    with pytest.raises(AssertionError, match="packaged"):  # the check can fail
        dependency_utils.make_beam_dependency_flags(list(DEFAULT_BEAM_ARGS))
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        doubled = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: 2 * x)
        assert_that(doubled, equal_to([2, 4, 6]))
