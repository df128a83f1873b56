"""hfsize's on-disk caches; each is an optimisation, and any failure to read or write one is ignored.

- Architectures, so a repeated run (or a model whose config was seen) needs no torch: keyed by the config's
  content (less names, versions, token ids and dtype, which build nothing: NOT_ARCHITECTURE), the installed transformers
  version and hfsize's own version; only natively built
  architectures are cached (remote code can change behind the same config).
- Hub metadata at a commit (config, index, file list, safetensors headers): what a commit holds never
  changes, so a repeated run needs only the model_info request that resolves the commit, and with
  HF_HUB_OFFLINE=1 none at all. `refs` remembers which commit a revision last resolved to, and the file
  listing seen then. Tokens are never stored.

Location: HFSIZE_CACHE, else $XDG_CACHE_HOME/hfsize, else ~/.cache/hfsize. HFSIZE_NO_CACHE=1 turns both off.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import BuiltArchitecture, KvLayer, Listing, RepoFiles, TensorEntry

FORMAT = 4  # bump when BuiltArchitecture changes shape (3: KvLayer kinds and constant state; 4: LoRA targets)


def cache_dir() -> Path:
    explicit = os.environ.get("HFSIZE_CACHE")
    try:
        if explicit:
            return Path(explicit).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # `~user` of a user this system does not know, or no home folder at all
        what = f"HFSIZE_CACHE={explicit}" if explicit else "the home folder (for ~/.cache/hfsize)"
        raise UsageError(
            f"hfsize's cache folder cannot be found: {what} names no folder on this system",
            "Set HFSIZE_CACHE to a folder, or HFSIZE_NO_CACHE=1 to run without the cache.",
        ) from None
    return Path(base) / "hfsize"


@functools.cache  # read once per process: key() runs for every model of a run
def _version(package: str) -> str:
    from importlib import metadata  # ~20 ms of imports, only when a key is made

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


# Config keys that name or describe a checkpoint without changing the architecture built from it: a finetune
# that differs from its base only in these (Llama-2-13b-chat after Llama-2-13b, say) reuses the base's entry.
# The dtype too: the empty-weight build ignores it (the same BuiltArchitecture for every fixture config in fp32
# and bf16), and the memory stage reads the load dtype from the config of each report, never from the cache.
NOT_ARCHITECTURE = frozenset(
    {
        "_name_or_path",
        "_commit_hash",
        "transformers_version",
        "use_cache",
        "bos_token_id",
        "eos_token_id",
        "torch_dtype",
        "dtype",
    }
)


def key(config: dict[str, Any]) -> str:
    """Computed before the build: the cache entry of this config (less the keys that build nothing)."""
    shape = {k: v for k, v in config.items() if k not in NOT_ARCHITECTURE}
    material = json.dumps(
        {"config": shape, "transformers": _version("transformers"), "hfsize": _version("hfsize"), "format": FORMAT},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def has(key: str) -> bool:
    """Whether an architecture is cached under `key` (without reading it)."""
    return not os.environ.get("HFSIZE_NO_CACHE") and (cache_dir() / "architectures" / f"{key}.json").is_file()


def load(key: str) -> BuiltArchitecture | None:
    if os.environ.get("HFSIZE_NO_CACHE"):
        return None
    try:
        raw = json.loads((cache_dir() / "architectures" / f"{key}.json").read_text())
        return BuiltArchitecture(
            **{
                **raw,
                "parameters": {k: tuple(v) for k, v in raw["parameters"].items()},
                "buffers": {k: tuple(v) for k, v in raw["buffers"].items()},
                "checkpoint_tensors": {k: tuple(v) for k, v in raw["checkpoint_tensors"].items()},
                "keep_fp32": frozenset(raw["keep_fp32"]),
                "keep_fp32_strict": frozenset(raw["keep_fp32_strict"]),
                "kv_layers": tuple(KvLayer(**layer) for layer in raw["kv_layers"]),
            }
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store(key: str, built: BuiltArchitecture) -> None:
    if os.environ.get("HFSIZE_NO_CACHE") or built.how != "native":
        return
    data = {f.name: getattr(built, f.name) for f in dataclasses.fields(built)}  # asdict deep-copies: slow
    data["keep_fp32"], data["keep_fp32_strict"] = sorted(built.keep_fp32), sorted(built.keep_fp32_strict)
    data["kv_layers"] = [dataclasses.asdict(layer) for layer in built.kv_layers]
    _write(cache_dir() / "architectures" / f"{key}.json", data)


def _write(path: Path, data: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(path)  # atomic: concurrent runs never see half a file
    except OSError:
        pass


def _read(folder: str, name: str) -> Any:
    """The JSON of cache_dir()/folder/name; None when absent, unreadable or the cache is off (then the folder
    is not even looked for: HFSIZE_NO_CACHE=1 works where no cache folder can be found)."""
    if os.environ.get("HFSIZE_NO_CACHE"):
        return None
    try:
        return json.loads((cache_dir() / folder / name).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- Hub metadata


def _hub_key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def store_listing(endpoint: str, listing: Listing) -> None:
    """Remember the commit a revision resolved to, with the file listing seen then."""
    if os.environ.get("HFSIZE_NO_CACHE") or listing.commit is None:
        return
    path = cache_dir() / "refs" / f"{_hub_key(endpoint, listing.model, listing.revision or 'main')}.json"
    _write(path, {**dataclasses.asdict(listing), "format": FORMAT})


def load_listing(endpoint: str, repo_id: str, revision: str | None) -> Listing | None:
    raw = _read("refs", f"{_hub_key(endpoint, repo_id, revision or 'main')}.json")
    try:
        if raw.pop("format") != FORMAT:
            return None
        return Listing(**raw)
    except (AttributeError, KeyError, TypeError):
        return None


def store_repo(endpoint: str, repo: RepoFiles) -> None:
    """Hub metadata at its commit (never for a local folder: its files can change under the same name)."""
    if os.environ.get("HFSIZE_NO_CACHE") or repo.location != "hub" or repo.commit is None:
        return
    # shallow: dataclasses.asdict would deep-copy every TensorEntry first (seconds for 100k+ tensors)
    data = {f.name: getattr(repo, f.name) for f in dataclasses.fields(repo)}
    data["headers"] = {
        file: {name: [e.dtype, list(e.shape), e.nbytes] for name, e in tensors.items()}
        for file, tensors in repo.headers.items()
    }
    _write(cache_dir() / "commits" / f"{_hub_key(endpoint, repo.model, repo.commit)}.json", {**data, "format": FORMAT})


def load_repo(endpoint: str, listing: Listing) -> RepoFiles | None:
    """The metadata stored for the listing's commit, with the listing's (fresher) gating and card data."""
    if listing.commit is None:
        return None
    raw = _read("commits", f"{_hub_key(endpoint, listing.model, listing.commit)}.json")
    try:
        if raw.pop("format") != FORMAT:
            return None
        headers = {
            file: {name: TensorEntry(dtype, tuple(shape), nbytes) for name, (dtype, shape, nbytes) in tensors.items()}
            for file, tensors in raw.pop("headers").items()
        }
        return RepoFiles(
            **{
                **raw,
                "headers": headers,
                "missing_shards": tuple(raw["missing_shards"]),
                "revision": listing.revision,
                "gated": listing.gated,
                "card_data": listing.card_data,
            }
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------- GGUF headers

# Parsed headers kept (one small JSON each: the tokenizer's long arrays are already only their type and length);
# past this many the least recently written go, so a scan of many GGUF repos cannot grow the cache without end.
MAX_GGUF_HEADERS = 512


def _gguf_path(endpoint: str, repo_id: str, commit: str, filename: str) -> Path:
    return cache_dir() / "gguf" / f"{_hub_key(endpoint, repo_id, commit, filename)}.json"


def store_gguf_header(endpoint: str, repo_id: str, commit: str | None, header: Any) -> None:
    """A GGUF file's parsed header at its commit (what a commit holds never changes), for repeat and offline runs."""
    if os.environ.get("HFSIZE_NO_CACHE") or commit is None:
        return
    data = {
        "format": FORMAT,
        **{f: getattr(header, f) for f in ("version", "byte_order", "alignment", "header_bytes", "data_offset")},
        "data_bytes": header.data_bytes,
        "metadata": {k: _encode(v) for k, v in header.metadata.items()},
        "value_types": dict(header.value_types),
        "tensors": [[t.name, list(t.shape), t.ggml_type.id, t.offset] for t in header.tensors],
    }
    path = _gguf_path(endpoint, repo_id, commit, header.filename)
    _write(path, data)
    try:
        entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[: max(0, len(entries) - MAX_GGUF_HEADERS)]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def load_gguf_header(endpoint: str, repo_id: str, commit: str | None, filename: str) -> Any:
    """The header stored for (repo, commit, file), or None."""
    if commit is None:
        return None
    raw = _read("gguf", f"{_hub_key(endpoint, repo_id, commit, filename)}.json")
    from .gguf import GGML_TYPES, GGUFHeader, GGUFTensor

    try:
        if raw.pop("format") != FORMAT:
            return None
        return GGUFHeader(
            filename=filename,
            version=raw["version"],
            byte_order=raw["byte_order"],
            metadata={k: _decode(v) for k, v in raw["metadata"].items()},
            tensors=tuple(GGUFTensor(n, tuple(s), GGML_TYPES[t], o) for n, s, t, o in raw["tensors"]),
            alignment=raw["alignment"],
            header_bytes=raw["header_bytes"],
            data_offset=raw["data_offset"],
            data_bytes=raw["data_bytes"],
            value_types=raw["value_types"],
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _encode(value: Any) -> Any:
    """A metadata value as JSON: tuples and GGUFArray (a long array's type and length) tagged, scalars as they are."""
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if dataclasses.is_dataclass(value):  # GGUFArray
        return {"array": [value.item_type, value.count]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if isinstance(value, dict):
        from .gguf import GGUFArray

        item_type, count = value["array"]
        return GGUFArray(item_type, count)
    return value
