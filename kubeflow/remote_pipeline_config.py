"""`PipelineConfig` with URIs for paths: what `create_pipeline` reads when Kubeflow runs it.

`pipeline.config.PipelineConfig` is made for the local runner: its paths must be absolute local
paths, its name may hold '_' (which Kubeflow refuses) and it derives the pipeline root and the
serving folder from one output folder. This subclass keeps every attribute and property that
`pipeline.pipeline.create_pipeline` reads, and changes only that:

- `data_dir`, `output_dir` and `schema_path` may be URIs (gs://, s3://, ...) or absolute paths;
- `pipeline_name` follows Kubeflow's rule ([a-z0-9][a-z0-9-]*);
- `pipeline_root` and `serving_dir` are given, not derived.

It can go once `PipelineConfig` accepts URIs and an explicit pipeline root and serving folder
(the hook asked for in kubeflow/README.md).
"""

from __future__ import annotations

import dataclasses

from kubeflow.config import check_location, check_pipeline_name
from pipeline.config import PipelineConfig

__all__ = [
    "RemotePipelineConfig",
]


@dataclasses.dataclass(frozen=True)
class RemotePipelineConfig(PipelineConfig):
    """A `PipelineConfig` whose locations are URIs.

    Attributes:
        remote_pipeline_root: where TFX writes the artifacts (returned by `pipeline_root`).
        remote_serving_dir: Pusher's destination (returned by `serving_dir`).
    """

    remote_pipeline_root: str = ""
    remote_serving_dir: str = ""

    def __post_init__(self):
        # Replaces PipelineConfig's checks, which require local paths and allow '_' in names.
        check_pipeline_name(self.pipeline_name)
        for name in (
            "data_dir",
            "output_dir",
            "schema_path",
            "remote_pipeline_root",
            "remote_serving_dir",
        ):
            check_location(name, getattr(self, name))
        if not 0.0 <= self.min_entity_f1 <= 100.0:
            raise ValueError(
                "Invalid value for `min_entity_f1`. Expected a percentage in [0, 100]. "
                f"Received: min_entity_f1={self.min_entity_f1!r}"
            )
        object.__setattr__(self, "beam_pipeline_args", tuple(self.beam_pipeline_args))

    @property
    def pipeline_root(self) -> str:
        """Where TFX writes the artifacts."""
        return self.remote_pipeline_root

    @property
    def serving_dir(self) -> str:
        """Pusher's destination: `<serving_dir>/<numeric version>/saved_model.pb`."""
        return self.remote_serving_dir

    @property
    def metadata_path(self) -> str:
        """Unused on Kubeflow, whose own ML Metadata store records the runs; `create_pipeline`
        still builds a (never opened) SQLite connection config from it."""
        return "/unused-on-kubeflow/metadata.db"
