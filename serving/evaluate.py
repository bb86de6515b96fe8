"""`ner-eval`: score a served model (or any system's output) on a gold CoNLL file.

    ner-eval data/wnut17/test.conll                       # the newest pushed version
    ner-eval gold.conll --version 1795514971 --json scores.json --html errors.html
    ner-eval gold.conll --predictions system.conll        # a system's output, no model

Entity-level precision, recall and F1 with conlleval semantics (`models.entity_scoring`: an
entity counts when its start, end and type all match), micro-averaged and per type, with each
type's support and true positive, false positive and false negative counts. The gold file is read
with the pipeline's own reader (`components.conll_format`: token in the first column, tag in the
last, TAB- or space-separated), and the model tags those very tokens (`serve_tokens`), so a token
holding a space is one token to both. `--html` writes a page with the scores and every sentence
that holds an error, gold and predicted entities side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import sys
from collections.abc import Iterable, Sequence

from tqdm import tqdm

from components.conll_format import Sentence, read_conll
from models.entity_scoring import EntityScores, extract_entities, score_entities
from models.features import TOKENS_SIGNATURE
from models.quiet_tensorflow import import_tensorflow
from serving.cli import add_model_arguments, temporary_beside
from serving.tagging import load_signature, tag_token_batches

__all__ = ["Evaluation", "evaluate", "main", "render_html", "score_table"]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Gold and predicted tags of each sentence, and their scores."""

    sentences: list[Sentence]
    predicted: list[list[str]]
    scores: EntityScores
    source: str

    def to_json(self) -> dict:
        scores = self.scores
        return {
            "source": self.source,
            "sentences": len(self.sentences),
            "tokens": scores.num_tokens,
            "precision": round(scores.precision, 4),
            "recall": round(scores.recall, 4),
            "f1": round(scores.f1, 4),
            "token_accuracy": round(scores.token_accuracy, 4),
            "true_positives": scores.num_true_positives,
            "false_positives": scores.num_false_positives,
            "false_negatives": scores.num_false_negatives,
            "per_type": {
                name: {
                    "precision": round(t.precision, 4),
                    "recall": round(t.recall, 4),
                    "f1": round(t.f1, 4),
                    "support": t.support,
                    "true_positives": t.num_correct,
                    "false_positives": t.num_predicted - t.num_correct,
                    "false_negatives": t.support - t.num_correct,
                }
                for name, t in scores.per_type.items()
            },
        }


def _tag_with_model(signature, sentences: Sequence[Sentence], batch_size: int, progress):
    """Predicted tags of each sentence's tokens through `serve_tokens`, `batch_size` at a time."""
    predicted: list[list[str]] = []
    for result in tag_token_batches(signature, (s.tokens for s in sentences), batch_size):
        predicted.append(result.tags)
        progress(1)
    return predicted


def _read_predictions(path: str, gold: Sequence[Sentence], encoding: str) -> list[list[str]]:
    """A system's tags (last column), aligned sentence by sentence and token by token with the
    gold file; a different sentence count or length is an error naming the sentence."""
    predicted = list(read_conll(path, encoding=encoding))
    if len(predicted) != len(gold):
        raise ValueError(
            f"{path}: {len(predicted)} sentences, the gold file has {len(gold)}: the files must "
            "hold the same sentences in the same order."
        )
    for index, (p, g) in enumerate(zip(predicted, gold)):
        if len(p.tags) != len(g.tags):
            raise ValueError(
                f"{path}:{p.line}: sentence {index + 1} has {len(p.tags)} tokens, the gold one "
                f"({g.path}:{g.line}) {len(g.tags)}."
            )
    return [list(s.tags) for s in predicted]


def evaluate(
    gold_path: str,
    *,
    signature=None,
    predictions_path: str | None = None,
    batch_size: int = 64,
    progress=lambda n: None,
    source: str = "",
    encoding: str = "utf-8",
) -> Evaluation:
    """Scores `signature` (a loaded `serve_tokens`) or a predictions file on a gold CoNLL file
    (both files in `encoding`)."""
    if (signature is None) == (predictions_path is None):
        raise ValueError("Give exactly one of `signature` and `predictions_path`.")
    gold = list(read_conll(gold_path, encoding=encoding))
    if predictions_path is not None:
        predicted = _read_predictions(predictions_path, gold, encoding)
    else:
        predicted = _tag_with_model(signature, gold, batch_size, progress)
    scores = score_entities([list(s.tags) for s in gold], predicted)
    return Evaluation(gold, predicted, scores, source or predictions_path or "")


def score_table(scores: EntityScores) -> str:
    """The scores as a fixed-width table: one row per type, then the micro average."""
    header = f"{'type':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}"
    header += f"{'TP':>6}{'FP':>6}{'FN':>6}"
    rows = [header]
    for name, t in scores.per_type.items():
        rows.append(
            f"{name:<16}{t.precision:>10.2f}{t.recall:>8.2f}{t.f1:>8.2f}{t.support:>9}"
            f"{t.num_correct:>6}{t.num_predicted - t.num_correct:>6}{t.support - t.num_correct:>6}"
        )
    support = scores.num_true_positives + scores.num_false_negatives
    rows.append(
        f"{'all (micro)':<16}{scores.precision:>10.2f}{scores.recall:>8.2f}{scores.f1:>8.2f}"
        f"{support:>9}{scores.num_true_positives:>6}{scores.num_false_positives:>6}"
        f"{scores.num_false_negatives:>6}"
    )
    rows.append(f"token accuracy {scores.token_accuracy:.2f} over {scores.num_tokens} tokens")
    return "\n".join(rows)


