"""TensorFlow Addons CRF speed, the reference of benchmarks/crf_speed.py.

Runs in the side environment `.venv-tfa` (Python 3.11, TF 2.15.1, tensorflow-addons 0.23.0; created by
`make .venv-tfa/.installed`), from the repository root:

    .venv-tfa/bin/python -m benchmarks.reference_tfa [--inputs inputs.npz] [--threads 2] [--quick]

Times `tfa.text.crf_log_likelihood` (mean negative log-likelihood and its gradient with respect to the
emissions and the transition matrix) and `tfa.text.crf_decode`, each in `tf.function` graph mode and
with `jit_compile=True` (XLA); a mode that fails (XLA loss+gradient is known to) is reported with its
error instead of a time. Progress goes to stderr; the last stdout line is one JSON object (the format
of `crf_speed.benchmark_ours`).
"""

from __future__ import annotations

import json
import platform
import warnings
from typing import Any

import numpy as np

from benchmarks.crf_speed import (
    FULL_TIMING,
    QUICK_TIMING,
    config_key,
    measure,
    reference_argument_parser,
    reference_inputs,
)


def main() -> None:
    arguments = reference_argument_parser(__doc__.splitlines()[0]).parse_args()
    timing = QUICK_TIMING if arguments.quick else FULL_TIMING
    inputs = reference_inputs(arguments.inputs)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(arguments.threads)
    tf.config.threading.set_inter_op_parallelism_threads(arguments.threads)
    with warnings.catch_warnings():
        # TFA 0.23 warns at import that it is end-of-life; the benchmark knows.
        warnings.simplefilter("ignore")
        import tensorflow_addons as tfa

    def loss_and_gradient(emissions, tag_ids, lengths, transitions):
        with tf.GradientTape() as tape:
            tape.watch([emissions, transitions])
            log_likelihood, _ = tfa.text.crf_log_likelihood(
                emissions, tag_ids, lengths, transitions
            )  # (batch_size,)
            loss = -tf.reduce_mean(log_likelihood)
        emissions_gradient, transitions_gradient = tape.gradient(loss, [emissions, transitions])
        return loss, emissions_gradient, transitions_gradient

    def decode(emissions, transitions, lengths):
        return tfa.text.crf_decode(emissions, transitions, lengths)

    def per_sequence_log_likelihood(emissions, tag_ids, lengths, transitions):
        return tfa.text.crf_log_likelihood(emissions, tag_ids, lengths, transitions)[0]

    results: list[dict[str, Any]] = []
    check: dict[str, Any] = {}
    for sizes, arrays in inputs.items():
        emissions = tf.constant(arrays["emissions"])  # (batch_size, sequence_length, num_tags)
        tag_ids = tf.constant(arrays["tag_ids"])  # (batch_size, sequence_length)
        lengths = tf.constant(arrays["lengths"])  # (batch_size,)
        transitions = tf.constant(arrays["transitions"])  # (num_tags, num_tags)
        num_tokens = int(arrays["lengths"].sum())
        for mode, jit_compile in (("graph", False), ("xla", True)):
            loss_function = tf.function(loss_and_gradient, jit_compile=jit_compile)
            decode_function = tf.function(decode, jit_compile=jit_compile)
            loss_arguments = (emissions, tag_ids, lengths, transitions)
            results.append(
                measure(
                    sizes, "loss_grad", mode, num_tokens, timing, loss_function, *loss_arguments
                )
            )
            decode_arguments = (emissions, transitions, lengths)
            results.append(
                measure(
                    sizes, "decode", mode, num_tokens, timing, decode_function, *decode_arguments
                )
            )
        log_likelihood = tf.function(per_sequence_log_likelihood)(
            emissions, tag_ids, lengths, transitions
        )
        decoded_tag_ids, _ = tf.function(decode)(emissions, transitions, lengths)
        check[config_key(*sizes)] = {
            "log_likelihood": np.asarray(log_likelihood, np.float64).tolist(),
            "tag_ids": np.asarray(decoded_tag_ids).tolist(),
        }
    print(
        json.dumps(
            {
                "implementation": "tfa",
                "versions": {
                    "tensorflow": tf.__version__,
                    "tensorflow-addons": tfa.__version__,
                    "python": platform.python_version(),
                },
                "threads": {"intra_op": arguments.threads, "inter_op": arguments.threads},
                "results": results,
                "check": check,
            }
        )
    )


if __name__ == "__main__":
    main()
