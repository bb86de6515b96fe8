"""Pretrained word vectors (GloVe, word2vec text, fastText .vec; plain or gzipped) as an embedding matrix.

The file is a local path or a URI that TensorFlow's file systems read (gs://, hdfs://, ...), so the
vectors can live in a bucket rather than in the pipeline image. It is read as a stream: only the
rows of the vocabulary are kept, so a multi-gigabyte vectors file needs no more memory than the
matrix being built.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import os
from collections.abc import Iterable

import numpy as np

__all__ = [
    "EmbeddingMatrix",
    "is_uri",
    "load_embedding_matrix",
    "vector_words",
]


@dataclasses.dataclass(frozen=True)
class EmbeddingMatrix:
    """Rows for a vocabulary, and how many of them the vectors file had.

    Attributes:
        matrix: float32 `(vocabulary_size, embedding_dim)`.
        num_found: vocabulary entries whose vector came from the file (exactly or lowercased).
        num_reserved: leading rows (padding, OOV) that are not words.
    """

    matrix: np.ndarray
    num_found: int
    num_reserved: int

    @property
    def coverage(self) -> float:
        """Share of the word rows found in the file, in [0, 1]."""
        words = self.matrix.shape[0] - self.num_reserved
        return self.num_found / words if words else 0.0


def is_uri(location: str) -> bool:
    """Whether a location is a URI with a scheme (gs://b/x), not a local path."""
    return "://" in location


def _open_binary(path: str):
    """A local path with `open`; a URI (gs://, s3://, hdfs://...) through TensorFlow's gfile."""
    if is_uri(path):
        import tensorflow as tf  # Only for URIs: local files need no TensorFlow.

        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")


def _open_text(path: str) -> io.TextIOBase:
    with _open_binary(path) as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    binary = _open_binary(path)
    if gzipped:
        binary = gzip.GzipFile(fileobj=binary, mode="rb")
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace")


def _vector_lines(path: str):
    """(line number, [word, v1, ..., vD]) of each vector line; a word2vec header is skipped."""
    with _open_text(path) as lines:
        for line_number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec / fastText header: "count dim"
            if len(parts) < 2:
                continue
            yield line_number, parts


def vector_size(path: str) -> int:
    """Values per word in a vectors file: those of its first vector line (reads one line).

    Raises:
        ValueError: naming the file, if it holds no vector line.
    """
    for _, parts in _vector_lines(path):
        return len(parts) - 1
    raise ValueError(f"{path}: no vectors found (expected lines of 'word v1 ... vD').")


def vector_words(path: str, limit: int) -> tuple[str, ...]:
    """The first `limit` distinct lowercased words of a vectors file, in file order.

    GloVe, word2vec and fastText files list their words by decreasing corpus frequency, so these
    are the `limit` most frequent words the vectors know. Transform adds them to the word
    vocabulary (`models.preprocessing`) so that a word never seen in training still gets its
    pretrained vector; the Trainer reads the same list to build the matching rows.

    The result is cached per (path, size, modification time): Transform traces its
    `preprocessing_fn` several times.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(
            f"Invalid value for `limit`. Expected a non-negative integer. Received: limit={limit!r}"
        )
    if is_uri(path):
        import tensorflow as tf

        status = tf.io.gfile.stat(path)
        size, mtime_ns = status.length, status.mtime_nsec
    else:
        status = os.stat(path)
        size, mtime_ns = status.st_size, status.st_mtime_ns
    return _vector_words(path, limit, size, mtime_ns)


@functools.lru_cache(maxsize=4)
def _vector_words(path: str, limit: int, size: int, mtime_ns: int) -> tuple[str, ...]:
    del size, mtime_ns  # Part of the cache key only.
    words: dict[str, None] = {}
    if limit == 0:
        return ()
    for _, parts in _vector_lines(path):
        words.setdefault(parts[0].lower())
        if len(words) == limit:
            break
    if not words:
        raise ValueError(f"{path}: no vectors found (expected lines of 'word v1 ... vD').")
    return tuple(words)


def load_embedding_matrix(
    path: str,
    vocabulary: Iterable[str],
    num_reserved: int = 2,
    seed: int = 0,
) -> EmbeddingMatrix:
    """Builds the embedding matrix of `vocabulary` from a vectors file.

    Args:
        path: text vectors file, `word v1 ... vD` per line, optionally gzipped; a word2vec/fastText
            header line (`count dim`) is skipped.
        vocabulary: the words of rows `num_reserved`, `num_reserved + 1`, ... in order.
        num_reserved: rows before the first word: row 0 (padding) is zeros, the others (OOV) random.
        seed: seed of the random rows.

    Returns:
        An `EmbeddingMatrix`. A word missing from the file takes the vector of the first word
        of the file (the most frequent) that is the same once lowercased, e.g. `paris` that of
        `Paris` in a cased file; else a random vector with the mean and spread of the found
        ones, so that it starts among real words rather than at an outlier.

    Raises:
        ValueError: a line whose number of values differs from the first vector's, naming file and
            line, or a file with no vectors.
    """
    words = list(vocabulary)
    rows: dict[str, int] = {}
    for index, word in enumerate(words):
        rows.setdefault(word, index + num_reserved)
    lowercase_rows: dict[str, list[int]] = {}
    for word, row in rows.items():
        lowercase_rows.setdefault(word.lower(), []).append(row)

    matrix: np.ndarray | None = None
    exact = set()
    found_lower: dict[int, np.ndarray] = {}
    dim = 0
    for line_number, parts in _vector_lines(path):
        if matrix is None:
            dim = len(parts) - 1
            matrix = np.zeros((len(words) + num_reserved, dim), dtype=np.float32)
        elif len(parts) - 1 != dim:
            raise ValueError(
                f"{path}:{line_number}: expected {dim} values after the word (as on the first "
                f"vector line), found {len(parts) - 1}."
            )
        word = parts[0]
        if word in rows:
            matrix[rows[word]] = np.asarray(parts[1:], dtype=np.float32)
            exact.add(rows[word])
        lowered = word.lower()
        if lowered in lowercase_rows:
            for row in lowercase_rows[lowered]:
                found_lower.setdefault(row, np.asarray(parts[1:], dtype=np.float32))
    if matrix is None:
        raise ValueError(f"{path}: no vectors found (expected lines of 'word v1 ... vD').")
    for row, vector in found_lower.items():
        if row not in exact:
            matrix[row] = vector
    found = exact | set(found_lower)
    rng = np.random.default_rng(seed)
    if found:
        known = matrix[sorted(found)]
        mean, std = known.mean(axis=0), known.std(axis=0) + 1e-6
    else:
        mean, std = np.zeros(dim, np.float32), np.full(dim, 0.1, np.float32)
    missing = [row for row in range(1, matrix.shape[0]) if row not in found]
    matrix[missing] = rng.normal(mean, std, size=(len(missing), dim)).astype(np.float32)
    matrix[0] = 0.0
    return EmbeddingMatrix(matrix=matrix, num_found=len(found), num_reserved=num_reserved)
