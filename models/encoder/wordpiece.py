"""BERT's word-piece tokenisation of words, in core TensorFlow ops (Transform and serving graphs).

The rule is BERT's (Devlin et al., 2019; Hugging Face's `BertTokenizer` with `do_basic_tokenize`),
applied to each word the tagger already has:

1. per character: drop NUL, U+FFFD and control characters (Unicode category C*, except tab and
   line breaks); whitespace (tab, line breaks, Zs) separates; CJK ideographs stand alone;
   with `lowercase`, lowercase (`str.lower`) and, with `strip_accents`, decompose (NFD) and drop
   the non-spacing marks (Mn); every punctuation character (Unicode P*, and ASCII symbols such as
   `$+<=>^`|~`) stands alone;
2. the pieces of each resulting sub-word by greedy longest-match-first against the vocabulary
   (Wu et al., 2016), continuation pieces prefixed with `##`; a sub-word of more than
   `max_chars_per_word` characters, or one that cannot be covered, becomes `[UNK]` whole.

Each word gets the pieces of its sub-words in order, and at least one: a word that step 1 empties
(e.g. only control characters) gets `[UNK]`, so that every word has a vector to take.

Step 1 is one table over all code points, built here from Python's `unicodedata` and baked into
the graph (run boundaries and replacement strings): the graph needs no Unicode normalisation op,
which core TensorFlow lacks, and TF Text is not needed. Known differences from Hugging Face's
tokenizer: a word is never matched whole against special tokens (the text "[CLS]" is five
characters, not the [CLS] piece); `str.lower` applies per character (so Greek final sigma is
lowercased as σ, not ς); NFD reordering of several combining marks is not done (they are dropped or
kept in place). `tests/models/encoder/` checks the graph against a plain-Python reference, and that
reference against `transformers`' tokenizer, on every word of WNUT-17.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["WordPieceTokenizer", "character_classes"]

UNKNOWN_PIECE = "[UNK]"
CONTINUATION_PREFIX = "##"

# Classes of code points for step 1.
KEEP, DROP, SPACE, ISOLATE, REPLACE = 0, 1, 2, 3, 4


def _is_punctuation(character: str) -> bool:
    code = ord(character)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True  # ASCII symbols BERT splits although Unicode calls some of them S*
    return unicodedata.category(character).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _normalised(character: str, lowercase: bool, strip_accents: bool) -> str:
    if lowercase:
        character = character.lower()
    if strip_accents:
        character = "".join(
            c for c in unicodedata.normalize("NFD", character) if unicodedata.category(c) != "Mn"
        )
    return "".join(f" {c} " if _is_punctuation(c) else c for c in character)


@functools.lru_cache(maxsize=4)
def character_classes(lowercase: bool, strip_accents: bool):
    """Step 1 of the rule as runs of code points (see the module docstring).

    Returns:
        run_starts: int32 `(num_runs,)` first code point of each run (the first is 0).
        run_classes: int32 `(num_runs,)` KEEP, DROP, SPACE, ISOLATE or REPLACE for the run.
        replacements: dict code point -> string, for the REPLACE code points.
    """
    classes = np.zeros(0x110000, np.int32)
    replacements: dict[int, str] = {}
    for code in range(0x110000):
        character = chr(code)
        if character in "\t\n\r" or unicodedata.category(character) == "Zs":
            classes[code] = SPACE
        elif code == 0 or code == 0xFFFD or unicodedata.category(character).startswith("C"):
            classes[code] = DROP
        elif character.isspace():  # U+2028, U+2029: kept by BERT's cleaning, split by str.split
            classes[code] = SPACE
        elif _is_cjk(code):
            classes[code] = ISOLATE
        else:
            normalised = _normalised(character, lowercase, strip_accents)
            if normalised == character:
                continue
            if normalised == f" {character} ":
                classes[code] = ISOLATE
            elif normalised == "":
                classes[code] = DROP
            else:
                classes[code] = REPLACE
                replacements[code] = normalised
    changes = np.flatnonzero(np.diff(classes)) + 1
    run_starts = np.concatenate([[0], changes]).astype(np.int32)
    return run_starts, classes[run_starts], replacements


class WordPieceTokenizer(tf.Module):
    """Word-piece ids of words, core TensorFlow ops only (usable in Transform and a SavedModel).

    Args:
        vocabulary: the pieces in id order (`vocab.txt`); must hold `[UNK]`.
        lowercase: lowercase before matching (uncased checkpoints).
        strip_accents: drop accents (NFD, then the Mn marks); BERT does when it lowercases.
        max_chars_per_word: longer sub-words become `[UNK]` (BERT's 100).
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        lowercase: bool = True,
        strip_accents: bool | None = None,
        max_chars_per_word: int = 100,
        name: str | None = None,
    ):
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        if UNKNOWN_PIECE not in vocabulary:
            raise ValueError(
                f"Invalid value for `vocabulary`. Expected a word-piece vocabulary holding "
                f"{UNKNOWN_PIECE}. Received: {len(vocabulary)} pieces, e.g. {vocabulary[:5]}"
            )
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.max_chars_per_word = max_chars_per_word
        self.unknown_id = vocabulary.index(UNKNOWN_PIECE)
        self.piece_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int64)
            ),
            default_value=-1,
        )
        run_starts, run_classes, replacements = character_classes(
            self.lowercase, self.strip_accents
        )
        self.run_starts = tf.constant(run_starts)
        self.run_classes = tf.constant(run_classes)
        # Code point -1 never occurs: it keeps the table non-empty when nothing is replaced.
        codes = [-1, *sorted(replacements)]
        replacements = {**replacements, -1: ""}
        self.replacement_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(codes, tf.int32),
                tf.constant([replacements[c] for c in codes], tf.string),
            ),
            default_value="",
        )

    def sub_words(self, words: tf.Tensor) -> tf.RaggedTensor:
        """Step 1: the sub-words of each word.

        Args:
            words: string `(num_words,)`, any bytes (invalid UTF-8 counts as U+FFFD, dropped).
        Returns:
            string RaggedTensor `(num_words, None)`.
        """
        characters = tf.strings.unicode_split(
            words, "UTF-8", errors="replace", replacement_char=0xFFFD
        )  # (num_words, None)
        codes = tf.strings.unicode_decode(
            words, "UTF-8", errors="replace", replacement_char=0xFFFD
        ).flat_values  # (num_characters,)
        run = tf.searchsorted(self.run_starts, codes, side="right") - 1
        classes = tf.gather(self.run_classes, run)
        flat = characters.flat_values
        mapped = tf.where(
            classes == KEEP,
            flat,
            tf.where(
                classes == SPACE,
                " ",
                tf.where(
                    classes == ISOLATE,
                    tf.strings.join([" ", flat, " "]),
                    tf.where(classes == REPLACE, self.replacement_table.lookup(codes), ""),
                ),
            ),
        )
        joined = tf.strings.reduce_join(characters.with_flat_values(mapped), axis=1)
        return tf.strings.split(joined, sep=" ")  # sep=" " keeps empty strings: drop them below

    def __call__(self, words: tf.Tensor) -> tf.RaggedTensor:
        """Word-piece ids of each word, at least one per word.

        Args:
            words: string `(num_words,)`.
        Returns:
            int64 RaggedTensor `(num_words, None)`: ids of the vocabulary, in order.
        """
        words = tf.convert_to_tensor(words, tf.string)
        sub_words = self.sub_words(words)
        sub_words = tf.ragged.boolean_mask(sub_words, tf.strings.length(sub_words) > 0)
        pieces = self._pieces(sub_words.flat_values)  # (num_sub_words, None)
        per_word = sub_words.with_flat_values(pieces).merge_dims(1, 2)  # (num_words, None)
        empty = per_word.row_lengths() == 0
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill(
                [tf.reduce_sum(tf.cast(empty, tf.int32))], tf.constant(self.unknown_id, tf.int64)
            ),
            tf.cast(empty, tf.int64),
        )
        return tf.concat([per_word, unknown], axis=1)

    def _pieces(self, sub_words: tf.Tensor) -> tf.RaggedTensor:
        """Step 2, greedy longest-match-first, all sub-words at once (one piece per iteration).

        Args:
            sub_words: string `(num_sub_words,)`, non-empty, valid UTF-8.
        Returns:
            int64 RaggedTensor `(num_sub_words, None)`.
        """
        num_sub_words = tf.size(sub_words)
        lengths = tf.strings.length(sub_words, unit="UTF8_CHAR")
        too_long = lengths > self.max_chars_per_word
        remaining = tf.where(too_long, "", sub_words)
        continuing = tf.zeros_like(too_long)  # True after the first piece
        failed = too_long
        written = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[None])

        def condition(step, remaining, continuing, failed, written):
            # At least one step, so that the stacked result has a row even with no sub-words.
            return tf.logical_or(step == 0, tf.reduce_any(tf.strings.length(remaining) > 0))

        def body(step, remaining, continuing, failed, written):
            active_lengths = tf.strings.length(remaining, unit="UTF8_CHAR")  # (num_sub_words,)
            sizes = tf.ragged.range(1, active_lengths + 1)  # candidate prefix lengths
            owners = tf.cast(sizes.value_rowids(), tf.int32)
            candidates = tf.strings.substr(
                tf.gather(remaining, owners),
                tf.zeros_like(sizes.flat_values),
                sizes.flat_values,
                unit="UTF8_CHAR",
            )
            candidates = tf.where(
                tf.gather(continuing, owners),
                tf.strings.join([CONTINUATION_PREFIX, candidates]),
                candidates,
            )
            ids = self.piece_table.lookup(candidates)
            matched = tf.where(ids >= 0, sizes.flat_values, 0)
            best = tf.maximum(
                tf.math.unsorted_segment_max(matched, owners, num_sub_words), 0
            )  # (num_sub_words,) characters of the longest matching prefix, 0 if none
            # The id of that prefix: each sub-word's candidates are unique by size.
            is_best = tf.logical_and(matched > 0, matched == tf.gather(best, owners))
            best_id = tf.math.unsorted_segment_max(
                tf.where(is_best, ids, -1), owners, num_sub_words
            )
            active = active_lengths > 0
            found = tf.logical_and(active, best > 0)
            failed = tf.logical_or(failed, tf.logical_and(active, best == 0))
            written = written.write(step, tf.where(found, best_id, -1))
            remaining = tf.where(
                found,
                tf.strings.substr(remaining, best, active_lengths - best, unit="UTF8_CHAR"),
                "",
            )
            return step + 1, remaining, tf.logical_or(continuing, found), failed, written

        _, _, _, failed, written = tf.while_loop(
            condition, body, (0, remaining, continuing, failed, written)
        )
        steps = tf.transpose(
            tf.reshape(written.stack(), [-1, num_sub_words])
        )  # (num_sub_words, num_steps)
        steps = tf.where(tf.expand_dims(failed, 1), tf.constant(-1, tf.int64), steps)
        unknown = tf.where(failed, tf.constant(self.unknown_id, tf.int64), -1)
        steps = tf.concat([tf.expand_dims(unknown, 1), steps], axis=1)
        return tf.ragged.boolean_mask(steps, steps >= 0)
