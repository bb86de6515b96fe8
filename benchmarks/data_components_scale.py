"""The data components' cost as the corpus grows, on each way Beam runs here.

    .venv/bin/python -m benchmarks.data_components_scale [--sizes 10000 100000]
        [--runners in-memory multi-process dask] [--timeout-minutes 30] [--new-word-rate 0.1]
        [--max-token-vocabulary-sizes 0 100000]

For each size, a synthetic CoNLL corpus: that many training sentences and a tenth as many eval
sentences, each a WNUT-17 training sentence's length and tag sequence with tokens drawn at random
from all of WNUT-17's token occurrences (so word frequencies stay realistic), one token in ten
(`--new-word-rate`) given a random suffix (so the vocabulary keeps growing with the corpus, as
real text's does, if faster: about linearly). Seed 0.

Each (size, runner, vocabulary bound) is `pipeline.pipeline.data_components_only`
(ConllExampleGen, StatisticsGen, ImportSchemaGen, ExampleValidator, ValidationGate, Transform) in a
fresh process with fresh outputs, under TFX's LocalDagRunner, the word vocabulary exact (the
default) or bounded by `--max-token-vocabulary-size` (each value of
`--max-token-vocabulary-sizes`), the Beam runner being:
- `in-memory`: Beam's DirectRunner in that process (`make run`'s default);
- `multi-process`: the DirectRunner with `--direct_running_mode=multi_processing
  --direct_num_workers=2`;
- `dask`: `pipeline.dask_runner.DaskRunner` on a `dask.distributed` LocalCluster of two worker
  processes on loopback, started in that process.
Per component: seconds (ML Metadata's start and end of its execution), sentences per second
(train + eval sentences over those seconds), and the peak resident memory of the whole process
tree (the process, Beam's and Dask's workers; summed RSS, so shared pages count once per
process) sampled every 0.25 s while it ran. Two references, on the same files:
- a plain Python reader (split lines, sentences at blank lines, token and tag per line), timed in
  this process: the issue's yardstick for ExampleGen;
- a plain Python writer: that reader, then each sentence as a `tf.train.Example` built with
  protobuf's API and written to one gzipped TFRecord file with `tf.io.TFRecordWriter` (what a
  script converting the files by hand would do; ExampleGen's output holds the same records), in
  a child process, timed without its imports.

A run that does not finish within `--timeout-minutes` is stopped and reported as such; the
larger sizes of that runner are then skipped.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.component_memory import component_intervals

REPO = Path(__file__).resolve().parents[1]
WNUT17 = REPO / "data" / "wnut17"
RUNNERS = {
    "in-memory": "--direct_running_mode=in_memory --direct_num_workers=1",
    "multi-process": "--direct_running_mode=multi_processing --direct_num_workers=2",
    "dask": None,  # the address of the cluster the run starts
}
COMPONENTS = ("ConllExampleGen", "StatisticsGen", "ExampleValidator", "Transform")


def write_synthetic_corpus(
    data_dir: Path, sentences: int, seed: int = 0, new_word_rate: float = 0.1
) -> int:
    """train.conll (`sentences`) and eval.conll (a tenth), as the module docstring says, one token
    in `1 / new_word_rate` given a random suffix; returns the number of distinct training tokens."""
    text = (WNUT17 / "train.conll").read_text(encoding="utf-8")
    blocks = [block for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()]
    shapes = [[line.split("\t")[-1] for line in block.splitlines()] for block in blocks]
    tokens = [line.split("\t")[0] for block in blocks for line in block.splitlines()]
    rng = random.Random(seed)
    data_dir.mkdir(parents=True)
    distinct: set[str] = set()
    for split, count in (("train", sentences), ("eval", max(1, sentences // 10))):
        with open(data_dir / f"{split}.conll", "w", encoding="utf-8") as file:
            for _ in range(count):
                for tag in rng.choice(shapes):
                    token = rng.choice(tokens)
                    if rng.random() < new_word_rate:
                        token += str(rng.randrange(1_000_000))
                    if split == "train":
                        distinct.add(token)
                    file.write(f"{token}\t{tag}\n")
                file.write("\n")
    return len(distinct)


def plain_python_read(data_dir: Path) -> tuple[int, float]:
    """(sentences, seconds) of reading the corpus's files with a plain Python loop."""
    start = time.perf_counter()
    sentences = 0
    for split in ("train", "eval"):
        tokens, tags = [], []
        with open(data_dir / f"{split}.conll", encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    token, tag = line.rstrip("\n").split("\t")
                    tokens.append(token)
                    tags.append(tag)
                elif tokens:
                    sentences += 1
                    tokens, tags = [], []
        sentences += bool(tokens)
    return sentences, time.perf_counter() - start


def plain_python_write(data_dir: str, output_dir: str) -> None:
    """In a child process: the plain reader's sentences written as gzipped tf.Example records;
    prints `sentences seconds`."""
    import tensorflow as tf

    def feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    start = time.perf_counter()
    sentences = 0
    for split in ("train", "eval"):
        path = os.path.join(output_dir, f"{split}.tfrecord.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for line_number, tokens, tags in _plain_sentences(Path(data_dir) / f"{split}.conll"):
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "tokens": feature(tokens),
                            "tags": feature(tags),
                            "sentence_id": feature([f"{split}.conll:{line_number}"]),
                        }
                    )
                )
                writer.write(example.SerializeToString())
                sentences += 1
    print(sentences, time.perf_counter() - start)


