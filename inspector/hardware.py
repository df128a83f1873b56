"""This machine's memory: GPUs (NVIDIA, AMD, Apple) and CPU RAM; each silently absent where it cannot be read.

- NVIDIA: NVML through nvidia-ml-py (`pynvml`) when it is installed (imported lazily), else `nvidia-smi -q -x`.
  A GPU in MIG mode is its MIG devices, each with its own memory (what a process on that slice can use).
- AMD: `rocm-smi --showmeminfo vram --showproductname --json` (VRAM total and used, bytes).
- Apple silicon: unified memory (`sysctl hw.memsize`), of which the GPU may wire `iogpu.wired_limit_mb` when that
  is set, else macOS's default share: 3/4 above 36 GiB, 2/3 at or below (Metal's recommendedMaxWorkingSetSize).
- Mixed cards: one vendor's whole GPUs of several models are also offered together as one setup (gpus.mixed_gpus,
  the `--gpu A+B` one), each device with its own free memory, in the order llama.cpp numbers them (its -ts entries
  and main GPU follow the backend's device order): NVIDIA in CUDA's order (`cuda_order`: CUDA_DEVICE_ORDER, by
  default FASTEST_FIRST, an unpublished heuristic, assumed compute capability then CUDA cores x max SM clock then
  PCI bus; PCI_BUS_ID: the PCI bus order nvidia-smi and NVML list), the rule in words on the setup (`Gpu.device_order`).
- CPU RAM available for offload: what accelerate's get_max_memory offers "cpu" (psutil's
  virtual_memory().available), else /proc/meminfo MemAvailable (Linux), else sysctl hw.memsize (macOS).
Tests fake the tools by putting executables of those names first on PATH (tests/test_hardware.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from .results import Gpu

MIB = 2**20
GIB = 2**30
MEMINFO = Path("/proc/meminfo")
TIMEOUT_S = 5


def _run(*command: str) -> str | None:
    exe = shutil.which(command[0])
    if exe is None:
        return None

    try:
        return subprocess.run([exe, *command[1:]], capture_output=True, text=True, timeout=TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def local_gpus() -> list[Gpu]:
    """Every GPU of this machine, identical devices grouped (count, the smallest free memory); where one vendor's
    whole GPUs are of several models (a 4090 and a 3060), also all of them as one mixed setup, as `--gpu A+B` gives
    (llama.cpp spreads layers over every device its backend sees, whatever the model)."""
    nvidia = _nvml() or _nvidia_smi()
    rocm = _rocm_smi()
    out = _grouped(nvidia + rocm + _apple())
    for vendor, cuda in ((nvidia, True), (rocm, False)):
        # a MIG slice (our own "NAME MIG k" label) is not offered with others: a CUDA process sees one slice
        whole = [Device(*d) for d in vendor if " MIG " not in d[0]]
        if len(_grouped(whole)) > 1:
            ordered, rule = cuda_order(whole, os.environ) if cuda else (whole, None)
            out.append(_mixed(ordered, rule))
    return out


def _mixed(devices: Sequence[Device], rule: str | None) -> Gpu:
    """One setup of `devices` in their order, each with its own free memory; its name runs of one model joined
    (`A x2+B`)."""
    from .gpus import mixed_gpus  # gpus owns the mixing rule (and imports this module lazily)

    members = [Gpu(name=d.name, count=1, memory_bytes=d.total, usable_bytes=d.usable, source="local", free_bytes=d.free)
               for d in devices]  # fmt: skip
    runs: list[list[str]] = []
    for d in devices:
        if runs and runs[-1][0] == d.name:
            runs[-1].append(d.name)
        else:
            runs.append([d.name])
    name = "+".join(r[0] if len(r) == 1 else f"{r[0]}x{len(r)}" for r in runs)
    mixed = mixed_gpus(name, members)
    return replace(mixed, name=f"{name} (local)", source="local", device_order=rule)


PCI_RULE = "PCI bus order (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
FASTEST_RULE = (
    "CUDA's default order, FASTEST_FIRST (CUDA_DEVICE_ORDER unset): its heuristic is unpublished; assumed compute "
    "capability, then CUDA cores x max SM clock where known, then PCI bus. Set CUDA_DEVICE_ORDER=PCI_BUS_ID to "
    "make the order certain (PCI bus, as nvidia-smi lists them)"
)
UNKNOWN_RULE = (
    "PCI bus order, as nvidia-smi lists them: CUDA's default FASTEST_FIRST order could not be judged (no compute "
    "capability read); set CUDA_DEVICE_ORDER=PCI_BUS_ID to make llama.cpp use this order"
)


def cuda_order(devices: Sequence[Device], env: Mapping[str, str]) -> tuple[list[Device], str]:
    """The devices in the order CUDA (and so llama.cpp's CUDA backend, for -ts and the main GPU) numbers them, and
    that order's rule in words. CUDA_DEVICE_ORDER=PCI_BUS_ID: ascending PCI bus id; else FASTEST_FIRST, CUDA's
    default, "fastest to slowest using a simple heuristic" (CUDA Programming Guide, environment variables) that
    NVIDIA does not publish: hfsize assumes higher compute capability first, then more CUDA cores x max SM clock
    (where every device has both), ties in PCI bus order. CUDA_VISIBLE_DEVICES is not applied (said when set)."""
    by_bus = sorted(devices, key=lambda d: (d.bus or "").upper())
    visible = "; CUDA_VISIBLE_DEVICES is set and not applied here" if env.get("CUDA_VISIBLE_DEVICES") else ""
    if env.get("CUDA_DEVICE_ORDER", "").strip().upper() == "PCI_BUS_ID":
        return by_bus, PCI_RULE + visible
    if any(d.compute is None for d in devices):
        return by_bus, UNKNOWN_RULE + visible
    throughput = all(d.cores and d.clock_mhz for d in devices)

    def key(d: Device) -> tuple:
        return (d.compute, (d.cores or 0) * (d.clock_mhz or 0) if throughput else 0)

    return sorted(by_bus, key=key, reverse=True), FASTEST_RULE + visible  # sorted is stable: ties keep bus order


def _grouped(devices: Sequence[tuple], suffix: str = " (local)") -> list[Gpu]:
    grouped: dict[tuple[str, int, int], list[int]] = {}
    for name, total, usable, free, *_ in devices:
        grouped.setdefault((name, total, usable), []).append(free)
    return [
        Gpu(name=f"{name}{suffix}", count=len(free), memory_bytes=total, usable_bytes=usable, source="local",
            free_bytes=min(free))
        for (name, total, usable), free in grouped.items()
    ]  # fmt: skip


class Device(NamedTuple):
    """One GPU (or MIG slice) as a tool reports it; bytes. The rest: what CUDA's device order needs (NVIDIA)."""

    name: str
    total: int
    usable: int
    free: int
    bus: str | None = None  # PCI bus id, "00000000:01:00.0"
    compute: tuple[int, int] | None = None  # CUDA compute capability (major, minor)
    cores: int | None = None  # CUDA cores (NVML only)
    clock_mhz: int | None = None  # max SM clock


def _nvml() -> list[Device]:
    try:
        import pynvml  # nvidia-ml-py: optional
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: nothing to report
        return []
    out: list[Device] = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            slices = []
            try:
                if pynvml.nvmlDeviceGetMigMode(handle)[0] == pynvml.NVML_DEVICE_MIG_ENABLE:
                    for j in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
                        try:
                            slices.append(pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j))
                        except pynvml.NVMLError:
                            continue
            except pynvml.NVMLError:  # not MIG capable
                pass
            facts = () if slices else _nvml_order_facts(pynvml, handle)
            for k, part in enumerate(slices or [handle]):
                memory = pynvml.nvmlDeviceGetMemoryInfo(part)
                label = f"{name} MIG {k}" if slices else name
                out.append(Device(label, int(memory.total), int(memory.total), int(memory.free), *facts))
    except Exception:  # noqa: BLE001 - a driver that refuses a query: fall back to nvidia-smi
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return out


