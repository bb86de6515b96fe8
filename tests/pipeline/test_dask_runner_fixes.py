"""Each fix `pipeline.dask_runner.DaskRunner` makes to Beam 2.74's Dask runner, on a small Beam
pipeline run on a real `dask.distributed` cluster (a scheduler and two worker processes on
loopback), against the DirectRunner's result of the same pipeline: two sinks, a sharded file
write (its files are emitted from `finish_bundle`), a ParDo with two outputs, `ReadFromTFRecord`
(a `beam.io.Read` of a bounded source), side inputs (one with a side effect, read by a transform
that never iterates it; one read by two transforms) and a combiner with hot-key fan-out (it
merges accumulators in place). The whole data components run in `test_dask_runner.py`.
"""

from __future__ import annotations

import glob
import os
import time
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from dask_cluster import loopback_cluster

distributed = pytest.importorskip("distributed")
from pipeline import dask_runner  # noqa: E402 - needs distributed

pytestmark = [
    pytest.mark.slow,
    # `make test` runs these alone, after the others (tests/pipeline/dask_cluster.py says why).
    pytest.mark.dask_cluster,
]

WORDS = [f"w{i % 7}" for i in range(200)]


class _SplitByLength(beam.DoFn):
    def process(self, word):
        yield beam.pvalue.TaggedOutput("long", word) if len(word) > 2 else word


def _build(pipeline, root: str) -> None:
    """Writes what the pipeline computed into `root/…` text files (several sinks)."""
    words = pipeline | "Words" >> beam.Create(WORDS + ["w100", "w101"])
    _ = words | "Records" >> beam.Map(str.encode) | beam.io.WriteToTFRecord(
        os.path.join(root, "records"), num_shards=2
    )  # fmt: skip
    split = words | beam.ParDo(_SplitByLength()).with_outputs("long", main="short")
    counts = (
        split.short
        | beam.Map(lambda w: (w, 1))
        | beam.CombinePerKey(sum).with_hot_key_fanout(3)
    )  # fmt: skip
    total = split.short | "Total" >> beam.combiners.Count.Globally()
    _ = (
        counts
        | beam.Map(lambda kv, n: f"{kv[0]} {kv[1]} of {n}", n=beam.pvalue.AsSingleton(total))
        | "WriteCounts" >> beam.io.WriteToText(os.path.join(root, "counts"), num_shards=3)
    )  # fmt: skip
    _ = split.long | "WriteLong" >> beam.io.WriteToText(os.path.join(root, "long"))
    # A side input with a side effect runs once, before its readers, even a reader that never
    # iterates it (as TFT waits for its vocabulary files).
    marker = os.path.join(root, "marker")
    written = pipeline | "Marker" >> beam.Create([marker]) | "WriteMarker" >> beam.Map(_touch)
    _ = (
        pipeline
        | "MarkerPath" >> beam.Create([marker])
        | "Wait" >> beam.Map(lambda path, _: path, beam.pvalue.AsIter(written))
        | "Seen" >> beam.Map(lambda path: str(os.path.exists(path)))
        | "WriteSeen" >> beam.io.WriteToText(os.path.join(root, "seen"))
    )  # fmt: skip
    stamp = (
        pipeline | "Once" >> beam.Create([None]) | "Stamp" >> beam.Map(lambda _: uuid.uuid4().hex)
    )
    for reader in ("a", "b"):
        _ = (
            words
            | f"Read{reader}" >> beam.Map(lambda _, s: s, beam.pvalue.AsSingleton(stamp))
            | f"Distinct{reader}" >> beam.Distinct()
            | f"WriteStamps{reader}" >> beam.io.WriteToText(os.path.join(root, f"stamps{reader}"))
        )  # fmt: skip


def _touch(path: str) -> str:
    time.sleep(1)  # long enough for a reader not ordered after this to run first
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    return path


def _read_back(pipeline, root: str) -> None:
    _ = (
        pipeline
        | beam.io.ReadFromTFRecord(os.path.join(root, "records*"))
        | beam.Map(bytes.decode)
        | beam.io.WriteToText(os.path.join(root, "read"))
    )  # fmt: skip


