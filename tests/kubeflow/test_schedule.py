"""`python -m kubeflow.schedule` against a local stand-in for the Kubeflow Pipelines REST API.

No cluster runs here: `kfp_api_stand_in.KfpApiStandIn` is a tiny `http.server` on 127.0.0.1 that
answers the endpoints `kfp.Client` calls and records the requests. The tests check what the real
`kfp.Client` sent through `kubeflow.schedule`: the uploaded package (byte for byte), the cron
expression, max_concurrency 1, no catch-up, caching off, the version the schedule runs, and that
rescheduling replaces the recurring run instead of adding one. Every request has a timeout and the
server stops at the end of each test.
"""

from __future__ import annotations

import socket

import kfp
import pytest
from kfp_api_stand_in import API, KfpApiStandIn

from kubeflow.schedule import main, schedule
from kubeflow.schedule_config import DEFAULT_CRON, ScheduleConfig

PACKAGE_TEXT = """\
# PIPELINE DEFINITION
# Name: ner-bilstm-crf
pipelineInfo:
  name: ner-bilstm-crf
root:
  dag:
    tasks: {}
schemaVersion: 2.0.0
sdkVersion: tfx-1.16.0
"""


@pytest.fixture(autouse=True)
def _no_user_kfp_context(monkeypatch, tmp_path):
    # kfp.Client reads ~/.config/kfp/context.json if present: keep a developer's out of the test.
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "no-context.json"))
    # A stand-in that stops answering must fail the test, not hang it.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    yield
    socket.setdefaulttimeout(previous)


@pytest.fixture
def package(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(PACKAGE_TEXT, encoding="utf-8")
    return path


def _config(api: KfpApiStandIn, package, **overrides) -> ScheduleConfig:
    return ScheduleConfig(host=api.url, package_path=str(package), **overrides)


def test_first_schedule_uploads_the_package_and_creates_a_recurring_run(package):
    with KfpApiStandIn() as api:
        result = schedule(_config(api, package, cron="0 30 2 * * 1-5"))

    # The pipeline did not exist: uploaded as a new pipeline, with the file's exact bytes.
    (upload,) = api.requests_to("POST", f"{API}/pipelines/upload")
    assert upload.query["name"] == "ner-bilstm-crf"
    assert upload.uploaded_file() == PACKAGE_TEXT.encode()
    assert result.created_pipeline
    assert not api.requests_to("POST", f"{API}/pipelines/upload_version")

    (create_experiment,) = api.requests_to("POST", f"{API}/experiments")
    assert create_experiment.json()["display_name"] == "ner-retraining"

    (create_run,) = api.requests_to("POST", f"{API}/recurringruns")
    body = create_run.json()
    assert body["display_name"] == "ner-bilstm-crf-schedule"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 30 2 * * 1-5"}}
    assert int(body["max_concurrency"]) == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["experiment_id"] == result.experiment_id
    # The schedule runs the uploaded version, not an inline copy of the spec.
    assert "pipeline_spec" not in body
    (version,) = api.versions.values()
    assert body["pipeline_version_reference"] == {
        "pipeline_id": result.pipeline_id,
        "pipeline_version_id": version["pipeline_version_id"],
    }
    assert result.version_id == version["pipeline_version_id"]
    assert list(api.recurring_runs) == [result.recurring_run_id]


def test_rescheduling_uploads_a_new_version_and_replaces_the_recurring_run(package):
    with KfpApiStandIn() as api:
        first = schedule(_config(api, package, version_name="v1"))
        package.write_text(PACKAGE_TEXT + "# changed\n", encoding="utf-8")
        second = schedule(_config(api, package, version_name="v2", cron="0 0 4 * * *"))

    assert not second.created_pipeline
    assert second.pipeline_id == first.pipeline_id
    (upload_version,) = api.requests_to("POST", f"{API}/pipelines/upload_version")
    assert upload_version.query == {"name": "v2", "pipelineid": first.pipeline_id}
    assert upload_version.uploaded_file() == (PACKAGE_TEXT + "# changed\n").encode()
    # One pipeline, one experiment, one schedule (the new one, on the new version).
    assert len(api.pipelines) == 1
    assert len(api.experiments) == 1
    assert second.replaced_recurring_run_ids == (first.recurring_run_id,)
    assert api.requests_to("DELETE", f"{API}/recurringruns/{first.recurring_run_id}")
    (remaining,) = api.recurring_runs.values()
    assert remaining["recurring_run_id"] == second.recurring_run_id
    assert remaining["pipeline_version_reference"]["pipeline_version_id"] == second.version_id
    assert api.versions[second.version_id]["display_name"] == "v2"
    assert remaining["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * *"


def test_main_reads_flags_and_environment(package, capsys):
    with KfpApiStandIn() as api:
        environ_cron = "0 15 1 * * *"
        config = ScheduleConfig.from_args(
            ["--host", api.url, "--package", str(package), "--experiment", "nightly"],
            environ={"NER_KFP_CRON": environ_cron, "NER_KFP_TOKEN": "secret-token"},
        )
        assert config.cron == environ_cron
        assert config.existing_token == "secret-token"
        assert "secret-token" not in repr(config)
        assert (
            main(["--host", api.url, "--package", str(package), "--pipeline-root", "gs://b/r"]) == 0
        )

    out = capsys.readouterr().out
    assert "created" in out and DEFAULT_CRON in out
    (create_run,) = api.requests_to("POST", f"{API}/recurringruns")
    assert create_run.json()["runtime_config"]["pipeline_root"] == "gs://b/r"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"cron": "0 3 * * *"}, r"Invalid value for `cron`. Expected 6 space-separated fields"),
        ({"cron": "0 0 3 * * * *"}, r"Invalid value for `cron`"),
        ({"cron": "0 0 3 * * ;rm"}, r"Invalid value for `cron`"),
        ({"max_concurrency": 0}, r"Invalid value for `max_concurrency`"),
        ({"pipeline_name": "ner_bilstm_crf"}, r"Invalid value for `pipeline_name`"),
        ({"host": "localhost:8888"}, r"Invalid value for `host`. Expected an http:// or https://"),
        ({"package_path": "pipeline.json"}, r"Invalid value for `package_path`"),
        ({"pipeline_root": "relative/root"}, r"Invalid value for `pipeline_root`"),
    ],
)
def test_invalid_schedule_config(overrides, message):
    values = {"host": "http://127.0.0.1:1", "package_path": "pipeline.yaml", **overrides}
    with pytest.raises(ValueError, match=message):
        ScheduleConfig(**values)


