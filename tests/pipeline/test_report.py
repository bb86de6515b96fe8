"""Tests of pipeline/report.py: the pure pieces against hand-worked values, and the HTML rendered
in headless Chromium (skipped, with the reason, where Chromium is not installed)."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest

from models.entity_scoring import score_entities
from pipeline import report

GOLD = [["B-person", "I-person", "O"], ["O", "B-location"]]
PREDICTED = [["B-person", "O", "O"], ["B-location", "B-location"]]
TAGS = ["B-location", "B-person", "I-person", "O"]


def test_tag_confusion_counts_tokens():
    matrix = report.tag_confusion(GOLD, PREDICTED, TAGS)
    expected = np.zeros((4, 4), int)
    expected[1, 1] = 1  # B-person -> B-person
    expected[2, 3] = 1  # I-person -> O
    expected[3, 3] = 1  # O -> O
    expected[3, 0] = 1  # O -> B-location
    expected[0, 0] = 1  # B-location -> B-location
    np.testing.assert_array_equal(matrix, expected)


def test_data_statistics():
    train = [(["Obama", "visited", "Paris"], ["B-person", "O", "B-location"])]
    evaluation = [(["paris", "Hilton", "hi"], ["B-person", "I-person", "O"]), ([], [])]
    statistics = report.data_statistics(train, evaluation, {"obama", "paris"}, "iob2")
    assert statistics["train"] == {
        "sentences": 1, "tokens": 3, "entities": {"location": 1, "person": 1}}  # fmt: skip
    assert statistics["eval"]["entities"] == {"person": 1}
    assert statistics["eval"]["oov_rate"] == pytest.approx(2 / 3)  # hilton, hi


def test_training_history_reads_tensorboard_scalars(tmp_path):
    import tensorflow as tf

    for writer_name, values in (("train", [3.0, 2.0]), ("validation", [4.0, 3.5])):
        writer = tf.summary.create_file_writer(str(tmp_path / writer_name))
        with writer.as_default():
            for epoch, value in enumerate(values):
                tf.summary.scalar("epoch_loss", value, step=epoch)
                if writer_name == "validation":
                    tf.summary.scalar("epoch_entity_f1", 10.0 * epoch, step=epoch)
        writer.close()
    history = report.training_history(str(tmp_path))
    assert history["train/epoch_loss"] == [(0, 3.0), (1, 2.0)]
    assert history["validation/epoch_loss"] == [(0, 4.0), (1, 3.5)]
    assert history["validation/epoch_entity_f1"] == [(0, 0.0), (1, 10.0)]


def page(blessed=True, with_baseline=True):
    candidate = score_entities(GOLD, PREDICTED, "iob2")
    baseline = score_entities(GOLD, [["O"] * 3, ["O", "B-location"]], "iob2")
    statistics = report.data_statistics(list(zip(PREDICTED, GOLD)), list(zip(PREDICTED, GOLD)),
                                        set(), "iob2")  # fmt: skip
    return report.render_html(
        title="Run <1>",
        blessed=blessed,
        pushed_destination="/serving/7" if blessed else "",
        reasons=["entity_f1 below the floor <5>"],
        candidate_scores=candidate,
        baseline_scores=baseline if with_baseline else None,
        baseline_name="version 6",
        statistics=statistics,
        tag_names=TAGS,
        confusion=report.tag_confusion(GOLD, PREDICTED, TAGS),
        history={"train/epoch_loss": [(0, 3.0), (1, 2.0)],
                 "validation/epoch_entity_f1": [(0, 0.0), (1, 50.0)]},
        errors=report.entity_errors(GOLD, PREDICTED),
        examples=report.example_errors([["Ann", "Lee", "ran"], ["in", "Oslo"]], GOLD, PREDICTED),
        kept=1,
    )  # fmt: skip


def test_entity_errors_match_spans_and_name_missed_and_spurious():
    gold = [["B-person", "I-person", "O", "B-location"], ["B-group", "O", "O"]]
    predicted = [["B-person", "I-person", "O", "B-person"], ["B-group", "I-group", "B-product"]]
    counts = report.entity_errors(gold, predicted)
    assert dict(counts) == {
        ("person", "person"): 1,  # same span, same type
        ("location", "person"): 1,  # same span, wrong type
        ("group", report.MISSED): 1,  # gold [0, 1) vs predicted [0, 2): other boundaries
        (report.SPURIOUS, "group"): 1,
        (report.SPURIOUS, "product"): 1,
    }


def test_kept_epoch_is_the_best_f1_from_the_start_epoch_on():
    f1 = {"validation/epoch_entity_f1": [(0, 40.0), (1, 10.0), (2, 30.0), (3, 30.0), (4, 20.0)]}
    assert report.kept_epoch(f1) == 0
    assert report.kept_epoch(f1, start_epoch=1) == 2  # the first of equals
    assert report.kept_epoch(f1, start_epoch=9) == 4  # stopped before watching: the last
    assert report.kept_epoch({"train/epoch_loss": [(0, 1.0)]}) is None


def test_html_is_self_contained_with_figures_and_tables():
    html = page()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2  # confusion matrix, training curves
    import matplotlib.image

    for image in images:
        pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(image)), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.std() > 0  # not blank
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing fetched from elsewhere
    assert "Run &lt;1&gt;" in html and "floor &lt;5&gt;" in html  # escaped
    # person: gold "B I" (one 2-token entity), predicted "B O" (a 1-token one): no match;
    # columns: gold, predicted, correct entities, then P, R, F1.
    assert (
        "<td>person</td><td>1</td><td>1</td><td>0</td><td>0.00</td><td>0.00</td><td>0.00</td>"
        in html
    )
    assert (
        "<td>location</td><td>1</td><td>2</td><td>1</td><td>50.00</td><td>100.00</td><td>66.67</td>"
        in html
    )
    assert "<td>overall</td><td>2</td><td>3</td><td>1</td>" in html
    # A type with gold entities and F1 0 is named under the verdict, even for a blessed model.
    assert re.search(r'id="warning".*F1 0.00 on 1 of 2 entity types \(person\)', html)
    # The entity error view and the example errors.
    assert 'class="errors"' in html and "(missed)" in html and "(spurious)" in html
    assert "<td>Ann Lee ran</td><td>[Ann Lee](person)</td><td>[Ann](person)</td>" in html
    assert (
        "<td>in Oslo</td><td>[Oslo](location)</td><td>[in](location) [Oslo](location)</td>" in html
    )
    assert "ΔF1" in html and "BLESSED, pushed to" in html
    assert "NOT BLESSED, not pushed" in page(blessed=False, with_baseline=False)


def test_renders_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    path = tmp_path / "report.html"
    path.write_text(page(), encoding="utf-8")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("data:image/png;base64,") == 2
    assert dom.stdout.count("<table") == 5  # scores, entity errors, examples, confusion, data
    screenshot = tmp_path / "shot.png"
    shot = subprocess.run(
        [chromium, *flags, f"--screenshot={screenshot}", "--window-size=1200,3000", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(str(screenshot))
    # The figures are drawn: some rows of the page hold many non-white pixels.
    assert (pixels[..., :3] < 0.9).any(axis=2).sum(axis=1).max() > 200


@pytest.mark.slow
def test_known_words_asks_the_transform_graph(tmp_path):
    # A real transform graph: "paris" seen twice (threshold 2), "obama" once, "zebra" only in the
    # vectors file. Known: what reaches the model as a word id other than OOV.
    from transform_fixtures import write_transformed

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("zebra 0.1 0.2\nthe 0.3 0.4\n")
    config = {
        "tagger": {
            "preprocessing": {"tag_names": ["O"], "token_frequency_threshold": 2},
            "model": {"pretrained_embeddings_path": str(vectors), "word_embedding_dim": 2},
        }
    }
    write_transformed(tmp_path, [(["Paris", "obama"], ["O", "O"]), (["paris"], ["O"])], config)
    known = report.known_words(str(tmp_path / "transform"), {"Paris", "obama", "Zebra", "THE", "x"})
    assert known == {"paris", "zebra", "the"}


def _validation_result(folder, failures, missing_thresholds=False):
    """A validations file as TFMA's Evaluator writes it (one serialized ValidationResult)."""
    import tensorflow as tf
    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2
    from tensorflow_model_analysis.proto import validation_result_pb2 as pb

    result = pb.ValidationResult(validation_ok=False, missing_thresholds=missing_thresholds)
    per_slice = result.metric_validations_per_slice.add()
    for name, is_diff, value, threshold in failures:
        failure = per_slice.failures.add()
        failure.metric_key.CopyFrom(metrics_for_slice_pb2.MetricKey(name=name, is_diff=is_diff))
        failure.metric_value.double_value.value = value
        if is_diff:
            failure.metric_threshold.change_threshold.CopyFrom(
                config_pb2.GenericChangeThreshold(absolute={"value": threshold})
            )
        else:
            failure.metric_threshold.value_threshold.CopyFrom(
                config_pb2.GenericValueThreshold(lower_bound={"value": threshold})
            )
        failure.message = "threshold not met"
    with tf.io.TFRecordWriter(str(folder / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    return str(folder)


def test_rejection_reasons_name_each_check_with_its_figure_and_threshold(tmp_path):
    from pipeline.report import validation_reasons

    folder = _validation_result(
        tmp_path, [("entity_f1", False, 3.2, 5.0), ("entity_f1", True, -1.5, -1e-6)],
        missing_thresholds=True,
    )  # fmt: skip
    reasons = validation_reasons(folder, blessed=False)
    assert reasons[0] == (
        "floor check failed: entity_f1 of the candidate is 3.20; needed at least 5.00"
    )
    assert reasons[1].startswith("no-regression check failed: entity_f1 changed by -1.50")
    assert "needed at least -1e-06" in reasons[1]
    assert "could not be checked" in reasons[2]  # TFMA 0.47: a bool, once iterated (TypeError)
