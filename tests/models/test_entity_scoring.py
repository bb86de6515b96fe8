"""Tests for models/entity_scoring.py: the published WNUT-17 scores, conlleval's quirks, errors."""

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest

from components.conll_format import read_conll
from models.entity_scoring import (
    EntityScores,
    TypeScores,
    extract_entities,
    score_entities,
    token_accuracy,
)

WNUT17 = (
    Path(os.environ.get("NER_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
    / "datasets"
    / "wnut17"
)
requires_wnut17 = pytest.mark.skipif(
    not WNUT17.is_dir(), reason="the original WNUT-17 files are not on this machine"
)

# Published entity F1 of the 7 official WNUT-17 submissions (Derczynski et al., 2017, Table 3;
# copied from /work/shared/datasets/README.md).
PUBLISHED_F1 = {
    "uh_ritual": 41.86,
    "spinningbytes.txt": 40.78,
    "sjtu_adapt.txt": 40.42,
    "arcada": 39.98,
    "flytxt": 38.35,
    "mic-cis.txt": 37.06,
    "drexel_cci": 26.30,
}


@pytest.fixture(scope="module")
def gold_sentences():
    return list(read_conll(WNUT17 / "emerging.test.annotated"))


@requires_wnut17
@pytest.mark.parametrize(("name", "published_f1"), sorted(PUBLISHED_F1.items()))
def test_reproduces_published_wnut17_f1(gold_sentences, name, published_f1):
    # How the submissions align with the gold file: each submission holds TWO columns, token and
    # predicted tag (not token, gold, predicted as the dataset README says), CRLF line endings, no
    # newline after the last line, `arcada` space-separated. Every file has the gold file's
    # 23,394 tokens in the same order with the same 1,287 sentence breaks (the gold file's final
    # blank line is missing), so sentence i / token j of a submission is sentence i / token j of
    # the gold file. `mic-cis.txt` submitted lexically normalised tokens (1,283 differ, e.g.
    # "s" -> "is", "gt" -> "get"), so tokens are not compared; positions are, via the lengths.
    predicted_sentences = list(read_conll(WNUT17 / "submissions" / name))
    assert [len(s.tags) for s in predicted_sentences] == [len(s.tags) for s in gold_sentences]
    if name != "mic-cis.txt":
        assert [s.tokens for s in predicted_sentences] == [s.tokens for s in gold_sentences]
    scores = score_entities([s.tags for s in gold_sentences], [s.tags for s in predicted_sentences])
    assert f"{scores.f1:.2f}" == f"{published_f1:.2f}"


# ---------------------------------------------------------------------------------------------
# Hand-made chunking cases (conlleval's quirks).


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-A"], [(0, 1, "A")]),
        (["B-A", "I-A", "O", "B-B"], [(0, 2, "A"), (3, 4, "B")]),
        (["B-A", "B-A"], [(0, 1, "A"), (1, 2, "A")]),
        # I- after O starts a chunk (IOB1-style input is accepted).
        (["O", "I-A", "I-A"], [(1, 3, "A")]),
        (["I-A"], [(0, 1, "A")]),
        # A type switch inside I- tags ends one chunk and starts another.
        (["I-A", "I-B"], [(0, 1, "A"), (1, 2, "B")]),
        (["B-A", "I-B", "I-B"], [(0, 1, "A"), (1, 3, "B")]),
        # Types with hyphens (WNUT-17's creative-work).
        (["B-creative-work", "I-creative-work"], [(0, 2, "creative-work")]),
        # The chunk runs to the end of the sequence.
        (["O", "B-A", "I-A"], [(1, 3, "A")]),
    ],
)
def test_extract_entities_iob2(tags, expected):
    assert extract_entities(tags) == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["S-A", "S-A"], [(0, 1, "A"), (1, 2, "A")]),
        (["B-A", "I-A", "E-A", "O"], [(0, 3, "A")]),
        (["B-A", "E-A", "B-A", "E-A"], [(0, 2, "A"), (2, 4, "A")]),
        # E after E, I after S, E after O: each starts a new chunk.
        (["B-A", "E-A", "E-A"], [(0, 2, "A"), (2, 3, "A")]),
        (["S-A", "I-A", "E-A"], [(0, 1, "A"), (1, 3, "A")]),
        (["O", "E-A"], [(1, 2, "A")]),
        # A chunk left open (no E) is still a chunk, as in conlleval.
        (["B-A", "I-A", "O"], [(0, 2, "A")]),
        (["B-A", "I-A", "S-B"], [(0, 2, "A"), (2, 3, "B")]),
        (["B-A", "E-B"], [(0, 1, "A"), (1, 2, "B")]),
    ],
)
def test_extract_entities_bioes(tags, expected):
    assert extract_entities(tags, scheme="bioes") == expected


