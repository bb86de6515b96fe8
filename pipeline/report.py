"""A self-contained HTML report of a pipeline run, written next to the pushed model.

Pure functions turn what the run produced (found through ML Metadata) into one HTML file with
its figures inlined as base64 PNGs (matplotlib, Agg backend): per-entity-type precision, recall
and F1 of the candidate and of the previous blessed model on the eval split, the tag confusion
matrix, training curves (loss and eval entity F1 per epoch, from the Trainer's TensorBoard logs),
data statistics (sentences, tokens, entities per type, OOV rate) and whether the model was blessed,
and why (the Evaluator's validation result).

Both models are scored the same way here: the exported SavedModels tag the eval split
(`serve_tokens`, which tags as every signature of the model does) and
`models.entity_scoring.score_entities` scores them with conlleval's rules.

The report goes to `<serving_dir>/<version>.report.html` when the run pushed `<version>`, else to
`<serving_dir>/not-pushed-<model artifact id>.report.html`; neither is a numeric folder, so TF
Serving and `ner-tag` ignore it.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import html
import io
import os
from collections import Counter
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from matplotlib.figure import Figure
from tfx.orchestration import metadata
from tfx.types import standard_artifacts

from models import preprocessing
from models.config import TaggerConfig
from models.entity_scoring import EntityScores, extract_entities, score_entities
from models.features import TAGS_KEY, TOKENS_INPUT, TOKENS_KEY, TOKENS_SIGNATURE
from pipeline.run_summary import (
    _int_property,
    _latest_artifact,
    _string_property,
    latest_example_gen_output,
)
from serving.model_version import version_dir, whole_versions

__all__ = [
    "confusion_figure",
    "curves_figure",
    "data_statistics",
    "entity_errors",
    "example_errors",
    "kept_epoch",
    "known_words",
    "latest_run_artifacts",
    "MISSED",
    "predict_tags",
    "read_split",
    "render_html",
    "RunArtifacts",
    "SENTENCE",
    "SPURIOUS",
    "tag_confusion",
    "training_history",
    "validation_reasons",
    "write_run_report",
]

SENTENCE = tuple[list[str], list[str]]  # (tokens, tags)


@dataclasses.dataclass(frozen=True)
class RunArtifacts:
    """Where the latest run's artifacts are, read from ML Metadata.

    Attributes:
        examples_uri: ExampleGen output (`Split-train/`, `Split-eval/` gzipped TFRecords).
        transform_graph_uri: Transform graph (its word ids give the OOV rate).
        candidate_model_dir: the Trainer's exported SavedModel.
        model_run_uri: the Trainer's TensorBoard logs.
        evaluation_uri: the Evaluator's output (validation result).
        blessed: the Evaluator's verdict.
        pushed_destination: the pushed version's folder, "" when not pushed.
        model_id: ML Metadata id of the candidate Model artifact.
        early_stopping_start_epoch: the Trainer's setting (from its execution's custom_config):
            the epochs before it are never the one whose weights are kept.
    """

    examples_uri: str
    transform_graph_uri: str
    candidate_model_dir: str
    model_run_uri: str
    evaluation_uri: str
    blessed: bool
    pushed_destination: str
    model_id: int
    early_stopping_start_epoch: int = 0


def _trainer_start_epoch(store, model_id: int) -> int:
    """`early_stopping_start_epoch` of the Trainer execution that produced model `model_id`."""
    events = store.get_events_by_artifact_ids([model_id])
    producers = [event.execution_id for event in events if event.type == event.OUTPUT]
    for execution in store.get_executions_by_id(producers):
        if "custom_config" in execution.properties:
            text = execution.properties["custom_config"].string_value
        elif "custom_config" in execution.custom_properties:
            text = execution.custom_properties["custom_config"].string_value
        else:
            continue
        try:
            return TaggerConfig.from_custom_config(text).early_stopping_start_epoch
        except ValueError:
            continue
    return 0


def latest_run_artifacts(connection_config) -> RunArtifacts:
    """The latest run's artifacts (the newest live artifact of each type)."""

    with metadata.Metadata(connection_config) as handle:
        store = handle.store

        def latest(artifact_type):
            return _latest_artifact(store, artifact_type.TYPE_NAME)

        model = latest(standard_artifacts.Model)
        blessing = latest(standard_artifacts.ModelBlessing)
        pushed = latest(standard_artifacts.PushedModel)
        return RunArtifacts(
            examples_uri=latest_example_gen_output(store).uri,
            transform_graph_uri=latest(standard_artifacts.TransformGraph).uri,
            candidate_model_dir=os.path.join(model.uri, "Format-Serving"),
            model_run_uri=latest(standard_artifacts.ModelRun).uri,
            evaluation_uri=latest(standard_artifacts.ModelEvaluation).uri,
            blessed=bool(_int_property(blessing, "blessed")),
            pushed_destination=(
                _string_property(pushed, "pushed_destination")
                if _int_property(pushed, "pushed")
                else ""
            ),
            model_id=model.id,
            early_stopping_start_epoch=_trainer_start_epoch(store, model.id),
        )


