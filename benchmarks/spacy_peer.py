"""Our pipeline side by side with spaCy 3.8 on WNUT-17: entity F1, training time, serving, size.

    make bench-spacy          # builds .venv-spacy from requirements/spacy.lock, then runs this
    .venv/bin/python -m benchmarks.spacy_peer [--spacy-settings efficiency efficiency+glove]
                                              [--output outputs/spacy_peer.md]

One run on one machine, the same data for both: WNUT-17 `data/wnut17/{train,eval,test}.conll`,
read once by the pipeline's own CoNLL reader.

- **Ours**: `python -m pipeline.local_runner` with no flags (what `make run` does: the bundled
  WNUT-17, GloVe 6B 50d, the default BiLSTM-CRF), fresh outputs, in its own process. Training time
  is the whole pipeline's wall time (ExampleGen to Pusher) and, beside it, the Trainer
  component's own seconds from the run's ML Metadata store.
- **spaCy**: `spacy init config --lang en --pipeline ner --optimize efficiency` (spaCy's default
  English NER configuration for CPU) trained with `spacy train` on train, selecting on dev (its
  own early stopping: patience 1,600 steps, at most 20,000), seed 1. `efficiency+glove`: the same
  configuration with `include_static_vectors = true` and the same GloVe 6B 50d vectors loaded
  with `spacy init vectors`; `accuracy+glove`: spaCy's accuracy configuration (wider, deeper
  tok2vec, static vectors) with GloVe. spaCy runs in `.venv-spacy` (`benchmarks/spacy_side.py`).

Both models then tag the test split in a fresh process of their own: on the gold tokens for the
F1 (the same tokens, so one scorer, ours with conlleval semantics, scores both), and as raw text
(the tokens joined by spaces) for speed, each through what a user would call: `nlp.pipe` /
`nlp(text)` and the pushed model's `serve_sentences` signature. Throughput is sentences per
second over the 1,287 test sentences at batch sizes 1, 64 and 256; latency the median of 300
one-sentence calls after a warm-up. Model size: the files of the pushed version / of spaCy's
`model-best`. The load average is printed beside every part.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.spacy_side import BATCH_SIZES, serving_figures

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "wnut17"
SPACY_PYTHON = REPO / ".venv-spacy" / "bin" / "python"
SPACY_SIDE = REPO / "benchmarks" / "spacy_side.py"
GLOVE = "embeddings/glove.6B.50d/glove.6B.50d.txt.gz"
SPACY_SETTINGS = {
    # name: (spacy init config --optimize, include static vectors)
    "efficiency": ("efficiency", False),
    "efficiency+glove": ("efficiency", True),
    "accuracy+glove": ("accuracy", True),
}


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def write_sentences(work: Path) -> dict[str, list]:
    """Reads train, eval (dev) and test with our reader; writes them as JSON lines for spaCy."""
    from components.conll_format import read_conll

    splits = {}
    for split in ("train", "eval", "test"):
        sentences = list(read_conll(DATA / f"{split}.conll"))
        with open(work / f"{split}.jsonl", "w", encoding="utf-8") as out:
            for sentence in sentences:
                out.write(
                    json.dumps({"tokens": list(sentence.tokens), "tags": list(sentence.tags)})
                )
                out.write("\n")
        splits[split] = sentences
    return splits


def score(gold_sentences, predictions_path: Path) -> dict:
    """Entity precision, recall and F1 (percent) of the predicted tags, with our scorer."""
    from models.entity_scoring import score_entities

    with open(predictions_path, encoding="utf-8") as lines:
        predicted = [json.loads(line)["tags"] for line in lines]
    gold = [list(s.tags) for s in gold_sentences]
    if [len(p) for p in predicted] != [len(g) for g in gold]:
        raise RuntimeError(f"{predictions_path}: the predictions do not match the test tokens")
    scores = score_entities(gold, predicted, "iob2")
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def run(command: list, log: Path, **kwargs) -> float:
    """Runs `command`, its output into `log`; returns its wall seconds (raises on failure)."""
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        completed = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    seconds = time.monotonic() - start
    if completed.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, command[:4]))} ... failed:\n{tail}")
    return seconds


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


# ----------------------------------------------------------------------------------------------
# spaCy
# ----------------------------------------------------------------------------------------------


def spacy_run(setting: str, work: Path, test_sentences, seed: int) -> dict:
    optimize, vectors = SPACY_SETTINGS[setting]
    folder = work / f"spacy_{setting}"
    folder.mkdir()
    python = [str(SPACY_PYTHON)]
    for split in ("train", "eval"):
        if not (work / f"{split}.spacy").exists():
            run([*python, SPACY_SIDE, "docbin", work / f"{split}.jsonl", work / f"{split}.spacy"],
                folder / "docbin.log")  # fmt: skip
    config = folder / "config.cfg"
    run([*python, "-m", "spacy", "init", "config", config, "--lang", "en", "--pipeline", "ner",
         "--optimize", optimize, "--force"], folder / "init_config.log")  # fmt: skip
    overrides = ["--paths.train", work / "train.spacy", "--paths.dev", work / "eval.spacy",
                 "--system.seed", str(seed)]  # fmt: skip
    vectors_seconds = 0.0
    if vectors:
        vectors_dir = work / "spacy_glove_vectors"
        if not vectors_dir.exists():
            shared = Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))
            vectors_seconds = run(
                [*python, "-m", "spacy", "init", "vectors", "en", shared / GLOVE, vectors_dir],
                folder / "init_vectors.log",
            )
        overrides += ["--paths.vectors", vectors_dir,
                      "--components.tok2vec.model.embed.include_static_vectors", "true"]  # fmt: skip
    else:
        overrides += ["--paths.vectors", "null"]
    print(f"[spacy {setting}] training ({load()}) ...", file=sys.stderr, flush=True)
    seconds = run(
        [*python, "-m", "spacy", "train", config, "--output", folder / "model", *overrides],
        folder / "train.log",
    )
    print(f"[spacy {setting}] trained in {seconds:.0f} s ({load()})", file=sys.stderr, flush=True)
    predictions = folder / "predictions.jsonl"
    before = load()
    log = folder / "tag.log"
    run([*python, SPACY_SIDE, "tag", folder / "model" / "model-best", work / "test.jsonl",
         predictions], log)  # fmt: skip
    serving = last_json(log.read_text(encoding="utf-8"))
    return {
        "system": f"spaCy {serving.pop('spacy_version')} {setting}",
        "train_seconds": seconds + vectors_seconds,
        "component_seconds": None,
        "test": score(test_sentences, predictions),
        "serving": serving,
        "load_training": before,
        "load_serving": f"{before} -> {load()}",
    }


# ----------------------------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------------------------


def our_tag(model_dir: str, sentences_path: str, predictions_path: str) -> None:
    """Our half of `spacy_side.tag`, run in a fresh process: the same figures, the same format."""
    import tensorflow as tf

    from models.features import SENTENCES_SIGNATURE, TOKENS_SIGNATURE
    from serving.tagging import load_signatures, tag_token_batches

    start = time.perf_counter()
    # One load for both (before 2026-12-07, evening: two, which doubled our load time).
    signature, tokens_signature = load_signatures(
        model_dir, [SENTENCES_SIGNATURE, TOKENS_SIGNATURE]
    )
    load_seconds = time.perf_counter() - start
    with open(sentences_path, encoding="utf-8") as lines:
        token_lists = [json.loads(line)["tokens"] for line in lines]
    with open(predictions_path, "w", encoding="utf-8") as out:
        for tagged in tag_token_batches(tokens_signature, token_lists, batch_size=64):
            out.write(json.dumps({"tags": list(tagged.tags)}) + "\n")

    texts = [" ".join(tokens) for tokens in token_lists]

    def call(batch):
        return signature(sentences=tf.constant(batch))["tags"].numpy()

    def tag_all(batch: list[str], batch_size: int) -> None:
        for offset in range(0, len(batch), batch_size):
            call(batch[offset : offset + batch_size])

    print(json.dumps(serving_figures(model_dir, load_seconds, texts, lambda t: call([t]), tag_all)))


def our_run(
    work: Path,
    test_sentences,
    flags: tuple[str, ...] = (),
    label: str = "ours: pipeline defaults (BiLSTM-CRF, GloVe 6B 50d)",
    folder: str = "ours",
) -> dict:
    """Runs our pipeline with `flags` into `work/folder`, then tags the test split with the
    pushed model in a fresh process (`our_tag`)."""
    output_dir = work / folder
    name = "peer_benchmark"
    print(f"[{folder}] running the pipeline ({load()}) ...", file=sys.stderr, flush=True)
    before = load()
    seconds = run(
        [sys.executable, "-m", "pipeline.local_runner", "--output-dir", output_dir,
         "--pipeline-name", name, *flags],
        work / f"{folder}.log", cwd=REPO,
    )  # fmt: skip
    print(f"[{folder}] pipeline done in {seconds:.0f} s ({load()})", file=sys.stderr, flush=True)
    # Imported after the run, so that this process holds no TensorFlow while the pipeline runs.
    from tfx import v1 as tfx

    from pipeline.run_summary import latest_run_executions
    from serving.model_version import resolve_model_dir

    executions = latest_run_executions(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(output_dir / "metadata" / name / "metadata.db")
        )
    )
    trainer = sum(e.seconds for e in executions if e.node_id == "Trainer")
    model_dir = resolve_model_dir(str(output_dir / "serving_model" / name))
    predictions = work / f"{folder}_predictions.jsonl"
    serving_before = load()
    log = work / f"{folder}_tag.log"
    run([sys.executable, "-m", "benchmarks.spacy_peer", "--our-tag", model_dir,
         work / "test.jsonl", predictions], log, cwd=REPO)  # fmt: skip
    return {
        "system": label,
        "train_seconds": seconds,
        "component_seconds": trainer,
        "test": score(test_sentences, predictions),
        "serving": last_json(log.read_text(encoding="utf-8")),
        "load_training": before,
        "load_serving": f"{serving_before} -> {load()}",
    }


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = [
        f"{os.cpu_count()} CPUs; WNUT-17 test, {results[0]['test_sentences']} sentences; "
        "one scorer (ours, conlleval semantics) on the gold tokens.",
        "",
        "| system | test P | test R | test entity F1 | training wall time (Trainer alone) "
        "| sentences/s batch 1 / 64 / 256 | one sentence, median (p99) | load model "
        "| model on disk | load average (training; serving) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        s, t = r["serving"], r["test"]
        throughput = " / ".join(f"{s['sentences_per_second'][str(b)]:,.0f}" for b in BATCH_SIZES)
        alone = f" ({r['component_seconds'] / 60:.1f})" if r["component_seconds"] else ""
        lines.append(
            f"| {r['system']} | {t['precision']:.2f} | {t['recall']:.2f} | **{t['f1']:.2f}** "
            f"| {r['train_seconds'] / 60:.1f} min{alone} | {throughput} "
            f"| {s['latency_median_ms']:.1f} ms ({s['latency_p99_ms']:.1f}) "
            f"| {s['load_seconds']:.1f} s | {s['model_mb']:.1f} MB "
            f"| {r['load_training']}; {r['load_serving']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spacy-settings",
        nargs="*",
        choices=list(SPACY_SETTINGS),
        default=["efficiency", "efficiency+glove"],
    )
    parser.add_argument("--no-ours", action="store_true", help="spaCy only (to try a setting)")
    parser.add_argument("--seed", type=int, default=1, help="spaCy's seed (ours: its default)")
    parser.add_argument("--work-dir", type=Path, help="keep models and logs here (default: temp)")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument(
        "--our-tag",
        nargs=3,
        metavar=("MODEL_DIR", "SENTENCES", "PREDICTIONS"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.our_tag:
        our_tag(*args.our_tag)
        return 0
    if args.spacy_settings and not SPACY_PYTHON.exists():
        parser.error(f"{SPACY_PYTHON} not found: `make .venv-spacy/.installed` builds it")

    with tempfile.TemporaryDirectory(prefix="spacy_peer_") as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        splits = write_sentences(work)
        runs = [] if args.no_ours else [lambda: our_run(work, splits["test"])]
        runs += [
            functools.partial(spacy_run, setting, work, splits["test"], args.seed)
            for setting in args.spacy_settings
        ]
        results = []
        for run_one in runs:
            result = run_one()
            result["test_sentences"] = len(splits["test"])
            result["serving"]["sentences_per_second"] = {
                str(k): v for k, v in result["serving"]["sentences_per_second"].items()
            }
            print(json.dumps(result), flush=True)  # each as it ends: a long run keeps its parts
            results.append(result)
    text = table(results)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
