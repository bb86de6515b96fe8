"""A plain-Python reference of BERT's tokenisation of one word, written from the paper's rule.

Deliberately the straightforward whole-string form (clean, split, lowercase and strip accents per
token with NFD over the whole token, split punctuation, greedy longest match), not the per-code-point
tables of `models.encoder.wordpiece`: the tests compare the two, and
`test_wordpiece_reference.py` compares this one with `transformers`' `BertTokenizer`.
"""

from __future__ import annotations

import unicodedata


def _is_punctuation(character):
    code = ord(character)
    return (
        code in range(33, 48)
        or code in range(58, 65)
        or code in range(91, 97)
        or (code in range(123, 127) or unicodedata.category(character).startswith("P"))
    )


def _is_cjk(code):
    ranges = [
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    ]
    return any(low <= code <= high for low, high in ranges)


def basic_tokens(text, lowercase=True, strip_accents=True):
    """BERT's basic tokenisation: cleaned, split at whitespace and punctuation."""
    cleaned = []
    for character in text:
        code = ord(character)
        category = unicodedata.category(character)
        if character in " \t\n\r" or category == "Zs":
            cleaned.append(" ")
        elif code == 0 or code == 0xFFFD or category.startswith("C"):
            continue
        elif _is_cjk(code):
            cleaned.append(f" {character} ")
        else:
            cleaned.append(character)
    tokens = []
    for token in "".join(cleaned).split():
        if lowercase:
            token = token.lower()
        if strip_accents:
            token = unicodedata.normalize("NFD", token)
            token = "".join(c for c in token if unicodedata.category(c) != "Mn")
        current = ""
        for character in token:
            if _is_punctuation(character):
                tokens += [current] if current else []
                tokens.append(character)
                current = ""
            else:
                current += character
        tokens += [current] if current else []
    return tokens


def word_pieces(token, vocabulary, max_chars=100):
    """Greedy longest-match-first pieces of one basic token (Wu et al., 2016)."""
    if len(token) > max_chars:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(token):
        for end in range(len(token), start, -1):
            piece = token[start:end] if start == 0 else "##" + token[start:end]
            if piece in vocabulary:
                pieces.append(piece)
                start = end
                break
        else:
            return ["[UNK]"]
    return pieces


def tokenize_word(word, vocabulary, lowercase=True, strip_accents=True):
    """Pieces of a word: its basic tokens' pieces; `[UNK]` if it has none."""
    pieces = [
        p for t in basic_tokens(word, lowercase, strip_accents) for p in word_pieces(t, vocabulary)
    ]
    return pieces or ["[UNK]"]


def corpus_words(paths):
    """The distinct words (first column) of CoNLL files."""
    words = set()
    for path in paths:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                columns = line.rstrip("\n").split("\t")
                if columns[0].strip():
                    words.add(columns[0])
    return sorted(words)