def reference_chunks(tags):
    """Literal transcription of conlleval.pl's endOfChunk/startOfChunk, plus seqeval's S rules.

    Slow and rule-by-rule on purpose: the independent reference for random sequences.
    """

    def split(tag):
        return ("O", "") if tag == "O" else (tag[0], tag[2:])

    def end_of_chunk(prev_tag, tag, prev_type, type_):
        end = False
        end |= prev_tag == "E"
        end |= prev_tag == "S"
        end |= prev_tag == "B" and tag == "B"
        end |= prev_tag == "B" and tag == "S"
        end |= prev_tag == "B" and tag == "O"
        end |= prev_tag == "I" and tag == "B"
        end |= prev_tag == "I" and tag == "S"
        end |= prev_tag == "I" and tag == "O"
        end |= prev_tag != "O" and prev_type != type_
        return end

    def start_of_chunk(prev_tag, tag, prev_type, type_):
        start = False
        start |= tag == "B"
        start |= tag == "S"
        start |= prev_tag == "E" and tag == "E"
        start |= prev_tag == "E" and tag == "I"
        start |= prev_tag == "S" and tag == "E"
        start |= prev_tag == "S" and tag == "I"
        start |= prev_tag == "O" and tag == "E"
        start |= prev_tag == "O" and tag == "I"
        start |= tag != "O" and prev_type != type_
        return start

    chunks, begin = [], None
    prev_tag, prev_type = "O", ""
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, type_ = split(tag)
        if end_of_chunk(prev_tag, prefix, prev_type, type_) and begin is not None:
            chunks.append((begin, index, prev_type))
            begin = None
        if start_of_chunk(prev_tag, prefix, prev_type, type_):
            begin = index
        prev_tag, prev_type = prefix, type_
    return chunks


@pytest.mark.parametrize(("scheme", "prefixes"), [("iob2", "BI"), ("bioes", "BIES")])
def test_extract_entities_matches_rule_by_rule_reference(scheme, prefixes):
    generator = random.Random(0)
    vocabulary = ["O"] + [f"{p}-{t}" for p in prefixes for t in ("A", "B")]
    for _ in range(3000):
        tags = [generator.choice(vocabulary) for _ in range(generator.randint(0, 8))]
        assert extract_entities(tags, scheme) == reference_chunks(tags), tags


# ---------------------------------------------------------------------------------------------
# Scores.


def test_scores_counted_by_hand():
    gold = [
        ["B-A", "I-A", "O", "B-B"],  # A(0,2) B(3,4)
        ["O", "B-A", "O"],  # A(1,2)
    ]
    predicted = [
        ["B-A", "I-A", "O", "B-A"],  # A(0,2) correct; A(3,4) wrong type
        ["O", "I-A", "O"],  # I- after O: A(1,2) correct
    ]
    scores = score_entities(gold, predicted)
    # tp 2, predicted 3, gold 3 -> P = R = F1 = 66.67%.
    assert (scores.num_true_positives, scores.num_false_positives, scores.num_false_negatives) == (
        2,
        1,
        1,
    )
    assert scores.precision == pytest.approx(200 / 3)
    assert scores.recall == pytest.approx(200 / 3)
    assert scores.f1 == pytest.approx(200 / 3)
    # A: 2 correct of 3 predicted, 2 gold; B: 0 predicted, 1 gold.
    assert tuple(scores.per_type["A"]) == pytest.approx((200 / 3, 100.0, 80.0, 2, 3, 2))
    assert scores.per_type["B"] == TypeScores(0.0, 0.0, 0.0, 1, 0, 0)
    assert list(scores.per_type) == ["A", "B"]
    # Tokens: 3 of 4 right in the first sentence, 2 of 3 in the second.
    assert scores.token_accuracy == pytest.approx(500 / 7)
    assert scores.num_tokens == 7
    assert token_accuracy(gold, predicted) == pytest.approx(500 / 7)


