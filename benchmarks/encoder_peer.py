"""Issue 18's benchmark: the pretrained encoder under the CRF, its softmax ablation, today's default
tagger and the Hugging Face peer, on WNUT-17, over seeds, in one run, one scorer for all.

    .venv/bin/python -m benchmarks.encoder_peer [--seeds 1 2 3] [--systems ...]
                                                [--work-dir DIR] [--output outputs/encoder_peer.md]

Systems (each trained on train, selected on dev, scored on test as served):

- `encoder+crf`: our pipeline with `--encoder minilm` (all-MiniLM-L6-v2 fine-tuned under the
  BiLSTM-CRF, beside the GloVe, casing and character features), `--encoder-epochs E` (the
  pipeline's own for an encoder: early stopping watching from the first epoch);
- `encoder+softmax`: the same with `--output softmax` (the CRF's ablation);
- `default`: our pipeline with no flags (`make run`: BiLSTM-CRF with GloVe 6B 50d);
- `encoder+crf+mean-pooling`, `encoder+crf+no-bilstm` (only when named in `--systems`):
  `encoder+crf` with each word's vector the mean of its word pieces' (`--encoder-pooling mean`),
  or with no BiLSTM between the features and the CRF (`--lstm-layers 0`);
- `hf`: `transformers` fine-tuning the same all-MiniLM-L6-v2 with a softmax head on each word's
  first sub-word (`benchmarks/hf_side.py`, in `.venv-torch`), AdamW 1e-4, batch 16, linear
  warm-up and decay, `--hf-epochs` epochs; its epoch is selected by dev F1 with our scorer.

`--resume FILE...` reads the runs (JSON lines) that an earlier, interrupted invocation printed
and trains only the missing ones; the table then holds both, each with its own load average.

Ours run as `spacy_peer.our_run` runs them (a fresh pipeline process; the pushed model tags the
test split's gold tokens in a fresh process), with `--seed S`. Every system's test F1 comes from
our scorer (conlleval semantics) on the gold tokens. Printed per run as it ends (JSON), then a
table per run and the mean and standard deviation per system, the load average beside each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.spacy_peer import REPO, last_json, load, our_run, run, score, write_sentences

TORCH_PYTHON = REPO / ".venv-torch" / "bin" / "python"
HF_SIDE = REPO / "benchmarks" / "hf_side.py"
SYSTEMS = ("encoder+crf", "encoder+softmax", "default", "hf")
# The encoder's design choices the issue asks to measure, run on request (`--systems`): each is
# `encoder+crf` with one setting changed.
ABLATIONS = {
    "encoder+crf+mean-pooling": (["--encoder-pooling", "mean"], "mean of its word pieces"),
    "encoder+crf+no-bilstm": (["--lstm-layers", "0"], "no BiLSTM"),
}


def our_system(system: str, seed: int, work: Path, splits, encoder_epochs: int) -> dict:
    flags = ["--seed", str(seed)]
    label = "ours: pipeline defaults (BiLSTM-CRF, GloVe 6B 50d)"
    if system.startswith("encoder"):
        output = system.split("+")[1]
        flags += ["--encoder", "minilm", "--encoder-epochs", str(encoder_epochs),
                  "--output", output]  # fmt: skip
        label = f"ours: MiniLM encoder + BiLSTM-{output.upper() if output == 'crf' else output}"
        if system in ABLATIONS:
            extra, what = ABLATIONS[system]
            flags += extra
            label += f", {what}"
    return our_run(work, splits["test"], tuple(flags), label, folder=f"{system}_seed{seed}")


def hf_system(seed: int, work: Path, splits, epochs: int) -> dict:
    from models.encoder.checkpoint import installed_minilm_path

    log = work / f"hf_seed{seed}.log"
    before = load()
    print(f"[hf seed {seed}] training ({before}) ...", file=sys.stderr, flush=True)
    run([TORCH_PYTHON, HF_SIDE, installed_minilm_path(), work, str(seed), str(epochs)], log)
    result = last_json(log.read_text(encoding="utf-8"))
    dev = {
        epoch: score(splits["eval"], work / f"hf_seed{seed}_epoch{epoch}_eval.jsonl")["f1"]
        for epoch in range(1, epochs + 1)
    }
    best = max(dev, key=lambda epoch: (dev[epoch], -epoch))  # the earliest of equal ones
    return {
        "system": f"Hugging Face transformers {result['transformers_version']} (softmax head)",
        "train_seconds": result["train_seconds"],
        "component_seconds": None,
        "test": score(splits["test"], work / f"hf_seed{seed}_epoch{best}_test.jsonl"),
        "dev_f1_by_epoch": dev,
        "serving": result["serving"],
        "load_training": before,
        "load_serving": load(),
    }


def system_key(result: dict) -> str:
    """`SYSTEMS`' name of a printed run (runs printed before `key` was added: by their label)."""
    if "key" in result:
        return result["key"]
    label = result["system"]
    if label.startswith("Hugging Face"):
        return "hf"
    if label.startswith("ours: MiniLM encoder"):
        return "encoder+crf" if label.endswith("CRF") else "encoder+softmax"
    return "default"


