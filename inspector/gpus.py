"""GPUs: the catalog (data/gpus.json), `--gpu` specs and local detection (the fit is placement.py's)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .errors import ExitCode, HfsizeError
from .results import Gpu, Interconnect

MIB = 2**20
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(GiB|GB|MiB|MB|TiB|TB)$", re.IGNORECASE)
_UNITS = {"gib": 2**30, "gb": 10**9, "mib": 2**20, "mb": 10**6, "tib": 2**40, "tb": 10**12}
MIN_GPU_BYTES = 10**9  # 1 GB: no GPU worth sizing for has less; a smaller --gpu size is a typo (0GB, 0.0001GB)


class GpuSpecError(HfsizeError):
    exit_code = ExitCode.USAGE


@lru_cache(maxsize=1)
def catalog_entries() -> tuple[dict, ...]:
    """The entries of data/gpus.json in file order (one per card; see its `_about` for the fields)."""
    import pkgutil  # the package's loader reads it (as importlib.resources would), without importlib.resources'
    # reader machinery: ~6 ms of every run's start-up

    raw = pkgutil.get_data("inspector", "data/gpus.json")
    assert raw is not None  # None only from a loader without get_data, which could not have imported hfsize
    data = json.loads(raw)
    return tuple(data["gpus"])


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict]:
    """Catalog entries by lower-case name and alias."""
    table: dict[str, dict] = {}
    for entry in catalog_entries():
        for key in (entry["name"], *entry.get("aliases", [])):
            table[key.lower()] = entry
    return table


def catalog_gpu(entry: dict, count: int = 1) -> Gpu:
    """A catalog entry as a Gpu, datasheet figures included."""
    memory = entry["memory_mib"] * MIB
    link = entry.get("interconnect")
    return Gpu(
        name=entry["name"],
        count=count,
        memory_bytes=memory,
        usable_bytes=int(memory * entry.get("usable_fraction", 1.0)),
        source="catalog",
        variant=entry.get("variant"),
        bandwidth_bytes_per_s=entry.get("memory_bandwidth_bytes_per_s"),
        tflops=dict(entry.get("tflops", {})),
        interconnect=Interconnect(
            kind=link["kind"],
            link_bytes_per_s=link.get("link_bytes_per_s"),
            pcie_gen=link.get("pcie_gen"),
            pcie_lanes=link.get("pcie_lanes"),
        )
        if link
        else None,
    )


def catalog_names() -> list[str]:
    return sorted({e["name"] for e in catalog().values()})


def parse_size(text: str) -> int | None:
    """'24GiB' -> 25769803776 and '80GB' -> 80000000000 (GiB = 2**30, GB = 10**9); None if not a size."""
    match = _SIZE.match(text.strip())
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()]) if match else None


def parse_gpu(spec: str) -> Gpu:
    """'H100', 'A100-80GBx2', '2xH100', '24GiB', '24GBx4' -> Gpu; 'RTX-4090+RTX-3060-12GB' -> a mixed setup."""
    text = spec.strip()
    if "+" in text:
        parts = text.split("+")
        if not all(p.strip() for p in parts):
            raise GpuSpecError(
                f"empty GPU name in '{spec}' (--gpu)", "Join two GPUs with one +, e.g. --gpu RTX-4090+RTX-3060-12GB."
            )
        return mixed_gpus(spec, [parse_gpu(part) for part in parts])
    text, count = _split_count(text)
    if count < 1:
        raise GpuSpecError(f"GPU count in '{spec}' must be at least 1", "Write e.g. --gpu H100x2.")
    memory = parse_size(text)
    if memory is not None and memory < MIN_GPU_BYTES:
        raise GpuSpecError(f"GPU size '{spec}' is below 1 GB, smaller than any GPU", "Write e.g. --gpu 24GB.")
    if memory is not None:
        return Gpu(name=text, count=count, memory_bytes=memory, usable_bytes=memory, source="size")
    entry = catalog().get(text.lower())
    if entry is None:
        whole = nearest_gpu(spec, exact=True)  # 'RTX4090' read as 4090 x 'RT' meant the RTX-4090
        near = whole or nearest_gpu(text)
        guess = f"Did you mean {near}{'' if count == 1 or whole else f'x{count}'}? " if near else ""
        raise GpuSpecError(
            f"unknown GPU '{spec}' in --gpu",
            f"{guess}Names: the README's GPU catalog (inspector/data/gpus.json; e.g. T4, RTX-4090, A100-80GB, "
            "H100-80GB); several as H100x2, or a size such as 24GiB.",
        )
    return catalog_gpu(entry, count)


# A count beside a name, in any case, with the spaces or hyphens the catalog's names use between words: after it
# ('H100x2', 'H100 x2', 'A100-x8'), or first, as cloud instances are named ('2xH100', '8x A100', '8x-a100').
_COUNT_AFTER = re.compile(r"^(?P<name>.+?)[\s-]*[x*][\s-]*(?P<count>\d+)$", re.IGNORECASE)
_COUNT_FIRST = re.compile(r"^(?P<count>\d+)[\s-]*[x*][\s-]*(?P<name>.+)$", re.IGNORECASE)
# the strict forms, read whether or not the rest is a known name (an unknown one then gets the nearest name with the
# count): 'RTX4090' stays 'RT' x 4090 as before (the whole's nearest name wins), '8x-a1000' is 8 x 'a1000'
_COUNT_AFTER_STRICT = re.compile(r"^(?P<name>.*?)\s*[x*]\s*(?P<count>\d+)$", re.IGNORECASE)
_COUNT_FIRST_SPACED = re.compile(r"^(?P<count>\d+)(?:\s*[x*][\s-]+|[\s-]+[x*][\s-]*)(?P<name>.+)$", re.IGNORECASE)


def _split_count(text: str) -> tuple[str, int]:
    """'A100-x8', '8x-a100' -> ('A100', 8), ('a100', 8); a whole catalog name is never split ('7900xtx' is the RX
    7900 XTX, 'RTX-4090' not 'RT' x 4090); a split is taken when its name is a catalog name or a size."""
    if _known(text):
        return text, 1
    for pattern in (_COUNT_AFTER, _COUNT_FIRST):
        match = pattern.match(text)
        if match and _known(match["name"]):
            return match["name"].strip(), int(match["count"])
    for pattern in (_COUNT_AFTER_STRICT, _COUNT_FIRST_SPACED):
        match = pattern.match(text)
        if match and match["name"]:
            return match["name"].strip(), int(match["count"])
    return text, 1


def _known(text: str) -> bool:
    return text.strip().lower() in catalog() or parse_size(text) is not None


def nearest_gpu(text: str, exact: bool = False) -> str | None:
    """The catalog name `text` most likely means: the same letters without dashes and spaces ('RTX4090'), else
    (unless `exact`) difflib's closest name or alias (ratio 0.6 or more); None when nothing is close."""
    import difflib

    def squash(name: str) -> str:
        return re.sub(r"[\s_-]", "", name.lower())

    table = catalog()
    squashed = {squash(k): e["name"] for k, e in table.items()}
    if squash(text) in squashed:
        return squashed[squash(text)]
    if exact:
        return None
    close = difflib.get_close_matches(squash(text), list(squashed), n=1, cutoff=0.6)
    return squashed[close[0]] if close else None


