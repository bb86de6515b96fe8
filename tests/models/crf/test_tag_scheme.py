"""Allowed transitions, checked against the schemes' definitions written out independently."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from linear_crf.tag_scheme import allowed_transitions, canonical_scheme, entity_types, split_tag

IOB2_TAGS = ["B-a", "I-a", "B-b", "I-b", "O"]


def iob2_sequence_is_valid(tags):
    """IOB2 by definition: an I-X token continues an entity X begun on the token before."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def bioes_sequence_is_valid(tags):
    """BIOES by definition: every entity is S-X, or B-X I-X* E-X, and nothing else."""
    inside = None  # the type of the entity being continued, if any
    for tag in tags:
        prefix, kind = (tag.split("-", 1) + [None])[:2] if tag != "O" else ("O", None)
        if inside is None and prefix in ("I", "E"):
            return False
        if inside is not None and (prefix not in ("I", "E") or kind != inside):
            return False
        inside = kind if prefix in ("B", "I") else None
    return inside is None


@pytest.mark.parametrize(
    "scheme, tags, is_valid",
    [
        ("iob2", IOB2_TAGS, iob2_sequence_is_valid),
        ("bioes", ["B-a", "I-a", "E-a", "S-a", "B-b", "E-b", "S-b", "O"], bioes_sequence_is_valid),
    ],
)
def test_masks_allow_exactly_the_valid_sequences(scheme, tags, is_valid):
    allowed, start, end = allowed_transitions(tags, scheme)
    for length in range(1, 4):
        for ids in itertools.product(range(len(tags)), repeat=length):
            by_mask = bool(
                start[ids[0]]
                and end[ids[-1]]
                and all(allowed[a, b] for a, b in zip(ids[:-1], ids[1:]))
            )
            assert by_mask == is_valid([tags[i] for i in ids]), [tags[i] for i in ids]


def test_padding_tag_is_allowed_nowhere():
    allowed, start, end = allowed_transitions(["[PAD]"] + IOB2_TAGS, "iob2")
    assert not allowed[0].any() and not allowed[:, 0].any() and not start[0] and not end[0]
    assert allowed[1:, 1:].any()


def test_aliases_and_errors():
    assert canonical_scheme("BIO") == "iob2" and canonical_scheme("iobes") == "bioes"
    with pytest.raises(
        ValueError, match=r"Invalid value for `tag_scheme`.*Received: tag_scheme='bilou'"
    ):
        allowed_transitions(IOB2_TAGS, "bilou")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag`. Expected O, B-<type> or I-<type> \(scheme 'iob2'\). Received: tag='S-a'",
    ):
        allowed_transitions(["S-a", "O"], "iob2")
    assert split_tag("I-creative-work") == ("I", "creative-work")
    with pytest.raises(ValueError, match=r"Received: tag='B-'"):
        split_tag("B-")
    assert np.array_equal(allowed_transitions([], "iob2")[0], np.zeros((0, 0), bool))


def test_entity_types_of_either_scheme():
    assert entity_types(["O", "B-person", "I-person", "B-loc"]) == ["loc", "person"]
    assert entity_types(["[PAD]", "O", "S-creative-work", "E-loc"]) == ["creative-work", "loc"]
    assert entity_types(["[PAD]", "O"]) == []
    with pytest.raises(ValueError, match="X-loc"):
        entity_types(["O", "X-loc"])


def test_tags_for_types_lists_every_tag_of_the_scheme():
    from linear_crf.tag_scheme import tags_for_types

    assert tags_for_types({"person", "drug"}) == ("O", "B-drug", "I-drug", "B-person", "I-person")
    assert tags_for_types(["loc"], "bioes") == ("O", "B-loc", "I-loc", "E-loc", "S-loc")
    assert tags_for_types([], "bio") == ("O",)
    with pytest.raises(ValueError, match="types"):
        tags_for_types(["", "x"])
