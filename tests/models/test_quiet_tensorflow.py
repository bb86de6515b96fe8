"""`models.quiet_tensorflow`: TensorFlow's three duplicate CUDA registration lines are left out of
stderr, everything else written during the import is kept, in order. Real processes: the lines
come from C++ writing to file descriptor 2, which only a fresh process shows."""

import os
import subprocess
import sys
import textwrap

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stderr(code: str, tmp_path, extra_path: str = "") -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, REPOSITORY) if p)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stderr.decode("utf-8", "replace")


@pytest.mark.slow
def test_the_real_import_prints_the_cuda_lines_and_ours_does_not(tmp_path):
    plain = _stderr("import tensorflow", tmp_path)
    assert plain.count("Attempting to register factory for plugin") == 3  # what we hide
    quiet = _stderr(
        "from models.quiet_tensorflow import import_tensorflow; import_tensorflow()", tmp_path
    )
    assert "register factory" not in quiet
    assert "non-supported Python version" not in quiet


def test_other_lines_written_during_the_import_are_kept_in_order(tmp_path):
    """A stand-in `tensorflow` package (first on the path) writes the noise and real lines to
    fd 2 from C-level writes and from Python, as the real import does."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            os.write(2, b"E0000 external/local_xla/cuda_fft.cc:479] Unable to register cuFFT "
                        b"factory: Attempting to register factory for plugin cuFFT when one has "
                        b"already been registered\\n")
            os.write(2, b"E0000 some/real/error.cc:1] a real error\\n")
            print("a Python warning", file=sys.stderr)
            os.write(2, b"E0000 cuda_dnn.cc:1] Unable to register cuDNN factory: Attempting to "
                        b"register factory for plugin cuDNN when one has already been registered\\n")
            """
        )
    )
    err = _stderr(
        """
        import sys
        from models.quiet_tensorflow import import_tensorflow
        print("before", file=sys.stderr, flush=True)
        tf = import_tensorflow()
        assert tf is import_tensorflow() is sys.modules["tensorflow"]
        print("after", file=sys.stderr)
        """,
        tmp_path,
        extra_path=str(fake.parent),
    )
    assert err.splitlines() == [
        "before",
        "E0000 some/real/error.cc:1] a real error",
        "a Python warning",
        "after",
    ]


def test_a_failed_import_still_shows_what_it_wrote(tmp_path):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'why it failed\\n')\nraise ImportError('no tensorflow')\n"
    )
    err = _stderr(
        """
        from models.quiet_tensorflow import import_tensorflow
        try:
            import_tensorflow()
        except ImportError as error:
            print("caught", error)
        """,
        tmp_path,
        extra_path=str(fake.parent),
    )
    assert err.splitlines() == ["why it failed"]
