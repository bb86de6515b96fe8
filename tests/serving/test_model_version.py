"""The one reader of a serving folder's versions (serving/model_version.py), on plain folders.

A version is a numeric folder holding `saved_model.pb`; here the file is empty, which is all the
reader looks at (loading is tested in test_cli.py with real models)."""

import os

import pytest

from serving.model_version import resolve_model_dir, version_dir, whole_versions


def _version(root, name):
    (root / name).mkdir()
    (root / name / "saved_model.pb").write_bytes(b"")


def test_zero_padded_versions_are_numbers_and_keep_their_folder_names(tmp_path):
    """TF Serving reads `007` as version 7; so do we, and we go on using the folder `007`."""
    for name in ("9", "011", "0007"):
        _version(tmp_path, name)
    (tmp_path / "12").mkdir()  # no saved_model.pb: being written, not a version
    (tmp_path / ".13.incomplete").mkdir()
    assert whole_versions(str(tmp_path)) == [7, 9, 11]
    assert resolve_model_dir(str(tmp_path)) == os.path.join(str(tmp_path), "011")
    assert resolve_model_dir(str(tmp_path), "7") == os.path.join(str(tmp_path), "0007")
    assert version_dir(str(tmp_path), 11) == os.path.join(str(tmp_path), "011")
    with pytest.raises(ValueError, match=r"Expected one of the versions .*\[7, 9, 11\]"):
        resolve_model_dir(str(tmp_path), "12")


def test_two_names_of_one_number_the_unpadded_one_wins(tmp_path):
    for name in ("05", "5", "005"):
        _version(tmp_path, name)
    assert whole_versions(str(tmp_path)) == [5]
    assert version_dir(str(tmp_path), 5) == os.path.join(str(tmp_path), "5")


def test_non_ascii_digits_are_not_versions(tmp_path):
    _version(tmp_path, "٣")  # Arabic-Indic three: str.isdigit() is True, int() reads it
    _version(tmp_path, "3")
    assert whole_versions(str(tmp_path)) == [3]
    assert version_dir(str(tmp_path), 3) == os.path.join(str(tmp_path), "3")