def read_split(examples_uri: str, split: str) -> list[SENTENCE]:
    """(tokens, tags) of every tf.Example of one split of an ExampleGen output."""
    files = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    sentences = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        sentences.append(
            (
                [t.decode("utf-8") for t in features[TOKENS_KEY].bytes_list.value],
                [t.decode("utf-8") for t in features[TAGS_KEY].bytes_list.value],
            )
        )
    return sentences


def data_statistics(
    train: Sequence[SENTENCE], evaluation: Sequence[SENTENCE], vocabulary: set[str], scheme: str
) -> dict[str, dict]:
    """Sentences, tokens, entities per type of each split and the eval OOV rate.

    The OOV rate is the share of eval tokens whose lowercased form is not in the Transform's token
    vocabulary (so they reach the model as the OOV id).
    """
    statistics = {}
    for name, sentences in (("train", train), ("eval", evaluation)):
        entity_types = Counter(
            entity_type
            for _, tags in sentences
            for _, _, entity_type in extract_entities(tags, scheme)
        )
        statistics[name] = {
            "sentences": len(sentences),
            "tokens": sum(len(tokens) for tokens, _ in sentences),
            "entities": dict(sorted(entity_types.items())),
        }
    eval_tokens = [token.lower() for tokens, _ in evaluation for token in tokens]
    oov = sum(token not in vocabulary for token in eval_tokens)
    statistics["eval"]["oov_rate"] = oov / len(eval_tokens) if eval_tokens else 0.0
    return statistics


def predict_tags(model_dir: str, sentences: Sequence[list[str]], batch_size: int = 128):
    """Tags of each sentence by a SavedModel of this project (any of its versions), through
    `serve_tokens`: the tokens as they are, tagged as every signature tags them."""
    model = tf.saved_model.load(model_dir)
    signature = model.signatures[TOKENS_SIGNATURE]
    predicted = []
    for begin in range(0, len(sentences), batch_size):
        batch = list(sentences[begin : begin + batch_size])
        width = max(len(tokens) for tokens in batch)
        padded = tf.constant([tokens + [""] * (width - len(tokens)) for tokens in batch])
        outputs = signature(**{TOKENS_INPUT: padded})
        for tokens, row in zip(batch, outputs["tags"].numpy()):
            tags = [tag.decode("utf-8") for tag in row[: len(tokens)]]
            # A version exported before windowing cut the sentence at its max_length: the
            # tokens beyond count as "O", as the Evaluator counts them (`align_predictions`).
            predicted.append([tag or "O" for tag in tags] + ["O"] * (len(tokens) - len(tags)))
    return predicted


def tag_confusion(gold: Sequence[list[str]], predicted: Sequence[list[str]], tag_names):
    """Token counts: rows gold tag, columns predicted tag, in `tag_names` order.

    Returns:
        int64 `(num_tags, num_tags)`.
    """
    index = {tag: i for i, tag in enumerate(tag_names)}
    matrix = np.zeros((len(tag_names), len(tag_names)), np.int64)
    for gold_tags, predicted_tags in zip(gold, predicted):
        for g, p in zip(gold_tags, predicted_tags):
            matrix[index[g], index[p]] += 1
    return matrix


MISSED = "(missed)"
"""Column of the entity error view for a gold entity with no predicted entity on its span."""
SPURIOUS = "(spurious)"
"""Row of the entity error view for a predicted entity with no gold entity on its span."""


