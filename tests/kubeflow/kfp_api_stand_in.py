"""A stand-in for the Kubeflow Pipelines REST API (v2beta1) on 127.0.0.1, for tests.

No cluster runs here: this tiny `http.server` answers the endpoints `kfp.Client` calls to upload a
pipeline and schedule it (healthz, pipelines and their versions, uploads, experiments, recurring
runs), keeps what they create in memory, and records every request so that a test can check what
the client sent. It listens on an ephemeral loopback port in a daemon thread, answers each request
within the socket timeout, and stops when the `with` block ends.
"""

from __future__ import annotations

import dataclasses
import email.parser
import itertools
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/apis/v2beta1"
_SOCKET_TIMEOUT_S = 10


@dataclasses.dataclass
class RecordedRequest:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def uploaded_file(self) -> bytes:
        """The content of the multipart `uploadfile` field (pipeline uploads)."""
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + self.content_type.encode() + b"\r\n\r\n" + self.body
        )
        for part in message.walk():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                return part.get_payload(decode=True)
        raise AssertionError(f"no uploadfile field in the {self.method} {self.path} request")


def _filter_value(query: dict[str, str], key: str) -> str | None:
    """The value of an EQUALS predicate on `key` in the request's `filter` parameter, if any."""
    if "filter" not in query:
        return None
    for predicate in json.loads(query["filter"]).get("predicates", []):
        if predicate.get("key") == key:
            return predicate.get("stringValue", predicate.get("string_value"))
    return None


class KfpApiStandIn:
    """In-memory KFP API. `with KfpApiStandIn() as api: kfp.Client(host=api.url)`.

    Attributes:
        requests: every request received, in order.
        pipelines, versions, experiments, recurring_runs: what the client created, by id.
    """

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def __enter__(self) -> KfpApiStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            timeout = _SOCKET_TIMEOUT_S

            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = RecordedRequest(
                    method=self.command,
                    path=parsed.path,
                    query=dict(urllib.parse.parse_qsl(parsed.query)),
                    content_type=self.headers.get("Content-Type", ""),
                    body=self.rfile.read(length) if length else b"",
                )
                with stand_in._lock:
                    stand_in.requests.append(request)
                    status, payload = stand_in._answer(request)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _add_version(self, pipeline_id: str, name: str, package: bytes) -> dict:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": self._new_id("version"),
            "display_name": name,
            # Increasing, so that "created_at desc" is creation order reversed.
            "created_at": f"2026-01-01T00:00:{len(self.versions):02d}Z",
        }
        self.versions[version["pipeline_version_id"]] = {**version, "package": package}
        return version

    def _answer(self, request: RecordedRequest) -> tuple[int, dict]:
        method, path, query = request.method, request.path, request.query
        if (method, path) == ("GET", f"{API}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{API}/pipelines"):
            name = _filter_value(query, "display_name")
            found = [p for p in self.pipelines.values() if name in (None, p["display_name"])]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{API}/pipelines/upload"):
            pipeline = {"pipeline_id": self._new_id("pipeline"), "display_name": query["name"]}
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            self._add_version(pipeline["pipeline_id"], query["name"], request.uploaded_file())
            return 200, pipeline
        if (method, path) == ("POST", f"{API}/pipelines/upload_version"):
            if query.get("pipelineid") not in self.pipelines:
                return 404, {"error": f"no pipeline {query.get('pipelineid')}"}
            return 200, self._add_version(
                query["pipelineid"], query["name"], request.uploaded_file()
            )
        if method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[-2]
            found = [
                {k: v for k, v in version.items() if k != "package"}
                for version in self.versions.values()
                if version["pipeline_id"] == pipeline_id
            ]
            if query.get("sort_by") == "created_at desc":
                found.sort(key=lambda version: version["created_at"], reverse=True)
            found = found[: int(query.get("page_size", 10))]
            return 200, {"pipeline_versions": found, "total_size": len(found)}
        if (method, path) == ("GET", f"{API}/experiments"):
            name = _filter_value(query, "display_name")
            found = [e for e in self.experiments.values() if name in (None, e["display_name"])]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{API}/experiments"):
            experiment = {**request.json(), "experiment_id": self._new_id("experiment")}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if (method, path) == ("GET", f"{API}/recurringruns"):
            name = _filter_value(query, "display_name")
            found = [
                run
                for run in self.recurring_runs.values()
                if name in (None, run["display_name"])
                and query.get("experiment_id") in (None, run["experiment_id"])
            ]
            return 200, {"recurringRuns": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{API}/recurringruns"):
            run = {**request.json(), "recurring_run_id": self._new_id("recurring-run")}
            run["status"] = "ENABLED"
            self.recurring_runs[run["recurring_run_id"]] = run
            return 200, run
        if method == "DELETE" and path.startswith(f"{API}/recurringruns/"):
            if self.recurring_runs.pop(path.rsplit("/", 1)[-1], None) is None:
                return 404, {"error": "no such recurring run"}
            return 200, {}
        return 404, {"error": f"the stand-in does not answer {method} {path}"}
