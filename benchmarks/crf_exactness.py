"""The CRF's log-likelihood at any score scale: ours, TF Addons and pytorch-crf against a float64
brute force over every tag path (issue 15).

    .venv/bin/python -m benchmarks.crf_exactness [--batches 16] [--output outputs/crf_exactness.md]

For each scale s in 1, 10, 100, 1,000, batches of 4 sequences of length 5 (lengths 5, 4, 3, 1)
over 4 tags: emissions drawn from N(0, s^2), transitions from N(0, (s/2)^2), start and end
transitions zero (TF Addons has none); once with every transition allowed and once with some
forbidden (-inf: each tag keeps at least one way in and one way out). Each sequence is scored on
its least likely allowed path (found by the brute force): the hardest case for a scaled forward
recursion, whose rounding is carried into log Z when a tag that held a tiny share of a step's mass
becomes the best one later (the issue's finding: 28-210% off at s = 70-100 before).

The figure is the largest relative error of the log-likelihood over the sequences of a scale,
`|ll - ll_float64| / |ll_float64|`, and the count of non-finite or positive log-likelihoods.
Ours runs in this process in TensorFlow graph mode (`tf.function`, what Keras trains with on CPU),
with the layer's defaults (the loss as XLA programs called from the graph, `crf.compiled_in_graph`)
and without (`linear_crf/_tensorflow.py`'s graph-mode code), and under XLA (`jit_compile=True`:
the `keras.ops` loops of `crf.py`); TF Addons 0.23 (`tfa.text.crf_log_likelihood`, graph mode) in `.venv-tfa` and
pytorch-crf 0.7.2 (`CRF.forward(reduction="none")`) in `.venv-torch`, through this same module
(`--side tfa|pytorch_crf`). Target (issue 15): ours at most 1e-5 at every scale, and no NaN.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCALES = (1.0, 10.0, 100.0, 1000.0)
LENGTHS = (5, 4, 3, 1)
NUM_TAGS = 4
TARGET = 1e-5
SIDES = {
    "tfa": (".venv-tfa", "make .venv-tfa/.installed"),
    "pytorch_crf": (".venv-torch", "make .venv-torch/.installed"),
}


def _forbidden(rng: np.random.Generator) -> np.ndarray:
    """A boolean `(N, N)` [from, to] of forbidden transitions; every tag keeps a way in and out."""
    while True:
        forbidden = rng.random((NUM_TAGS, NUM_TAGS)) < 0.35
        if not forbidden.all(axis=0).any() and not forbidden.all(axis=1).any():
            return forbidden


def brute_force(emissions, transitions, length: int) -> tuple[float, list[int], float]:
    """(log Z, the least likely allowed path, its log-likelihood), float64, one sequence."""
    scores = {}
    for path in itertools.product(range(NUM_TAGS), repeat=length):
        score = float(emissions[0, path[0]])
        for t in range(1, length):
            score += float(transitions[path[t - 1], path[t]]) + float(emissions[t, path[t]])
        if np.isfinite(score):
            scores[path] = score
    values = np.array(list(scores.values()))
    peak = values.max()
    log_z = float(peak + np.log(np.exp(values - peak).sum()))
    worst = min(scores, key=scores.__getitem__)
    return log_z, list(worst), scores[worst] - log_z


def make_cases(batches: int, seed: int = 15) -> dict[str, np.ndarray]:
    """Every case's inputs and float64 answers, with a leading case axis (see the module doc)."""
    rng = np.random.default_rng(seed)
    length = max(LENGTHS)
    arrays: dict[str, list] = {name: [] for name in ("emissions", "transitions", "tag_ids")}
    arrays.update(lengths=[], scale=[], constrained=[], log_likelihood=[], log_z=[])
    for scale in SCALES:
        for constrained in (False, True):
            for _ in range(batches):
                emissions = scale * rng.standard_normal((len(LENGTHS), length, NUM_TAGS))
                transitions = (scale / 2) * rng.standard_normal((NUM_TAGS, NUM_TAGS))
                emissions, transitions = (
                    emissions.astype(np.float32),
                    transitions.astype(np.float32),
                )
                if constrained:
                    transitions[_forbidden(rng)] = -np.inf
                tag_ids = np.zeros((len(LENGTHS), length), np.int32)
                answers = []
                for row, n in enumerate(LENGTHS):
                    log_z, path, log_likelihood = brute_force(emissions[row], transitions, n)
                    tag_ids[row, :n] = path
                    answers.append((log_z, log_likelihood))
                arrays["emissions"].append(emissions)
                arrays["transitions"].append(transitions)
                arrays["tag_ids"].append(tag_ids)
                arrays["lengths"].append(np.array(LENGTHS, np.int32))
                arrays["scale"].append(scale)
                arrays["constrained"].append(constrained)
                arrays["log_z"].append([a[0] for a in answers])
                arrays["log_likelihood"].append([a[1] for a in answers])
    return {name: np.asarray(values) for name, values in arrays.items()}