def entity_errors(
    gold: Sequence[list[str]], predicted: Sequence[list[str]], scheme: str = "iob2"
) -> Counter:
    """Entities by (gold type, predicted type), matched by span (start and end): the diagonal
    is correct; (type, MISSED) a gold entity whose span no prediction has; (SPURIOUS, type) a
    predicted entity on no gold span; (a, b) a span found with the wrong type. A span found
    with other boundaries counts as one missed and one spurious, as conlleval scores it."""
    counts: Counter = Counter()
    for gold_tags, predicted_tags in zip(gold, predicted):
        gold_spans = {(s, e): t for s, e, t in extract_entities(gold_tags, scheme)}
        predicted_spans = {(s, e): t for s, e, t in extract_entities(predicted_tags, scheme)}
        for span, entity_type in gold_spans.items():
            counts[(entity_type, predicted_spans.get(span, MISSED))] += 1
        for span, entity_type in predicted_spans.items():
            if span not in gold_spans:
                counts[(SPURIOUS, entity_type)] += 1
    return counts


def example_errors(
    sentences: Sequence[list[str]],
    gold: Sequence[list[str]],
    predicted: Sequence[list[str]],
    scheme: str = "iob2",
    limit: int = 10,
) -> list[tuple[str, str, str]]:
    """The first `limit` sentences whose predicted entities differ from the gold ones:
    (sentence, gold entities, predicted entities), entities written `[text](type)`."""

    def written(tokens, tags):
        entities = extract_entities(tags, scheme)
        return " ".join(f"[{' '.join(tokens[s:e])}]({t})" for s, e, t in entities) or "(none)"

    result = []
    for tokens, gold_tags, predicted_tags in zip(sentences, gold, predicted):
        if extract_entities(gold_tags, scheme) != extract_entities(predicted_tags, scheme):
            result.append(
                (" ".join(tokens), written(tokens, gold_tags), written(tokens, predicted_tags))
            )
            if len(result) == limit:
                break
    return result


