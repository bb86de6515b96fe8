"""Tests of the `ner-tag` command (serving/cli.py), its inputs, formats, version choice and the
Beam batch inference (serving/batch_inference.py)."""

import json
import os
import subprocess
import sys

import pytest

from models.tokenization import tokenize
from serving.cli import main
from serving.model_version import resolve_model_dir

pytestmark = pytest.mark.slow


def test_newest_numeric_version_or_the_named_one(serving_root):
    assert resolve_model_dir(str(serving_root)) == os.path.join(str(serving_root), "10")
    assert resolve_model_dir(str(serving_root), "9") == os.path.join(str(serving_root), "9")
    direct = os.path.join(str(serving_root), "9")
    assert resolve_model_dir(direct) == direct
    with pytest.raises(
        ValueError, match=r"Invalid value for `version`. Expected one of .*\[9, 10\]"
    ):
        resolve_model_dir(str(serving_root), "11")


def test_missing_or_empty_serving_dir(tmp_path):
    with pytest.raises(ValueError, match=r"Invalid value for `serving_dir`. Expected an existing"):
        resolve_model_dir(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match=r"with no version"):
        resolve_model_dir(str(tmp_path))


@pytest.fixture
def broken_newest(serving_root, tmp_path):
    """A serving folder whose newest version has a truncated saved_model.pb, and a hidden
    half-written one newer still (as an interrupted Pusher leaves it)."""
    import shutil

    root = tmp_path / "serving"
    shutil.copytree(serving_root / "9", root / "9")
    shutil.copytree(serving_root / "9", root / "12")
    model_file = root / "12" / "saved_model.pb"
    model_file.write_bytes(model_file.read_bytes()[:200])
    (root / ".13.incomplete").mkdir()
    return root


def test_a_version_that_cannot_be_loaded_falls_back_to_the_previous_one(broken_newest, capsys):
    # Reference: version 9 named explicitly, which loads.
    status, expected, _ = run(capsys, "--serving-dir", str(broken_newest), "--version", "9",
                              "--format", "jsonl", "Obama visited Paris")  # fmt: skip
    assert status == 0
    status, out, err = run(capsys, "--serving-dir", str(broken_newest), "--format", "jsonl",
                           "Obama visited Paris")  # fmt: skip
    assert status == 0
    assert out == expected
    assert f"ner-tag: warning: Model version {broken_newest / '12'} cannot be loaded" in err
    assert f"Serving {broken_newest / '9'} instead" in err
    # Asked for by number, the broken version is an error, not silently another model.
    status, out, err = run(capsys, "--serving-dir", str(broken_newest), "--version", "12", "hi")
    assert status != 0 and not out


def test_no_loadable_version_is_one_error_naming_each(broken_newest, capsys):
    import shutil

    shutil.rmtree(broken_newest / "9")
    status, out, err = run(capsys, "--serving-dir", str(broken_newest), "hi")
    assert status == 2 and not out
    assert "Expected at least one loadable model version" in err
    assert str(broken_newest / "12") in err


def test_beam_batch_inference_falls_back_too(broken_newest, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("Obama visited Paris\nhi\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    status, _, err = run(capsys, "--serving-dir", str(broken_newest), "--file", str(text),
                         "--beam", "-o", str(output), "--format", "jsonl")  # fmt: skip
    assert status == 0
    assert "cannot be loaded" in err
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["sentence"] for r in records) == ["Obama visited Paris", "hi"]


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sentences_as_arguments_in_every_format(serving_root, capsys):
    sentences = ["Obama visited  Paris", "", "hello"]
    status, out, _ = run(
        capsys, "--serving-dir", str(serving_root), "--format", "jsonl", *sentences
    )
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["tokens"] for r in records] == [tokenize(s) for s in sentences]
    assert all(len(r["tags"]) == len(r["tokens"]) == len(r["confidences"]) for r in records)

    status, out, _ = run(capsys, "--serving-dir", str(serving_root), *sentences)
    # text: the tokens (entities bracketed), one line per sentence
    assert len(out.splitlines()) == 3
    assert out.splitlines()[0].replace("[", "").split("](")[0].startswith("Obama")

    status, out, _ = run(
        capsys, "--serving-dir", str(serving_root), "--format", "conll", *sentences
    )
    blocks = out.split("\n\n")
    rows = [line.split("\t") for line in blocks[0].splitlines()]
    assert [r[0] for r in rows] == ["Obama", "visited", "Paris"]


