"""Pretrained word vectors (GloVe, word2vec text, fastText .vec; plain or gzipped) as an embedding matrix.

The file is read as a stream: only the rows of the vocabulary are kept, so a multi-gigabyte vectors
file needs no more memory than the matrix being built.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
from collections.abc import Iterable

import numpy as np


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


def _open_text(path: str) -> io.TextIOBase:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


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
        An `EmbeddingMatrix`. A word missing from the file takes the vector of its lowercased form if
        present, else a random vector with the mean and spread of the found ones, so that it
        starts among real words rather than at an outlier.

    Raises:
        ValueError: a line whose number of values differs from the first vector's, naming file and
            line, or a file with no vectors.
    """
    words = list(vocabulary)
    rows = {}
    for index, word in enumerate(words):
        rows.setdefault(word, index + num_reserved)
    lowercase_rows = {}
    for word, row in rows.items():
        lowercase_rows.setdefault(word.lower(), []).append(row)

    matrix = None
    exact = set()
    found_lower: dict[int, np.ndarray] = {}
    dim = None
    with _open_text(path) as lines:
        for line_number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec / fastText header: "count dim"
            if len(parts) < 2:
                continue
            if dim is None:
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
            if word in lowercase_rows:
                for row in lowercase_rows[word]:
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