def _errors_table(counts: Counter) -> str:
    """The entity error view as an HTML table: counts, each cell shaded by its share of its row
    (green on the diagonal, red elsewhere)."""
    gold_types = sorted({g for g, _ in counts if g != SPURIOUS})
    predicted_types = sorted({p for _, p in counts if p != MISSED} | set(gold_types))
    rows = [*gold_types, SPURIOUS]
    columns = [*predicted_types, MISSED]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["gold \\ predicted", *columns, "gold"])
    body = []
    for row in rows:
        total = sum(counts[(row, c)] for c in columns)
        cells = [f"<td>{html.escape(row)}</td>"]
        for column in columns:
            count = counts[(row, column)]
            share = count / total if total else 0.0
            hue = "0, 128, 0" if row == column else "200, 0, 0"
            style = f' style="background: rgba({hue}, {0.1 + 0.6 * share:.2f})"' if count else ""
            cells.append(f"<td{style}>{count if count else ''}</td>")
        cells.append(f"<td>{total if row != SPURIOUS else ''}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="errors"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def kept_epoch(history: dict[str, list[tuple[int, float]]], start_epoch: int = 0) -> int | None:
    """The epoch (0-based) whose weights early stopping kept: the best eval entity F1 from
    `start_epoch` on (the first of equals); the last epoch if training ended before it; None
    without an F1 curve."""
    curves = [values for name, values in history.items() if name.endswith("entity_f1")]
    if not curves or not curves[0]:
        return None
    values = curves[0]
    watched = [(epoch, f1) for epoch, f1 in values if epoch >= start_epoch]
    if not watched:
        return values[-1][0]
    best = max(f1 for _, f1 in watched)
    return next(epoch for epoch, f1 in watched if f1 == best)


def training_history(model_run_uri: str) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch scalars of the Trainer's TensorBoard logs, e.g. `train/epoch_loss`,
    `validation/epoch_loss`, `validation/epoch_entity_f1`, as (epoch, value) lists; the latest
    run directory under `model_run_uri` when there are several."""
    history: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(model_run_uri, "**", "events.out.tfevents.*"),
                                 recursive=True)):  # fmt: skip
        writer = os.path.basename(os.path.dirname(path))  # train / validation
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if not value.tag.startswith("epoch_"):
                    continue
                number = (
                    float(tf.make_ndarray(value.tensor))
                    if value.HasField("tensor")
                    else float(value.simple_value)
                )
                history.setdefault(f"{writer}/{value.tag}", {})[int(event.step)] = number
    return {name: sorted(values.items()) for name, values in sorted(history.items())}


def validation_reasons(evaluation_uri: str, blessed: bool) -> list[str]:
    """Why the Evaluator blessed the model or not, from its validation result."""
    try:
        result = tfma.load_validation_result(evaluation_uri)
    except Exception as error:  # no validations file: say so rather than fail the report
        return [f"no validation result readable in {evaluation_uri}: {error}"]
    if result.validation_ok:
        return ["every metric threshold passed (entity F1 floor, no regression vs the baseline)"]
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            reasons.append(_failure_reason(failure))
    # A bool in TFMA 0.47 (some metric had a threshold but no value to check), not a list.
    if result.missing_thresholds:
        reasons.append("a metric with a threshold was not computed, so it could not be checked")
    for missing in result.missing_slices:
        reasons.append(f"slice with a threshold not found in the data: {missing}")
    return reasons or [f"not blessed (blessed={blessed}) without listed failures"]


def _failure_reason(failure) -> str:
    """One sentence for a TFMA validation failure: the check, its figure and its threshold."""
    key = failure.metric_key
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if key.is_diff:
        change = threshold.change_threshold
        bound = change.absolute.value if change.HasField("absolute") else None
        needed = f"at least {bound:+.6g}" if bound is not None else "within the change threshold"
        return (
            f"no-regression check failed: {key.name} changed by {value:+.2f} against the baseline "
            f"model; needed {needed} (no lower than the baseline)"
        )
    bounds = threshold.value_threshold
    parts = []
    if bounds.HasField("lower_bound"):
        parts.append(f"at least {bounds.lower_bound.value:.2f}")
    if bounds.HasField("upper_bound"):
        parts.append(f"at most {bounds.upper_bound.value:.2f}")
    return (
        f"floor check failed: {key.name} of the candidate is {value:.2f}; needed "
        f"{' and '.join(parts) or 'its threshold'}"
    )


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_figure(matrix: np.ndarray, tag_names: Sequence[str]) -> str:
    """Base64 PNG of the confusion matrix (row-normalised colours, counts written)."""
    size = 1.0 + 0.55 * len(tag_names)
    figure = Figure(figsize=(size + 1.5, size))
    axes = figure.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    axes.imshow(matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(tag_names)), tag_names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(tag_names)), tag_names, fontsize=8)
    axes.set_xlabel("predicted tag")
    axes.set_ylabel("gold tag")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=8)
    return _png(figure)


def curves_figure(history: dict[str, list[tuple[int, float]]], kept: int | None = None) -> str:
    """Base64 PNG: losses per epoch (left) and eval entity F1 per epoch (right), the kept epoch
    (0-based `kept`) marked on both."""
    figure = Figure(figsize=(9, 3.2))
    loss_axes, f1_axes = figure.subplots(1, 2)
    for name, values in history.items():
        epochs = [epoch + 1 for epoch, _ in values]
        numbers = [value for _, value in values]
        if name.endswith("epoch_loss"):
            loss_axes.plot(epochs, numbers, marker="o", label=name.split("/")[0])
        elif name.endswith("entity_f1"):
            f1_axes.plot(epochs, numbers, marker="o", color="tab:green", label="eval entity F1")
    if kept is not None:
        for axes in (loss_axes, f1_axes):
            axes.axvline(kept + 1, color="0.4", linestyle="--", label=f"kept: epoch {kept + 1}")
    loss_axes.set(xlabel="epoch", ylabel="CRF loss", title="loss")
    f1_axes.set(xlabel="epoch", ylabel="entity F1 (%)", title="eval entity F1")
    for axes in (loss_axes, f1_axes):
        if axes.lines:
            axes.legend(fontsize=8)
    return _png(figure)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], css_class: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _counts(scores: EntityScores, name: str) -> list[object]:
    """Gold, predicted and correct entities of a type (or "overall")."""
    if name == "overall":
        correct = scores.num_true_positives
        return [correct + scores.num_false_negatives, correct + scores.num_false_positives, correct]
    per = scores.per_type.get(name)
    return [per.support, per.num_predicted, per.num_correct] if per is not None else [0, 0, 0]


def _scores_rows(candidate: EntityScores, baseline: EntityScores | None):
    types = sorted(set(candidate.per_type) | set(baseline.per_type if baseline else ()))
    rows = []
    for name in [*types, "overall"]:
        row = [name, *_counts(candidate, name)]
        for scores in (candidate, baseline):
            if scores is None:
                row += ["", "", ""]
                continue
            per = scores if name == "overall" else scores.per_type.get(name)
            row += (
                [f"{per.precision:.2f}", f"{per.recall:.2f}", f"{per.f1:.2f}"]
                if per is not None
                else ["-", "-", "-"]
            )
        if baseline is not None:
            c = candidate if name == "overall" else candidate.per_type.get(name)
            b = baseline if name == "overall" else baseline.per_type.get(name)
            row.append(f"{(c.f1 if c else 0.0) - (b.f1 if b else 0.0):+.2f}")
        rows.append(row)
    return rows


def render_html(
    *,
    title: str,
    blessed: bool,
    pushed_destination: str,
    reasons: Sequence[str],
    candidate_scores: EntityScores,
    baseline_scores: EntityScores | None,
    baseline_name: str,
    statistics: dict[str, dict],
    tag_names: Sequence[str],
    confusion: np.ndarray,
    history: dict[str, list[tuple[int, float]]],
    errors: Counter | None = None,
    examples: Sequence[tuple[str, str, str]] = (),
    kept: int | None = None,
) -> str:
    """The report as one HTML string (no external resources)."""
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    pushed = (
        f"pushed to <code>{html.escape(pushed_destination)}</code>"
        if pushed_destination
        else "not pushed"
    )
    score_header = ["entity type", "gold", "predicted", "correct", "P", "R", "F1"]
    if baseline_scores is not None:
        score_header += [f"P ({baseline_name})", f"R ({baseline_name})", f"F1 ({baseline_name})",
                         "ΔF1"]  # fmt: skip
        rows = _scores_rows(candidate_scores, baseline_scores)
    else:
        rows = [row[:7] for row in _scores_rows(candidate_scores, None)]
    zero = sorted(
        name for name, per in candidate_scores.per_type.items() if per.support and per.f1 == 0.0
    )
    warning = (
        f'<p id="warning" class="not-blessed">Warning: F1 0.00 on {len(zero)} of '
        f"{len(candidate_scores.per_type)} entity types ({html.escape(', '.join(zero))}): the "
        "model finds none of their entities.</p>"
        if zero
        else ""
    )
    errors_html = (
        "<h2>Entity errors on the eval split</h2><p>Entities by gold type (rows) and predicted "
        "type (columns), matched by span: the diagonal is right; <em>(missed)</em>: no "
        "prediction on a gold span; <em>(spurious)</em>: a prediction on no gold span; a span "
        "found with other boundaries counts once in each.</p>" + _errors_table(errors)
        if errors is not None
        else ""
    )
    examples_html = (
        "<h2>Example errors</h2>" + _table(["sentence", "gold", "predicted"], examples, "examples")
        if examples
        else ""
    )
    entity_types = sorted(
        set(statistics["train"]["entities"]) | set(statistics["eval"]["entities"])
    )
    data_rows = [
        ["sentences", statistics["train"]["sentences"], statistics["eval"]["sentences"]],
        ["tokens", statistics["train"]["tokens"], statistics["eval"]["tokens"]],
        *[
            [f"entities: {t}", statistics["train"]["entities"].get(t, 0),
             statistics["eval"]["entities"].get(t, 0)]
            for t in entity_types
        ],
        ["OOV rate (eval tokens not in the vocabulary)", "", f"{statistics['eval']['oov_rate']:.2%}"],
    ]  # fmt: skip
    confusion_rows = [[tag, *row.tolist()] for tag, row in zip(tag_names, confusion)]
    curves = (
        f'<img alt="training curves" src="data:image/png;base64,{curves_figure(history, kept)}">'
        if history
        else "<p>No TensorBoard scalars found in the Trainer's logs.</p>"
    )
    reasons_html = "".join(f"<li>{html.escape(reason)}</li>" for reason in reasons)
    baseline_note = (
        f"Compared with the previous blessed model <code>{html.escape(baseline_name)}</code>."
        if baseline_scores is not None
        else "No previous blessed model: nothing to compare with."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.blessed {{ color: #080; }} .not-blessed {{ color: #b00; }}
table.confusion td {{ font-size: 0.8em; }}
table.examples td, table.examples th {{ text-align: left; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2 id="verdict" class="{"blessed" if blessed else "not-blessed"}">{verdict}, {pushed}</h2>
<ul id="reasons">{reasons_html}</ul>
{warning}
<h2>Entity scores on the eval split (conlleval, %)</h2>
<p>{baseline_note} Gold, predicted and correct count entities.</p>
{_table(score_header, rows, "scores")}
{errors_html}
{examples_html}
<h2>Training curves</h2>
{curves}
<h2>Tag confusion matrix (eval tokens)</h2>
<img alt="tag confusion matrix" src="data:image/png;base64,{confusion_figure(confusion, tag_names)}">
{_table(["gold / predicted", *tag_names], confusion_rows, "confusion")}
<h2>Data</h2>
{_table(["", "train", "eval"], data_rows, "data")}
</body></html>
"""


def known_words(transform_graph_uri: str, tokens: set[str]) -> set[str]:
    """The lowercased `tokens` that the Transform graph maps to a word id other than OOV.

    Asks the graph itself, so the answer holds whatever its vocabulary is made of (training
    words, pretrained vectors' words).
    """
    words = sorted({token.lower() for token in tokens})
    ids = preprocessing.word_ids(tft.TFTransformOutput(transform_graph_uri), words)
    return {word for word, word_id in zip(words, ids) if word_id != preprocessing.OOV_ID}


def write_run_report(connection_config, serving_dir: str, scheme: str = "iob2") -> str:
    """Builds the report of the latest run and writes it next to the pushed model.

    Returns:
        The path of the HTML file.
    """
    artifacts = latest_run_artifacts(connection_config)
    train = read_split(artifacts.examples_uri, "train")
    evaluation = read_split(artifacts.examples_uri, "eval")
    vocabulary = known_words(
        artifacts.transform_graph_uri, {token for tokens, _ in evaluation for token in tokens}
    )
    gold = [tags for _, tags in evaluation]
    sentences = [tokens for tokens, _ in evaluation]
    predicted = predict_tags(artifacts.candidate_model_dir, sentences)
    candidate_scores = score_entities(gold, predicted, scheme)

    # The previous blessed model: the newest pushed version other than this run's.
    this_version = os.path.basename(artifacts.pushed_destination.rstrip("/"))
    versions = whole_versions(serving_dir)
    if this_version.isdigit():
        versions = [v for v in versions if v < int(this_version)]
    baseline_scores, baseline_name = None, ""
    if versions:
        baseline_name = f"version {versions[-1]}"
        baseline_scores = score_entities(
            gold, predict_tags(version_dir(serving_dir, versions[-1]), sentences), scheme
        )
    tag_names = sorted({tag for tags in gold + predicted for tag in tags})
    history = training_history(artifacts.model_run_uri)
    page = render_html(
        title=(
            f"Run report: version {this_version}"
            if this_version
            else f"Run report: rejected model (artifact {artifacts.model_id})"
        ),
        blessed=artifacts.blessed,
        pushed_destination=artifacts.pushed_destination,
        reasons=validation_reasons(artifacts.evaluation_uri, artifacts.blessed),
        candidate_scores=candidate_scores,
        baseline_scores=baseline_scores,
        baseline_name=baseline_name,
        statistics=data_statistics(train, evaluation, vocabulary, scheme),
        tag_names=tag_names,
        confusion=tag_confusion(gold, predicted, tag_names),
        history=history,
        errors=entity_errors(gold, predicted, scheme),
        examples=example_errors(sentences, gold, predicted, scheme),
        kept=kept_epoch(history, artifacts.early_stopping_start_epoch),
    )
    name = (
        f"{this_version}.report.html"
        if this_version
        else f"not-pushed-{artifacts.model_id}.report.html"
    )
    os.makedirs(serving_dir, exist_ok=True)
    path = os.path.join(serving_dir, name)
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return path
