"""Output formats of the `ner-tag` command: readable text, JSON lines, CoNLL columns."""

from __future__ import annotations

import json

from serving.tagging import TaggedSentence

__all__ = [
    "format_conll",
    "format_jsonl",
    "format_result",
    "format_text",
    "FORMATS",
    "NO_ENTITIES",
]

FORMATS = ("text", "jsonl", "conll")


NO_ENTITIES = "(no entities)"


def format_text(result: TaggedSentence) -> str:
    """The sentence with `[text](type 0.93)` around each entity; "(no entities)" after a
    sentence without any, so that no answer is not mistaken for no output."""
    if not result.entities:
        return " ".join([*result.tokens, NO_ENTITIES])
    pieces, position = [], 0
    for entity in result.entities:
        pieces.extend(result.tokens[position : entity.start])
        pieces.append(f"[{entity.text}]({entity.type} {entity.confidence:.2f})")
        position = entity.end
    pieces.extend(result.tokens[position:])
    return " ".join(pieces)


def format_jsonl(result: TaggedSentence) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False)


def format_conll(result: TaggedSentence) -> str:
    """Token TAB tag TAB confidence per line, then a blank line (one block per sentence)."""
    lines = [
        f"{token}\t{tag}\t{confidence:.4f}"
        for token, tag, confidence in zip(result.tokens, result.tags, result.confidences)
    ]
    return "\n".join(lines) + "\n"


def format_result(result: TaggedSentence, output_format: str) -> str:
    if output_format not in FORMATS:
        raise ValueError(
            f"Invalid value for `output_format`. Expected one of {FORMATS}. "
            f"Received: output_format={output_format!r}"
        )
    return {"text": format_text, "jsonl": format_jsonl, "conll": format_conll}[output_format](
        result
    )