def ours(cases: dict[str, np.ndarray]) -> dict[str, list]:
    """Our log-likelihoods, `(cases, batch)`, in graph mode and under XLA."""
    import tensorflow as tf
    from linear_crf import crf

    num_tags = cases["transitions"].shape[-1]
    zeros = tf.zeros(num_tags)

    def log_likelihood(emissions, tag_ids, lengths, transitions):
        mask = tf.sequence_mask(lengths, tf.shape(emissions)[1])
        return crf.log_likelihood(emissions, tag_ids, mask, transitions, zeros, zeros)

    def not_compiled(*arguments):
        with crf.compiled_in_graph(loss=False):
            return log_likelihood(*arguments)

    results = {}
    for mode, function in (
        ("ours graph", tf.function(log_likelihood)),
        ("ours graph, loss not compiled", tf.function(not_compiled)),
        ("ours XLA", tf.function(log_likelihood, jit_compile=True)),
    ):
        results[mode] = [
            np.asarray(function(*(cases[name][case] for name in _ARGUMENTS))).tolist()
            for case in range(len(cases["scale"]))
        ]
    return results


_ARGUMENTS = ("emissions", "tag_ids", "lengths", "transitions")


def side_log_likelihoods(side: str, cases: dict[str, np.ndarray]) -> list:
    """A reference's log-likelihoods, `(cases, batch)`; runs in that reference's environment."""
    arguments = [[cases[name][case] for name in _ARGUMENTS] for case in range(len(cases["scale"]))]
    if side == "tfa":
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TFA 0.23 warns at import that it is end-of-life.
            import tensorflow_addons as tfa

        function = tf.function(lambda *a: tfa.text.crf_log_likelihood(*a)[0])
        return [np.asarray(function(*args)).tolist() for args in arguments]
    import torch
    import torchcrf

    results = []
    for emissions, tag_ids, lengths, transitions in arguments:
        model = torchcrf.CRF(transitions.shape[0], batch_first=True)
        with torch.no_grad():
            model.transitions.copy_(torch.from_numpy(transitions))
            model.start_transitions.zero_()
            model.end_transitions.zero_()
            mask = torch.arange(emissions.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]
            value = model(
                torch.from_numpy(emissions),
                torch.from_numpy(tag_ids).long(),
                mask,
                reduction="none",
            )
        results.append(value.double().tolist())
    return results