def _marked(tokens: Sequence[str], spans: Iterable[tuple[int, int, str]], other: set) -> str:
    """The sentence with each entity boxed and labelled; green if the other side has it too."""
    starts = {start: (end, kind) for start, end, kind in spans}
    out, index = [], 0
    while index < len(tokens):
        if index in starts:
            end, kind = starts[index]
            css = "hit" if (index, end, kind) in other else "miss"
            text = html.escape(" ".join(tokens[index:end]))
            out.append(f'<span class="{css}">{text}<sub>{html.escape(kind)}</sub></span>')
            index = end
        else:
            out.append(html.escape(tokens[index]))
            index += 1
    return " ".join(out)


def render_html(evaluation: Evaluation, max_sentences: int = 500) -> str:
    """A self-contained page: the score table and the sentences with an error, gold and
    predicted entities side by side (green: on both sides; red: on one side only)."""
    rows = []
    for sentence, predicted in zip(evaluation.sentences, evaluation.predicted):
        gold = set(extract_entities(list(sentence.tags)))
        guessed = set(extract_entities(predicted))
        if gold == guessed:
            continue
        where = html.escape(f"{os.path.basename(sentence.path)}:{sentence.line}")
        rows.append(
            f"<tr><td>{where}</td>"
            f"<td>{_marked(sentence.tokens, sorted(gold), guessed)}</td>"
            f"<td>{_marked(sentence.tokens, sorted(guessed), gold)}</td></tr>"
        )
    shown = rows[:max_sentences]
    more = (
        f"<p>{len(rows) - len(shown)} more sentences with errors not shown.</p>"
        if len(rows) > len(shown)
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ner-eval: {html.escape(evaluation.source)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
pre {{ font-size: 14px; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }}
.hit {{ background: #d8f5d8; border-radius: 3px; padding: 1px 3px; }}
.miss {{ background: #fbd5d5; border-radius: 3px; padding: 1px 3px; }}
sub {{ color: #555; font-size: 11px; margin-left: 2px; }}
</style></head><body>
<h1>Entity scores: {html.escape(evaluation.source)}</h1>
<pre>{html.escape(score_table(evaluation.scores))}</pre>
<h2>Sentences with an error ({len(rows)} of {len(evaluation.sentences)})</h2>
<p>Green: the entity is on both sides. Red: a missed gold entity (left) or a spurious or wrong
prediction (right).</p>
<table><tr><th>sentence</th><th>gold</th><th>predicted</th></tr>
{chr(10).join(shown)}
</table>{more}
</body></html>
"""


def _write_atomically(path: str, text: str) -> None:
    partial = temporary_beside(path)
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(partial, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ner-eval",
        allow_abbrev=False,
        description="Score the pushed model (or a system's output) on a gold CoNLL file: "
        "entity precision, recall and F1 (conlleval), per type with supports and counts.",
    )
    parser.add_argument("gold", help="gold CoNLL file (token first column, tag last column)")
    parser.add_argument(
        "--predictions", help="score this CoNLL file's tags (last column) instead of a model"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--encoding", default="utf-8", help="encoding of the CoNLL files (default utf-8)"
    )
    parser.add_argument("--json", help="also write the scores as JSON here")
    parser.add_argument("--html", help="also write a page with the errors here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (2 for bad arguments or input)."""
    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        _parser().error(f"--batch-size must be positive, got {args.batch_size}")
    try:
        if args.predictions:
            evaluation = evaluate(
                args.gold, predictions_path=args.predictions, encoding=args.encoding
            )
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # errors still show
            import_tensorflow()
            evaluation = _evaluate_model(args)
        print(score_table(evaluation.scores))
        if args.json:
            _write_atomically(args.json, json.dumps(evaluation.to_json(), indent=2) + "\n")
        if args.html:
            _write_atomically(args.html, render_html(evaluation))
    except (ValueError, OSError) as error:
        print(f"ner-eval: {error}", file=sys.stderr)
        return 2
    return 0


def _evaluate_model(args) -> Evaluation:
    # Imported here: it imports TensorFlow (seconds), which `--help` and `--predictions` skip.
    from serving.model_version import load_newest

    model_dir, signature = load_newest(
        args.serving_dir, lambda path: load_signature(path, TOKENS_SIGNATURE), args.version
    )
    total = sum(1 for _ in read_conll(args.gold, encoding=args.encoding))
    with tqdm(
        total=total, unit="sentence", file=sys.stderr, disable=args.no_progress
    ) as progress_bar:
        return evaluate(
            args.gold,
            signature=signature,
            batch_size=args.batch_size,
            progress=progress_bar.update,
            source=model_dir,
            encoding=args.encoding,
        )


if __name__ == "__main__":
    sys.exit(main())
