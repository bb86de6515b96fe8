"""The tag set from the data: read the training files before anything runs, check the eval files.

Like spaCy, Hugging Face's `run_ner.py` and Flair, the local runner takes the tag set from the
training data unless `--schema FILE` names a curated schema: your own tags need no schema edit.
`check_data(config)` reads the split files the run will ingest with the pipeline's own CoNLL reader
(`components.conll_format`: the same columns, scheme, `--on-bad-lines` and gzip handling as
ConllExampleGen), in the first seconds of the run, before TensorFlow and TFX are loaded:

- a file that cannot be read, a line that breaks the format or the tag scheme: the run stops
  naming file and line (with `--on-bad-lines skip`, such sentences are left out here as there);
- learned (no `--schema`): the tag set is "O" plus every tag of the scheme for each entity type
  the training files hold (`linear_crf.tag_scheme.tags_for_types`: with IOB2, a type seen only
  as B- still gets its I- tag); a tag of the eval files outside it stops the run, naming the tag,
  file and line;
- curated (`--schema FILE`): a tag of either split outside the schema's domain stops the run the
  same way (ExampleValidator and `components.validation_gate` check it again inside the run).

`learned_config(config, tags)` then writes the curated schema template (`--schema`'s default,
`pipeline/schema/schema.pbtxt`) with those tags as its `tags` domain to
`<metadata dir>/schemas/schema-<digest>.pbtxt`, named by its content so that ImportSchemaGen's
cache key changes with the tag set, and returns the config that imports it and trains with it.

With `{SPAN}` in the patterns, the eval files are those of the newest span (ExampleGen ingests
it) and the training files those of the newest `--span-window` spans (Transform reads them):
those are checked as the run will read them. The tag set is learned from the training files of
every span on disk, so that a type does not drop out of the tag set (and the warm start) because
one new span happens to lack it; spans older than the window only add their types, read
leniently (a bad old span, which the run never reads again, does not stop it). On Kubeflow
the data is not read at compile time: the tag set is the schema's there.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os

from google.protobuf import text_format
from linear_crf.tag_scheme import split_tag, tags_for_types
from tensorflow_metadata.proto.v0 import schema_pb2

from components.conll_format import ReadStats, read_conll
from components.schema_tags import TAGS_FEATURE, known_tags
from pipeline.scheduler import spans_matching

__all__ = [
    "check_data",
    "DataTags",
    "learned_config",
    "prepared_config",
    "split_files",
    "write_schema",
]

SPAN_SPEC = "{SPAN}"


@dataclasses.dataclass(frozen=True)
class DataTags:
    """What the first pass over the data found.

    Attributes:
        tags: the tag set the run trains with (learned, or the curated schema's).
        learned: whether `tags` came from the training files.
        train_files, eval_files: the files read.
        sentences: sentences read per split (without those skipped).
    """

    tags: tuple[str, ...]
    learned: bool
    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    sentences: dict[str, int]


def split_files(data_dir: str, pattern: str, spans: int | None = 1) -> list[str]:
    """The files a split pattern names under `data_dir`; with `{SPAN}`, those of the newest
    `spans` spans that have files (None: of every span).

    Raises:
        ValueError: naming the pattern and folder, when no file matches.
    """
    if SPAN_SPEC in pattern:
        chosen = sorted(spans_matching(data_dir, pattern))
        chosen = chosen if spans is None else chosen[-spans:]
        files = [
            path
            for span in chosen
            for path in sorted(
                glob.glob(os.path.join(data_dir, pattern.replace(SPAN_SPEC, str(span))))
            )
        ]
    else:
        files = sorted(glob.glob(os.path.join(data_dir, pattern)))
    files = [path for path in files if os.path.isfile(path)]
    if not files:
        raise ValueError(
            f"Invalid value for the pattern {pattern!r}. Expected CoNLL files matching it under "
            f"--data-dir. Received: no file in {data_dir}"
        )
    return files


def _add_types(types: set[str], path: str, scheme: str, on_error: str, encoding: str) -> int:
    """Adds the entity types of a file's tags to `types`; returns the sentences read."""
    count = 0
    for sentence in read_conll(
        path, scheme=scheme, on_error=on_error, stats=ReadStats(), encoding=encoding
    ):
        count += 1
        types.update(t for _, t in (split_tag(tag, scheme) for tag in sentence.tags) if t)
    return count


def _first_outside(files, tags, scheme, on_error, encoding) -> tuple[int, str | None]:
    """(sentences read, the first `path:line: tag` outside `tags`, or None)."""
    allowed = set(tags)
    count = 0
    for path in files:
        for sentence in read_conll(
            path, scheme=scheme, on_error=on_error, stats=ReadStats(), encoding=encoding
        ):
            count += 1
            for offset, tag in enumerate(sentence.tags):
                if tag not in allowed:
                    return count, f"{path}:{sentence.line + offset}: tag {tag!r}"
    return count, None


def check_data(config) -> DataTags:
    """Reads the run's training and eval files once (see the module doc) and returns the tag set.

    Args:
        config: the run's `pipeline.config.PipelineConfig`.
    Raises:
        ValueError (`ConllFormatError` for a bad line): naming the file and line, or the pattern.
    """
    scheme = config.tagger.model.tag_scheme
    on_error = config.on_bad_lines
    encoding = config.encoding
    window = max(1, config.span_window)
    train_files = split_files(config.data_dir, config.train_pattern, window)
    eval_files = split_files(config.data_dir, config.eval_pattern)
    if config.learn_tags:
        types: set[str] = set()
        train_count = 0
        for path in train_files:
            train_count += _add_types(types, path, scheme, on_error, encoding)
        # Older spans, which this run does not train on, only keep their types in the tag set:
        # read leniently, so that a bad old span does not stop every later run.
        for path in sorted(
            set(split_files(config.data_dir, config.train_pattern, None)) - set(train_files)
        ):
            try:
                _add_types(types, path, scheme, "skip", encoding)
            except ValueError:  # ConllFormatError: no readable sentence at all
                continue
        tags = tags_for_types(types, scheme)
        eval_count, outside = _first_outside(eval_files, tags, scheme, on_error, encoding)
        if outside:
            raise ValueError(
                f"{outside} does not occur in the training data (entity types learned from "
                f"{len(train_files)} training file(s): {', '.join(sorted(types)) or 'none'}). "
                "Add sentences with it to the training split, fix the tag, or pin the tag set "
                "with --schema FILE."
            )
    else:
        tags = tuple(config.tagger.preprocessing.tag_names)
        train_count, outside = _first_outside(train_files, tags, scheme, on_error, encoding)
        if outside is None:
            eval_count, outside = _first_outside(eval_files, tags, scheme, on_error, encoding)
        if outside:
            raise ValueError(
                f"{outside} is not in the tag set of the schema {config.schema_path} "
                f"({', '.join(tags)}). Add it to the schema's `tags` domain, or leave --schema "
                "out to take the tag set from the training data."
            )
    return DataTags(
        tags=tags,
        learned=config.learn_tags,
        train_files=tuple(train_files),
        eval_files=tuple(eval_files),
        sentences={"train": train_count, "eval": eval_count},
    )


def write_schema(template_path: str, tags: tuple[str, ...], directory: str) -> str:
    """The template schema with `tags` as the `tags` feature's domain, written once under
    `directory` as `schema-<sha256 prefix>.pbtxt` (written to a temporary name, then renamed);
    returns its path."""
    schema = schema_pb2.Schema()
    with open(template_path, encoding="utf-8") as file:
        text_format.Parse(file.read(), schema)
    known_tags(schema)  # the template must have the feature and its domain
    for feature in schema.feature:
        if feature.name != TAGS_FEATURE:
            continue
        if feature.HasField("string_domain"):
            del feature.string_domain.value[:]
            feature.string_domain.value.extend(tags)
        for domain in schema.string_domain:
            if domain.name == feature.domain:
                del domain.value[:]
                domain.value.extend(tags)
    text = (
        "# Written by pipeline/learned_tags.py: the schema template with the tag set of the\n"
        "# training data as the `tags` domain.\n" + text_format.MessageToString(schema)
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = os.path.join(directory, f"schema-{digest}.pbtxt")
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    return path


def learned_config(config, tags: tuple[str, ...]):
    """`config` training with `tags`, and importing a schema whose tag domain is `tags`."""
    directory = os.path.join(os.path.dirname(config.metadata_path), "schemas")
    schema_path = write_schema(config.schema_path, tags, directory)
    tagger = config.tagger
    preprocessing = dataclasses.replace(tagger.preprocessing, tag_names=tuple(tags))
    return dataclasses.replace(
        config,
        schema_path=schema_path,
        tagger=dataclasses.replace(tagger, preprocessing=preprocessing),
    )


def prepared_config(config):
    """What the local runner runs: `check_data(config)`, then, without a curated schema, the
    config with the learned tag set. Returns (config, the `DataTags` found)."""
    data = check_data(config)
    return (learned_config(config, data.tags) if data.learned else config), data
