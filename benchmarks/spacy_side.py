"""The spaCy half of `benchmarks/spacy_peer.py`; runs in `.venv-spacy` (spaCy 3.8, nothing of ours).

It only imports spaCy and the standard library, so it cannot import the repository's packages: the
sentences come in, and the tags go out, as JSON lines written and read by `spacy_peer.py` with
the pipeline's own CoNLL reader and scorer. Two commands:

    python benchmarks/spacy_side.py docbin SENTENCES.jsonl OUT.spacy
    python benchmarks/spacy_side.py tag MODEL_DIR SENTENCES.jsonl PREDICTIONS.jsonl

`SENTENCES.jsonl`: one `{"tokens": [...], "tags": [...]}` per line (tags in IOB2, e.g.
`B-person`; absent for text to tag). `tag` writes one `{"tags": [...]}` per sentence, tagging the
given tokens (spaCy's tokenizer is not used, so both systems are scored on the same tokens), then
prints one JSON line of serving figures measured on the same sentences joined by spaces, raw text
through `nlp.pipe` and `nlp(text)` with spaCy's own tokenizer: what a user would call.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def _sentences(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _entity_tags(tags: list[str]) -> list[str]:
    """IOB2 tags spaCy accepts: an `I-X` that does not continue an X entity starts one (conlleval)."""
    fixed, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        fixed.append(tag)
        previous = tag
    return fixed


def docbin(sentences_path: str, out_path: str) -> None:
    import spacy
    from spacy.tokens import Doc, DocBin

    vocab = spacy.blank("en").vocab
    docs = DocBin()
    for sentence in _sentences(sentences_path):
        docs.add(Doc(vocab, words=sentence["tokens"], ents=_entity_tags(sentence["tags"])))
    docs.to_disk(out_path)


def _tags(doc) -> list[str]:
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]


def tag(model_dir: str, sentences_path: str, predictions_path: str) -> None:
    import spacy
    from spacy.tokens import Doc

    start = time.perf_counter()
    nlp = spacy.load(model_dir)
    load_seconds = time.perf_counter() - start
    sentences = _sentences(sentences_path)
    docs = (Doc(nlp.vocab, words=s["tokens"]) for s in sentences)
    with open(predictions_path, "w", encoding="utf-8") as out:
        for doc in nlp.pipe(docs, batch_size=64):
            out.write(json.dumps({"tags": _tags(doc)}) + "\n")

    texts = [" ".join(s["tokens"]) for s in sentences]

    def tag_all(batch: list[str], batch_size: int) -> None:
        for _ in nlp.pipe(batch, batch_size=batch_size):
            pass

    figures = serving_figures(model_dir, load_seconds, texts, nlp, tag_all)
    print(json.dumps({**figures, "spacy_version": spacy.__version__}))


BATCH_SIZES = (1, 64, 256)


def serving_figures(
    model_dir: str, load_seconds: float, texts: list[str], tag_one, tag_all
) -> dict:
    """The serving figures of one system, measured the same way for both halves of the benchmark
    (`spacy_peer.our_tag` calls this too: this module imports only the standard library at the top).

    Args:
        tag_one: tags one raw sentence, `tag_one(text)`.
        tag_all: tags a list of raw sentences in batches, `tag_all(texts, batch_size)`.
    """
    for text in texts[:20]:  # warm-up: the first calls trace and allocate
        tag_one(text)
    latencies = []
    for text in texts[:300]:
        begin = time.perf_counter()
        tag_one(text)
        latencies.append(time.perf_counter() - begin)
    throughput = {}
    for batch_size in BATCH_SIZES:
        tag_all(texts[:batch_size], batch_size)  # warm-up at this size (TensorFlow traces it)
        begin = time.perf_counter()
        tag_all(texts, batch_size)
        throughput[batch_size] = len(texts) / (time.perf_counter() - begin)
    size = sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(model_dir)
        for name in names
    )
    return {
        "load_seconds": load_seconds,
        "latency_median_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * sorted(latencies)[int(0.99 * (len(latencies) - 1))],
        "sentences_per_second": throughput,
        "model_mb": size / 1e6,
    }


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"docbin": docbin, "tag": tag}[command](*arguments)
