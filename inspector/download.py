"""What `from_pretrained` would download from a repo, what else the repo ships, and the `hf download`
command that fetches only what is needed. Pure: works on a file list (path -> size), no network.

transformers 5 loads, in order of preference, `model.safetensors.index.json` + its shards,
`model.safetensors`, `pytorch_model.bin.index.json` + its shards, `pytorch_model.bin`; the model's
config, generation config and the tokenizer's files come with it. Every other weight file in the repo
(a second format, the original consolidated checkpoint, GGUF/ONNX exports) is never read by
`from_pretrained` but an unfiltered `hf download` fetches it all.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .results import DownloadPlan, FileSize, UnusedWeights, frozen

SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"

# Files AutoConfig, AutoModel*, GenerationConfig and AutoTokenizer/AutoProcessor read when present.
COMPANION_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "merges.txt",
        "vocab.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "chat_template.jinja",
        "chat_template.json",
        "preprocessor_config.json",
        "processor_config.json",
    }
)

# Weight formats from_pretrained does not read, by how people call them. Order matters: first match wins.
_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("original checkpoint", re.compile(r"(^|/)(consolidated[^/]*\.(safetensors|pth|pt|bin)|original/.+)$")),
    ("GGUF", re.compile(r"\.gguf$")),
    ("ONNX", re.compile(r"(\.onnx|\.onnx_data|\.onnx\.data)$|(^|/)onnx/")),
    ("OpenVINO", re.compile(r"(^|/)openvino[^/]*\.(xml|bin)$|(^|/)openvino/")),
    ("Core ML", re.compile(r"\.mlpackage/|\.mlmodel$")),
    ("TensorFlow", re.compile(r"(^|/)tf_model[^/]*\.h5$|\.tflite$")),
    ("Flax", re.compile(r"(^|/)flax_model[^/]*\.msgpack$")),
    ("Rust", re.compile(r"(^|/)rust_model\.ot$")),
    ("PyTorch pickle", re.compile(r"(^|/)pytorch_model[^/]*\.bin(\.index\.json)?$|\.(pt|pth|ckpt)$")),
    ("safetensors", re.compile(r"\.safetensors$|(^|/)model\.safetensors\.index\.json$")),
)
# Glob patterns tried, in order, to exclude an unused file from `hf download` (exact path as a last resort).
SHARD_PATTERN = re.compile(r"^(?P<stem>.+)-\d{5}-of-\d{5}\.(?P<ext>safetensors|bin)$")


def plan_download(
    files: Mapping[str, int | None],
    safetensors_index: Mapping[str, Any] | None = None,
    code_files: Iterable[str] = (),
) -> DownloadPlan:
    """The files from_pretrained fetches from a repo with `files`, and the weight files it leaves alone.

    `safetensors_index` is the parsed index when the repo has one (its weight_map names the shards);
    `code_files` are repo .py files the model needs when remote code is trusted.
    """
    weights, missing, fmt = _weights(files, safetensors_index)
    weight_set = {f.path for f in weights}
    companions = [_size(files, p) for p in sorted(files) if p in COMPANION_FILES or p in set(code_files)]
    needed = weights + companions
    needed_set = weight_set | {f.path for f in companions}
    by_format: dict[str, list[FileSize]] = {}
    for path in sorted(files):
        if path in needed_set:
            continue
        kind = weight_format(path)
        if kind is not None:
            by_format.setdefault(kind, []).append(_size(files, path))
    unused = [UnusedWeights(k, v, sum(f.bytes or 0 for f in v)) for k, v in by_format.items()]
    return DownloadPlan(
        weights_format=fmt,
        weights=weights,
        companions=companions,
        bytes=sum(f.bytes or 0 for f in needed),
        unknown_sizes=sum(1 for f in needed if f.bytes is None),
        missing_shards=missing,
        unused=unused,
        unused_bytes=sum(u.bytes for u in unused),
        repo_bytes=sum(v or 0 for v in files.values()),
        include=include_patterns(needed_set, files),
    )


def weight_format(path: str) -> str | None:
    """The weight format a repo file belongs to, or None for configs, tokenizers, docs and code."""
    for kind, pattern in _FORMATS:
        if pattern.search(path):
            return kind
    return None


@frozen
class WeightFiles:
    """The weight files from_pretrained reads from a file list: the one answer for every command."""

    format: str  # "safetensors" | "pytorch" | "none"
    index: str | None  # the index file, when the weights are sharded behind one
    shards: tuple[str, ...]  # weight files present that it reads
    missing: tuple[str, ...]  # named by the index, absent from the repo/folder


def weight_files(files: Iterable[str], index: Mapping[str, Any] | None = None) -> WeightFiles:
    """What transformers 5 reads, in its order of preference: the safetensors index and its shards,
    `model.safetensors`, the pickle index and its shards, `pytorch_model.bin`; else nothing.

    `index` is the parsed safetensors index (its weight_map names the shards); without it, the shard files
    present are taken. Shards with no index file are not read: from_pretrained looks for the index or
    `model.safetensors` and fails without them.
    """
    names = set(files)
    if SAFETENSORS_INDEX in names or index is not None:
        named = sorted(set(index.get("weight_map", {}).values())) if index else _shards(names, "safetensors")
        present = tuple(p for p in named if p in names)
        return WeightFiles("safetensors", SAFETENSORS_INDEX, present, tuple(p for p in named if p not in names))
    if "model.safetensors" in names:
        return WeightFiles("safetensors", None, ("model.safetensors",), ())
    if BIN_INDEX in names:
        return WeightFiles("pytorch", BIN_INDEX, tuple(_shards(names, "bin")), ())
    if "pytorch_model.bin" in names:
        return WeightFiles("pytorch", None, ("pytorch_model.bin",), ())
    return WeightFiles("none", None, (), ())


def _weights(files: Mapping[str, int | None], index: Mapping[str, Any] | None) -> tuple[list[FileSize], list[str], str]:
    chosen = weight_files(files, index)
    listed = [chosen.index] if chosen.index is not None else []
    return [_size(files, p) for p in [*listed, *chosen.shards]], list(chosen.missing), chosen.format


def _shards(files: Iterable[str], ext: str) -> list[str]:
    stem = "model" if ext == "safetensors" else "pytorch_model"
    return sorted(
        p for p in files if (m := SHARD_PATTERN.match(p)) and m["stem"] == stem and m["ext"] == ext and "/" not in p
    )


def _size(files: Mapping[str, int | None], path: str) -> FileSize:
    return FileSize(path, files.get(path))


def include_patterns(needed: set[str], files: Iterable[str]) -> list[str]:
    """Glob patterns for `hf download --include` that match exactly `needed` among `files`.

    Shards collapse into one pattern (`model-*.safetensors`) when it matches nothing else; other files
    are named exactly. huggingface_hub matches with fnmatch, where `*` also crosses `/`.
    """
    everything = list(files)
    patterns: list[str] = []
    covered: set[str] = set()
    shards = sorted(p for p in needed if SHARD_PATTERN.match(p))
    if shards:
        m = SHARD_PATTERN.match(shards[0])
        assert m is not None
        glob = f"{m['stem']}-*.{m['ext']}"
        if {p for p in everything if fnmatch.fnmatch(p, glob)} == set(shards):
            patterns.append(glob)
            covered.update(shards)
    patterns.extend(sorted(needed - covered))
    return patterns


def download_command(repo_id: str, revision: str | None, include: Iterable[str]) -> str:
    """The `hf download` command line (huggingface_hub's CLI) that fetches only the included files."""
    parts = ["hf", "download", repo_id]
    if revision:
        parts += ["--revision", revision]
    for pattern in include:
        parts += ["--include", pattern]
    import shlex  # `check` only

    return shlex.join(parts)
