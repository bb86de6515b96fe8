"""Where a pushed model's bytes go: every variable of the SavedModel, and the files beside it.

    .venv/bin/python -m benchmarks.model_footprint [--serving-dir outputs/serving_model/ner_bilstm_crf]

Reads the newest version's checkpoint (`variables/`) with `tf.train.list_variables`, groups the
variables by layer and prints each one's shape and bytes, then the sizes of the version's files
(graph, variables, assets). The variables' bytes add up to the variables file's size minus the
checkpoint's own index and object graph.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np
import tensorflow as tf

from serving.cli import DEFAULT_SERVING_DIR
from serving.model_version import resolve_model_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serving-dir", default=DEFAULT_SERVING_DIR)
    args = parser.parse_args(argv)
    model_dir = resolve_model_dir(args.serving_dir)
    checkpoint = os.path.join(model_dir, "variables", "variables")
    reader = tf.train.load_checkpoint(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    rows = []
    for name, shape in tf.train.list_variables(checkpoint):
        if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        size = int(np.prod(shape)) * dtypes[name].size if dtypes[name] != tf.string else 0
        rows.append((name, shape, dtypes[name].name, size))
    by_layer: dict[str, int] = defaultdict(int)
    for name, _, _, size in rows:
        by_layer[name.split("/")[0] if "/" in name else name] += size
    print(f"{model_dir}\n")
    print("| variable | shape | dtype | MB |\n|---|---|---|---:|")
    for name, shape, dtype, size in sorted(rows, key=lambda row: -row[3]):
        if size >= 100_000:
            print(f"| {name} | {shape} | {dtype} | {size / 1e6:.2f} |")
    small = [row for row in rows if row[3] < 100_000]
    print(f"| {len(small)} others (each < 0.1 MB) | | | {sum(r[3] for r in small) / 1e6:.2f} |")
    total = sum(row[3] for row in rows)
    print(f"| **all {len(rows)} variables** | | | **{total / 1e6:.2f}** |\n")
    print("| file or folder | MB |\n|---|---:|")
    for entry in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, entry)
        size = (
            sum(
                os.path.getsize(os.path.join(root, name))
                for root, _, names in os.walk(path)
                for name in names
            )
            if os.path.isdir(path)
            else os.path.getsize(path)
        )
        print(f"| {entry} | {size / 1e6:.2f} |")


if __name__ == "__main__":
    main()