def earlier_runs(paths: list[Path]) -> dict[tuple[str, int], dict]:
    """(system, seed) -> the run, from the JSON lines of earlier invocations' output."""
    runs = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                result = json.loads(line)
                runs[system_key(result), result["seed"]] = result
    return runs


def table(results: list[dict]) -> str:
    lines = [
        "| system | seed | test entity F1 | training wall time | sentences/s batch 64 "
        "| one sentence, median | model on disk | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        s = r["serving"]
        lines.append(
            f"| {r['system']} | {r['seed']} | {r['test']['f1']:.2f} "
            f"| {r['train_seconds'] / 60:.1f} min | {s['sentences_per_second']['64']:,.0f} "
            f"| {s['latency_median_ms']:.1f} ms | {s['model_mb']:.1f} MB "
            f"| {r['load_training']}; {r['load_serving']} |"
        )
    lines += [
        "",
        "| system | runs | test entity F1, mean ± std | training, mean |",
        "|---|---:|---:|---:|",
    ]
    for system in dict.fromkeys(r["system"] for r in results):
        runs = [r for r in results if r["system"] == system]
        f1 = [r["test"]["f1"] for r in runs]
        spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
        minutes = statistics.mean(r["train_seconds"] for r in runs) / 60
        lines.append(f"| {system} | {len(runs)} | **{statistics.mean(f1):.2f}** ± {spread:.2f} "
                     f"| {minutes:.1f} min |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--systems", nargs="*", choices=[*SYSTEMS, *ABLATIONS], default=list(SYSTEMS)
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--encoder-epochs", type=int, default=4)
    parser.add_argument("--hf-epochs", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, help="keep models and logs here (default: temp)")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument("--resume", type=Path, nargs="*", default=[],
                        help="earlier invocations' output: their runs are kept, not trained again")  # fmt: skip
    args = parser.parse_args(argv)
    if "hf" in args.systems and not TORCH_PYTHON.exists():
        parser.error(f"{TORCH_PYTHON} not found: `make .venv-torch/.installed` builds it")
    with tempfile.TemporaryDirectory(prefix="encoder_peer_") as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        splits = write_sentences(work)
        done = earlier_runs(args.resume)
        results = []
        for seed in args.seeds:
            for system in args.systems:
                if (system, seed) in done:
                    print(f"[{system} seed {seed}] kept from {args.resume}", file=sys.stderr)
                    results.append(done[system, seed])
                    continue
                if system == "hf":
                    result = hf_system(seed, work, splits, args.hf_epochs)
                else:
                    result = our_system(system, seed, work, splits, args.encoder_epochs)
                result["seed"] = seed
                result["key"] = system
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
