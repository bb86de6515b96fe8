"""TensorFlow Transform `preprocessing_fn`: raw tokens and tags to the tagger's id tensors.

Raw features (tf.Examples from `components.conll_example_gen`): `tokens` and `tags`, variable
length byte lists (the same length per sentence). `tags` is absent at serving time; the outputs
that need it (`tag_ids`) are then dropped by the TFT layer.

Transformed features, every sentence padded with 0 or truncated to `max_length` tokens:

- `token_ids` int64 `(batch_size, max_length)`: the lowercased token's id in the word vocabulary
  (`word_vocabulary`): 0 = padding, 1 = OOV, then, when pretrained vectors are configured, the
  first `pretrained_vocabulary_size` words of the vectors file (ids 2 .. P + 1, file order), then
  the other tokens of the training split seen at least `token_frequency_threshold` times, most
  frequent first (the `token_vocabulary` file of the transform output, ids P + 2 ..; at most
  `max_token_vocabulary_size` of them where that bounds it).
- `casing_ids` int64 `(batch_size, max_length)`: casing class of the original token, see `CASINGS`.
- `char_ids` int64 `(batch_size, max_length, max_word_length)`: characters (case kept) in a vocabulary
  of the training split: 0 = padding, 1 = OOV, 2.. = known.
- `lengths` int64 `(batch_size,)`: real tokens per sentence after truncation.
- with a pretrained encoder (`ModelConfig.encoder_path`, `encoder_inputs`): `piece_ids` int64
  `(batch_size, max_length * max_pieces_per_word + 2)`, the encoder's input ([CLS], the word pieces
  of each word, at most `max_pieces_per_word` of them, [SEP], then [PAD]), and `word_pieces` int64
  `(batch_size, max_length, max_pieces_per_word)`, the positions of each word's pieces in
  `piece_ids` (from 1), 0 at padding. Every word has at least one piece.
- `tag_ids` int64 `(batch_size, max_length)`: the tag's index in `PreprocessingConfig.tag_vocabulary`
  (`[PAD]` = 0 at padding, then the known tags sorted): the same ids for every data set that has
  the same tag set, whatever the tag frequencies or the order of the data. IOB2 tags are first
  read as conlleval reads them (`repair_iob2`: `O I-X` -> `O B-X`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from models.config import TaggerConfig
from models.embeddings import vector_words
from models.encoder.checkpoint import read_encoder_config, read_tokenizer_settings
from models.encoder.wordpiece import WordPieceTokenizer
from models.features import (
    CASING_IDS_KEY,
    CASINGS,
    CHAR_IDS_KEY,
    CHAR_VOCABULARY_NAME,
    LENGTHS_KEY,
    NUM_RESERVED_IDS,
    OOV_ID,
    PAD_ID,
    PIECE_IDS_KEY,
    TAG_IDS_KEY,
    TAGS_KEY,
    TOKEN_IDS_KEY,
    TOKEN_VOCABULARY_NAME,
    TOKENS_KEY,
    WORD_PIECES_KEY,
)

__all__ = [
    "casing_ids",
    "encoder_inputs",
    "preprocessing_fn",
    "pretrained_words",
    "repair_iob2",
    "word_ids",
    "word_vocabulary",
]

# RE2 patterns, matched against the whole token (tf.strings.regex_full_match), in CASINGS order.
_CASING_PATTERNS = (
    ("digit", r"\p{N}+"),
    ("punct", r"[\p{P}\p{S}]+"),
    ("lower", r"[^\p{Lu}]*\p{Ll}[^\p{Lu}]*"),
    ("title", r"[^\p{L}]*\p{Lu}[^\p{Lu}]*"),
    ("upper", r"[^\p{Ll}]*\p{Lu}[^\p{Ll}]*\p{Lu}[^\p{Ll}]*"),
    ("mixed", r".*\p{Ll}.*"),
)


def _to_ragged(values: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> tf.RaggedTensor:
    """A rank-2 batch of variable-length lists as a RaggedTensor `(batch_size, None)`."""
    if isinstance(values, tf.RaggedTensor):
        return values
    if isinstance(values, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(values)
    return tf.RaggedTensor.from_tensor(values)


def casing_ids(tokens: tf.Tensor) -> tf.Tensor:
    """Casing class id of each token (see `CASINGS`).

    Args:
        tokens: string tensor of any shape, UTF-8 tokens.
    Returns:
        int64 tensor of the same shape, ids in `[1, len(CASINGS))` (0 only for empty strings).
    """
    ids = tf.fill(tf.shape(tokens), tf.constant(CASINGS.index("other"), tf.int64))
    # Later patterns win only where no earlier one matched: walk the list backwards.
    for name, pattern in reversed(_CASING_PATTERNS):
        matched = tf.strings.regex_full_match(tokens, pattern)
        ids = tf.where(matched, tf.constant(CASINGS.index(name), tf.int64), ids)
    return tf.where(tf.equal(tokens, ""), tf.constant(0, tf.int64), ids)


def _threshold(frequency_threshold: int) -> int | None:
    # TFT warns that a threshold of 1 is a no-op and asks for None instead.
    return frequency_threshold if frequency_threshold > 1 else None


def _lookup_with_reserved_ids(values: tf.Tensor, vocabulary: Any) -> tf.Tensor:
    """Vocabulary id + NUM_RESERVED_IDS for known values, OOV_ID for unknown ones."""
    ids = tft.apply_vocabulary(values, vocabulary, default_value=-1)
    return tf.where(ids < 0, tf.constant(OOV_ID, tf.int64), ids + NUM_RESERVED_IDS)


def pretrained_words(config: TaggerConfig) -> tuple[str, ...]:
    """The vectors file's words that the word vocabulary holds whatever the training data.

    The first `preprocessing.pretrained_vocabulary_size` distinct lowercased words of
    `model.pretrained_embeddings_path`; none without that path. They take the word ids from
    `NUM_RESERVED_IDS` on, in file order.
    """
    path = config.model.pretrained_embeddings_path
    if path is None:
        return ()
    return vector_words(path, config.preprocessing.pretrained_vocabulary_size)


def pretrained_words_file(config: TaggerConfig) -> str:
    """`pretrained_words` as a text file, one word a line, in a per-user cache folder (written
    once per vectors file, size and modification time, under a name that says which)."""
    words = pretrained_words(config)
    broken = next((word for word in words if "\n" in word or "\r" in word), None)
    if broken is not None:
        raise ValueError(
            f"{config.model.pretrained_embeddings_path}: the word {broken!r} holds a line break; "
            "the vocabulary is kept one word a line."
        )
    digest = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), f"ner_tfx_words_{os.getuid()}")
    path = os.path.join(folder, f"pretrained_words_{len(words)}_{digest}.txt")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "w", encoding="utf-8", newline="\n") as file:
            file.write("".join(word + "\n" for word in words))
        os.replace(partial, path)  # whole or absent: concurrent writers write the same bytes
    return path


def word_ids(tf_transform_output: tft.TFTransformOutput, words: list[str]) -> list[int]:
    """The `token_ids` the transform graph itself gives each word (as a one-token sentence)."""
    if not words:
        return []
    features = tf_transform_output.transform_raw_features(
        {TOKENS_KEY: tf.sparse.from_dense(tf.constant([[word] for word in words]))},
        drop_unused_features=True,
    )
    return [int(i) for i in features[TOKEN_IDS_KEY][:, 0].numpy()]


def word_vocabulary(
    tf_transform_output: tft.TFTransformOutput, config: TaggerConfig
) -> tuple[str, ...]:
    """The words of ids `NUM_RESERVED_IDS`, `NUM_RESERVED_IDS + 1`, ... of `token_ids`.

    The pretrained words (`pretrained_words`), then the transform output's `token_vocabulary`
    (training tokens that are not among them). The model has `NUM_RESERVED_IDS + len(...)` rows.

    Raises:
        ValueError: if the transform graph was built with other pretrained words (another
            vectors file or `pretrained_vocabulary_size` in Transform's configuration than in
            `config`): the rows would then belong to other words.
    """
    trained = tuple(
        word.decode("utf-8") if isinstance(word, bytes) else word
        for word in tf_transform_output.vocabulary_by_name(TOKEN_VOCABULARY_NAME)
    )
    pretrained = pretrained_words(config)
    # Ask the graph: the first and last pretrained words and the first trained word must get
    # the ids this vocabulary gives them.
    vocabulary = pretrained + trained
    positions = sorted({0, len(pretrained) - 1, len(pretrained)} & set(range(len(vocabulary))))
    if positions:
        probes = [vocabulary[position] for position in positions]
        expected = [NUM_RESERVED_IDS + position for position in positions]
        found = word_ids(tf_transform_output, probes)
        if found != expected:
            raise ValueError(
                "The transform graph was built with other pretrained words than "
                f"model.pretrained_embeddings_path={config.model.pretrained_embeddings_path!r} "
                "and preprocessing.pretrained_vocabulary_size="
                f"{config.preprocessing.pretrained_vocabulary_size} give ({len(pretrained)} "
                f"words): ids {found} for {probes}, expected {expected}. Transform and Trainer "
                "need the same configuration and the same vectors file."
            )
    return vocabulary


def _token_vocabulary(tokens: tf.Tensor, config: TaggerConfig) -> Any:
    """The `token_vocabulary` of the training split's `tokens`, most frequent first: exact, or
    sketched when `max_token_vocabulary_size` bounds it (see `PreprocessingConfig`)."""
    limit = config.preprocessing.max_token_vocabulary_size
    if limit:
        return tft.experimental.approximate_vocabulary(
            tokens, top_k=limit, vocab_filename=TOKEN_VOCABULARY_NAME
        )
    return tft.vocabulary(
        tokens,
        frequency_threshold=_threshold(config.preprocessing.token_frequency_threshold),
        vocab_filename=TOKEN_VOCABULARY_NAME,
    )


@contextlib.contextmanager
def _initialised_once() -> Iterator[None]:
    """Where the lookup tables of `preprocessing_fn` are made: outside the function being traced
    (`tf.init_scope`), as TFT does with its own vocabularies' tables
    (`tf_utils.construct_and_lookup_table`).

    A table made inside the traced function is initialised by an operation of that function,
    which then runs at every call of the saved transform graph: for the 400k-word table, a
    re-read of the words file and a comparison with the table's entries, 6 ms of a served
    sentence's 11 ms (profiled, 2026-12-07). Made outside, the table is initialised once, when
    the SavedModel is loaded (by Transform's Beam workers, the Trainer, the served model).
    """
    if tf.inside_function():
        with tf.init_scope():
            yield
    else:  # TF1-style graph (TFT's compat mode): tables are initialised once by the session
        yield


def _word_ids(lowercased: tf.Tensor, config: TaggerConfig) -> tf.Tensor:
    """Ids of lowercased tokens (1-D) in the word vocabulary (see `word_vocabulary`)."""
    pretrained = pretrained_words(config)
    if not pretrained:
        return _lookup_with_reserved_ids(lowercased, _token_vocabulary(lowercased, config))
    # A table from a words file, which the SavedModels of the transform graph (and of the served
    # model) carry as an asset: the exported model needs no vectors file to map tokens to ids.
    # Not a graph constant: with 400k words TFT spent a minute serialising, hashing and
    # re-loading the constant in every traced and saved copy of the graph.
    with _initialised_once():
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                pretrained_words_file(config),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )
    pretrained_ids = table.lookup(lowercased)  # -1: not a pretrained word
    is_pretrained = pretrained_ids >= 0
    # The training split's other tokens get the ids after the pretrained words.
    vocabulary = _token_vocabulary(
        tf.boolean_mask(lowercased, tf.logical_not(is_pretrained)), config
    )
    trained_ids = _lookup_with_reserved_ids(lowercased, vocabulary)
    return tf.where(
        is_pretrained,
        pretrained_ids + NUM_RESERVED_IDS,
        tf.where(trained_ids == OOV_ID, trained_ids, trained_ids + len(pretrained)),
    )


def repair_iob2(tags: tf.RaggedTensor) -> tf.RaggedTensor:
    """Reads IOB2 tags as conlleval does: an I-X that does not continue a B-X or I-X becomes B-X.

    conlleval (and `models.entity_scoring`) already starts an entity at such an I-X; the CRF,
    whose IOB2 constraints forbid `O I-X`, would give the gold path of the unrepaired tags zero
    probability (an infinite loss). IOB1 data (CoNLL-2003's original files) is read the same way.

    Args:
        tags: string `(batch_size, None)` RaggedTensor of tags.
    Returns:
        The same shape, with those I-X replaced by B-X.
    """
    flat = tags.flat_values  # (num_tokens,)
    previous = tf.concat([tf.constant([""]), flat[:-1]], axis=0)
    # The first tag of each sentence follows nothing.
    first = tf.scatter_nd(
        tf.expand_dims(tags.row_starts(), 1),
        tf.cast(tags.row_lengths() > 0, tf.int32),
        tf.shape(flat, out_type=tf.int64),
    )
    previous = tf.where(first > 0, tf.constant("O"), previous)
    entity_type = tf.strings.regex_replace(flat, "^I-", "")  # used only where flat is I-<type>
    inside = tf.strings.regex_full_match(flat, "I-.+")
    continues = tf.equal(previous, "B-" + entity_type) | tf.equal(previous, "I-" + entity_type)
    return tags.with_flat_values(tf.where(inside & ~continues, "B-" + entity_type, flat))


def _tag_ids(tags: tf.RaggedTensor, tag_vocabulary: tuple[str, ...]) -> tf.RaggedTensor:
    """Fixed ids of the tags; a tag outside the vocabulary fails the run, naming the tag."""
    # A comparison with the (small) vocabulary, not a lookup table: no table to initialise
    # inside TFT's tf.function, and the ids are exactly the vocabulary positions.
    matches = tf.equal(tags.flat_values[:, None], tf.constant(tag_vocabulary)[None, :])
    known = tf.reduce_any(matches, axis=1)  # (num_tokens,)
    # "" is what the TFT layer feeds for `tags` at serving time (no tags there); it maps to 0.
    unknown = tf.boolean_mask(
        tags.flat_values, tf.logical_not(known) & tf.not_equal(tags.flat_values, "")
    )
    # ExampleValidator stops unknown tags before Transform runs; this is the last line of defence
    # for data that bypassed it, with a message that names the tag instead of a gather error.
    check = tf.debugging.Assert(
        tf.equal(tf.size(unknown), 0),
        ["Unknown tag(s), not in the tag vocabulary", tag_vocabulary, ":", unknown],
        summarize=20,
    )
    with tf.control_dependencies([check]):
        flat_ids = tf.argmax(tf.cast(matches, tf.int32), axis=1, output_type=tf.int64)
    return tags.with_flat_values(flat_ids)


def encoder_inputs(tokens: tf.RaggedTensor, config: TaggerConfig) -> dict[str, tf.Tensor]:
    """The pretrained encoder's inputs for sentences of at most `max_length` tokens.

    Args:
        tokens: string RaggedTensor `(batch_size, None)`, at most `max_length` tokens a row.
        config: with `model.encoder_path` set.
    Returns:
        `piece_ids` and `word_pieces` (module docstring).
    Raises:
        ValueError: if `max_length * max_pieces_per_word + 2` pieces exceed the encoder's
            position embedding.
    """
    path = config.model.encoder_path
    assert path is not None
    max_length = config.preprocessing.max_length
    pieces_per_word = config.preprocessing.max_pieces_per_word
    max_pieces = max_length * pieces_per_word + 2
    max_positions = read_encoder_config(path).max_positions
    if max_pieces > max_positions:
        raise ValueError(
            "Invalid value for `max_pieces_per_word`. Expected max_length * max_pieces_per_word "
            f"+ 2 <= {max_positions} (the positions of the encoder {path}). Received: "
            f"max_length={max_length}, max_pieces_per_word={pieces_per_word}"
        )
    vocabulary, lowercase, strip_accents = read_tokenizer_settings(path)
    with _initialised_once():  # its tables: the vocabulary's pieces, the replaced characters
        tokenizer = WordPieceTokenizer(vocabulary, lowercase=lowercase, strip_accents=strip_accents)
    pieces = tokenizer(tokens.flat_values)[:, :pieces_per_word]  # (num_tokens, None)
    counts = pieces.row_lengths()  # (num_tokens,) 1 .. pieces_per_word
    # Position of each word's first piece in its sentence's piece sequence ([CLS] at 0).
    before = tf.cumsum(counts, exclusive=True)  # pieces before each token, over the batch
    sentence_base = tf.gather(
        tf.concat([before, [tf.reduce_sum(counts)]], 0), tokens.row_starts()
    )  # (batch_size,) pieces before each sentence
    first = 1 + before - tf.gather(sentence_base, tokens.value_rowids())  # (num_tokens,)
    positions = tokens.with_flat_values(tf.ragged.range(first, first + counts))
    sentence_pieces = tokens.with_flat_values(pieces).merge_dims(1, 2)  # (batch_size, None)
    batch_size = tokens.nrows()
    special = {
        name: tf.RaggedTensor.from_tensor(
            tf.fill(tf.stack([batch_size, 1]), tf.constant(vocabulary.index(name), tf.int64))
        )
        for name in ("[CLS]", "[SEP]")
    }
    piece_ids = tf.concat([special["[CLS]"], sentence_pieces, special["[SEP]"]], axis=1)
    padding = vocabulary.index("[PAD]") if "[PAD]" in vocabulary else 0
    return {
        PIECE_IDS_KEY: piece_ids.to_tensor(padding, shape=[None, max_pieces]),
        WORD_PIECES_KEY: positions.to_tensor(0, shape=[None, max_length, pieces_per_word]),
    }


def preprocessing_fn(
    inputs: Mapping[str, Any], custom_config: Mapping[str, Any] | None = None
) -> dict[str, tf.Tensor]:
    """Turns raw `tokens` (and `tags`) into the tagger's padded id tensors.

    Args:
        inputs: raw features; `tokens` string `(batch_size, None)` (SparseTensor or RaggedTensor)
            and, except at serving time, `tags` string `(batch_size, None)` of the same lengths.
        custom_config: the components' `custom_config`, read with `TaggerConfig.from_custom_config`.
    Returns:
        The transformed features listed in the module docstring, int64 tensors.
    """
    tagger_config = TaggerConfig.from_custom_config(custom_config)
    config = tagger_config.preprocessing
    max_length = config.max_length

    tokens = _to_ragged(inputs[TOKENS_KEY])  # (batch_size, None)
    # Truncate first: everything below is then at most max_length long.
    tokens = tokens[:, :max_length]
    lengths = tf.cast(tokens.row_lengths(), tf.int64)  # (batch_size,)

    lowercased = tf.strings.lower(tokens.flat_values, encoding="utf-8")
    token_ids = tokens.with_flat_values(_word_ids(lowercased, tagger_config))

    casings = tokens.with_flat_values(casing_ids(tokens.flat_values))

    chars = tf.strings.unicode_split(tokens.flat_values, "UTF-8")  # (num_tokens, None)
    chars = chars[:, : config.max_word_length]
    char_vocabulary = tft.vocabulary(
        chars.flat_values,
        frequency_threshold=_threshold(config.char_frequency_threshold),
        vocab_filename=CHAR_VOCABULARY_NAME,
    )
    char_ids = chars.with_flat_values(_lookup_with_reserved_ids(chars.flat_values, char_vocabulary))
    char_ids = tokens.with_flat_values(char_ids)  # (batch_size, None, None)

    outputs = {
        TOKEN_IDS_KEY: token_ids.to_tensor(PAD_ID, shape=[None, max_length]),
        CASING_IDS_KEY: casings.to_tensor(0, shape=[None, max_length]),
        CHAR_IDS_KEY: char_ids.to_tensor(PAD_ID, shape=[None, max_length, config.max_word_length]),
        LENGTHS_KEY: lengths,
    }
    if tagger_config.model.encoder_path is not None:
        outputs.update(encoder_inputs(tokens, tagger_config))
    if TAGS_KEY in inputs:
        tags = _to_ragged(inputs[TAGS_KEY])[:, :max_length]
        if tagger_config.model.tag_scheme == "iob2":
            tags = repair_iob2(tags)
        outputs[TAG_IDS_KEY] = _tag_ids(tags, config.tag_vocabulary).to_tensor(
            0, shape=[None, max_length]
        )
    return outputs
