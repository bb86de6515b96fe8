"""The tag set written in a schema: the string domain of its `tags` feature.

Plain protobuf reading, no TFX: `pipeline.config` reads the curated schema's tags with it when it
builds the configuration, and `components.validation_gate` names the unknown ones.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

from models.features import TAGS_KEY

__all__ = ["TAGS_FEATURE", "known_tags"]

TAGS_FEATURE = TAGS_KEY


def known_tags(schema: schema_pb2.Schema, feature: str = TAGS_FEATURE) -> tuple[str, ...]:
    """The values of the string domain of `feature` in `schema` (inline or named domain).

    Raises:
        ValueError: if the schema has no such feature or the feature has no string domain.
    """
    for schema_feature in schema.feature:
        if schema_feature.name != feature:
            continue
        if schema_feature.HasField("string_domain"):
            return tuple(schema_feature.string_domain.value)
        for domain in schema.string_domain:
            if domain.name == schema_feature.domain:
                return tuple(domain.value)
    raise ValueError(
        f"Invalid value for `schema`. Expected a feature {feature!r} with a string domain. "
        f"Received: features {[f.name for f in schema.feature]}, "
        f"domains {[d.name for d in schema.string_domain]}"
    )
