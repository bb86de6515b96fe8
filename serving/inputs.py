"""Sentences to tag, read from a text file (one a line) or a CoNLL file (first column)."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "count_lines",
    "DOCSTART",
    "read_conll",
    "read_text",
]

DOCSTART = "-DOCSTART-"


def read_text(path: str) -> Iterator[str]:
    """One sentence per line, in order; an empty line is an empty sentence (kept, for alignment).

    Bytes that are not UTF-8 become U+FFFD, as the model's tokenisation does (`models.tokenization`).
    """
    with open(path, "rb") as file:
        for line in file:
            yield line.rstrip(b"\r\n").decode("utf-8", errors="replace")


def read_conll(path: str) -> Iterator[str]:
    """Sentences of a CoNLL file: blank-line-separated blocks, the token in the first column
    (TAB- or space-separated; other columns, e.g. gold tags, ignored), joined by spaces, which
    `models.tokenization` splits back into the same tokens. `-DOCSTART-` lines are skipped.

    Raises:
        ValueError: naming file and line, for bytes that are not UTF-8.
    """
    tokens: list[str] = []
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}:{number}: invalid UTF-8 ({error.reason} at byte {error.start})"
                ) from None
            if not line:
                if tokens:
                    yield " ".join(tokens)
                    tokens = []
                continue
            token = line.split()[0]
            if token != DOCSTART:
                tokens.append(token)
    if tokens:
        yield " ".join(tokens)


def count_lines(path: str) -> int:
    """Lines in a file (for the progress bar's total)."""
    with open(path, "rb") as file:
        return sum(1 for _ in file)
