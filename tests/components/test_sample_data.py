"""Tests for data/sample/: an unchanged, attributed WNUT-17 subset that the pipeline can train on."""

import hashlib
import os
from pathlib import Path

import pytest

from components.conll_format import ReadStats, read_conll

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
WNUT17 = (
    Path(os.environ.get("NER_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
    / "datasets"
    / "wnut17"
)
ENTITY_TYPES = {"corporation", "creative-work", "group", "location", "person", "product"}

# (sample file, source file, first line, last line), as stated in data/sample/NOTICE.md.
RANGES = [
    ("train.conll", "wnut17train.conll", 47884, 57484),
    ("eval.conll", "emerging.dev.conll", 13514, 16742),
]


@pytest.mark.skipif(
    not WNUT17.is_dir(), reason="the original WNUT-17 files are not on this machine"
)
@pytest.mark.parametrize(("name", "source", "first_line", "last_line"), RANGES)
def test_sample_is_an_unchanged_line_range_of_the_source(name, source, first_line, last_line):
    source_lines = (WNUT17 / source).read_bytes().split(b"\n")
    expected = b"".join(line + b"\n" for line in source_lines[first_line - 1 : last_line])
    assert (SAMPLE / name).read_bytes() == expected


@pytest.mark.parametrize(("name", "_source", "first_line", "last_line"), RANGES)
def test_notice_states_the_ranges_and_the_citation(name, _source, first_line, last_line):
    notice = (SAMPLE / "NOTICE.md").read_text(encoding="utf-8")
    assert f"{first_line:,}-{last_line:,}" in notice
    assert f"`{name}`" in notice
    assert "CC BY 4.0" in notice and "https://aclanthology.org/W17-4418" in notice


@pytest.mark.parametrize("name", ["train.conll", "eval.conll"])
def test_every_entity_type_occurs(name):
    sentences = list(read_conll(SAMPLE / name))
    types = {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}
    assert types == ENTITY_TYPES


def test_sizes_and_quirks_kept():
    train, evaluation = (SAMPLE / "train.conll").read_bytes(), (SAMPLE / "eval.conll").read_bytes()
    assert sum(path.stat().st_size for path in SAMPLE.iterdir()) < 100_000
    assert b"\n\t\n" in train and b"\n\n" in train  # TAB-only and empty sentence breaks
    assert "\ufeff".encode() in evaluation  # the dev file's stray byte order mark


@pytest.mark.parametrize(("name", "num_sentences"), [("train.conll", 560), ("eval.conll", 200)])
def test_sentence_counts(name, num_sentences):
    # Each sentence of these ranges is followed by exactly one whitespace-only line: counting
    # those lines is an independent count of the sentences.
    data = (SAMPLE / name).read_bytes()
    assert sum(1 for line in data.split(b"\n")[:-1] if not line.strip()) == num_sentences
    stats = ReadStats()
    list(read_conll(SAMPLE / name, stats=stats))
    assert (stats.num_sentences, stats.num_skipped_sentences) == (num_sentences, 0)


# data/wnut17/: the whole corpus `make run` trains on. The digests are those the upstream copy
# lists in its SOURCE.txt (github.com/leondz/emerging_entities_17 @ e52a2d2), not ours.
WNUT17_BUNDLED = SAMPLE.parent / "wnut17"
WNUT17_FILES = [
    ("train.conll", "731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5", 3394),
    ("eval.conll", "e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8", 1009),
    ("test.conll", "2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0", 1287),
]


@pytest.mark.parametrize(("name", "sha256", "num_sentences"), WNUT17_FILES)
def test_bundled_wnut17_is_the_published_corpus(name, sha256, num_sentences):
    path = WNUT17_BUNDLED / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert f"`{name}`" in (WNUT17_BUNDLED / "NOTICE.md").read_text(encoding="utf-8")
    assert len(list(read_conll(path))) == num_sentences
