"""Which tag follows which: allowed-transition masks for the IOB2 (BIO) and BIOES tag schemes.

A CRF that knows the scheme never proposes `O I-person` (IOB2) or `B-person O` (BIOES): the masks built
here turn those transitions into true `-inf` scores, in training and decoding alike.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "allowed_transitions",
    "canonical_scheme",
    "entity_types",
    "expected_tags",
    "PADDING_TAGS",
    "SCHEMES",
    "split_tag",
    "TAG_SCHEMES",
    "tags_for_types",
]

SCHEMES = ("iob2", "bioes")
"""The schemes, by canonical name."""
TAG_SCHEMES = ("iob2", "bio", "bioes", "iobes")
"""Every accepted name: "bio" is IOB2, "iobes" is BIOES."""
_SCHEME_ALIASES = {"iob2": "iob2", "bio": "iob2", "bioes": "bioes", "iobes": "bioes"}
_PREFIXES = {"iob2": ("B", "I"), "bioes": ("B", "I", "E", "S")}

# Tags that may stand in a tag vocabulary but never label a real token (the padding id).
PADDING_TAGS = ("[PAD]", "<pad>", "<PAD>")


def canonical_scheme(scheme: str, argument: str = "tag_scheme") -> str:
    """Returns "iob2" or "bioes" for a scheme name or alias ("bio", "iobes"), case-insensitive.

    Args:
        scheme: the name to check.
        argument: the caller's name for it, used in the error message.
    """
    name = _SCHEME_ALIASES.get(str(scheme).lower())
    if name is None:
        raise ValueError(
            f"Invalid value for `{argument}`. Expected one of 'iob2' (alias 'bio') or 'bioes' "
            f"(alias 'iobes'). Received: {argument}={scheme!r}"
        )
    return name


def expected_tags(scheme: str) -> str:
    """The tags a scheme accepts, in words: "O, B-<type> or I-<type>"."""
    prefixes = _PREFIXES[canonical_scheme(scheme)]
    return "O, " + ", ".join(f"{p}-<type>" for p in prefixes[:-1]) + f" or {prefixes[-1]}-<type>"


def split_tag(tag: str, scheme: str = "iob2") -> tuple[str, str | None]:
    """Splits a tag into its prefix and entity type: "B-person" -> ("B", "person"), "O" -> ("O", None).

    The type is everything after the first hyphen ("I-creative-work" -> ("I", "creative-work")).

    Raises:
        ValueError: the tag is not "O" nor `<prefix>-<type>` with a prefix of the scheme and a
            non-blank type; or the scheme is unknown.
    """
    scheme = canonical_scheme(scheme, "scheme")
    if tag == "O":
        return "O", None
    prefix, hyphen, entity_type = tag.partition("-") if isinstance(tag, str) else ("", "", "")
    if not hyphen or prefix not in _PREFIXES[scheme] or not entity_type or entity_type.isspace():
        raise ValueError(
            f"Invalid value for `tag`. Expected {expected_tags(scheme)} (scheme {scheme!r}). "
            f"Received: tag={tag!r}"
        )
    return prefix, entity_type


def entity_types(tag_names) -> list[str]:
    """The entity types of a tag vocabulary, sorted; padding tags and "O" have none.

    Raises:
        ValueError: a tag that is neither padding, "O" nor `<prefix>-<type>` of any scheme.
    """
    types = {split_tag(tag, "bioes")[1] for tag in tag_names if tag not in PADDING_TAGS}
    return sorted(t for t in types if t is not None)


def tags_for_types(types, scheme: str = "iob2") -> tuple[str, ...]:
    """Every tag of a scheme for a set of entity types: "O", then each type's tags, types sorted:
    `tags_for_types({"person"}, "iob2")` is ("O", "B-person", "I-person").

    Raises:
        ValueError: an unknown scheme, or a blank type.
    """
    prefixes = _PREFIXES[canonical_scheme(scheme, "scheme")]
    if any(not isinstance(t, str) or not t or t.isspace() for t in types):
        raise ValueError(
            f"Invalid value for `types`. Expected non-blank strings. Received: {types!r}"
        )
    return ("O", *(f"{prefix}-{t}" for t in sorted(set(types)) for prefix in prefixes))


def _allowed(prev: tuple[str, str | None], curr: tuple[str, str | None], scheme: str) -> bool:
    (p_prefix, p_type), (c_prefix, c_type) = prev, curr
    if scheme == "iob2":
        # I-X continues a B-X or I-X; anything else may follow anything.
        return c_prefix != "I" or (p_prefix in ("B", "I") and p_type == c_type)
    # BIOES: B-X and I-X must be followed by I-X or E-X; I-X and E-X must follow B-X or I-X.
    if p_prefix in ("B", "I"):
        return c_prefix in ("I", "E") and c_type == p_type
    return c_prefix in ("B", "S", "O")


def allowed_transitions(
    tag_names: list[str] | tuple[str, ...], scheme: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks of the transitions a tag scheme allows.

    Args:
        tag_names: the tag of each id, e.g. `["[PAD]", "B-loc", "I-loc", "O"]`. A padding tag
            (`[PAD]`, `<pad>`) is allowed nowhere, so it is never decoded.
        scheme: "iob2" (alias "bio") or "bioes" (alias "iobes").

    Returns:
        transitions: bool `(num_tags, num_tags)`, `[from, to]` True where `to` may follow `from`.
        start: bool `(num_tags,)`, True where a tag may begin a sequence.
        end: bool `(num_tags,)`, True where a tag may end a sequence.

    Raises:
        ValueError: unknown scheme, or a tag that does not parse under it.
    """
    scheme = canonical_scheme(scheme)
    tag_names = list(tag_names)
    num_tags = len(tag_names)
    parsed: list[tuple[str, str | None] | None] = []
    for tag in tag_names:
        parsed.append(None if tag in PADDING_TAGS else split_tag(tag, scheme))
    transitions = np.zeros((num_tags, num_tags), dtype=bool)
    start = np.zeros((num_tags,), dtype=bool)
    end = np.zeros((num_tags,), dtype=bool)
    begin_state, end_state = ("O", None), ("O", None)  # sequence boundaries behave like O
    for i, prev in enumerate(parsed):
        if prev is None:
            continue
        start[i] = _allowed(begin_state, prev, scheme)
        end[i] = _allowed(prev, end_state, scheme)
        for j, curr in enumerate(parsed):
            if curr is not None:
                transitions[i, j] = _allowed(prev, curr, scheme)
    return transitions, start, end