def test_chunks_do_not_cross_sentence_breaks():
    # "B-A I-A" is one entity in one sentence, two entities when split into two sentences.
    assert score_entities([["B-A", "I-A"]], [["B-A", "I-A"]]).num_true_positives == 1
    assert score_entities([["B-A"], ["I-A"]], [["B-A"], ["I-A"]]).num_true_positives == 2


def test_undefined_scores_are_zero():
    scores = score_entities([["O", "O"]], [["O", "O"]])
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)
    assert scores.per_type == {}
    assert scores.token_accuracy == 100.0
    empty = score_entities([], [])
    assert (empty.f1, empty.token_accuracy, empty.num_tokens) == (0.0, 0.0, 0)


def test_a_perfect_prediction_and_a_type_seen_only_in_predictions():
    gold = [["B-A", "I-A", "O"]]
    assert score_entities(gold, gold).f1 == 100.0
    scores = score_entities(gold, [["B-A", "I-A", "B-C"]])
    assert scores.per_type["C"] == TypeScores(0.0, 0.0, 0.0, 0, num_predicted=1, num_correct=0)
    assert scores.precision == 50.0 and scores.recall == 100.0


def test_bioes_scores_and_numpy_input():
    gold = [np.array(["S-A", "O", "B-B", "E-B"])]
    predicted = [np.array(["S-A", "O", "B-B", "I-B"])]  # open chunk B(2,4) still equals gold
    scores = score_entities(gold, predicted, scheme="bioes")
    assert scores.f1 == 100.0
    assert scores.token_accuracy == 75.0
    assert isinstance(scores, EntityScores)


def test_scores_are_frozen():
    scores = score_entities([["B-A"]], [["B-A"]])
    with pytest.raises(AttributeError):
        scores.f1 = 0.0


# ---------------------------------------------------------------------------------------------
# Errors.


def exactly(message):
    return "^" + re.escape(message) + "$"


def test_invalid_tag():
    message = (
        "Invalid value for `tags[1]`. Expected O or B-<type>, I-<type> (scheme 'iob2'). "
        "Received: tags[1]='E-A'"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        extract_entities(["B-A", "E-A"])
    with pytest.raises(ValueError, match=exactly("In `predicted_sequences[1]`: " + message)):
        score_entities([["O"], ["O", "O"]], [["O"], ["B-A", "E-A"]])


@pytest.mark.parametrize("tag", ["B-", "X-A", "b-A", "", "PER"])
def test_malformed_tags(tag):
    with pytest.raises(ValueError, match=re.escape(f"Received: tags[0]={tag!r}")):
        extract_entities([tag], scheme="bioes")


def test_unknown_scheme():
    message = (
        "Invalid value for `scheme`. Expected one of 'iob2' (alias 'bio') or 'bioes' "
        "(alias 'iobes'). Received: scheme='iob1'"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        extract_entities(["O"], scheme="iob1")
    with pytest.raises(ValueError, match=exactly(message)):
        score_entities([["O"]], [["O"]], scheme="iob1")


def test_mismatched_numbers_and_lengths():
    with pytest.raises(
        ValueError,
        match=exactly(
            "Invalid value for `predicted_sequences`. Expected as many sequences as "
            "`gold_sequences` (2). Received: len(predicted_sequences)=1"
        ),
    ):
        score_entities([["O"], ["O"]], [["O"]])
    with pytest.raises(
        ValueError,
        match=exactly(
            "Invalid value for `predicted_sequences[1]`. Expected 2 tags like "
            "`gold_sequences[1]`. Received: len(predicted_sequences[1])=3"
        ),
    ):
        score_entities([["O"], ["O", "O"]], [["O"], ["O", "O", "O"]])
