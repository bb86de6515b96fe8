"""Tests of the `ner-eval` command (serving/evaluate.py): scores against published figures and
an independent count, its output files, and its errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serving.evaluate import main

REPO = Path(__file__).resolve().parents[2]
TEST_GOLD = REPO / "data" / "wnut17" / "test.conll"
SUBMISSIONS = (
    Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))
    / "datasets"
    / "wnut17"
    / "submissions"
)
# Entity F1 of the official WNUT-17 submissions as published (Derczynski et al., 2017, Table 3).
PUBLISHED_F1 = {"uh_ritual": 41.86, "arcada": 39.98, "drexel_cci": 26.30}


@pytest.mark.skipif(not SUBMISSIONS.is_dir(), reason="the WNUT-17 submissions are not here")
@pytest.mark.parametrize(("name", "published"), sorted(PUBLISHED_F1.items()))
def test_a_systems_output_scores_its_published_f1(tmp_path, capsys, name, published):
    scores_path, page = tmp_path / "scores.json", tmp_path / "errors.html"
    argv = [str(TEST_GOLD), "--predictions", str(SUBMISSIONS / name)]
    assert main(argv + ["--json", str(scores_path), "--html", str(page)]) == 0
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    assert f"{scores['f1']:.2f}" == f"{published:.2f}"
    assert scores["sentences"] == 1287 and scores["tokens"] == 23394
    # The gold side's counts: 1,079 entities in the test split (the dataset's own B- count).
    assert sum(t["support"] for t in scores["per_type"].values()) == 1079
    assert scores["true_positives"] + scores["false_negatives"] == 1079
    table = capsys.readouterr().out
    assert f"{published:.2f}" in table.splitlines()[-2]  # the "all (micro)" row
    assert "support" in table and "person" in table
    text = page.read_text(encoding="utf-8")
    assert "Sentences with an error" in text and "test.conll:" in text


def test_counts_of_a_hand_made_case(tmp_path, capsys):
    gold = tmp_path / "gold.conll"
    gold.write_text(
        "Alice\tB-person\nin\tO\nParis\tB-location\n\nBob\tB-person\nleft\tO\n\n",
        encoding="utf-8",
    )
    predicted = tmp_path / "predicted.conll"
    predicted.write_text(
        "Alice\tB-person\nin\tO\nParis\tB-person\n\nBob\tO\nleft\tB-location\n\n",
        encoding="utf-8",
    )
    scores_path = tmp_path / "s.json"
    argv = [str(gold), "--predictions", str(predicted), "--json", str(scores_path)]
    assert main(argv) == 0
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    # Gold: Alice/person, Paris/location, Bob/person. Predicted: Alice/person (right),
    # Paris/person (wrong type), left/location (spurious).
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (
        1,
        2,
        2,
    )
    person, location = scores["per_type"]["person"], scores["per_type"]["location"]
    assert (person["support"], person["true_positives"], person["false_positives"]) == (2, 1, 1)
    assert (location["support"], location["true_positives"], location["false_negatives"]) == (
        1,
        0,
        1,
    )
    assert scores["f1"] == pytest.approx(100 * 2 * (1 / 3) * (1 / 3) / (2 / 3))


def test_misaligned_predictions_name_the_sentence(tmp_path, capsys):
    gold = tmp_path / "gold.conll"
    gold.write_text("a\tO\nb\tO\n\nc\tO\n\n", encoding="utf-8")
    predicted = tmp_path / "predicted.conll"
    predicted.write_text("a\tO\n\nc\tO\n\n", encoding="utf-8")
    assert main([str(gold), "--predictions", str(predicted)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ner-eval: ") and "predicted.conll:1: sentence 1 has 1 tokens" in error
    assert len(error.strip().splitlines()) == 1
