"""Importing TensorFlow without its start-up noise on a machine without a GPU.

The `tensorflow` 2.16 wheel registers its CUDA plugins twice when it is imported and logs three
error-level lines from C++ on every machine, GPU or not (TensorFlow issue #62075):

    E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] Unable to register cuFFT
    factory: Attempting to register factory for plugin cuFFT when one has already been registered

(and the same for cuDNN and cuBLAS). They are not errors of ours or the user's, and they are the
first thing every command printed. `TF_CPP_MIN_LOG_LEVEL=3` hides them, but it hides every real
C++ error too. `import_tensorflow` instead captures file descriptor 2 while TensorFlow is imported,
drops exactly those lines (and the Google client library's yearly notice that Python 3.10 is past
its end of life: TFX 1.16 needs 3.10, README says so), and writes everything else back to stderr.

The entry points call it first, before anything that imports TensorFlow (`ner-tag`, `ner-eval`,
the local runner, the scheduler's runs); a library user who imports TensorFlow themselves sees
TensorFlow as it is.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from types import ModuleType

__all__ = ["NOISE", "import_tensorflow", "is_noise"]

NOISE = re.compile(
    rb"Unable to register cu(?:DNN|FFT|BLAS) factory: Attempting to register factory for "
    rb"plugin cu(?:DNN|FFT|BLAS) when one has already been registered"
)
"""The duplicate-registration lines, matched whatever the timestamp and source line prefix."""

_PYTHON_NOTICE = "You are using a non-supported Python version"


def is_noise(line: bytes) -> bool:
    """True for a line `import_tensorflow` drops."""
    return NOISE.search(line) is not None


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, with the duplicate CUDA registration lines left out of stderr.

    Everything else TensorFlow (or anything it imports) writes to stderr meanwhile is written
    back, in order, once the import ends, also when it fails. A second call costs nothing.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    warnings.filterwarnings("ignore", message=_PYTHON_NOTICE, category=FutureWarning)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                import tensorflow
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                capture.seek(0)
                kept = [line for line in capture.read().splitlines(True) if not is_noise(line)]
                if kept:
                    os.write(2, b"".join(kept))
    finally:
        os.close(saved)
    return tensorflow
