"""On-disk cache of built architectures, so a repeated run (or a model whose config was seen) needs no torch.

Keyed by the config's exact content, the installed transformers version and hfsize's own version; only
natively built architectures are cached (remote code can change behind the same config). The cache is an
optimisation: any failure to read or write it is ignored. Location: HFSIZE_CACHE, else
$XDG_CACHE_HOME/hfsize, else ~/.cache/hfsize. HFSIZE_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from .results import BuiltArchitecture, KvLayer

FORMAT = 2  # bump when BuiltArchitecture changes shape


def cache_dir() -> Path:
    explicit = os.environ.get("HFSIZE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hfsize"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def key(config: dict[str, Any]) -> str:
    """Computed before the build: the cache entry of exactly this config."""
    material = json.dumps(
        {"config": config, "transformers": _version("transformers"), "hfsize": _version("hfsize"), "format": FORMAT},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


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
    data = dataclasses.asdict(built)
    data["keep_fp32"], data["keep_fp32_strict"] = sorted(built.keep_fp32), sorted(built.keep_fp32_strict)
    folder = cache_dir() / "architectures"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(folder / f"{key}.json")  # atomic: concurrent runs never see half a file
    except OSError:
        pass