def _nvml_order_facts(pynvml: object, handle: object) -> tuple:
    """(PCI bus id, compute capability, CUDA cores, max SM clock MHz) where NVML answers; None each where not."""

    def ask(query: str, *args: object) -> object:
        try:
            return getattr(pynvml, query)(handle, *args)
        except Exception:  # noqa: BLE001 - an older driver or nvidia-ml-py without that query
            return None

    pci = ask("nvmlDeviceGetPciInfo")
    bus = getattr(pci, "busId", None)
    bus = bus.decode() if isinstance(bus, bytes) else bus
    compute = ask("nvmlDeviceGetCudaComputeCapability")
    clock = ask("nvmlDeviceGetMaxClockInfo", getattr(pynvml, "NVML_CLOCK_SM", 1))
    cores = ask("nvmlDeviceGetNumGpuCores")
    return (
        bus if isinstance(bus, str) else None,
        tuple(int(x) for x in compute) if isinstance(compute, tuple) and len(compute) == 2 else None,
        int(cores) if isinstance(cores, int) and cores > 0 else None,
        int(clock) if isinstance(clock, int) and clock > 0 else None,
    )


def _compute_capabilities() -> dict[str, tuple[int, int]]:
    """PCI bus id -> compute capability, from `nvidia-smi --query-gpu=pci.bus_id,compute_cap` (drivers >= 510);
    empty where the query is not understood."""
    out = _run("nvidia-smi", "--query-gpu=pci.bus_id,compute_cap", "--format=csv,noheader")
    found: dict[str, tuple[int, int]] = {}
    for line in (out or "").splitlines():
        bus, _, cap = (x.strip() for x in line.partition(","))
        major, dot, minor = cap.partition(".")
        if bus and dot and major.isdigit() and minor.isdigit():
            found[bus.upper()] = (int(major), int(minor))
    return found