def test_missing_host_names_the_flag_and_variable():
    with pytest.raises(ValueError, match=r"--host or \$NER_KFP_HOST"):
        ScheduleConfig.from_args(["--package", "p.yaml"], environ={})


VERTEX_PACKAGE_TEXT = PACKAGE_TEXT.replace(
    "  name: ner-bilstm-crf\n",
    "  name: ner-bilstm-crf\n"
    "  description: NER tagger pipeline, compiled by python -m kubeflow.compile --target vertex\n",
)
RESOLVER_PACKAGE_TEXT = PACKAGE_TEXT + (
    "deploymentSpec:\n  executors:\n    resolver-executor:\n      resolver:\n"
    "        outputArtifactQueries: {}\n"
)


@pytest.mark.parametrize("text", [VERTEX_PACKAGE_TEXT, RESOLVER_PACKAGE_TEXT])
def test_a_spec_for_vertex_is_refused_before_anything_is_sent(text, tmp_path, capsys):
    path = tmp_path / "pipeline-vertex.yaml"
    path.write_text(text, encoding="utf-8")
    with KfpApiStandIn() as api:
        status = main(["--host", api.url, "--package", str(path)])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Expected a pipeline compiled for open-source KFP" in err
    assert "--target oss" in err and "'vertex'" in err
    assert not api.requests  # nothing uploaded


def test_an_unreachable_host_is_one_line_naming_it(package, capsys):
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    status = main(["--host", host, "--package", str(package)])
    err = capsys.readouterr().err
    assert status == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"kubeflow.schedule: cannot reach the Kubeflow Pipelines API at {host}")
    assert "Traceback" not in err


def test_run_parameters_are_forwarded_to_the_recurring_run(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        PACKAGE_TEXT.replace(
            "root:\n",
            "root:\n  inputDefinitions:\n    parameters:\n"
            "      data_uri: {parameterType: STRING, defaultValue: gs://b/a}\n"
            "      epochs: {parameterType: NUMBER_INTEGER, defaultValue: 25}\n",
        ),
        encoding="utf-8",
    )
    with KfpApiStandIn() as api:
        assert main(["--host", api.url, "--package", str(path), "--param", "epochs=3",
                     "--param", "data_uri=gs://b/ner/span-7"]) == 0  # fmt: skip
        (create_run,) = api.requests_to("POST", f"{API}/recurringruns")
    assert create_run.json()["runtime_config"]["parameters"] == {
        "epochs": 3,
        "data_uri": "gs://b/ner/span-7",
    }
    for bad, message in (
        ("lr=0.1", r"Expected one of the pipeline's run parameters \['data_uri', 'epochs'\]"),
        ("epochs=three", r"Expected epochs of type NUMBER_INTEGER"),
        ("epochs", r"NAME=VALUE"),
    ):
        with pytest.raises(ValueError, match=message):
            schedule(ScheduleConfig.from_args(["--host", "http://127.0.0.1:1", "--package",
                                               str(path), "--param", bad], environ={}))  # fmt: skip
