"""Retraining options of the config and the DAG: span window, analyzer cache, warm start."""

import pytest
from tfx import v1 as tfx
from tfx.dsl.components.common.resolver import RESOLVER_CONFIG, RESOLVER_STRATEGY_CLASS

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline

pytestmark = pytest.mark.slow  # imports TFX


def config(tmp_path, *flags, environ=None):
    return PipelineConfig.from_args(
        ["--output-dir", str(tmp_path), "--train-pattern", "span-{SPAN}/train.conll",
         "--eval-pattern", "span-{SPAN}/eval.conll", *flags],
        environ=environ or {},
    )  # fmt: skip


def node(pipeline, node_id):
    return next(n for n in pipeline.components if n.id == node_id)


def test_defaults_train_on_the_latest_span_without_warm_start(tmp_path):
    cfg = config(tmp_path)
    assert (cfg.span_window, cfg.warm_start) == (1, False)
    pipeline = create_pipeline(cfg)
    ids = {n.id for n in pipeline.components}
    assert not ids & {"span_window_resolver", "transform_cache_resolver"}
    transform = node(pipeline, "Transform")
    assert transform.inputs["examples"].producer_component_id == "ConllExampleGen"
    assert "analyzer_cache" not in transform.inputs
    assert "base_model" not in node(pipeline, "Trainer").inputs


def test_flags_and_environment(tmp_path):
    cfg = config(tmp_path, environ={"NER_SPAN_WINDOW": "3", "NER_WARM_START": "1"})
    assert (cfg.span_window, cfg.warm_start) == (3, True)
    assert config(tmp_path, "--span-window", "2").span_window == 2


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_bad_span_window(tmp_path, value):
    with pytest.raises(ValueError, match=r"Invalid value for `span_window`. Expected a positive"):
        PipelineConfig(**{**vars(config(tmp_path)), "span_window": value})


def test_span_window_needs_resolvers(tmp_path):
    with pytest.raises(ValueError, match=r"Expected 1 when `baseline` is False"):
        config(tmp_path, "--span-window", "2", "--no-baseline")


def test_span_window_resolves_the_last_spans_and_feeds_transform_with_its_cache(tmp_path):
    pipeline = create_pipeline(config(tmp_path, "--span-window", "3"))
    span_resolver = node(pipeline, "span_window_resolver")
    strategy_config = span_resolver.exec_properties[RESOLVER_CONFIG]
    assert strategy_config["range_config"] == tfx.proto.RangeConfig(
        rolling_range=tfx.proto.RollingRange(num_spans=3)
    )
    assert (
        span_resolver.exec_properties[RESOLVER_STRATEGY_CLASS]
        is tfx.dsl.experimental.SpanRangeStrategy
    )
    assert "ConllExampleGen" in {n.id for n in span_resolver.upstream_nodes}
    transform = node(pipeline, "Transform")
    assert transform.inputs["examples"].producer_component_id == "span_window_resolver"
    assert transform.inputs["analyzer_cache"].producer_component_id == "transform_cache_resolver"
    # Validation and evaluation look at the newest span only.
    for node_id in ("StatisticsGen", "Evaluator"):
        examples = node(pipeline, node_id).inputs["examples"]
        assert examples.producer_component_id == "ConllExampleGen"


def test_warm_start_feeds_the_latest_blessed_model(tmp_path):
    pipeline = create_pipeline(config(tmp_path, "--warm-start"))
    base_model = node(pipeline, "Trainer").inputs["base_model"]
    assert base_model.producer_component_id == "latest_blessed_model_resolver"
    resolver = node(pipeline, "latest_blessed_model_resolver")
    assert (
        resolver.exec_properties[RESOLVER_STRATEGY_CLASS]
        is tfx.dsl.experimental.LatestBlessedModelStrategy
    )
    # Without resolvers (open-source KFP) there is nothing to warm-start from.
    pipeline = create_pipeline(config(tmp_path, "--warm-start", "--no-baseline"))
    assert "base_model" not in node(pipeline, "Trainer").inputs


def test_the_analyzer_cache_resolver_gives_nothing_rather_than_failing_without_a_cache(tmp_path):
    from components.latest_artifact_if_any import LatestArtifactIfAnyStrategy

    pipeline = create_pipeline(config(tmp_path, "--span-window", "2"))
    cache_resolver = node(pipeline, "transform_cache_resolver")
    assert cache_resolver.exec_properties[RESOLVER_STRATEGY_CLASS] is LatestArtifactIfAnyStrategy
    caches = []
    for artifact_id in (3, 7, 5):
        cache = tfx.types.standard_artifacts.TransformCache()
        cache.id = artifact_id
        caches.append(cache)
    strategy = LatestArtifactIfAnyStrategy()
    assert strategy.resolve_artifacts(None, {"cache": []}) == {"cache": []}
    assert [a.id for a in strategy.resolve_artifacts(None, {"cache": caches})["cache"]] == [7]
