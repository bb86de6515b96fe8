"""`ner-tag`: tag sentences with the pushed model, from the command line.

    ner-tag "Obama visited Paris" "I love New York"          # sentences as arguments
    ner-tag --file sentences.txt --format jsonl -o out.jsonl  # one sentence a line, progress bar
    ner-tag --conll test.conll --format conll                 # tokens of a CoNLL file, as they are
    ner-tag --file big.txt --beam --beam-args "--direct_num_workers=2 \
        --direct_running_mode=multi_processing" -o out.jsonl  # Beam RunInference

The model is the newest numeric version under `--serving-dir` (default
`outputs/serving_model/ner_bilstm_crf`, or `$NER_SERVING_DIR`) unless `--version` names one.
Sentences are tokenised by `models.tokenization` inside the model (split at whitespace). A
`--conll` file is read with the pipeline's own reader (`components.conll_format`: the token in the
first column, TAB- or space-separated as the pipeline reads it) and its tokens are tagged as they
are (`serve_tokens`): a token holding a non-breaking space stays one token.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

from components.conll_format import check_encoding
from models.features import SENTENCES_SIGNATURE, TOKENS_SIGNATURE
from models.quiet_tensorflow import import_tensorflow
from serving import inputs
from serving.formats import FORMATS, format_result
from serving.tagging import TaggedSentence, load_signature, tag_batches, tag_token_batches

__all__ = [
    "DEFAULT_SERVING_DIR",
    "add_model_arguments",
    "main",
    "output_format",
    "temporary_beside",
]

DEFAULT_SERVING_DIR = os.path.join("outputs", "serving_model", "ner_bilstm_crf")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--serving-dir`, `--version` and `--batch-size`: which model, and how many sentences a
    call (`ner-tag` and `ner-eval`)."""
    parser.add_argument(
        "--serving-dir",
        default=os.environ.get("NER_SERVING_DIR", DEFAULT_SERVING_DIR),
        help="Pusher folder of numbered versions, or a SavedModel ($NER_SERVING_DIR)",
    )
    parser.add_argument("--version", help="model version (default: the newest)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per model call")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ner-tag", description="Tag named entities with the pushed BiLSTM-CRF model."
    )
    parser.add_argument("sentences", nargs="*", help="sentences to tag")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", help="text file, one sentence a line")
    source.add_argument("--conll", help="CoNLL file (token in the first column; tags ignored)")
    parser.add_argument(
        "--encoding",
        default="utf-8",
        help="encoding of --file or --conll (default utf-8; e.g. cp1252 for Windows files)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the output file's extension, .jsonl/.json -> jsonl, "
        ".conll/.tsv -> conll; else text)",
    )
    parser.add_argument("-o", "--output", help="output file (default: standard output)")
    add_model_arguments(parser)
    parser.add_argument("--beam", action="store_true", help="tag --file with Beam RunInference")
    parser.add_argument("--beam-args", default="", help="Beam pipeline options (with --beam)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _results(args, signature) -> tuple[Iterable[TaggedSentence], int | None]:
    """The tagged sentences, lazily, and how many there will be (None: unknown)."""
    if args.conll:
        token_lists = (s.tokens for s in inputs.read_conll(args.conll, args.encoding))
        return tag_token_batches(signature, token_lists, args.batch_size), None
    if args.file:
        sentences: Iterable[str] = inputs.read_text(args.file, args.encoding)
        total: int | None = inputs.count_lines(args.file)
    else:
        sentences, total = args.sentences, len(args.sentences)
    return tag_batches(signature, sentences, args.batch_size), total


_FORMAT_BY_EXTENSION = {".jsonl": "jsonl", ".json": "jsonl", ".conll": "conll", ".tsv": "conll"}


def output_format(requested: str | None, output: str | None) -> str:
    """`--format` if given, else the one the output file's extension names, else "text"."""
    if requested:
        return requested
    extension = os.path.splitext(output or "")[1].lower()
    return _FORMAT_BY_EXTENSION.get(extension, "text")


def temporary_beside(path: str) -> str:
    """A hidden name beside `path` to write to and rename to `path` once complete."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{os.getpid()}.partial")


def _show_warnings() -> None:
    """This package's warnings (a model version that failed to load) on stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ner-tag: warning: %(message)s"))
    serving_logger = logging.getLogger("serving")
    serving_logger.addHandler(handler)
    serving_logger.setLevel(logging.WARNING)
    serving_logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (2 for bad arguments or input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.sentences and (args.file or args.conll):
        parser.error("give sentences as arguments or --file/--conll, not both")
    if not (args.sentences or args.file or args.conll):
        parser.error("nothing to tag: give sentences, --file or --conll")
    if args.beam and not args.file:
        parser.error("--beam tags a --file (one sentence a line)")
    args.format = output_format(args.format, args.output)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    # TensorFlow's C++ start-up INFO and WARNING lines are chatter here; its errors still show,
    # less the three CUDA registration lines it prints on every machine.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_tensorflow()

    _show_warnings()
    from serving.model_version import load_newest  # imports TensorFlow: after --help, checks

    try:
        check_encoding(args.encoding)
        name = TOKENS_SIGNATURE if args.conll else SENTENCES_SIGNATURE
        # The newest version that loads: a broken newest version (e.g. a truncated
        # saved_model.pb) is named in a warning and the previous one serves, as in TF Serving.
        model_dir, signature = load_newest(
            args.serving_dir, lambda path: load_signature(path, name), args.version
        )
    except ValueError as error:
        print(f"ner-tag: {error}", file=sys.stderr)
        return 2
    if args.beam:
        if not args.output:
            parser.error("--beam writes to a file: give -o/--output")
        from serving.batch_inference import run_batch_inference

        # Written beside the output and renamed at the end: a failed run leaves the old file.
        beam_output = temporary_beside(args.output)
        try:
            run_batch_inference(
                args.file, beam_output, model_dir, args.format, args.beam_args, args.batch_size
            )
            os.replace(beam_output, args.output)
        finally:
            if os.path.exists(beam_output):
                os.remove(beam_output)
        return 0

    try:
        results, total = _results(args, signature)
        show_progress = (args.file or args.conll) and not args.no_progress
        if show_progress:
            results = tqdm(results, total=total, unit="sentence", file=sys.stderr)
        # Into a temporary file beside the output, renamed once every sentence is written: a
        # failure half-way leaves the previous output as it was, never a partial file.
        partial = temporary_beside(args.output) if args.output else None
        output = open(partial, "w", encoding="utf-8") if partial else sys.stdout
        try:
            for result in results:
                output.write(format_result(result, args.format) + "\n")
            if partial:
                output.close()
                os.replace(partial, args.output)
        finally:
            if partial:
                output.close()
                if os.path.exists(partial):
                    os.remove(partial)
    except (ValueError, OSError) as error:
        print(f"ner-tag: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