def run_side(side: str, cases_path: Path) -> list | str:
    """Runs `--side` in its environment; its log-likelihoods, or why it could not run."""
    venv, make_target = SIDES[side]
    python = REPO / venv / "bin" / "python"
    if not python.exists():
        return f"{venv}/bin/python not found; create it with `{make_target}`"
    command = [str(python), "-m", "benchmarks.crf_exactness", "--side", side]
    completed = subprocess.run(
        [*command, "--cases", str(cases_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("[")]
    if completed.returncode != 0 or not lines:
        return f"{side} failed (exit code {completed.returncode}); its stderr is above"
    return json.loads(lines[-1])


def errors(cases: dict[str, np.ndarray], values) -> dict[tuple[float, bool], tuple[float, int]]:
    """Per (scale, constrained): (largest relative error, count of non-finite or positive)."""
    values = np.asarray(values, np.float64)
    truth = cases["log_likelihood"]
    relative = np.abs(values - truth) / np.maximum(np.abs(truth), 1e-30)
    bad = ~np.isfinite(values) | (values > 1e-6 * np.maximum(np.abs(truth), 1.0))
    result = {}
    for scale in SCALES:
        for constrained in (False, True):
            rows = (cases["scale"] == scale) & (cases["constrained"] == constrained)
            finite = np.where(np.isfinite(relative[rows]), relative[rows], np.inf)
            result[(scale, constrained)] = (float(finite.max()), int(bad[rows].sum()))
    return result


def table(cases, results: dict[str, object]) -> str:
    names = list(results)
    lines = [
        "| scale s | forbidden transitions | "
        + " | ".join(f"{name}: largest relative error" for name in names)
        + " |",
        "|---:|---|" + "---:|" * len(names),
    ]
    summaries = {
        name: errors(cases, value) for name, value in results.items() if isinstance(value, list)
    }
    for scale in SCALES:
        for constrained in (False, True):
            cells = []
            for name in names:
                if name not in summaries:
                    cells.append("unavailable")
                    continue
                error, bad = summaries[name][(scale, constrained)]
                cells.append(f"{error:.1e}" + (f" ({bad} NaN/inf/positive)" if bad else ""))
            lines.append(
                f"| {scale:,.0f} | {'yes (-inf)' if constrained else 'no'} | "
                + " | ".join(cells)
                + " |"
            )
    notes = [f"- {name}: {value}" for name, value in results.items() if isinstance(value, str)]
    # Where a reference fails: -inf transitions inside the padding times its mask's 0 give NaN.
    full = cases["lengths"] == max(LENGTHS)  # (cases, batch): sequences without padding
    for name, value in results.items():
        if isinstance(value, list):
            values = np.asarray(value, np.float64)
            truth = cases["log_likelihood"]
            relative = np.abs(values - truth) / np.maximum(np.abs(truth), 1e-30)
            relative = np.where(np.isfinite(relative), relative, np.inf)
            notes.append(
                f"- {name}: largest relative error over the sequences without padding (every "
                f"scale, with and without forbidden transitions): {relative[full].max():.1e}; "
                f"non-finite results: {int((~np.isfinite(values[full])).sum())} without padding, "
                f"{int((~np.isfinite(values[~full])).sum())} with."
            )
    ours_worst = max(
        (
            error
            for name in summaries
            if name.startswith("ours")
            for error, _ in summaries[name].values()
        ),
        default=float("nan"),
    )
    verdict = "met" if ours_worst <= TARGET else "not met"
    notes.append(
        f"- Target: ours at most {TARGET:g} at every scale: **{verdict}** (worst {ours_worst:.1e})."
    )
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=16, help="batches of 4 sequences per case")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--cases", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        with np.load(args.cases) as data:
            print(json.dumps(side_log_likelihoods(args.side, dict(data))))
        return 0
    cases = make_cases(args.batches)
    with tempfile.TemporaryDirectory() as folder:
        cases_path = Path(folder) / "cases.npz"
        np.savez(cases_path, **cases)
        results: dict[str, object] = dict(ours(cases))
        results["TF Addons 0.23"] = run_side("tfa", cases_path)
        results["pytorch-crf 0.7.2"] = run_side("pytorch_crf", cases_path)
    markdown = table(cases, results) + (
        f"\n- {args.batches} batches x {len(LENGTHS)} sequences per row; float32 inputs, "
        "the brute force in float64 on the same float32 values.\n"
    )
    print(markdown)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
