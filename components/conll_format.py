"""Reader for CoNLL-style column files (one token per line, a blank line between sentences).

The format as real files bring it (WNUT-17, CoNLL-2003 and their many copies):

- one token per line, columns separated by a TAB (or, in files without TABs, by runs of spaces);
  the token and the tag are two of the columns (by default the first and the last);
- sentences are separated by empty lines, or by lines holding only whitespace (2,394 of the
  sentence breaks in WNUT-17's `wnut17train.conll` are a single TAB);
- `-DOCSTART-` lines (CoNLL-2003 document markers) are not tokens and also end a sentence;
- UTF-8 (or another encoding that keeps ASCII as it is, when told: `encoding="cp1252"`), with or
  without a byte order mark, also with a stray U+FEFF inside the file (files
  concatenated from BOM-prefixed pieces; WNUT-17 dev has one glued to the token `Dubbz`). U+FEFF is
  never part of a token here: it is removed wherever it occurs;
- LF or CRLF line endings, with or without a final newline.

Everything else is an error that names the file and the line (`ConllFormatError`). With
`on_error="skip"` a sentence holding a bad line is dropped whole (never kept with a guessed tag)
and counted in `ReadStats`.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import gzip
import io
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from linear_crf.tag_scheme import TAG_SCHEMES, canonical_scheme, expected_tags
from linear_crf.tag_scheme import split_tag as parse_tag

__all__ = [
    "ConllFormatError",
    "ON_ERROR_MODES",
    "check_encoding",
    "ReadStats",
    "Sentence",
    "TAG_SCHEMES",
    "parse_tag",
    "lines_of",
    "RawSentence",
    "read_conll",
    "read_conll_batches",
    "read_conll_lines",
]


ON_ERROR_MODES = ("raise", "skip")

DOCSTART = "-DOCSTART-"

_SPACES = re.compile(" +")
_BOM = "\ufeff"
# Characters stripped around a whole line and around each TAB-separated field. Only ASCII
# whitespace: a token may be a non-ASCII space (U+00A0, U+3000) and must survive.
_ASCII_WHITESPACE = " \t\r\n\f\v"
_ANY_ASCII_WHITESPACE = re.compile("[ \t\r\n\f\v]")
_ASCII_WHITESPACE_BUT_TAB = re.compile("[ \r\n\f\v]")
_MAX_QUOTED_CHARS = 80


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence read from a CoNLL file.

    Attributes:
        tokens: the token column, one entry per token.
        tags: the tag column, same length as `tokens`; empty when read with `tag_column=None`.
        path: the file it was read from, as given to the reader.
        line: 1-based line number of its first token in that file.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    path: str
    line: int


class ConllFormatError(ValueError):
    """A CoNLL file that cannot be read; the message starts with `path:line:`.

    Attributes:
        path: the file, as given to the reader.
        line: 1-based line number of the offending line, or None for an error about the whole
            file (such as a file with no sentences).
        reason: the message without the `path:line:` prefix.
    """

    def __init__(self, path: str, line: int | None, reason: str):
        self.path = path
        self.line = line
        self.reason = reason
        location = path if line is None else f"{path}:{line}"
        super().__init__(f"{location}: {reason}")

    def __reduce__(self):
        # Keeps the attributes when the error is pickled (Beam workers send errors back pickled).
        return (type(self), (self.path, self.line, self.reason))


@dataclasses.dataclass
class ReadStats:
    """Counts filled in by `read_conll` while it reads (final once the iterator is exhausted).

    Attributes:
        num_sentences: sentences returned.
        num_tokens: tokens in the sentences returned.
        num_docstart_lines: `-DOCSTART-` lines passed over.
        num_skipped_sentences: sentences dropped because one of their lines was bad
            (`on_error="skip"` only).
        num_skipped_lines: token lines in the dropped sentences.
        errors: the first error of each dropped sentence, in file order.
    """

    num_sentences: int = 0
    num_tokens: int = 0
    num_docstart_lines: int = 0
    num_skipped_sentences: int = 0
    num_skipped_lines: int = 0
    errors: list[ConllFormatError] = dataclasses.field(default_factory=list)


def _canonical_scheme(scheme: str) -> str:
    return canonical_scheme(scheme, "scheme")


def _quote(text: str) -> str:
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[:_MAX_QUOTED_CHARS] + "..."
    return repr(text)


def _column_names(num_columns: int, token_column: int, tag_column: int | None) -> str:
    names = []
    for index in range(num_columns):
        if index == token_column % num_columns:
            names.append("token")
        elif tag_column is not None and index == tag_column % num_columns:
            names.append("tag")
        else:
            names.append(f"column {index + 1}")
    return ", ".join(names)


def check_encoding(encoding: str) -> str:
    """The codec's canonical name (`"cp1252"` for `"windows-1252"`), if CoNLL files can be read
    in it line by line: a known codec that writes ASCII as ASCII (UTF-8, Windows-1252, Latin-1,
    ...). UTF-16 and UTF-32 cannot (their newline is two or four bytes): convert those first.

    Raises:
        ValueError: naming the encoding and what is expected.
    """
    try:
        name = codecs.lookup(encoding).name if isinstance(encoding, str) else None
    except LookupError:
        name = None
    if name is None:
        raise ValueError(
            "Invalid value for `encoding`. Expected the name of a text encoding Python knows "
            f"(e.g. utf-8, cp1252, latin-1). Received: encoding={encoding!r}"
        )
    try:
        ascii_as_ascii = "\t\n -Az09".encode(name) == b"\t\n -Az09"
    except (UnicodeError, LookupError):  # e.g. a bytes-to-bytes codec such as hex
        ascii_as_ascii = False
    if not ascii_as_ascii:
        raise ValueError(
            "Invalid value for `encoding`. Expected an encoding that keeps ASCII as it is (utf-8, "
            f"cp1252, latin-1, ...); convert the files first, e.g. iconv -f {encoding} -t UTF-8. "
            f"Received: encoding={encoding!r}"
        )
    return name


def _validate_arguments(token_column, tag_column, separator, scheme, on_error) -> None:
    _canonical_scheme(scheme)
    for name, value in (("token_column", token_column), ("tag_column", tag_column)):
        if name == "tag_column" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(
                f"Invalid value for `{name}`. Expected an int (a column index, negative counts "
                f"from the end{'; None: no tag column' if name == 'tag_column' else ''}). "
                f"Received: {name}={value!r}"
            )
    if token_column == tag_column:
        raise ValueError(
            "Invalid value for `tag_column`. Expected a column other than `token_column`. "
            f"Received: token_column={token_column!r}, tag_column={tag_column!r}"
        )
    if separator is not None and (
        not isinstance(separator, str) or not separator or "\n" in separator
    ):
        raise ValueError(
            "Invalid value for `separator`. Expected None (TAB if the line has one, else runs of "
            f"spaces) or a non-empty string without a newline. Received: separator={separator!r}"
        )
    if on_error not in ON_ERROR_MODES:
        raise ValueError(
            f"Invalid value for `on_error`. Expected one of {ON_ERROR_MODES}. "
            f"Received: on_error={on_error!r}"
        )


def _split_columns(line: str, separator: str | None) -> list[str]:
    if separator is None:
        if "\t" not in line:
            return _SPACES.split(line.strip(" "))
        separator = "\t"
    fields = line.split(separator)
    # The usual line has no whitespace but its separators: no field to strip (and no list to
    # build again). A search is cheaper than stripping every field.
    if separator == "\t":
        if _ASCII_WHITESPACE_BUT_TAB.search(line) is None:
            return fields
    elif _ANY_ASCII_WHITESPACE.search(line.replace(separator, "")) is None:
        return fields
    return [field.strip(_ASCII_WHITESPACE) for field in fields]


_GZIP_MAGIC = b"\x1f\x8b"


def read_conll(
    path: str | os.PathLike,
    token_column: int = 0,
    tag_column: int | None = -1,
    separator: str | None = None,
    scheme: str = "iob2",
    on_error: str = "raise",
    stats: ReadStats | None = None,
    encoding: str = "utf-8",
) -> Iterator[Sentence]:
    """Reads the sentences of a CoNLL-style column file, lazily.

    Args:
        path: the file (read as bytes and decoded line by line).
        token_column: index of the token column; negative counts from the end.
        tag_column: index of the tag column; negative counts from the end. None: no tag column
            (text to tag: one column or more, the tags of the `Sentence`s empty).
        separator: column separator; None splits at TABs when the line holds one, else at runs of
            spaces. An explicit separator is used as is (fields are stripped of ASCII spaces).
        scheme: tag scheme the tags must follow: "iob2" (alias "bio") or "bioes".
        on_error: "raise" raises `ConllFormatError` at the first bad line; "skip" drops the
            sentence holding a bad line, whole, and counts it in `stats`.
        stats: if given, filled in with counts while reading.
        encoding: the files' encoding (`check_encoding`): "utf-8" unless told.
    Returns:
        An iterator of `Sentence`s in file order (the file is read as it is consumed).
    Raises:
        ConllFormatError: (a ValueError) naming file and line: wrong number of columns (the first
            token line sets the count for the file), invalid UTF-8, a tag outside the scheme, an
            empty token or tag field; also a file with no sentences, even with on_error="skip".
            A line that is not valid UTF-8 names the encoding it is likely in.
        ValueError: for invalid arguments (raised by the call itself, before any reading).
    """
    _validate_arguments(token_column, tag_column, separator, scheme, on_error)
    encoding = check_encoding(encoding)
    return _read_file(
        os.fspath(path), token_column, tag_column, separator, scheme, on_error, stats, encoding
    )


def lines_of(file: BinaryIO, path: str) -> Iterable[bytes]:
    """The lines of a file opened in binary mode; decompressed as they are read if the file is
    gzip-compressed (known by its first bytes, whatever its name: `train.conll.gz` or not).

    A file object that is not one of Python's buffered binary files (e.g. TensorFlow's `GFile`,
    which `tfx.dsl.io.fileio.open` returns, and whose lines cost a Python call each) is read
    through an `io.BufferedReader` in 1 MiB chunks: its lines split in C, at b"\n" only. A plain
    file is then returned as it is (iterating it yields its lines). The first bytes are read by
    this call.

    Raises:
        ConllFormatError: naming the file, for compressed data that is corrupt or cut short
            (while the lines are read).
    """
    stream, compressed = _binary_stream(file)
    return _gzip_lines(stream, path) if compressed else stream


def _binary_stream(file: BinaryIO) -> tuple[BinaryIO, bool]:
    """The file as a buffered binary stream at its start (`lines_of` says which), and whether
    it is gzip-compressed."""
    if isinstance(file, io.BufferedIOBase):
        head = file.read(len(_GZIP_MAGIC))
        file.seek(0)
    else:
        if hasattr(file, "seek"):
            file.seek(0)  # From the start, as for an io file.
        file = io.BufferedReader(_ReadOnlyRaw(file), buffer_size=_CHUNK_BYTES)
        head = file.peek(len(_GZIP_MAGIC))[: len(_GZIP_MAGIC)]
    return file, head == _GZIP_MAGIC


_CHUNK_BYTES = 1 << 20


class _ReadOnlyRaw(io.RawIOBase):
    """Any object with `read(size)` as a raw binary stream, for `io.BufferedReader`."""

    def __init__(self, file):
        self._file = file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _gzip_lines(file: BinaryIO, path: str) -> Iterator[bytes]:
    try:
        yield from gzip.GzipFile(fileobj=file, mode="rb")  # type: ignore[arg-type]
    except (OSError, EOFError, zlib.error) as error:
        raise _gzip_error(path, error) from None


def _gzip_error(path: str, error: Exception) -> ConllFormatError:
    return ConllFormatError(
        path, None, f"corrupt or truncated gzip data ({error}); check the file with gzip -t"
    )


RawSentence = tuple[int, list[bytes], list[bytes]]
"""A sentence as `read_conll_batches` gives it: (first line, tokens, tags), as UTF-8 bytes."""


def read_conll_batches(
    file: BinaryIO,
    path: str,
    token_column: int = 0,
    tag_column: int | None = -1,
    separator: str | None = None,
    scheme: str = "iob2",
    on_error: str = "raise",
    stats: ReadStats | None = None,
    encoding: str = "utf-8",
    chunk_bytes: int = _CHUNK_BYTES,
    convert: Callable[[int, list[bytes], list[bytes]], Any] | None = None,
) -> Iterator[list]:
    """`read_conll_lines` for writers of UTF-8 bytes (ExampleGen), in batches, without a Python
    step per line where the text allows it.

    The same sentences as `read_conll_lines` (tokens and tags encoded as UTF-8), the same line
    numbers, counts and errors. The file is read about `chunk_bytes` at a time, cut after a
    blank line, and each chunk is converted whole: decoded (and, in another encoding, encoded
    as UTF-8), CRLF endings to LF, U+FEFF removed, lines of whitespace emptied. A sentence whose
    lines then all hold the file's number of columns, separated by single TABs (or by single
    spaces in a chunk without TABs), none empty or with whitespace at its ends, and whose tags
    are known, is split with a few calls over its whole text. Every other sentence (the file's
    first, a -DOCSTART- line, a bad line, a new tag...) is read line by line by
    `read_conll_lines`'s own code, which raises or counts every error; a chunk that does not
    decode is read that way whole.

    Args:
        file: the file opened in binary mode (gzip-compressed or not, as for `lines_of`).
        path, token_column, tag_column, separator, scheme, on_error, stats, encoding: as for
            `read_conll_lines`.
        chunk_bytes: how much of the file to read at a time.
        convert: called as `convert(first_line, tokens, tags)` for each sentence; the batches
            hold what it returns. None: the `RawSentence` itself. A writer passes its
            serialiser, so that the batches hold bytes only, which Python's cyclic garbage
            collector does not track (batches of thousands of lists cost it, in a process that
            has imported TensorFlow, about as much time as the reading itself).
    Returns:
        An iterator of lists, one per chunk read: the `RawSentence`s (or what `convert` makes
        of them) in file order.
    """
    _validate_arguments(token_column, tag_column, separator, scheme, on_error)
    encoding = check_encoding(encoding)
    options = dict(
        token_column=token_column, tag_column=tag_column, separator=separator, scheme=scheme,
        on_error=on_error,
    )  # fmt: skip
    return _read_batches(file, path, options, stats, encoding, chunk_bytes, convert or _raw)


def _raw(line: int, tokens: list[bytes], tags: list[bytes]) -> RawSentence:
    return line, tokens, tags


def _read_batches(file, path, options, stats, encoding, chunk_bytes, convert):
    stats = stats if stats is not None else ReadStats()
    state = _FileState()
    splitter = _BlockSplitter.for_options(options, state)

    def slow(lines, line_number, byte_offset, in_encoding):
        state.line_number, state.byte_offset = line_number, byte_offset
        return [
            convert(sentence.line, _utf8(sentence.tokens), _utf8(sentence.tags))
            for sentence in _read_lines(
                lines, path, **options, stats=stats, encoding=in_encoding, state=state
            )
        ]

    def add(batch: list, split, text: bytes, first_line: int) -> None:
        """The sentences of `text` (plain UTF-8, its first line `first_line`) to `batch`."""
        for block, first in _blocks(text, first_line):
            sentence = split(block, first, stats)
            if sentence is not None:
                batch.append(convert(*sentence))
            elif _WHITESPACE_LINE.search(block) is not None:
                # Lines of whitespace: blank lines to the reader, between sentences.
                add(batch, split, _WHITESPACE_LINE.sub(b"", block), first)
            else:  # Read line by line; in UTF-8 now, so no offsets to give.
                batch.extend(slow(io.BytesIO(block), first - 1, 0, "utf-8"))

    line_number = byte_offset = 0  # Where the chunk starts: after that line, at that byte.
    open_line = False
    for chunk in _chunks_of(file, path, chunk_bytes):
        text = _as_plain_utf8(chunk, encoding) if splitter is not None else None
        if text is None:
            batch = slow(io.BytesIO(chunk), line_number, byte_offset, encoding)
        else:
            batch = []
            add(batch, splitter.splitter_for(text), text, line_number + 1)
        line_number += chunk.count(b"\n")
        byte_offset += len(chunk)
        open_line = not chunk.endswith(b"\n")  # A last line without its newline.
        if batch:
            yield batch
    _check_some_sentence(path, line_number + open_line, state.num_yielded, stats)


def _utf8(texts) -> list[bytes]:
    return [text.encode("utf-8") for text in texts]


def _blocks(text: bytes, first_line: int) -> Iterator[tuple[bytes, int]]:
    """The runs of lines between empty lines in `text` (whose first line is `first_line`), each
    with the line number of its first line."""
    line = first_line
    for piece in text.split(b"\n\n"):
        block = piece.lstrip(b"\n")
        start = line + len(piece) - len(block)
        block = block.rstrip(b"\n")
        if block:
            yield block, start
        line += piece.count(b"\n") + 2


# Lines holding only ASCII whitespace (blank lines to the reader).
_WHITESPACE_LINE = re.compile(rb"(?:^|(?<=\n))[ \t\f\v\r]+(?=\n|$)")
_UTF8_BOM = _BOM.encode("utf-8")


def _as_plain_utf8(chunk: bytes, encoding: str) -> bytes | None:
    """The chunk in UTF-8 with LF endings and no U+FEFF: what `_read_lines` makes of each line
    before splitting it (but for lines of whitespace, left to `add`), for a whole chunk at once
    (line breaks stay where they were); None if it does not decode."""
    try:
        if encoding == "utf-8":
            chunk.decode("utf-8")
            text = chunk
        else:
            text = chunk.decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        return None
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    if _UTF8_BOM in text:
        text = text.replace(_UTF8_BOM, b"")
    return text


class _BlockSplitter:
    """Splits a sentence's lines (a block of UTF-8 text between blank lines) in a few calls when
    its lines are plain columns; says None when they are not, for `_read_lines` to read them."""

    @classmethod
    def for_options(cls, options, state: _FileState) -> _BlockSplitter | None:
        """The splitter for these reading options; None where the file is read line by line
        (no tag column, or a separator other than TAB or a space)."""
        if options["tag_column"] is None or options["separator"] not in (None, "\t", " "):
            return None
        return cls(options, state)

    def __init__(self, options, state: _FileState):
        self._token_column = options["token_column"]
        self._tag_column = options["tag_column"]
        self._separator = options["separator"]
        self._scheme = _canonical_scheme(options["scheme"])
        self._state = state
        self._known_tags: set[bytes] = set()
        self._patterns: dict[tuple[bytes, int], re.Pattern] = {}

    def _pattern(self, separator: bytes, num_columns: int) -> re.Pattern:
        """Lines of `num_columns` non-empty fields between single separators."""
        key = (separator, num_columns)
        if key not in self._patterns:
            field = b"[^\n" + re.escape(separator) + b"]+"
            line = field + (re.escape(separator) + field) * (num_columns - 1)
            self._patterns[key] = re.compile(line + b"(?:\n" + line + b")*")
        return self._patterns[key]

    def splitter_for(self, text: bytes):
        """`split` for the blocks of this chunk of text: `(block, first_line, stats)` -> the
        sentence, or None where it must be read line by line. The awkward text is looked for in
        the whole chunk first: in its blocks only when the chunk holds some."""
        if self._separator == " " or (self._separator is None and b"\t" not in text):
            separator = b" "
        else:
            separator = b"\t"
        return functools.partial(
            self.split, separator=separator, check=_is_awkward(text, separator)
        )

    def split(
        self, block: bytes, first_line: int, stats: ReadStats, separator: bytes, check: bool
    ) -> RawSentence | None:
        state = self._state
        num_columns = state.num_columns
        if num_columns is None:  # The file's first sentence sets it, line by line.
            return None
        if (check and _is_awkward(block, separator)) or self._pattern(
            separator, num_columns
        ).fullmatch(block) is None:
            return None
        fields = block.replace(b"\n", separator).split(separator)
        tokens = fields[self._token_column % num_columns :: num_columns]
        tags = fields[self._tag_column % num_columns :: num_columns]
        if not all(map(self._known_tags.__contains__, tags)):
            for tag in set(tags) - self._known_tags:
                text = tag.decode("utf-8")
                if text not in state.valid_tags:
                    try:
                        parse_tag(text, self._scheme)
                    except ValueError:
                        return None  # Reported (or counted) line by line.
                    state.valid_tags.add(text)
                self._known_tags.add(tag)
        stats.num_sentences += 1
        stats.num_tokens += len(tokens)
        state.num_yielded += 1
        return first_line, tokens, tags


def _is_awkward(text: bytes, separator: bytes) -> bool:
    """Whether the text holds what `_read_lines` treats otherwise than a split at `separator`
    would: a document marker, ASCII whitespace inside a field other than spaces, spaces at a
    field's ends (with TABs), TABs or double spaces (with spaces). Spaces are rare in TAB
    separated text and newlines and TABs frequent: the searches for a pair starting with one of
    those (slow) only run where the text holds a space at all."""
    if any(part in text for part in _AWKWARD_ANYWHERE):
        return True
    if separator == b"\t":
        return b" " in text and (
            text[:1] == b" " or text[-1:] == b" " or any(p in text for p in _AWKWARD_SPACES)
        )
    return (
        b"\t" in text
        or text[:1] == b" "
        or text[-1:] == b" "
        or any(part in text for part in _AWKWARD_SPACES)
        or b"  " in text
    )


_AWKWARD_ANYWHERE = (DOCSTART.encode(), b"\r", b"\f", b"\v")
_AWKWARD_SPACES = (b" \n", b"\n ", b" \t", b"\t ")


def _chunks_of(file: BinaryIO, path: str, size: int) -> Iterator[bytes]:
    """The file's bytes (decompressed if gzip-compressed, as `lines_of` reads them) in chunks
    of about `size`, each but the last ending just after a blank line (LF or CRLF)."""
    stream, compressed = _binary_stream(file)
    if compressed:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    carry = b""
    while True:
        try:
            data = stream.read(size)
        except (OSError, EOFError, zlib.error) as error:
            raise _gzip_error(path, error) from None
        if not data:
            break
        data = carry + data
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
        carry = data[cut:]
        if cut:
            yield data[:cut]
    if carry:
        yield carry


def _read_file(path, token_column, tag_column, separator, scheme, on_error, stats, encoding):
    with open(path, "rb") as file:
        yield from _read_lines(
            lines_of(file, path),
            path=path,
            token_column=token_column,
            tag_column=tag_column,
            separator=separator,
            scheme=scheme,
            on_error=on_error,
            stats=stats,
            encoding=encoding,
        )


def read_conll_lines(
    lines: Iterable[bytes] | BinaryIO,
    path: str,
    token_column: int = 0,
    tag_column: int | None = -1,
    separator: str | None = None,
    scheme: str = "iob2",
    on_error: str = "raise",
    stats: ReadStats | None = None,
    encoding: str = "utf-8",
) -> Iterator[Sentence]:
    """`read_conll` on raw lines already opened elsewhere (e.g. Beam's `FileSystems.open`).

    Args:
        lines: the file's lines as bytes, each with or without its line ending, e.g. a file
            opened in binary mode (which splits at b"\\n" only, as wanted here); a file object
            that can seek is read through `lines_of` (gzip-compressed files decompressed).
        path: the name used in `Sentence.path` and in error messages.
        token_column, tag_column, separator, scheme, on_error, stats, encoding: as for
            `read_conll`.
    Returns:
        An iterator of `Sentence`s in file order (the file is read as it is consumed).
    """
    _validate_arguments(token_column, tag_column, separator, scheme, on_error)
    encoding = check_encoding(encoding)
    if hasattr(lines, "read") and hasattr(lines, "seek"):
        lines = lines_of(lines, path)  # type: ignore[arg-type]
    return _read_lines(
        lines, path, token_column, tag_column, separator, scheme, on_error, stats, encoding
    )


def _likely_encoding(line: bytes) -> str:
    """What a line that is not UTF-8 is likely in, for the hint: Windows-1252 where it decodes
    (the usual case: files saved by Windows tools), else Latin-1 (which decodes anything)."""
    line = line.rstrip(b"\r\n")
    try:
        return f"cp1252 (Windows-1252; the line would read {_quote(line.decode('cp1252'))})"
    except UnicodeDecodeError:
        return f"latin-1 (the line would read {_quote(line.decode('latin-1'))})"


@dataclasses.dataclass
class _FileState:
    """What reading a file carries from one line to the next, kept outside `_read_lines` so that
    `read_conll_batches` can hand it pieces of a file in turn."""

    line_number: int = 0  # Of the last line read (1-based).
    byte_offset: int = 0  # Of the next line in the file, for the messages about encodings.
    num_columns: int | None = None  # Set by the first good token line.
    valid_tags: set[str] = dataclasses.field(default_factory=set)  # Checked: each once a file.
    num_yielded: int = 0


def _read_lines(
    lines, path, token_column, tag_column, separator, scheme, on_error, stats, encoding,
    state: _FileState | None = None,
):  # fmt: skip
    """The sentences of `lines`, line by line; with a `state`, lines that continue a file (its
    line numbers, column count and checked tags), and no error for finding no sentence."""
    whole_file = state is None
    state = _FileState() if state is None else state
    scheme = _canonical_scheme(scheme)
    stats = stats if stats is not None else ReadStats()
    num_columns = state.num_columns
    valid_tags = state.valid_tags
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    error: ConllFormatError | None = None  # First error of the current sentence (skip mode).
    num_bad_lines = 0
    num_yielded = state.num_yielded
    byte_offset = state.byte_offset
    line_number = state.line_number

    def flush():
        nonlocal tokens, tags, error, num_bad_lines
        sentence = None
        if error is not None:
            stats.num_skipped_sentences += 1
            stats.num_skipped_lines += len(tokens) + num_bad_lines
            stats.errors.append(error)
        elif tokens:
            sentence = Sentence(tuple(tokens), tuple(tags), path, first_line)
            stats.num_sentences += 1
            stats.num_tokens += len(tokens)
        tokens, tags, error, num_bad_lines = [], [], None, 0
        return sentence

    for raw in lines:
        line_number += 1
        line_start, byte_offset = byte_offset, byte_offset + len(raw)
        try:
            text = raw.decode(encoding).replace(_BOM, "").rstrip(_ASCII_WHITESPACE)
            if not text or text.isspace():
                sentence = flush()
                if sentence is not None:
                    num_yielded += 1
                    yield sentence
                continue
            # `in` first: a substring search is cheaper than splitting every line.
            if DOCSTART in text and text.split(maxsplit=1)[0] == DOCSTART:
                stats.num_docstart_lines += 1
                sentence = flush()
                if sentence is not None:
                    num_yielded += 1
                    yield sentence
                continue
            if error is not None:  # Skipping the rest of a bad sentence.
                num_bad_lines += 1
                continue
            if not tokens:
                first_line = line_number
            columns = _split_columns(text, separator)
            if num_columns is None:
                if tag_column is None:
                    needed = max(token_column + 1, -token_column)
                else:
                    needed = max(token_column + 1, -token_column, tag_column + 1, -tag_column, 2)
                if len(columns) < needed:
                    raise ConllFormatError(
                        path,
                        line_number,
                        f"expected at least {needed} columns (with token_column={token_column}, "
                        f"tag_column={tag_column}), found {len(columns)}: {_quote(text)}",
                    )
                if tag_column is not None and (
                    token_column % len(columns) == tag_column % len(columns)
                ):
                    raise ConllFormatError(
                        path,
                        line_number,
                        f"token_column={token_column} and tag_column={tag_column} are the same "
                        f"column in a line of {len(columns)} columns: {_quote(text)}",
                    )
                num_columns = len(columns)
            elif len(columns) != num_columns:
                names = _column_names(num_columns, token_column, tag_column)
                raise ConllFormatError(
                    path,
                    line_number,
                    f"expected {num_columns} columns ({names}), found {len(columns)}: "
                    f"{_quote(text)}",
                )
            token = columns[token_column]
            if not token:
                raise ConllFormatError(path, line_number, f"empty token: {_quote(text)}")
            if tag_column is None:
                tokens.append(token)
                continue
            tag = columns[tag_column]
            if tag in valid_tags:
                tokens.append(token)
                tags.append(tag)
                continue
            try:
                parse_tag(tag, scheme)
            except ValueError:
                raise ConllFormatError(
                    path,
                    line_number,
                    f"invalid tag {_quote(tag)}; scheme {scheme!r} expects "
                    f"{expected_tags(scheme)}: {_quote(text)}",
                ) from None
            valid_tags.add(tag)
            tokens.append(token)
            tags.append(tag)
        except (ConllFormatError, UnicodeDecodeError) as caught:
            if isinstance(caught, UnicodeDecodeError):
                bad_bytes = caught.object[caught.start : caught.end]
                if line_start == 0 and caught.object.startswith(_GZIP_MAGIC):
                    hint = (
                        "the file is gzip-compressed (it starts with gzip's magic bytes): "
                        f"decompress it first, e.g. gunzip -c {path}.gz > {path}"
                        if not path.endswith(".gz")
                        else "the file is gzip-compressed: decompress it first (gunzip)"
                    )
                elif line_start == 0 and caught.object.startswith((b"\xff\xfe", b"\xfe\xff")):
                    hint = (
                        "the file is likely UTF-16 (it starts with a UTF-16 byte order mark): "
                        f"convert it first, e.g. iconv -f UTF-16 -t UTF-8 {path}"
                    )
                elif encoding == "utf-8":
                    hint = (
                        "CoNLL files are read as UTF-8 unless told; this one is likely in "
                        f"{_likely_encoding(caught.object)}: give its encoding (--encoding / "
                        "$NER_ENCODING, e.g. cp1252) or convert it, e.g. iconv -f CP1252 -t UTF-8"
                    )
                else:
                    hint = "check the encoding given (--encoding / $NER_ENCODING)"
                name = "UTF-8" if encoding == "utf-8" else encoding
                caught = ConllFormatError(
                    path,
                    line_number,
                    f"invalid {name} at byte offset {line_start + caught.start} of the file "
                    f"(offset {caught.start} in the line): {bad_bytes!r}; {hint}",
                )
            if on_error == "raise":
                raise caught from None
            error = caught
            num_bad_lines += 1

    sentence = flush()
    if sentence is not None:
        num_yielded += 1
        yield sentence
    state.line_number, state.byte_offset = line_number, byte_offset
    state.num_columns, state.num_yielded = num_columns, num_yielded
    if whole_file:
        _check_some_sentence(path, line_number, num_yielded, stats)


def _check_some_sentence(path: str, num_lines: int, num_yielded: int, stats: ReadStats) -> None:
    if num_yielded == 0:
        detail = f"{num_lines} lines"
        if stats.num_skipped_sentences:
            detail += (
                f", {stats.num_skipped_sentences} sentences skipped because of errors, "
                f"the first: {stats.errors[0]}"
            )
        raise ConllFormatError(path, None, f"no sentences found ({detail})")
