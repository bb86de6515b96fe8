"""Tests for components/conll_format.py: format quirks, bad inputs, the real WNUT-17 files."""

import io
import os
import pickle
import re
from pathlib import Path

import pytest

from components.conll_format import (
    ConllFormatError,
    ReadStats,
    Sentence,
    check_encoding,
    parse_tag,
    read_conll,
    read_conll_batches,
    read_conll_lines,
)

WNUT17 = (
    Path(os.environ.get("NER_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
    / "datasets"
    / "wnut17"
)
requires_wnut17 = pytest.mark.skipif(
    not WNUT17.is_dir(), reason="the original WNUT-17 files are not on this machine"
)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read_all(path, **kwargs):
    return list(read_conll(path, **kwargs))


def as_pairs(sentences):
    return [(list(s.tokens), list(s.tags), s.line) for s in sentences]


def error_message(path: str, line, reason: str) -> str:
    """The exact message pattern `ConllFormatError` must have (file name + line number)."""
    location = path if line is None else f"{path}:{line}"
    return "^" + re.escape(f"{location}: {reason}") + "$"


# ---------------------------------------------------------------------------------------------
# Well-formed input and the quirks of real files.


def test_reads_tokens_tags_path_and_first_line(tmp_path):
    path = write(tmp_path, "a.conll", b"Empire\tB-location\nState\tI-location\n\nhi\tO\n")
    sentences = read_all(path)
    assert sentences == [
        Sentence(("Empire", "State"), ("B-location", "I-location"), path, 1),
        Sentence(("hi",), ("O",), path, 4),
    ]


def test_whitespace_only_lines_end_a_sentence(tmp_path):
    # A single TAB (as in 2,394 WNUT-17 train separators), spaces, TAB+spaces, and runs of them.
    data = b"a\tO\n\t\nb\tO\n   \nc\tO\n \t \n\n\nd\tO\n"
    sentences = read_all(write(tmp_path, "a.conll", data))
    assert as_pairs(sentences) == [
        (["a"], ["O"], 1),
        (["b"], ["O"], 3),
        (["c"], ["O"], 5),
        (["d"], ["O"], 9),
    ]


def test_leading_and_trailing_blank_lines(tmp_path):
    sentences = read_all(write(tmp_path, "a.conll", b"\n\t\n\na\tO\n\n\n\t\n"))
    assert as_pairs(sentences) == [(["a"], ["O"], 4)]


def test_docstart_lines_are_skipped_and_end_a_sentence(tmp_path):
    data = b"-DOCSTART- -X- O O\n\nEU B-ORG\nrejects O\n-DOCSTART- -X- O O\nPeter B-PER\n"
    stats = ReadStats()
    sentences = read_all(write(tmp_path, "a.conll", data), stats=stats)
    assert as_pairs(sentences) == [
        (["EU", "rejects"], ["B-ORG", "O"], 3),
        (["Peter"], ["B-PER"], 6),
    ]
    assert stats.num_docstart_lines == 2


def test_docstart_with_tab_columns(tmp_path):
    sentences = read_all(write(tmp_path, "a.conll", b"-DOCSTART-\tO\n\na\tO\n"))
    assert as_pairs(sentences) == [(["a"], ["O"], 3)]


def test_bom_at_start_of_file(tmp_path):
    sentences = read_all(write(tmp_path, "a.conll", b"\xef\xbb\xbfa\tB-person\n\nb\tO\n"))
    assert as_pairs(sentences) == [(["a"], ["B-person"], 1), (["b"], ["O"], 3)]


def test_bom_on_a_line_of_its_own_ends_a_sentence(tmp_path):
    # Two BOM-prefixed files concatenated: the second BOM sits on a line of its own.
    data = b"\xef\xbb\xbfa\tO\n\xef\xbb\xbf\nb\tO\n"
    sentences = read_all(write(tmp_path, "a.conll", data))
    assert as_pairs(sentences) == [(["a"], ["O"], 1), (["b"], ["O"], 3)]


def test_bom_glued_to_a_token_is_removed(tmp_path):
    # As in WNUT-17 dev line 16730: "Dubbz\ufeff\tB-person".
    data = "poem\tO\nDubbz\ufeff\tB-person\n".encode()
    sentences = read_all(write(tmp_path, "a.conll", data))
    assert sentences[0].tokens == ("poem", "Dubbz")


def test_crlf_line_endings(tmp_path):
    data = b"a\tB-person\r\nb\tI-person\r\n\r\nc\tO\r\n"
    sentences = read_all(write(tmp_path, "a.conll", data))
    assert as_pairs(sentences) == [(["a", "b"], ["B-person", "I-person"], 1), (["c"], ["O"], 4)]


def test_file_not_ending_in_newline(tmp_path):
    sentences = read_all(write(tmp_path, "a.conll", b"a\tO\n\nb\tO\r\nc\tB-group"))
    assert as_pairs(sentences) == [(["a"], ["O"], 1), (["b", "c"], ["O", "B-group"], 3)]


def test_space_separated_columns(tmp_path):
    # Runs of spaces separate columns when a line holds no TAB (the `arcada` submission format).
    sentences = read_all(write(tmp_path, "a.conll", b"New  B-location\n  York   I-location  \n"))
    assert sentences[0].tokens == ("New", "York")
    assert sentences[0].tags == ("B-location", "I-location")


def test_tab_separated_token_may_hold_spaces_and_non_ascii_spaces(tmp_path):
    data = "New York\tB-location\n\u3000\tO\n".encode()
    sentences = read_all(write(tmp_path, "a.conll", data))
    assert sentences[0].tokens == ("New York", "\u3000")


def test_non_ascii_tokens(tmp_path):
    data = "caf\u00e9\tO\n\U0001f602\tO\n\u00a3\tO\n".encode()
    assert read_all(write(tmp_path, "a.conll", data))[0].tokens == (
        "caf\u00e9",
        "\U0001f602",
        "\u00a3",
    )


def test_trailing_tab_is_ignored(tmp_path):
    assert read_all(write(tmp_path, "a.conll", b"a\tO\t\nb\tO \n"))[0].tags == ("O", "O")


def test_token_and_tag_columns_of_a_wider_file(tmp_path):
    # CoNLL-2003 layout: token POS chunk NER.
    data = b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
    path = write(tmp_path, "a.conll", data)
    sentences = read_all(path)
    assert sentences[0].tokens == ("EU", "rejects")
    assert sentences[0].tags == ("B-ORG", "O")
    chunks = read_all(path, tag_column=2)
    assert chunks[0].tags == ("B-NP", "B-VP")
    reversed_columns = read_all(
        write(tmp_path, "b.conll", b"O\ta\nB-group\tb\n"), token_column=1, tag_column=0
    )
    assert reversed_columns[0].tokens == ("a", "b")
    assert reversed_columns[0].tags == ("O", "B-group")


def test_explicit_separator(tmp_path):
    path = write(tmp_path, "a.conll", b"New York|B-location\nis|O\n")
    sentences = read_all(path, separator="|")
    assert sentences[0].tokens == ("New York", "is")


def test_bioes_scheme(tmp_path):
    data = b"a\tS-person\n\nb\tB-group\nc\tI-group\nd\tE-group\n"
    sentences = read_all(write(tmp_path, "a.conll", data), scheme="bioes")
    assert [s.tags for s in sentences] == [("S-person",), ("B-group", "I-group", "E-group")]


def test_read_conll_lines_from_a_binary_file_object():
    data = io.BytesIO(b"a\tO\r\n\t\r\nb\tB-group")
    sentences = list(read_conll_lines(data, path="memory.conll"))
    assert as_pairs(sentences) == [(["a"], ["O"], 1), (["b"], ["B-group"], 3)]
    assert sentences[0].path == "memory.conll"


def test_stats_counts(tmp_path):
    stats = ReadStats()
    read_all(write(tmp_path, "a.conll", b"a\tO\nb\tO\n\t\n\nc\tO\n"), stats=stats)
    assert (stats.num_sentences, stats.num_tokens) == (2, 3)
    assert (stats.num_skipped_sentences, stats.num_skipped_lines, stats.errors) == (0, 0, [])


def test_reading_is_lazy(tmp_path):
    path = write(tmp_path, "a.conll", b"a\tO\n\nb\tO\n\nc\tX\n")
    sentences = read_conll(path)
    assert next(sentences).tokens == ("a",)  # The bad tag on line 5 is not read yet.
    assert next(sentences).tokens == ("b",)
    with pytest.raises(ConllFormatError):
        next(sentences)


# ---------------------------------------------------------------------------------------------
# Bad input: every error names the file and the line.


def test_wrong_number_of_columns(tmp_path):
    path = write(tmp_path, "wnut17train.conll", b"x\tO\n\n" * 3 + b"a\tb\tc\n")
    with pytest.raises(ConllFormatError) as raised:
        read_all(path)
    message = "expected 2 columns (token, tag), found 3: 'a\\tb\\tc'"
    assert re.match(error_message(path, 7, message), str(raised.value))
    assert (raised.value.path, raised.value.line) == (path, 7)
    assert str(raised.value).endswith("wnut17train.conll:7: " + message)


def test_column_count_is_set_by_first_token_line(tmp_path):
    path = write(tmp_path, "a.conll", b"EU NNP B-ORG\n\nrejects O\n")
    with pytest.raises(
        ConllFormatError,
        match=error_message(
            path, 3, "expected 3 columns (token, column 2, tag), found 2: 'rejects O'"
        ),
    ):
        read_all(path)


def test_too_few_columns_on_first_token_line(tmp_path):
    path = write(tmp_path, "a.conll", b"\nlonely\n")
    with pytest.raises(
        ConllFormatError,
        match=error_message(
            path,
            2,
            "expected at least 2 columns (with token_column=0, tag_column=-1), found 1: 'lonely'",
        ),
    ):
        read_all(path)


def test_tag_column_beyond_the_columns(tmp_path):
    path = write(tmp_path, "a.conll", b"a\tO\n")
    with pytest.raises(
        ConllFormatError,
        match=error_message(
            path,
            1,
            "expected at least 4 columns (with token_column=0, tag_column=3), found 2: 'a\\tO'",
        ),
    ):
        read_all(path, tag_column=3)


def test_token_and_tag_resolving_to_the_same_column(tmp_path):
    path = write(tmp_path, "a.conll", b"a\tb\tO\n")
    with pytest.raises(
        ConllFormatError,
        match=error_message(
            path,
            1,
            "token_column=2 and tag_column=-1 are the same column in a line of 3 columns: "
            "'a\\tb\\tO'",
        ),
    ):
        read_all(path, token_column=2)


def test_invalid_utf8_names_line_and_byte_offset(tmp_path):
    # Offsets count from 0. Lines 1-3 ("a\tO\n", "\n", "b\tO\n") take 4 + 1 + 4 = 9 bytes, so
    # line 4 starts at offset 9 and its bad byte (offset 2 in the line) is at offset 11.
    path = write(tmp_path, "latin1.conll", b"a\tO\n\nb\tO\nca\xe9\tO\n")
    reason = (
        "invalid UTF-8 at byte offset 11 of the file (offset 2 in the line): b'\\xe9'; CoNLL "
        "files are read as UTF-8 unless told; this one is likely in cp1252 (Windows-1252; the "
        "line would read 'caé\\tO'): give its encoding (--encoding / $NER_ENCODING, e.g. "
        "cp1252) or convert it, e.g. iconv -f CP1252 -t UTF-8"
    )
    with pytest.raises(ConllFormatError, match=error_message(path, 4, reason)):
        read_all(path)


def test_a_file_in_another_encoding_reads_when_told(tmp_path):
    text = "-DOCSTART-\tO\n\nCafé\tB-location\nMüller\tB-person\n“hi”\tO\n"
    path = write(tmp_path, "windows.conll", text.encode("cp1252"))
    expected = [(["Café", "Müller", "“hi”"], ["B-location", "B-person", "O"], 3)]
    assert as_pairs(read_conll(path, encoding="windows-1252")) == expected
    assert as_pairs(read_conll(path, encoding="cp1252")) == expected
    # Latin-1 reads every byte, but not as Windows wrote it: the quotes are C1 controls.
    assert as_pairs(read_conll(path, encoding="latin-1"))[0][0][2] == "\x93hi\x94"


def test_a_byte_the_given_encoding_lacks_names_it(tmp_path):
    path = write(tmp_path, "bad.conll", b"a\tO\n\x81\tO\n")
    reason = (
        "invalid cp1252 at byte offset 4 of the file (offset 0 in the line): b'\\x81'; check "
        "the encoding given (--encoding / $NER_ENCODING)"
    )
    with pytest.raises(ConllFormatError, match=error_message(path, 2, reason)):
        list(read_conll(path, encoding="cp1252"))


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = write(tmp_path, "utf16.conll", "a\tO\n".encode("utf-16"))
    with pytest.raises(ConllFormatError, match="likely UTF-16 .* iconv -f UTF-16 -t UTF-8"):
        read_all(path)


@pytest.mark.parametrize(
    "encoding, expected",
    [
        ("utf16", "keeps ASCII as it is"),
        ("utf-32", "keeps ASCII as it is"),
        ("hex", "keeps ASCII as it is"),
        ("klingon", "a text encoding Python knows"),
        (None, "a text encoding Python knows"),
    ],
)
def test_encodings_that_cannot_be_read_line_by_line_are_refused_up_front(encoding, expected):
    with pytest.raises(ValueError, match=f"`encoding`. Expected .*{expected}"):
        read_conll("never-opened.conll", encoding=encoding)
    with pytest.raises(ValueError, match=f"`encoding`. Expected .*{expected}"):
        check_encoding(encoding)


def test_without_a_tag_column_tokens_are_read_as_with_one(tmp_path):
    """`tag_column=None` (what `ner-tag --conll` reads): the same tokens, the same splitting,
    one column or more, tags not read (so not checked)."""
    tagged = b"-DOCSTART- O\n\nNew\xc2\xa0York\tB-location\nis\tO\n\nhi   O\n"
    path = write(tmp_path, "tagged.conll", tagged)
    with_tags = [(tokens, line) for tokens, _, line in as_pairs(read_all(path))]
    assert [(list(s.tokens), s.line) for s in read_conll(path, tag_column=None)] == with_tags
    assert with_tags == [(["New\u00a0York", "is"], 3), (["hi"], 6)]
    untagged = write(tmp_path, "tokens.conll", b"New\xc2\xa0York\nis\n\nhi\n")
    assert [list(s.tokens) for s in read_conll(untagged, tag_column=None)] == [
        ["New\u00a0York", "is"],
        ["hi"],
    ]
    assert all(s.tags == () for s in read_conll(path, tag_column=None))
    bad_tag = write(tmp_path, "badtag.conll", b"a\tNOT-A-TAG\n")
    assert [list(s.tokens) for s in read_conll(bad_tag, tag_column=None)] == [["a"]]


@pytest.mark.parametrize("name", ["train.conll.gz", "train.conll"])
def test_a_gzipped_file_is_read_as_the_plain_one(tmp_path, name):
    """Known by its magic bytes, whatever its name; line numbers are the uncompressed file's."""
    import gzip

    plain = b"-DOCSTART-\tO\n\nEmpire\tB-location\nState\tI-location\n\nhi\tO\n"
    expected = as_pairs(read_all(write(tmp_path, "plain.conll", plain)))
    path = write(tmp_path, name, gzip.compress(plain))
    assert as_pairs(read_all(path)) == expected == [
        (["Empire", "State"], ["B-location", "I-location"], 3), (["hi"], ["O"], 6)
    ]  # fmt: skip
    with open(path, "rb") as file:  # as ConllExampleGen reads it, from an open file
        assert as_pairs(read_conll_lines(file, path)) == expected
    bad = write(tmp_path, "bad." + name, gzip.compress(b"a\tO\nb\tX-person\n"))
    with pytest.raises(
        ConllFormatError, match=error_message(bad, 2, "invalid tag 'X-person'")[:-1]
    ):
        read_all(bad)


def test_a_truncated_gzipped_file_names_the_file(tmp_path):
    import gzip

    path = write(tmp_path, "train.conll.gz", gzip.compress(b"a\tO\n" * 1000)[:-20])
    with pytest.raises(ConllFormatError, match=r"train.conll.gz: corrupt or truncated gzip data"):
        read_all(path)


@pytest.mark.parametrize(
    ("tag", "scheme", "expected"),
    [
        ("E-person", "iob2", "O, B-<type> or I-<type>"),
        ("S-person", "bio", "O, B-<type> or I-<type>"),
        ("B-", "iob2", "O, B-<type> or I-<type>"),
        ("PER", "iob2", "O, B-<type> or I-<type>"),
        ("o", "iob2", "O, B-<type> or I-<type>"),
        ("B_person", "bioes", "O, B-<type>, I-<type>, E-<type> or S-<type>"),
        ("L-person", "bioes", "O, B-<type>, I-<type>, E-<type> or S-<type>"),
    ],
)
def test_invalid_tag(tmp_path, tag, scheme, expected):
    path = write(tmp_path, "tags.conll", f"a\tO\nb\t{tag}\n".encode())
    canonical = "iob2" if scheme == "bio" else scheme
    reason = f"invalid tag {tag!r}; scheme {canonical!r} expects {expected}: {'b' + chr(9) + tag!r}"
    with pytest.raises(ConllFormatError, match=error_message(path, 2, reason)):
        read_all(path, scheme=scheme)


def test_empty_token_field(tmp_path):
    path = write(tmp_path, "a.conll", b"a\tO\n\tB-person\n")
    with pytest.raises(
        ConllFormatError, match=error_message(path, 2, "empty token: '\\tB-person'")
    ):
        read_all(path)


@pytest.mark.parametrize(
    "data", [b"", b"\n\n", b"\t\n \n", b"\xef\xbb\xbf", b"-DOCSTART- -X- O O\n\n"]
)
def test_input_with_no_sentences(tmp_path, data):
    path = write(tmp_path, "empty.conll", data)
    num_lines = len(data.split(b"\n")) - 1 + (not data.endswith(b"\n") and bool(data))
    with pytest.raises(
        ConllFormatError, match=error_message(path, None, f"no sentences found ({num_lines} lines)")
    ) as raised:
        read_all(path)
    assert raised.value.line is None


def test_missing_file_is_not_a_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_all(str(tmp_path / "missing.conll"))


def test_error_survives_pickling(tmp_path):
    error = ConllFormatError("a.conll", 3, "empty token: 'x'")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.line, copy.reason) == (
        str(error),
        "a.conll",
        3,
        "empty token: 'x'",
    )


# ---------------------------------------------------------------------------------------------
# on_error="skip": bad sentences are dropped whole and counted.


def test_skip_drops_whole_sentences_and_counts_them(tmp_path):
    data = (
        b"good\tO\n\n"  # sentence at line 1: kept
        b"a\tB-person\nb\tBAD\nc\tI-person\n\n"  # line 3: bad tag on line 4, dropped whole
        b"d\tO\ne\tO\tO\n\n"  # line 7: wrong columns on line 8, dropped
        b"f\xff\tO\n\n"  # line 10: invalid UTF-8, dropped
        b"also\tO\ngood\tO\n"  # line 12: kept
    )
    path = write(tmp_path, "mixed.conll", data)
    stats = ReadStats()
    sentences = read_all(path, on_error="skip", stats=stats)
    assert as_pairs(sentences) == [(["good"], ["O"], 1), (["also", "good"], ["O", "O"], 12)]
    assert stats.num_sentences == 2
    assert stats.num_tokens == 3
    assert stats.num_skipped_sentences == 3
    assert stats.num_skipped_lines == 3 + 2 + 1
    assert [(e.path, e.line) for e in stats.errors] == [(path, 4), (path, 8), (path, 10)]
    assert "invalid tag 'BAD'" in str(stats.errors[0])


def test_skip_never_keeps_part_of_a_bad_sentence(tmp_path):
    # The bad line is the first of its sentence: the good lines after it must not form a sentence.
    data = b"a\tO\n\nb\tX-person\nc\tI-person\nd\tO\n"
    sentences = read_all(write(tmp_path, "a.conll", data), on_error="skip")
    assert as_pairs(sentences) == [(["a"], ["O"], 1)]


def test_skip_with_every_sentence_bad_is_an_error(tmp_path):
    path = write(tmp_path, "bad.conll", b"a\tX\n\nb\tY\n")
    first = f"{path}:1: invalid tag 'X'; scheme 'iob2' expects O, B-<type> or I-<type>: 'a\\tX'"
    with pytest.raises(
        ConllFormatError,
        match=error_message(
            path,
            None,
            f"no sentences found (3 lines, 2 sentences skipped because of errors, the first: "
            f"{first})",
        ),
    ):
        read_all(path, on_error="skip")


def test_skip_on_first_line_with_too_few_columns_lets_the_next_line_set_the_count(tmp_path):
    stats = ReadStats()
    path = write(tmp_path, "a.conll", b"stray\n\na\tO\n")
    assert as_pairs(read_all(path, on_error="skip", stats=stats)) == [(["a"], ["O"], 3)]
    assert stats.num_skipped_sentences == 1


# ---------------------------------------------------------------------------------------------
# Arguments.


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"scheme": "iob1"},
            "Invalid value for `scheme`. Expected one of 'iob2' (alias 'bio') or 'bioes' "
            "(alias 'iobes'). Received: scheme='iob1'",
        ),
        (
            {"on_error": "ignore"},
            "Invalid value for `on_error`. Expected one of ('raise', "
            "'skip'). Received: on_error='ignore'",
        ),
        (
            {"token_column": "0"},
            "Invalid value for `token_column`. Expected an int (a column "
            "index, negative counts from the end). Received: token_column='0'",
        ),
        (
            {"tag_column": 0},
            "Invalid value for `tag_column`. Expected a column other than "
            "`token_column`. Received: token_column=0, tag_column=0",
        ),
        (
            {"separator": ""},
            "Invalid value for `separator`. Expected None (TAB if the line has "
            "one, else runs of spaces) or a non-empty string without a newline. "
            "Received: separator=''",
        ),
    ],
)
def test_invalid_arguments_raise_at_call_time(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        read_conll("/does/not/matter.conll", **kwargs)


# ---------------------------------------------------------------------------------------------
# parse_tag.


@pytest.mark.parametrize(
    ("tag", "scheme", "expected"),
    [
        ("O", "iob2", ("O", None)),
        ("B-person", "iob2", ("B", "person")),
        ("I-creative-work", "bio", ("I", "creative-work")),
        ("E-group", "bioes", ("E", "group")),
        ("S-LOC", "bioes", ("S", "LOC")),
    ],
)
def test_parse_tag(tag, scheme, expected):
    assert parse_tag(tag, scheme) == expected


def test_parse_tag_rejects_tags_outside_the_scheme():
    message = (
        "Invalid value for `tag`. Expected O, B-<type> or I-<type> (scheme 'iob2'). "
        "Received: tag='E-group'"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        parse_tag("E-group")


# ---------------------------------------------------------------------------------------------
# The real WNUT-17 files: counts from /work/shared/datasets/README.md.


@requires_wnut17
@pytest.mark.parametrize(
    ("name", "num_sentences", "num_tokens"),
    [
        ("wnut17train.conll", 3394, 62730),
        ("emerging.dev.conll", 1009, 15733),
        ("emerging.test.annotated", 1287, 23394),
    ],
)
def test_wnut17_counts(name, num_sentences, num_tokens):
    stats = ReadStats()
    sentences = read_all(WNUT17 / name, stats=stats)
    assert len(sentences) == num_sentences
    assert sum(len(s.tokens) for s in sentences) == num_tokens
    assert (stats.num_sentences, stats.num_tokens) == (num_sentences, num_tokens)
    assert stats.num_skipped_sentences == 0
    assert all(len(s.tokens) == len(s.tags) for s in sentences)


@requires_wnut17
def test_wnut17_dev_bom_token_and_sentence_lines():
    sentences = read_all(WNUT17 / "emerging.dev.conll")
    by_line = {s.line: s for s in sentences}
    # Lines 16728-16730 of the file: "excellent", "poem", "Dubbz<U+FEFF>" (tag B-person).
    assert by_line[16728].tokens == ("excellent", "poem", "Dubbz")
    assert by_line[16728].tags == ("O", "O", "B-person")
    assert sentences[0].line == 1 and sentences[0].tokens[0] == "Stabilized"


@requires_wnut17
def test_wnut17_submission_crlf_space_separated_without_final_newline():
    # `arcada`: CRLF, space-separated, no newline after the last token line.
    sentences = read_all(WNUT17 / "submissions" / "arcada")
    assert len(sentences) == 1287
    assert sum(len(s.tokens) for s in sentences) == 23394
    assert sentences[-1].tokens[-1] == "\U0001f602"


@pytest.mark.parametrize("separator", [None, "\t", " ", "|", " | "])
def test_fields_stripped_of_ascii_whitespace_only_at_their_ends(separator):
    # The reader splits a line and strips each field of ASCII whitespace, skipping the strip
    # where no field needs it; against the plain definition on random lines of separators,
    # ASCII whitespace, a non-ASCII space and letters.
    import random

    from components.conll_format import _split_columns

    rng = random.Random(0)
    alphabet = [" ", "\t", "\r", "\f", "\v", "\u00a0", "a", "b", "|", "ab", "a b"]
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        if separator is None:
            if "\t" not in line:
                continue  # Runs of spaces: another rule, tested through read_conll above.
            expected = [field.strip(" \t\r\n\f\v") for field in line.split("\t")]
        else:
            expected = [field.strip(" \t\r\n\f\v") for field in line.split(separator)]
        assert _split_columns(line, separator) == expected, repr(line)


def test_each_tag_is_checked_against_the_scheme_wherever_it_appears():
    # Tags are checked once per file and remembered: a tag valid in one scheme and not in the
    # other must still fail where it first appears, and a bad tag after good ones too.
    text = b"a\tB-x\nb\tI-x\n\nc\tS-x\n"
    with pytest.raises(ConllFormatError) as caught:
        list(read_conll_lines(io.BytesIO(text), "f.conll", scheme="iob2"))
    assert caught.value.line == 4
    with pytest.raises(ConllFormatError) as caught:
        list(
            read_conll_lines(io.BytesIO(b"c\tS-x\nd\tS-x\n\na\tI-x\nb\tL-x\n"), "f", scheme="bioes")
        )
    assert caught.value.line == 5
    skipped = ReadStats()
    kept = list(
        read_conll_lines(
            io.BytesIO(text + b"\nd\tB-x\n"), "f", scheme="iob2", on_error="skip", stats=skipped
        )
    )
    assert [s.tokens for s in kept] == [("a", "b"), ("d",)] and skipped.num_skipped_sentences == 1


def test_a_gfile_reads_as_a_python_file(tmp_path):
    # ExampleGen opens files with TFX's fileio (a TensorFlow GFile, not an io object): the lines,
    # line numbers and byte offsets of errors must be those of Python's own file.
    import gzip

    import tensorflow as tf

    text = b"\xef\xbb\xbfa\tO\r\nb\tB-x\r\n\r\n" + b"".join(b"w%d\tO\n\n" % i for i in range(5000))
    bad = text + b"ok\tO\nbad\xe9\tO\n"
    for name, data in (("plain", text), ("gz", gzip.compress(text)), ("bad", bad)):
        path = tmp_path / name
        path.write_bytes(data)
        results = []
        for opener in (open, tf.io.gfile.GFile):
            with opener(str(path), "rb") as file:
                try:
                    results.append(list(read_conll_lines(file, "f")))
                except ConllFormatError as error:
                    results.append(str(error))
        assert results[0] == results[1], name
    assert "byte offset" in results[1]


def test_a_gfile_is_read_from_its_start(tmp_path):
    import tensorflow as tf

    path = tmp_path / "f.conll"
    path.write_bytes(b"a\tO\n\nb\tO\n")
    with tf.io.gfile.GFile(str(path), "rb") as file:
        file.readline()
        assert [s.tokens for s in read_conll_lines(file, "f")] == [("a",), ("b",)]


# ---------------------------------------------------------------------------------------------
# read_conll_batches: what read_conll_lines reads, split a sentence at a time where it can.


def read_both(data: bytes, chunk_bytes: int, **options):
    """(sentences, error, stats) of `read_conll_lines` (the reference: line by line) and of
    `read_conll_batches` on the same bytes, tokens and tags as UTF-8 bytes."""

    def outcome(sentences_of):
        stats, sentences, error = ReadStats(), [], None
        try:
            for sentence in sentences_of(stats):
                sentences.append(sentence)
        except ConllFormatError as raised:
            error = str(raised)
        counts = (
            stats.num_sentences,
            stats.num_tokens,
            stats.num_skipped_sentences,
            stats.num_skipped_lines,
            [str(each) for each in stats.errors],
        )
        return sentences, error, counts

    def by_lines(stats):
        for s in read_conll_lines(io.BytesIO(data), "f.conll", stats=stats, **options):
            yield s.line, [t.encode() for t in s.tokens], [t.encode() for t in s.tags]

    def in_batches(stats):
        for batch in read_conll_batches(
            io.BytesIO(data), "f.conll", stats=stats, chunk_bytes=chunk_bytes, **options
        ):
            assert batch
            yield from batch

    return outcome(by_lines), outcome(in_batches)


def assert_same_reading(reference, batches):
    if reference[1] is None:
        assert batches == reference
    else:
        # Batches come a chunk at a time: an error raised in a chunk comes before that chunk's
        # sentences. The same error, the same counts, the sentences of the chunks before it.
        assert batches[1:] == reference[1:]
        assert batches[0] == reference[0][: len(batches[0])]


# Lines that read plainly, and every quirk the line reader handles or refuses.
PLAIN_LINES = ["w\tO", "New York\tB-location", "x\tI-location", "caf\u00e9\tO", "y  z\tO"]
QUIRK_LINES = [
    "a b\tB-person", "q\tO\tO", "e\tBAD", "\tO", "t\t", " s\tO", "s\tO ", "u \tO", "v\t O",
    "-DOCSTART-\tO", "-DOCSTART- -X- O", "\ufeffbom\tO", "\ufeff", "\t", " ", "\t \t",
    "\u3000\tO", "k\x0c\tO", "m O", "n  O", "p\rq\tO", "q\r\tO", "w\tO\r", "B-x\tO", "r\x0b", "",
]  # fmt: skip


def random_conll(rng, quirk_rate: float, plain_lines=PLAIN_LINES) -> bytes:
    lines = [
        rng.choice(QUIRK_LINES if rng.random() < quirk_rate else plain_lines + [""])
        for _ in range(rng.randrange(0, 40))
    ]
    text = "".join(line + rng.choice(["\n", "\n", "\r\n"]) for line in lines)
    if text and rng.random() < 0.3:
        text = text.rstrip("\r\n")  # No newline at the end.
    data = text.encode("utf-8")
    if data and rng.random() < 0.05:
        at = rng.randrange(len(data))
        data = data[:at] + b"\xff" + data[at:]  # Not UTF-8 (an accented letter in cp1252).
    return data


SPACED_LINES = ["w O", "New B-location", "x I-location", "caf\u00e9 O", "y O"]
TAG_FIRST_LINES = ["O\tw", "B-location\tNew York", "I-location\tx", "O\tcaf\u00e9"]


@pytest.mark.parametrize(
    ("options", "plain_lines"),
    [
        ({}, PLAIN_LINES),
        ({"on_error": "skip"}, PLAIN_LINES),
        ({}, SPACED_LINES),
        ({"separator": "\t"}, PLAIN_LINES),
        ({"separator": " "}, SPACED_LINES),
        ({"separator": " ", "on_error": "skip"}, SPACED_LINES),
        ({"encoding": "cp1252"}, PLAIN_LINES),
        ({"encoding": "latin-1", "on_error": "skip"}, PLAIN_LINES),
        ({"scheme": "bioes", "on_error": "skip"}, PLAIN_LINES),
        ({"token_column": -1, "tag_column": 0, "on_error": "skip"}, TAG_FIRST_LINES),
    ],
)
def test_batches_read_what_the_line_reader_reads(options, plain_lines, monkeypatch):
    # Random files of plain lines and quirks (BOMs, CRLF, -DOCSTART-, lines of whitespace, bad
    # columns, tags and bytes, spaces at the ends of fields...), chunks from one byte (a cut
    # after every blank line) to the whole file.
    import random

    from components import conll_format

    split = conll_format._BlockSplitter.split
    splits = {"whole": 0, "line by line": 0}

    def counted(self, *args, **kwargs):
        sentence = split(self, *args, **kwargs)
        splits["whole" if sentence is not None else "line by line"] += 1
        return sentence

    monkeypatch.setattr(conll_format._BlockSplitter, "split", counted)
    rng = random.Random(str(options) + plain_lines[0])
    for _ in range(250):
        data = random_conll(rng, rng.choice([0.05, 0.3]), plain_lines)
        for chunk_bytes in (1, 7, 64, 1 << 20):
            reference, batches = read_both(data, chunk_bytes, **options)
            assert_same_reading(reference, batches)
    # Both ways were taken, many times (the comparison above covers both).
    assert splits["whole"] > 500 and splits["line by line"] > 500, splits


@requires_wnut17
@pytest.mark.parametrize(
    "name",
    ["wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated", "submissions/arcada"],
)
def test_batches_read_the_wnut17_files_as_the_line_reader(name, monkeypatch):
    from components import conll_format

    split = conll_format._BlockSplitter.split
    whole = []

    def counted(self, *args, **kwargs):
        sentence = split(self, *args, **kwargs)
        whole.extend([sentence] if sentence is not None else [])
        return sentence

    monkeypatch.setattr(conll_format._BlockSplitter, "split", counted)
    data = (WNUT17 / name).read_bytes()
    reference, batches = read_both(data, 1 << 16)
    assert reference[1] is None and len(reference[0]) > 1000
    assert batches == reference
    # Split whole, not line by line, despite their quirks: sentences ended by a line of a TAB
    # (train), CRLF endings (arcada), U+FEFF (dev); the file's first sentence is read by lines.
    assert len(whole) >= 0.95 * len(reference[0]), (len(whole), len(reference[0]))


def test_batches_of_a_gzipped_file_and_a_gfile(tmp_path):
    import gzip

    import tensorflow as tf

    data = b"".join(f"w{i}\tO\nx\tB-person\n\n".encode() for i in range(3000))
    path = write(tmp_path, "train.conll.gz", gzip.compress(data))
    with open(path, "rb") as file:
        compressed = [
            s for batch in read_conll_batches(file, path, chunk_bytes=4096) for s in batch
        ]
    with tf.io.gfile.GFile(path, "rb") as file:
        through_gfile = [s for batch in read_conll_batches(file, path) for s in batch]
    expected = [(3 * i + 1, [f"w{i}".encode(), b"x"], [b"O", b"B-person"]) for i in range(3000)]
    assert compressed == through_gfile == expected
    cut = write(tmp_path, "cut.conll.gz", gzip.compress(data)[:-100])
    with open(cut, "rb") as file, pytest.raises(ConllFormatError, match="corrupt or truncated"):
        list(read_conll_batches(file, cut, chunk_bytes=4096))


def test_batches_hold_what_convert_makes_of_each_sentence():
    data = b"a\tO\nb\tB-x\n\n\ufeffc\tO\n".replace(b"\\ufeff", "\ufeff".encode())
    batches = read_conll_batches(
        io.BytesIO(data), "f", convert=lambda line, tokens, tags: (line, len(tokens))
    )
    assert [each for batch in batches for each in batch] == [(1, 2), (4, 1)]