def _plain_sentences(path: Path):
    """(first line, tokens, tags) of each sentence of a file, read as `plain_python_read` does."""
    tokens, tags, first = [], [], 0
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                token, tag = line.rstrip("\n").split("\t")
                if not tokens:
                    first = number
                tokens.append(token)
                tags.append(tag)
            elif tokens:
                yield first, tokens, tags
                tokens, tags = [], []
    if tokens:
        yield first, tokens, tags


def run_one(data_dir: str, output_dir: str, runner: str, vocabulary_size: str = "0") -> None:
    """In the child process: the data components on `runner`, the word vocabulary bounded by
    `vocabulary_size` (`--max-token-vocabulary-size`; 0: exact)."""
    from tfx import v1 as tfx

    from pipeline.config import PipelineConfig
    from pipeline.local_runner import as_local_run, temporary_files_of_the_run
    from pipeline.pipeline import create_pipeline, data_components_only

    def run(beam_args: str) -> None:
        config = PipelineConfig.from_args(
            ["--data-dir", data_dir, "--output-dir", output_dir, "--no-embeddings",
             "--no-cache", "--beam-args", beam_args,
             *bounded_vocabulary_flags(int(vocabulary_size))],
            environ={},
        )  # fmt: skip
        # As a local run (`pipeline.local_runner`): its temporary folder and Beam options.
        with temporary_files_of_the_run():
            pipeline = data_components_only(create_pipeline(as_local_run(config)))
            tfx.orchestration.LocalDagRunner().run(pipeline)

    if runner != "dask":
        run(RUNNERS[runner])
        return
    import distributed

    # The workers unpickle the components' functions: they import this repository's packages.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        run(
            "--runner=pipeline.dask_runner.DaskRunner "
            f"--dask_client_address={cluster.scheduler_address}"
        )


def bounded_vocabulary_flags(vocabulary_size: int) -> list[str]:
    """The pipeline's flags for a word vocabulary bounded by a sketch of `vocabulary_size`
    counters (none for 0, the exact default); the sketch takes no frequency threshold."""
    if not vocabulary_size:
        return []
    return ["--max-token-vocabulary-size", str(vocabulary_size), "--token-frequency-threshold", "1"]


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for each in [process, *process.children(recursive=True)]:
        try:
            total += each.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _finished_components(output_dir: Path) -> list[str]:
    """The components a stopped run had finished, from its metadata store."""
    metadata = output_dir / "metadata" / "ner_bilstm_crf" / "metadata.db"
    try:
        return [node for node, state, _, _ in component_intervals(metadata) if state == "COMPLETE"]
    except Exception:  # noqa: BLE001 - a store the killed run left half-written
        return []


