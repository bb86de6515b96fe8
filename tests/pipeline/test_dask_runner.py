"""The data components (ConllExampleGen, StatisticsGen, the validation, Transform) on Beam's Dask
runner against a real `dask.distributed` cluster started here on loopback (a scheduler and two
worker processes), selected by `--beam-args` as a user would, compared with the DirectRunner:
the same examples, the same vocabularies, the same transformed records.

The components run in TFX's LocalDagRunner: `create_pipeline`'s own nodes, cut after Transform by
`data_components_only` (the Trainer and the Evaluator are not what this is about). The runner is
`pipeline.dask_runner.DaskRunner` (Beam's, fixed; see its module). Nothing is mocked.
"""

from __future__ import annotations

import glob
import os

import pytest
import tensorflow as tf
from dask_cluster import loopback_cluster
from tfx import v1 as tfx

from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.pipeline import DATA_COMPONENTS, create_pipeline, data_components_only

pytestmark = [
    pytest.mark.slow,
    # `make test` runs these alone, after the others (tests/pipeline/dask_cluster.py says why).
    pytest.mark.dask_cluster,
]

# The data components of the default pipeline (no span window, so no resolvers).
DATA_NODES = tuple(node for node in DATA_COMPONENTS if not node.endswith("_resolver"))
TRAIN_SENTENCES = 600


def _write_data(directory) -> None:
    """The first sentences of the bundled WNUT-17 train and eval splits (as they are: their
    sentence breaks are empty lines and lines holding a tab)."""
    os.makedirs(directory)
    for split, count in (("train", TRAIN_SENTENCES), ("eval", 200)):
        lines = []
        with open(os.path.join(REPOSITORY_ROOT, "data", "wnut17", f"{split}.conll"), "rb") as f:
            for line in f:
                lines.append(line)
                count -= not line.strip()
                if not count:
                    break
        with open(os.path.join(directory, f"{split}.conll"), "wb") as file:
            file.writelines(lines)


def _run_data_components(tmp_path, name: str, beam_args: str) -> str:
    """Runs the data components with `beam_args`; returns the pipeline root."""
    config = PipelineConfig.from_args(
        ["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / name),
         "--no-embeddings", "--no-cache", "--beam-args", beam_args],
        environ={},
    )  # fmt: skip
    pipeline = data_components_only(create_pipeline(config))
    assert sorted(node.id for node in pipeline.components) == sorted(DATA_NODES)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    return config.pipeline_root


def _newest(root: str, pattern: str) -> str:
    (path,) = sorted(glob.glob(os.path.join(root, pattern)))[-1:]
    return path


def _records(pattern: str) -> list[dict]:
    """The tf.Examples of gzip TFRecord files, as sorted dicts of feature lists (a proto map
    serialises its keys in no fixed order, so bytes can differ for the same example)."""
    files = sorted(glob.glob(pattern))
    assert files, pattern
    examples = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        examples.append({
            name: list(getattr(feature, feature.WhichOneof("kind")).value)
            for name, feature in sorted(example.features.feature.items())
        })  # fmt: skip
    return sorted(examples, key=repr)


def _vocabularies(transform_graph: str) -> dict[str, bytes]:
    assets = os.path.join(transform_graph, "transform_fn", "assets")
    return {name: open(os.path.join(assets, name), "rb").read() for name in os.listdir(assets)}


def _num_examples(statistics: str, split: str) -> int:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    data = open(os.path.join(statistics, f"Split-{split}", "FeatureStats.pb"), "rb").read()
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(data)
    return stats.datasets[0].num_examples


def test_the_data_components_on_a_dask_cluster_give_the_direct_runners_outputs(tmp_path):
    pytest.importorskip("distributed")
    _write_data(tmp_path / "data")
    direct = _run_data_components(
        tmp_path, "direct", "--direct_running_mode=in_memory --direct_num_workers=1"
    )
    with loopback_cluster() as (cluster, client):
        dask = _run_data_components(
            tmp_path,
            "dask",
            "--runner=pipeline.dask_runner.DaskRunner "
            f"--dask_client_address={cluster.scheduler_address}",
        )
        # The work ran on the cluster's two worker processes, not in this one. (Not
        # `scheduler_info()["workers"]`: the client's periodic refresh, which asks for no
        # workers, can overwrite it before it returns; seen once with a busy core.)
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert len(executed) == 2 and sum(executed.values()) > 0, executed

    examples = {
        root: {
            split: _records(_newest(root, f"ConllExampleGen/examples/*/Split-{split}/*"))
            for split in ("train", "eval")
        }
        for root in (direct, dask)
    }
    assert len(examples[direct]["train"]) == TRAIN_SENTENCES
    assert examples[dask] == examples[direct]
    for split, count in (("train", TRAIN_SENTENCES), ("eval", 200)):
        for root in (direct, dask):
            assert _num_examples(_newest(root, "StatisticsGen/statistics/*"), split) == count
    graphs = [_newest(root, "Transform/transform_graph/*") for root in (direct, dask)]
    vocabularies = [_vocabularies(graph) for graph in graphs]
    assert vocabularies[0] and vocabularies[1] == vocabularies[0]
    transformed = [
        _records(_newest(root, "Transform/transformed_examples/*/Split-train/*"))
        for root in (direct, dask)
    ]
    assert len(transformed[0]) == TRAIN_SENTENCES and transformed[1] == transformed[0]
    # No temporary folders left beside the outputs.
    assert not glob.glob(os.path.join(dask, "**", "beam-temp-*"), recursive=True)