def _mhz(text: str | None) -> int | None:
    """'2520 MHz' -> 2520."""
    parts = (text or "").split()
    return int(parts[0]) if len(parts) == 2 and parts[0].isdigit() and parts[1] == "MHz" else None


def _mib(text: str | None) -> int | None:
    """'81559 MiB' -> bytes."""
    if not text:
        return None
    parts = text.split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == "MiB":
        return int(parts[0]) * MIB
    return None


def _nvidia_smi() -> list[Device]:
    out = _run("nvidia-smi", "-q", "-x")
    if not out:
        return []
    import xml.etree.ElementTree as ET  # only with nvidia-smi: 5 modules every run would import otherwise

    try:
        root = ET.fromstring(out)
    except ET.ParseError:
        return []
    devices: list[Device] = []
    for gpu in root.iter("gpu"):
        name = (gpu.findtext("product_name") or "NVIDIA GPU").strip()
        migs = gpu.findall("mig_devices/mig_device")
        if (gpu.findtext("mig_mode/current_mig") or "").strip() == "Enabled" and migs:
            for mig in migs:
                total, free = _mib(mig.findtext("fb_memory_usage/total")), _mib(mig.findtext("fb_memory_usage/free"))
                if total is not None and free is not None:
                    instance = (mig.findtext("gpu_instance_id") or mig.findtext("index") or "?").strip()
                    devices.append(Device(f"{name} MIG {instance}", total, total, free))
            continue
        total, free = _mib(gpu.findtext("fb_memory_usage/total")), _mib(gpu.findtext("fb_memory_usage/free"))
        if total is not None and free is not None:
            bus = (gpu.get("id") or gpu.findtext("pci/pci_bus_id") or "").strip() or None
            devices.append(Device(name, total, total, free, bus, clock_mhz=_mhz(gpu.findtext("max_clocks/sm_clock"))))
    whole = [d for d in devices if " MIG " not in d.name]
    if len({d.name for d in whole}) > 1:  # CUDA's device order matters only for a mixed setup: one more query then
        caps = _compute_capabilities()
        devices = [d._replace(compute=caps.get((d.bus or "").upper())) for d in devices]
    return devices


def _rocm_smi() -> list[Device]:
    out = _run("rocm-smi", "--showmeminfo", "vram", "--showproductname", "--json")
    if not out:
        return []
    try:
        cards = json.loads(out)
    except json.JSONDecodeError:
        return []
    devices: list[Device] = []
    for card, fields in cards.items() if isinstance(cards, dict) else ():
        if not card.startswith("card") or not isinstance(fields, dict):
            continue
        try:
            total = int(fields["VRAM Total Memory (B)"])
            used = int(fields["VRAM Total Used Memory (B)"])
        except (KeyError, ValueError, TypeError):
            continue
        name = fields.get("Card Series") or fields.get("Card series") or fields.get("Card model") or "AMD GPU"
        devices.append((str(name).strip(), total, total, total - used))
    return devices


def _apple() -> list[Device]:
    if (_run("sysctl", "-n", "hw.optional.arm64") or "").strip() != "1":
        return []
    try:
        total = int((_run("sysctl", "-n", "hw.memsize") or "").strip())
    except ValueError:
        return []
    try:
        wired_mb = int((_run("sysctl", "-n", "iogpu.wired_limit_mb") or "0").strip() or 0)
    except ValueError:
        wired_mb = 0
    usable = wired_mb * MIB if wired_mb > 0 else total * 3 // 4 if total > 36 * GIB else total * 2 // 3
    return [("Apple unified memory", total, usable, usable)]


def ram_bytes() -> int | None:
    """CPU RAM free for offload on this machine, or None where it cannot be read."""
    try:
        import psutil  # optional: not a dependency

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - not installed, or no figure on this platform
        pass
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int((_run("sysctl", "-n", "hw.memsize") or "").strip())
    except ValueError:
        return None
