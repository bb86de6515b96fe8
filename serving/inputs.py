"""Sentences to tag, read from a text file (one a line) or a CoNLL file (the token column)."""

from __future__ import annotations

from collections.abc import Iterator

from components.conll_format import Sentence
from components.conll_format import read_conll as read_conll_file

__all__ = [
    "count_lines",
    "read_conll",
    "read_text",
]


def read_text(path: str, encoding: str = "utf-8") -> Iterator[str]:
    """One sentence per line, in order; an empty line is an empty sentence (kept, for alignment).

    Bytes that are not valid in `encoding` become U+FFFD, as the model's tokenisation does with
    bytes that are not UTF-8 (`models.tokenization`).
    """
    with open(path, "rb") as file:
        for line in file:
            yield line.rstrip(b"\r\n").decode(encoding, errors="replace")


def read_conll(path: str, encoding: str = "utf-8") -> Iterator[Sentence]:
    """The sentences of a CoNLL file, read by the pipeline's own reader
    (`components.conll_format.read_conll`: TAB- or space-separated columns, `-DOCSTART-` lines,
    byte order marks, gzip), the token in the first column; other columns (gold tags, say) are
    not read, so a file of tokens alone is fine too. The `tags` of each `Sentence` are empty.

    Raises:
        ConllFormatError: (a ValueError) naming file and line: a line that is not valid in
            `encoding`, a different column count from the file's first token line, no sentence.
    """
    return read_conll_file(path, token_column=0, tag_column=None, encoding=encoding)


def count_lines(path: str) -> int:
    """Lines in a file (for the progress bar's total)."""
    with open(path, "rb") as file:
        return sum(1 for _ in file)
