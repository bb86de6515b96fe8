"""Serving benchmark of the pushed model's `serve_sentences` signature, in a fresh process.

    python -m benchmarks.serving_latency --serving-dir outputs/serving_model/ner_bilstm_crf

Measures, on sentences of the bundled sample (data/sample/*.conll, tokens joined by spaces):

- the time to load the SavedModel;
- single-sentence latency (one sentence per call, after a warm-up): median and p99;
- throughput (sentences/s) for batches of 1, 32 and 256 sentences per call;
- the `ner-tag` command on a 10,000-sentence text file (the sample sentences repeated), end to
  end in its own process (start-up and model loading included), JSON lines output.

The machine's load average is printed with the figures: other processes on a shared machine slow
every figure alike.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample_sentences() -> list[str]:
    from components.conll_format import read_conll

    sentences = []
    for name in ("train.conll", "eval.conll"):
        path = os.path.join(REPOSITORY_ROOT, "data", "sample", name)
        sentences.extend(" ".join(s.tokens) for s in read_conll(path))
    return sentences


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--serving-dir", default=os.path.join("outputs", "serving_model", "ner_bilstm_crf")
    )
    parser.add_argument("--single-calls", type=int, default=300)
    parser.add_argument("--seconds-per-batch-size", type=float, default=5.0)
    parser.add_argument("--cli-sentences", type=int, default=10_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from serving.model_version import resolve_model_dir

    model_dir = resolve_model_dir(args.serving_dir)
    sentences = sample_sentences()
    results: dict[str, object] = {
        "model_dir": model_dir,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }

    start = time.perf_counter()
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures["serve_sentences"]
    results["load_seconds"] = time.perf_counter() - start

    def call(batch):
        outputs = signature(sentences=tf.constant(batch))
        return outputs["tags"].numpy()

    for sentence in sentences[:20]:  # warm-up (first calls trace and allocate)
        call([sentence])
    latencies = []
    for sentence in itertools.islice(itertools.cycle(sentences), args.single_calls):
        begin = time.perf_counter()
        call([sentence])
        latencies.append(1000 * (time.perf_counter() - begin))
    results["single_sentence_ms"] = {
        "median": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "calls": len(latencies),
    }

    throughput = {}
    for batch_size in (1, 32, 256):
        pool = itertools.cycle(sentences)
        batches = [[next(pool) for _ in range(batch_size)] for _ in range(8)]
        call(batches[0])  # warm-up at this size
        done, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < args.seconds_per_batch_size:
            call(batches[done % len(batches)])
            done += 1
        throughput[str(batch_size)] = done * batch_size / (time.perf_counter() - begin)
    results["sentences_per_second"] = throughput

    with tempfile.TemporaryDirectory() as directory:
        text = os.path.join(directory, "sentences.txt")
        with open(text, "w", encoding="utf-8") as file:
            for sentence in itertools.islice(itertools.cycle(sentences), args.cli_sentences):
                file.write(sentence + "\n")
        output = os.path.join(directory, "tagged.jsonl")
        command = [
            os.path.join(os.path.dirname(sys.executable), "ner-tag"),
            "--serving-dir", model_dir, "--file", text, "--format", "jsonl",
            "-o", output, "--batch-size", "256", "--no-progress",
        ]  # fmt: skip
        begin = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - begin
        if completed.returncode != 0:
            raise RuntimeError(f"ner-tag failed: {completed.stderr[-2000:]}")
        with open(output, encoding="utf-8") as file:
            num_lines = sum(1 for _ in file)
        results["cli"] = {
            "sentences": num_lines,
            "seconds": seconds,
            "sentences_per_second": num_lines / seconds,
        }
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    single = results["single_sentence_ms"]
    print(
        f"single sentence: median {single['median']:.1f} ms, p99 {single['p99']:.1f} ms; "
        + ", ".join(f"batch {k}: {v:,.0f} sentences/s" for k, v in throughput.items())
        + f"; ner-tag on {results['cli']['sentences']:,} sentences: "
        f"{results['cli']['seconds']:.1f} s ({results['cli']['sentences_per_second']:,.0f}/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