def _run(build, root: str, args: list[str]) -> None:
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        build(pipeline, root)


def _lines(root: str, name: str) -> list[str]:
    files = glob.glob(os.path.join(root, f"{name}-*"))
    assert files, name
    return sorted(line for path in files for line in open(path).read().splitlines())


def _other_clients(client) -> set[str]:
    names = client.run_on_scheduler(lambda dask_scheduler: set(dask_scheduler.clients))
    return names - {client.id, "fire-and-forget"}


def test_a_small_pipeline_gives_on_dask_what_it_gives_on_the_direct_runner(tmp_path):
    direct, dask = str(tmp_path / "direct"), str(tmp_path / "dask")
    _run(_build, direct, [])
    _run(_read_back, direct, [])
    with loopback_cluster() as (cluster, client):
        args = [
            "--runner=pipeline.dask_runner.DaskRunner",
            f"--dask_client_address={cluster.scheduler_address}",
        ]
        _run(_build, dask, args)
        _run(_read_back, dask, args)
        # Both runs used one client (one connection, on which releases and requests of the
        # keys that runs share keep their order): the scheduler knows it and this test's.
        (runs_client,) = _other_clients(client)
    # `loopback_cluster` closed it before its scheduler went (`close_clients`).
    assert runs_client not in {c.id for _, c in dask_runner._CLIENTS.values()}
    for name in ("counts", "long", "read", "seen"):
        assert _lines(dask, name) == _lines(direct, name), name
    assert _lines(direct, "seen") == ["True"]
    for root in (direct, dask):
        assert len(_lines(root, "stampsa")) == 1 and _lines(root, "stampsb") == _lines(
            root, "stampsa"
        )
    assert _lines(direct, "counts")[0] == "w0 29 of 200" and _lines(direct, "long") == [
        "w100",
        "w101",
    ]
    assert len(glob.glob(os.path.join(dask, "records-*"))) == 2
    assert not glob.glob(os.path.join(dask, "**", "beam-temp-*"), recursive=True)


def test_a_transform_without_a_translation_is_named_before_anything_runs():
    """A primitive the Dask runner does not know (here a user's own source primitive): Beam's
    runner handed its readers `None`; ours names it."""

    class OwnPrimitive(beam.PTransform):
        def expand(self, pbegin):
            return beam.pvalue.PCollection(pbegin.pipeline, is_bounded=True)

        def get_windowing(self, inputs):
            return beam.Windowing(beam.window.GlobalWindows())

    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:  # fmt: skip
        pipeline = beam.Pipeline(
            runner=dask_runner.DaskRunner(),
            options=PipelineOptions([f"--dask_client_address={cluster.scheduler_address}"]),
        )
        _ = pipeline | "Lines" >> OwnPrimitive() | "Print" >> beam.Map(print)
        with pytest.raises(NotImplementedError, match="cannot run 'Lines'.*'Print' would read"):
            pipeline.run()
        dask_runner.close_clients(cluster.scheduler_address)


def test_a_combine_groups_each_bundles_accumulators_not_every_element():
    """Beam expands `CombinePerKey` into a GroupByKey of every element and a combine of each
    key's values; `DaskRunner` lifts it: a per-bundle combine comes before the grouping."""
    from apache_beam.runners.dask.overrides import _GroupByKeyOnly
    from apache_beam.transforms.combiners import _PartialGroupByKeyCombiningValues

    from pipeline.dask_runner import runner_overrides

    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(WORDS) | beam.Map(lambda w: (w, 1)) | beam.CombinePerKey(sum)
    pipeline.replace_all(runner_overrides())
    nodes = []

    class Nodes(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            nodes.append(node)

    pipeline.visit(Nodes())
    (grouping,) = [node for node in nodes if isinstance(node.transform, _GroupByKeyOnly)]
    reify = grouping.inputs[0].producer  # Beam's GroupByKey reifies the windows first
    before = reify.inputs[0].producer
    assert isinstance(getattr(before.transform, "fn", None), _PartialGroupByKeyCombiningValues)
