"""Tests of components/atomic_pusher.py's copy logic, without TFX."""

import os

from components import atomic_pusher


def make_model(path, content=b"graph"):
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as file:
        file.write(content)
    with open(os.path.join(path, "variables", "variables.index"), "wb") as file:
        file.write(b"index")
    return str(path)


def test_copy_goes_through_a_hidden_folder_and_one_rename(tmp_path, monkeypatch):
    model = make_model(tmp_path / "model")
    serving = str(tmp_path / "serving")
    seen_during_copy = []
    real_copy_file = atomic_pusher.io_utils.copy_file

    def copy_file(source, destination, *args, **kwargs):
        # While files are being copied, no numeric version folder may exist.
        seen_during_copy.append(sorted(os.listdir(serving)))
        return real_copy_file(source, destination, *args, **kwargs)

    monkeypatch.setattr(atomic_pusher.io_utils, "copy_file", copy_file)
    path = atomic_pusher.copy_model_atomically(model, serving, "123")
    assert path == os.path.join(serving, "123")
    assert seen_during_copy and all(names == [".123.incomplete"] for names in seen_during_copy)
    assert sorted(os.listdir(serving)) == ["123"]
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    assert atomic_pusher.directory_fingerprint(path) == atomic_pusher.directory_fingerprint(model)


def test_existing_version_is_not_overwritten(tmp_path):
    serving = str(tmp_path / "serving")
    atomic_pusher.copy_model_atomically(make_model(tmp_path / "a", b"one"), serving, "5")
    assert (
        atomic_pusher.copy_model_atomically(make_model(tmp_path / "b", b"two"), serving, "5")
        is None
    )
    with open(os.path.join(serving, "5", "saved_model.pb"), "rb") as file:
        assert file.read() == b"one"


def test_leftover_temporary_folder_is_replaced(tmp_path):
    serving = tmp_path / "serving"
    (serving / ".7.incomplete").mkdir(parents=True)
    (serving / ".7.incomplete" / "junk").write_bytes(b"half")
    atomic_pusher.copy_model_atomically(make_model(tmp_path / "m"), str(serving), "7")
    assert sorted(os.listdir(serving)) == ["7"]
    assert "junk" not in os.listdir(serving / "7")


def test_an_identical_push_is_judged_against_the_newest_whole_version(tmp_path):
    serving = tmp_path / "serving"
    for name in ("9", "10", ".11.incomplete", "12"):
        make_model(serving / name, name.encode())
    os.remove(serving / "12" / "saved_model.pb")  # being written (on GCS: no rename)
    assert atomic_pusher.newest_whole_version(str(serving)) == 10


def test_fingerprint_sees_content_and_names(tmp_path):
    a = make_model(tmp_path / "a", b"x")
    b = make_model(tmp_path / "b", b"x")
    c = make_model(tmp_path / "c", b"y")
    assert atomic_pusher.directory_fingerprint(a) == atomic_pusher.directory_fingerprint(b)
    assert atomic_pusher.directory_fingerprint(a) != atomic_pusher.directory_fingerprint(c)
