"""pytorch-crf speed, a reference of benchmarks/crf_speed.py.

Runs in the side environment `.venv-torch` (Python 3.11, torch CPU, pytorch-crf 0.7.2; created by
`make .venv-torch/.installed`), from the repository root:

    .venv-torch/bin/python -m benchmarks.reference_pytorch_crf [--inputs inputs.npz] [--threads 2] [--quick]

Times `torchcrf.CRF.forward` (mean negative log-likelihood, then `torch.autograd.grad` with respect to
the emissions and the transition matrix) and `torchcrf.CRF.decode` (under `torch.no_grad()`; it
returns Python lists, which is part of its cost), eager mode. Progress goes to stderr; the last stdout
line is one JSON object (the format of `crf_speed.benchmark_ours`).
"""

from __future__ import annotations

import json
import platform
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


def loss_and_gradient(crf, emissions, tag_ids, mask):
    """Mean negative log-likelihood; gradient with respect to the emissions and the transitions."""
    import torch

    loss = -crf(emissions, tag_ids, mask, reduction="mean")
    return torch.autograd.grad(loss, [emissions, crf.transitions])


def decode(crf, emissions, tag_ids, mask):
    """Viterbi paths, lists of tag ids (`tag_ids` unused: same arguments as `loss_and_gradient`)."""
    import torch

    with torch.no_grad():
        return crf.decode(emissions, mask)


def main() -> None:
    arguments = reference_argument_parser(__doc__.splitlines()[0]).parse_args()
    timing = QUICK_TIMING if arguments.quick else FULL_TIMING
    inputs = reference_inputs(arguments.inputs)

    import torch
    import torchcrf

    torch.set_num_threads(arguments.threads)
    torch.set_num_interop_threads(arguments.threads)

    results: list[dict[str, Any]] = []
    check: dict[str, Any] = {}
    for sizes, arrays in inputs.items():
        batch_size, sequence_length, num_tags = sizes
        crf = torchcrf.CRF(num_tags, batch_first=True)
        with torch.no_grad():
            crf.transitions.copy_(
                torch.from_numpy(arrays["transitions"])
            )  # (num_tags, num_tags) [from, to]
            crf.start_transitions.copy_(
                torch.from_numpy(arrays["start_transitions"])
            )  # (num_tags,)
            crf.end_transitions.copy_(torch.from_numpy(arrays["end_transitions"]))  # (num_tags,)
        emissions = torch.from_numpy(arrays["emissions"]).requires_grad_(
            True
        )  # (batch_size, sequence_length, num_tags)
        tag_ids = torch.from_numpy(arrays["tag_ids"]).long()  # (batch_size, sequence_length)
        mask = torch.from_numpy(arrays["mask"])  # bool (batch_size, sequence_length)
        num_tokens = int(arrays["lengths"].sum())

        arguments = (crf, emissions, tag_ids, mask)
        results.append(
            measure(sizes, "loss_grad", "eager", num_tokens, timing, loss_and_gradient, *arguments)
        )
        results.append(measure(sizes, "decode", "eager", num_tokens, timing, decode, *arguments))
        with torch.no_grad():
            log_likelihood = crf(emissions, tag_ids, mask, reduction="none")  # (batch_size,)
            paths = crf.decode(emissions, mask)
        decoded_tag_ids = np.zeros((batch_size, sequence_length), np.int64)
        for row, path in enumerate(paths):
            decoded_tag_ids[row, : len(path)] = path
        check[config_key(*sizes)] = {
            "log_likelihood": log_likelihood.double().tolist(),
            "tag_ids": decoded_tag_ids.tolist(),
        }
    print(
        json.dumps(
            {
                "implementation": "pytorch_crf",
                "versions": {
                    "torch": torch.__version__,
                    "pytorch-crf": torchcrf.__version__,
                    "python": platform.python_version(),
                },
                "threads": {
                    "intra_op": torch.get_num_threads(),
                    "inter_op": torch.get_num_interop_threads(),
                },
                "results": results,
                "check": check,
            }
        )
    )


if __name__ == "__main__":
    main()