def measure(
    data_dir: Path, work: Path, runner: str, timeout_s: float, vocabulary_size: int = 0
) -> dict:
    """Runs one (corpus, runner, vocabulary bound) in a fresh process; per component: seconds
    and peak RSS."""
    output_dir = work / "outputs"
    command = [
        sys.executable, "-m", "benchmarks.data_components_scale",
        "--run-one", str(data_dir), str(output_dir), runner, str(vocabulary_size),
    ]  # fmt: skip
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    log_path = work / "run.log"
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        process = psutil.Process(child.pid)
        while child.poll() is None:
            if time.monotonic() - start > timeout_s:
                for each in [*process.children(recursive=True), process]:
                    each.kill()
                child.wait()
                return {
                    "timed_out": True,
                    "seconds": time.monotonic() - start,
                    "finished": _finished_components(output_dir),
                }
            samples.append((time.time(), _tree_rss(process)))
            time.sleep(0.25)
    if child.returncode != 0:
        raise RuntimeError(f"{runner} failed:\n{log_path.read_text()[-4000:]}")
    metadata = output_dir / "metadata" / "ner_bilstm_crf" / "metadata.db"
    components = {}
    for node, _state, begin, end in component_intervals(metadata):
        inside = [rss for at, rss in samples if begin <= at <= end]
        components[node] = {"seconds": end - begin, "peak": max(inside) if inside else None}
    return {"timed_out": False, "seconds": time.monotonic() - start, "components": components}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    parser.add_argument("--timeout-minutes", type=float, default=30)
    parser.add_argument(
        "--new-word-rate", type=float, default=0.1,
        help="share of tokens given a random suffix (a new word): the vocabulary's growth",
    )  # fmt: skip
    parser.add_argument(
        "--max-token-vocabulary-sizes", nargs="+", type=int, default=[0],
        help="each runner once per value: the word vocabulary exact (0) or bounded by a sketch "
        "of that many counters (the pipeline's --max-token-vocabulary-size)",
    )  # fmt: skip
    parser.add_argument("--run-one", nargs=4, metavar=("DATA", "OUTPUT", "RUNNER", "VOCABULARY"))
    parser.add_argument("--plain-write", nargs=2, metavar=("DATA", "OUTPUT"))
    args = parser.parse_args(argv)
    if args.run_one:
        run_one(*args.run_one)
        return
    if args.plain_write:
        plain_python_write(*args.plain_write)
        return
    rows, ratios, vocabularies = [], [], []
    stopped: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="data_components_scale_") as work:
        for size in args.sizes:
            data_dir = Path(work) / str(size) / "data"
            vocabulary = write_synthetic_corpus(data_dir, size, new_word_rate=args.new_word_rate)
            vocabularies.append(f"{size:,}: {vocabulary:,}")
            sentences, seconds = plain_python_read(data_dir)
            rows.append((size, "plain Python reader", "read", seconds, sentences / seconds, None))
            print(f"[{size}] plain reader: {sentences / seconds:,.0f} sentences/s",
                  file=sys.stderr, flush=True)  # fmt: skip
            written = Path(work) / str(size) / "plain_writer"
            written.mkdir()
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.data_components_scale", "--plain-write",
                 str(data_dir), str(written)],
                cwd=REPO, check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            write_seconds = float(out[-1])
            rows.append((size, "plain Python writer", "read + write", write_seconds,
                         sentences / write_seconds, None))  # fmt: skip
            references = {"reader": seconds, "writer": write_seconds}
            runs = [
                (runner, bound, runner + (f", vocabulary sketch {bound:,}" if bound else ""))
                for runner in args.runners
                for bound in args.max_token_vocabulary_sizes
            ]
            for runner, bound, label in runs:
                if label in stopped:
                    rows.append((size, label, "(skipped: a smaller size timed out)", *[None] * 3))
                    continue
                run_dir = Path(work) / str(size) / f"{runner}-{bound}"
                run_dir.mkdir()
                print(f"[{size}] {label} ...", file=sys.stderr, flush=True)
                result = measure(data_dir, run_dir, runner, args.timeout_minutes * 60, bound)
                if result["timed_out"]:
                    stopped.add(label)
                    finished = ", ".join(result["finished"]) or "none"
                    rows.append((size, label, f"(stopped: over the time limit; finished: {finished})",
                                 result["seconds"], None, None))  # fmt: skip
                    continue
                for name in COMPONENTS:
                    component = result["components"].get(name)
                    if component:
                        rows.append((size, label, name, component["seconds"],
                                     sentences / component["seconds"], component["peak"]))  # fmt: skip
                example_gen = result["components"].get("ConllExampleGen")
                if example_gen:
                    ratios.append(
                        f"{size:,} {label}: ExampleGen "
                        f"{example_gen['seconds'] / references['reader']:.1f}x the plain reader, "
                        f"{example_gen['seconds'] / references['writer']:.1f}x the plain writer"
                    )
                print(f"[{size}] {label}: {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    print("| train sentences | runner | component | seconds | sentences/s | peak RSS (GB) |")
    print("|---:|---|---|---:|---:|---:|")
    for size, runner, name, seconds, rate, peak in rows:
        print(
            f"| {size:,} | {runner} | {name} | "
            + (f"{seconds:.1f}" if seconds is not None else "")
            + " | "
            + (f"{rate:,.0f}" if rate is not None else "")
            + " | "
            + (f"{peak / 1e9:.2f}" if peak is not None else "")
            + " |"
        )
    print(
        f"\n- Sentences per second count train + eval sentences. CPU: {os.cpu_count()} cores; "
        f"load average at the end {os.getloadavg()[0]:.1f}."
    )
    rate = f"one in {1 / args.new_word_rate:.0f} tokens" if args.new_word_rate else "no token"
    print(f"- Distinct training tokens ({rate} a new word): " + "; ".join(vocabularies))
    for line in ratios:
        print(f"- {line}")


if __name__ == "__main__":
    main()