def test_text_and_conll_files(serving_root, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_bytes(b"Obama visited Paris\n\ncaf\xc3 au lait\r\nhi\n")
    output = tmp_path / "out.jsonl"
    status, _, err = run(capsys, "--serving-dir", str(serving_root), "--file", str(text),
                         "--format", "jsonl", "-o", str(output))  # fmt: skip
    assert status == 0
    assert "sentence" in err  # the progress bar
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    expected = [tokenize(line) for line in text.read_bytes().split(b"\n")[:-1]]
    assert [r["tokens"] for r in records] == expected

    conll = tmp_path / "in.conll"
    conll.write_text("-DOCSTART- O\n\nObama B-person\nvisited O\n\nhi\tO\n", encoding="utf-8")
    status, out, _ = run(capsys, "--serving-dir", str(serving_root), "--conll", str(conll),
                         "--format", "jsonl", "--no-progress")  # fmt: skip
    assert [json.loads(line)["tokens"] for line in out.splitlines()] == [
        ["Obama", "visited"],
        ["hi"],
    ]


def test_conll_files_are_read_as_the_pipeline_reads_them(serving_root, tmp_path, capsys):
    """`--conll` tokens are exactly the pipeline reader's, and each is tagged as one token: a
    token holding a space or a non-breaking space (TAB-separated file), a byte order mark, a
    `-DOCSTART-` line, a gzipped file. Splitting at any whitespace (the old reader, and the
    model's own tokenisation of text) cuts those tokens in two."""
    import gzip

    from components.conll_format import read_conll

    data = (
        "\ufeff-DOCSTART-\tO\n\nNew York\tB-location\nis\tO\nnice\tO\n\n"
        "Paris\u00a0Hilton\tB-person\nsaid\tO\n\n"
    ).encode("utf-8")
    plain, zipped = tmp_path / "in.conll", tmp_path / "in.conll.gz"
    plain.write_bytes(data)
    zipped.write_bytes(gzip.compress(data))
    expected = [list(s.tokens) for s in read_conll(str(plain))]
    assert expected == [["New York", "is", "nice"], ["Paris\u00a0Hilton", "said"]]
    for path in (plain, zipped):
        status, out, _ = run(capsys, "--serving-dir", str(serving_root), "--conll", str(path),
                             "--format", "jsonl", "--no-progress")  # fmt: skip
        assert status == 0
        records = [json.loads(line) for line in out.splitlines()]
        assert [r["tokens"] for r in records] == expected
        assert [len(r["tags"]) for r in records] == [3, 2]

    windows = tmp_path / "windows.conll"
    windows.write_bytes("Café\tO\nMüller\tB-person\n".encode("cp1252"))
    status, _, err = run(capsys, "--serving-dir", str(serving_root), "--conll", str(windows))
    assert status == 2 and f"{windows}:1: invalid UTF-8" in err and "likely in cp1252" in err
    status, out, _ = run(capsys, "--serving-dir", str(serving_root), "--conll", str(windows),
                         "--encoding", "cp1252", "--format", "jsonl")  # fmt: skip
    assert status == 0 and json.loads(out)["tokens"] == ["Café", "Müller"]
    status, _, err = run(capsys, "--serving-dir", str(serving_root), "--conll", str(windows),
                         "--encoding", "utf-16")  # fmt: skip
    assert status == 2 and "Invalid value for `encoding`" in err


def test_bad_input_is_reported(serving_root, tmp_path, capsys):
    conll = tmp_path / "bad.conll"
    conll.write_bytes(b"Obama O\nvisit\xff O\n")
    status, _, err = run(capsys, "--serving-dir", str(serving_root), "--conll", str(conll))
    assert status == 2 and f"{conll}:2: invalid UTF-8" in err
    status, _, err = run(capsys, "--serving-dir", str(tmp_path / "absent"), "hi")
    assert status == 2 and "Invalid value for `serving_dir`" in err
    with pytest.raises(SystemExit):
        main([])


def test_beam_batch_inference(serving_root, tmp_path, capsys):
    lines = ["Obama visited Paris", "I love New York", "hi", "x " * 20]
    text = tmp_path / "in.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "beam.jsonl"
    status, _, _ = run(capsys, "--serving-dir", str(serving_root), "--file", str(text), "--beam",
                       "--format", "jsonl", "-o", str(output), "--batch-size", "2")  # fmt: skip
    assert status == 0
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["sentence"] for r in records) == sorted(lines)
    for record in records:
        assert record["tokens"] == tokenize(record["sentence"])


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "ner-tag")
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0 and "--serving-dir" in completed.stdout


def test_a_failed_run_leaves_the_previous_output_whole(serving_root, tmp_path, capsys):
    output = tmp_path / "tagged.jsonl"
    output.write_text("the previous result\n", encoding="utf-8")
    conll = tmp_path / "broken.conll"
    # One good sentence, then bytes that are not UTF-8: the reader fails half-way.
    conll.write_bytes(b"Obama\tB-person\n\nParis\tB-location\nvisited\t\xff\xfe\n")
    status, _, err = run(capsys, "--serving-dir", str(serving_root), "--conll", str(conll),
                         "-o", str(output), "--no-progress")  # fmt: skip
    assert status == 2 and "invalid UTF-8" in err
    assert output.read_text(encoding="utf-8") == "the previous result\n"
    assert sorted(os.listdir(tmp_path)) == ["broken.conll", "tagged.jsonl"]  # no partial file


def test_the_format_follows_the_output_extension(serving_root, tmp_path, capsys):
    for name, check in (
        ("out.jsonl", lambda text: json.loads(text.splitlines()[0])["tokens"] == ["hello"]),
        ("out.conll", lambda text: text.splitlines()[0].split("\t")[0] == "hello"),
        ("out.txt", lambda text: text.strip() == "hello (no entities)"),
    ):
        status, _, _ = run(capsys, "--serving-dir", str(serving_root), "-o", str(tmp_path / name),
                           "hello")  # fmt: skip
        assert status == 0
        assert check((tmp_path / name).read_text(encoding="utf-8")), name
    # An explicit --format wins over the extension.
    status, _, _ = run(capsys, "--serving-dir", str(serving_root), "--format", "text", "-o",
                       str(tmp_path / "x.jsonl"), "hello")  # fmt: skip
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8").strip() == "hello (no entities)"
