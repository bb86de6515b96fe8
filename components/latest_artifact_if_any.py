"""LatestArtifactIfAnyStrategy: a resolver strategy for an optional input (Transform's analyzer
cache of the span window, `pipeline.pipeline`)."""

from __future__ import annotations

from tfx import v1 as tfx

__all__ = ["LatestArtifactIfAnyStrategy"]


class LatestArtifactIfAnyStrategy(tfx.dsl.experimental.ResolverStrategy):
    """The latest artifact (highest id) of each input, or none when there is none yet.

    For the analyzer cache: TFX's `LatestArtifactStrategy` returns None when a channel is empty,
    which on the first run marks the resolver FAILED in ML Metadata and logs an error traceback
    (the run goes on, Transform's `analyzer_cache` being optional). An empty list says the same
    without the failure.
    """

    def resolve_artifacts(self, store, input_dict):
        del store  # The inputs are already read from ML Metadata.
        return {
            key: sorted(artifacts, key=lambda artifact: artifact.id)[-1:]
            for key, artifacts in input_dict.items()
        }
