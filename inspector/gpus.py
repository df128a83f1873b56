"""GPUs: the catalog (data/gpus.json), `--gpu` specs, local detection, and the fit check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from .errors import ExitCode, HfsizeError
from .results import Fit, Gpu

MIB = 2**20
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(GiB|GB|MiB|MB|TiB|TB)$", re.IGNORECASE)
_UNITS = {"gib": 2**30, "gb": 10**9, "mib": 2**20, "mb": 10**6, "tib": 2**40, "tb": 10**12}
MIN_GPU_BYTES = 10**9  # 1 GB: no GPU worth sizing for has less; a smaller --gpu size is a typo (0GB, 0.0001GB)


class GpuSpecError(HfsizeError):
    exit_code = ExitCode.USAGE


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict]:
    """Catalog entries by lower-case name and alias."""
    data = json.loads(resources.files("inspector").joinpath("data/gpus.json").read_text())
    table: dict[str, dict] = {}
    for entry in data["gpus"]:
        for key in (entry["name"], *entry.get("aliases", [])):
            table[key.lower()] = entry
    return table


def catalog_names() -> list[str]:
    return sorted({e["name"] for e in catalog().values()})


def parse_size(text: str) -> int | None:
    """'24GiB' -> 25769803776 and '80GB' -> 80000000000 (GiB = 2**30, GB = 10**9); None if not a size."""
    match = _SIZE.match(text.strip())
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()]) if match else None


def parse_gpu(spec: str) -> Gpu:
    """'H100', 'A100-80GBx2', '24GiB', '24GBx4' -> Gpu."""
    text = spec.strip()
    count = 1
    match = re.match(r"^(.*?)\s*[x*]\s*(\d+)$", text, re.IGNORECASE)
    if match and match.group(1):
        text, count = match.group(1), int(match.group(2))
    if count < 1:
        raise GpuSpecError(f"GPU count in '{spec}' must be at least 1", "Write e.g. --gpu H100x2.")
    memory = parse_size(text)
    if memory is not None and memory < MIN_GPU_BYTES:
        raise GpuSpecError(f"GPU size '{spec}' is below 1 GB, smaller than any GPU", "Write e.g. --gpu 24GB.")
    if memory is not None:
        return Gpu(name=text, count=count, memory_bytes=memory, usable_bytes=memory, source="size")
    entry = catalog().get(text.lower())
    if entry is None:
        raise GpuSpecError(
            f"unknown GPU '{spec}'",
            f"Use a size like 24GiB or one of: {', '.join(catalog_names())}.",
        )
    memory = entry["memory_mib"] * MIB
    usable = int(memory * entry.get("usable_fraction", 1.0))
    return Gpu(name=entry["name"], count=count, memory_bytes=memory, usable_bytes=usable, source="catalog")


DEFAULT_GPUS = ("T4", "RTX-4090", "A100-40GB", "H100-80GB")


def choose_gpus(specs: Sequence[str]) -> list[Gpu]:
    """The GPUs asked for (else a default spread), plus the local ones when present."""
    chosen = [parse_gpu(s) for s in (specs or DEFAULT_GPUS)]
    return chosen + local_gpus()


def local_gpus() -> list[Gpu]:
    """NVIDIA GPUs on this machine via nvidia-smi (no torch import); empty when there are none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus: dict[tuple[str, int], list[int]] = {}
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.setdefault((parts[0], int(parts[1]) * MIB), []).append(int(parts[2]) * MIB)
    return [
        Gpu(name=f"{name} (local)", count=len(free), memory_bytes=total, usable_bytes=total, source="local",
            free_bytes=min(free))
        for (name, total), free in gpus.items()
    ]  # fmt: skip


def fit(blocks: Sequence[int], gpu: Gpu, overhead_per_gpu: int) -> Fit:
    """Place blocks in order on devices of `gpu`'s size, as a sequential device map does.

    Each device holds `overhead_per_gpu` of runtime memory plus whole blocks; a block never splits
    across devices. The verdict compares the devices needed with the devices given.
    """
    label = gpu.label
    capacity = (gpu.free_bytes if gpu.free_bytes is not None else gpu.usable_bytes) - overhead_per_gpu
    if capacity <= 0 or any(b > capacity for b in blocks):
        return Fit(gpu=label, verdict="does_not_fit", gpus_needed=None, headroom_bytes=None)
    devices, used = 1, 0
    for block in blocks:
        if used + block > capacity:
            devices, used = devices + 1, 0
        used += block
    total = sum(blocks)
    headroom = gpu.count * capacity - total
    verdict = "fits" if devices <= gpu.count else "needs_more"
    return Fit(gpu=label, verdict=verdict, gpus_needed=devices, headroom_bytes=headroom)
