"""Beam's Dask runner, made to run every branch of a pipeline: the data components on a
`dask.distributed` cluster.

    python -m pipeline.local_runner --beam-args="--runner=pipeline.dask_runner.DaskRunner \
        --dask_client_address=tcp://scheduler:8786"

Beam 2.74's `apache_beam.runners.dask.dask_runner.DaskRunner` translates the pipeline into one
`dask.bag` per transform, then computes only the bag of the *last* transform visited, on the
assumption (its own comment) that it "should be connected to the full Bag Task Graph". A pipeline
with several sinks is not: ConllExampleGen writes each split in its own branch, so the train split
was never written (measured: only `Split-eval` appeared), and StatisticsGen and Transform write
several outputs each. `DaskRunner` here computes every leaf bag (every transform whose output
no other transform reads, as main or side input) in one graph, so every sink runs.

Also true of Beam 2.74's Dask runner, and kept in mind by the components: it reports no metrics
(`ConllExampleGen` then records no read counts on its examples), and a side input is recomputed
by each transform that reads it, so a step with a side effect behind a side input runs more than
once (Beam's file sinks leave an empty `beam-temp-*` folder per extra run; the outputs are whole).
`--dask_client_address` names the scheduler; without it the runner starts a local cluster.
"""

from __future__ import annotations

import copy
import dataclasses

import apache_beam
import dask
import dask.distributed
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnInvoker
from apache_beam.runners.dask import dask_runner as beam_dask_runner
from apache_beam.runners.dask import transform_evaluator
from apache_beam.runners.dask.overrides import dask_overrides

__all__ = ["DaskRunner", "leaf_transforms"]


def apply_dofn_to_bundle(items, do_fn_invoker_args, do_fn_invoker_kwargs, tagged_receivers):
    """Runs a DoFn over one Dask partition (a bundle) and returns its outputs, those emitted by
    `finish_bundle` included.

    Beam's `transform_evaluator.apply_dofn_to_bundle` reads the outputs before it calls
    `finish_bundle`, so what a DoFn emits there is lost: Beam's file sinks emit the files they
    wrote from `finish_bundle`, so every sharded write (`WriteToTFRecord`, as ExampleGen writes
    its splits) finalised an empty file. The invoker and its receivers are copied per partition:
    Dask hands the same deserialised arguments to every task of a worker, and the receivers'
    output list would otherwise carry one partition's outputs into the next.
    """
    args, kwargs, receivers = copy.deepcopy(
        (do_fn_invoker_args, do_fn_invoker_kwargs, tagged_receivers)
    )
    invoker = DoFnInvoker.create_invoker(*args, **kwargs)
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return [value.value for value in receivers.values]


class _ParDo(transform_evaluator.ParDo):
    """Beam's ParDo translation, with `apply_dofn_to_bundle` above in each partition's task."""

    def apply(self, input_bag, side_inputs=None):
        beams = transform_evaluator.apply_dofn_to_bundle
        transform_evaluator.apply_dofn_to_bundle = apply_dofn_to_bundle
        try:
            return super().apply(input_bag, side_inputs)
        finally:
            transform_evaluator.apply_dofn_to_bundle = beams


class _Consumers(PipelineVisitor):
    """Collects the transforms whose outputs some transform reads (as main or side input)."""

    def __init__(self):
        self.read = set()

    def visit_transform(self, transform_node) -> None:
        for value in transform_node.inputs:
            self.read.add(value.producer)
        for side_input in transform_node.side_inputs:
            self.read.add(side_input.pvalue.producer)


class _PersistedSideInputs(PipelineVisitor):
    """Beam's bag visitor, with the bag of every side input persisted on the cluster before the
    first transform that reads it is translated: Beam's runner hands each reader the bag itself,
    which each task then computes on its own (`list(bag)`), so everything upstream of a side
    input ran once per reading task; a persisted bag is computed once and fetched."""

    def __init__(self, bags_visitor, client):
        self.bags_visitor = bags_visitor
        self.client = client
        self.persisted: set = set()

    @property
    def bags(self) -> dict:
        return self.bags_visitor.bags

    def visit_transform(self, transform_node) -> None:
        for side_input in transform_node.side_inputs:
            producer = side_input.pvalue.producer
            if producer in self.bags and producer not in self.persisted:
                self.bags[producer] = self.client.persist(self.bags[producer])
                self.persisted.add(producer)
        self.bags_visitor.visit_transform(transform_node)


def leaf_transforms(pipeline, transforms) -> list:
    """Of `transforms` (applied transforms of `pipeline`), those whose outputs nothing reads."""
    consumers = _Consumers()
    pipeline.visit(consumers)
    return [node for node in transforms if node not in consumers.read]


@dataclasses.dataclass
class DaskRunnerResult(beam_dask_runner.DaskRunnerResult):
    """Beam's result, also holding the persisted side inputs: the cluster keeps a persisted
    bag's data only while a client holds its futures, and the tasks still to run read them."""

    persisted: list = dataclasses.field(default_factory=list)


class DaskRunner(beam_dask_runner.DaskRunner):
    """`apache_beam.runners.dask.dask_runner.DaskRunner` computing every sink, not the last only."""

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(beam_dask_runner.DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = beam_dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        client = dask.distributed.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        visitor = _PersistedSideInputs(self.to_dask_bag_visitor(bag_kwargs), client)
        # Beam's visitor reads its translations from this table while it visits.
        beams = transform_evaluator.TRANSLATIONS[apache_beam.ParDo]
        transform_evaluator.TRANSLATIONS[apache_beam.ParDo] = _ParDo
        try:
            pipeline.visit(visitor)
        finally:
            transform_evaluator.TRANSLATIONS[apache_beam.ParDo] = beams
        leaves = [visitor.bags[node] for node in leaf_transforms(pipeline, visitor.bags)]
        futures = client.compute(list(dask.optimize(*leaves)))
        persisted = [visitor.bags[node] for node in visitor.persisted]
        return DaskRunnerResult(client, futures, persisted)
