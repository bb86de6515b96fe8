"""The Hugging Face peer of `benchmarks/encoder_peer.py`; runs in `.venv-torch` (transformers 4.57,
PyTorch 2.13 CPU; nothing of ours).

What a user without our pipeline would do: fine-tune the same all-MiniLM-L6-v2 for token
classification with `transformers` (`BertForTokenClassification`: a softmax head on each word's
first sub-word, the other sub-words ignored by the loss), AdamW at 1e-4, batch 16, linear warm-up
over the first 10% of the steps and linear decay, 4 epochs, seeded. A plain PyTorch loop (the
`Trainer` class would add `accelerate`).

It imports only torch, transformers and the standard library (plus `spacy_side.serving_figures`,
standard library only): sentences come in and tags go out as JSON lines, written and scored by
`encoder_peer.py` with the pipeline's own reader and scorer. After every epoch it writes the dev
and test predictions; the caller selects the epoch by dev F1 (one scorer for all systems). Then
it prints one JSON line: training seconds, and the serving figures of the last epoch's model on
the test sentences joined by spaces (`serving_figures`, as for the other systems).

    python benchmarks/hf_side.py MODEL_DIR WORK_DIR SEED [EPOCHS]

`WORK_DIR` holds `train.jsonl`, `eval.jsonl`, `test.jsonl` (`{"tokens": [...], "tags": [...]}`);
it gets `hf_seed<S>_epoch<E>_{eval,test}.jsonl` (`{"tags": [...]}` per sentence).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spacy_side import serving_figures  # noqa: E402

BATCH_SIZE = 16
LEARNING_RATE = 1e-4
WARM_UP = 0.1


def _read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def main(model_dir: str, work: str, seed: str, epochs: str = "4") -> None:
    import torch
    import transformers

    seed_value, num_epochs = int(seed), int(epochs)
    random.seed(seed_value)
    torch.manual_seed(seed_value)
    splits = {
        name: _read(os.path.join(work, f"{name}.jsonl")) for name in ("train", "eval", "test")
    }
    labels = sorted({tag for s in splits["train"] for tag in s["tags"]})
    label_ids = {tag: i for i, tag in enumerate(labels)}
    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    model = transformers.BertForTokenClassification.from_pretrained(
        model_dir, num_labels=len(labels)
    )

    def encode(sentences, with_labels):
        encoded = tokenizer(
            [s["tokens"] for s in sentences],
            is_split_into_words=True,
            truncation=True,
            max_length=512,
            padding=True,
            return_tensors="pt",
        )
        if with_labels:
            rows = []
            for row, sentence in enumerate(sentences):
                previous, row_labels = None, []
                for word in encoded.word_ids(row):
                    first = word is not None and word != previous
                    row_labels.append(label_ids[sentence["tags"][word]] if first else -100)
                    previous = word
                rows.append(row_labels)
            encoded["labels"] = torch.tensor(rows)
        return encoded

    def predict(sentences, batch_size=64):
        model.eval()
        tags = []
        with torch.no_grad():
            for offset in range(0, len(sentences), batch_size):
                batch = sentences[offset : offset + batch_size]
                encoded = encode(batch, with_labels=False)
                best = model(**encoded).logits.argmax(-1)
                for row, sentence in enumerate(batch):
                    row_tags = ["O"] * len(sentence["tokens"])
                    previous = None
                    for position, word in enumerate(encoded.word_ids(row)):
                        if word is not None and word != previous:
                            row_tags[word] = labels[best[row, position]]
                        previous = word
                    tags.append(row_tags)
        return tags

    train = splits["train"]
    steps = num_epochs * ((len(train) + BATCH_SIZE - 1) // BATCH_SIZE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(WARM_UP * steps), steps)
    start = time.perf_counter()
    for epoch in range(1, num_epochs + 1):
        model.train()
        order = list(range(len(train)))
        random.shuffle(order)
        for offset in range(0, len(order), BATCH_SIZE):
            batch = encode([train[i] for i in order[offset : offset + BATCH_SIZE]], True)
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        for split in ("eval", "test"):
            path = os.path.join(work, f"hf_seed{seed_value}_epoch{epoch}_{split}.jsonl")
            with open(path, "w", encoding="utf-8") as out:
                for tags in predict(splits[split]):
                    out.write(json.dumps({"tags": tags}) + "\n")
        print(f"epoch {epoch} done at {time.perf_counter() - start:.0f} s", file=sys.stderr)
    train_seconds = time.perf_counter() - start

    texts = [" ".join(s["tokens"]) for s in splits["test"]]

    def tag_texts(batch):
        encoded = tokenizer(batch, truncation=True, max_length=512, padding=True,
                            return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            return model(**encoded).logits.argmax(-1)

    def tag_all(batch, batch_size):
        for offset in range(0, len(batch), batch_size):
            tag_texts(batch[offset : offset + batch_size])

    model.eval()
    saved = os.path.join(work, f"hf_seed{seed_value}_model")
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    begin = time.perf_counter()
    transformers.BertForTokenClassification.from_pretrained(saved)
    load_seconds = time.perf_counter() - begin
    figures = serving_figures(saved, load_seconds, texts, lambda t: tag_texts([t]), tag_all)
    figures["sentences_per_second"] = {
        str(k): v for k, v in figures["sentences_per_second"].items()
    }
    print(json.dumps({"train_seconds": train_seconds, "epochs": num_epochs, "serving": figures,
                      "transformers_version": transformers.__version__}))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