def mixed_gpus(spec: str, members: Sequence[Gpu]) -> Gpu:
    """One machine's unequal GPUs: each device in order, the setup's own figures the smallest and slowest device's."""
    devices = tuple(replace(m, count=1) for m in members for _ in range(m.count))
    smallest = min(devices, key=lambda d: d.usable_bytes)
    speeds = [d.bandwidth_bytes_per_s for d in devices]
    keys = set.intersection(*(set(d.tflops) for d in devices))
    return replace(
        smallest,
        name="+".join(m.name if m.count == 1 else f"{m.name}x{m.count}" for m in members),
        count=len(devices),
        source="mixed",
        variant=None,
        bandwidth_bytes_per_s=None if None in speeds else min(s for s in speeds if s is not None),
        tflops={k: min(d.tflops[k] for d in devices) for k in sorted(keys)},
        free_bytes=None,
        devices=devices,
    )


def device_order_note(gpu: Gpu) -> str:
    """A local mixed setup's device order, which llama.cpp's -ts entries and main GPU follow, and its rule."""
    names = ", ".join(f"{i} {d.name}" for i, d in enumerate(gpu.devices))
    return f"{gpu.label}: devices in llama.cpp's order ({names}), by {gpu.device_order}"


def has_bf16(gpu: Gpu) -> bool:
    """False for a card whose datasheet figures have no bf16 (Turing T4 / RTX 20xx, Volta V100: compute capability
    below 8.0) or a mixed setup with one such device; True otherwise, sizes and local GPUs included (unknown)."""
    return not gpu.tflops or "bf16" in gpu.tflops


def run_dtype(dtype: str, gpu: Gpu) -> str:
    """The 16-bit dtype `dtype` runs as on `gpu`: bf16 becomes fp16 (the same bytes) on a card without bf16."""
    return "fp16" if dtype == "bf16" and not has_bf16(gpu) else dtype


# vLLM's _check_if_gpu_supports_dtype: "Bfloat16 is only supported on GPUs with compute capability of at least 8.0"
NO_BF16_NOTE = (
    "{gpus}: no bf16 (compute capability below 8.0), so the bf16 model runs in fp16, the same bytes: vLLM refuses "
    "bf16 there (--dtype half), transformers needs torch_dtype=torch.float16; fp16's narrower range can overflow "
    "on some bf16-trained models."
)


DEFAULT_GPUS = ("T4", "RTX-4090", "A100-40GB", "H100-80GB")
# `explain`: the cards people own, one and two of each (16 GB, 24 GB, 80 GB)
OWNED_GPUS = ("T4", "T4x2", "RTX-4090", "RTX-4090x2", "A100-80GB", "A100-80GBx2")


def choose_gpus(specs: Sequence[str]) -> list[Gpu]:
    """The GPUs asked for (else a default spread), plus the local ones when present."""
    chosen = [parse_gpu(s) for s in (specs or DEFAULT_GPUS)]
    return chosen + local_gpus()


def local_gpus() -> list[Gpu]:
    """This machine's GPUs (NVML or nvidia-smi with MIG slices, rocm-smi, Apple unified memory; no torch import);
    empty when there are none. The rules are inspector/hardware.py's."""
    from .hardware import local_gpus as detected

    return detected()
