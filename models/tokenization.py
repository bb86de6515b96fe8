"""The one tokenisation rule of raw sentences, in TensorFlow (serving) and plain Python (CLI, tests).

The rule, applied to a sentence given as bytes or text:

1. decode as UTF-8; a byte sequence that is not UTF-8 becomes U+FFFD (the replacement character),
   one per maximal invalid subsequence, as Python's `bytes.decode("utf-8", errors="replace")`;
2. split at runs of Unicode whitespace: exactly the characters for which Python's `str.isspace()`
   is true (`WHITESPACE_CHARACTERS`: ASCII whitespace, the separators U+001C..U+001F, NEL U+0085,
   no-break spaces U+00A0 / U+202F, U+1680, U+2000..U+200A, U+2028, U+2029, U+205F, U+3000);
   leading and trailing whitespace gives no empty token; a sentence of whitespace only has no token.

There is deliberately no other normalisation (no NFC/NFKC, no case folding, no splitting of
punctuation): the training tokens (CoNLL files, read as is by `components.conll_format`) are not
normalised either, so any extra step here would make serving see tokens training never saw. The
rule is shared with the training data in this sense: every training sentence of the bundled sample
and of WNUT-17 (whose tokens are all NFC and contain no whitespace) joined with spaces tokenises
back to exactly its CoNLL tokens (tested). Unicode normalisation is not in core TensorFlow (only in
TF Text, which the stock `tensorflow/serving` image lacks), which is a second reason to leave it out.

`tokenize` (Python) and `tokenize_tensor` (TensorFlow ops only, usable in a SavedModel) give the
same tokens for the same input; the tests compare them.
"""

from __future__ import annotations

import re

__all__ = [
    "tokenize",
    "tokenize_tensor",
    "WHITESPACE_CHARACTERS",
    "WHITESPACE_PATTERN",
]

WHITESPACE_CHARACTERS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Every character for which `str.isspace()` is true (Unicode 14, Python 3.10)."""

# One pattern for both engines (Python `re` and RE2): a character class of literal characters.
WHITESPACE_PATTERN = "[" + WHITESPACE_CHARACTERS + "]+"
_WHITESPACE = re.compile(WHITESPACE_PATTERN)


def tokenize(sentence: str | bytes) -> list[str]:
    """Tokens of one raw sentence, by the rule of the module docstring.

    Args:
        sentence: the sentence as text or as (possibly invalid) UTF-8 bytes.
    Returns:
        The tokens, in order; an empty list for an empty or whitespace-only sentence.
    Raises:
        TypeError: if `sentence` is neither `str` nor `bytes`.
    """
    if isinstance(sentence, (bytes, bytearray)):
        sentence = bytes(sentence).decode("utf-8", errors="replace")
    elif not isinstance(sentence, str):
        raise TypeError(
            "Invalid value for `sentence`. Expected str or bytes. "
            f"Received: sentence={sentence!r} of type {type(sentence).__name__}"
        )
    return [token for token in _WHITESPACE.split(sentence) if token]


def tokenize_tensor(sentences):
    """Tokens of a batch of raw sentences, TensorFlow ops only (the `serve_sentences` signature).

    Args:
        sentences: string `(batch_size,)`, raw sentences (any bytes).
    Returns:
        string RaggedTensor `(batch_size, None)`: the tokens of each sentence, valid UTF-8.
    """
    import tensorflow as tf

    # Invalid UTF-8 -> U+FFFD, as Python's errors="replace" (the tests compare the two).
    valid = tf.strings.unicode_transcode(
        sentences, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    spaced = tf.strings.regex_replace(valid, WHITESPACE_PATTERN, " ")
    # sep=None splits at (ASCII) whitespace runs and drops empty strings: only " " is left here.
    return tf.strings.split(spaced)
