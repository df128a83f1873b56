"""This machine's memory: GPUs (NVIDIA, AMD, Apple) and CPU RAM; each silently absent where it cannot be read.

- NVIDIA: NVML through nvidia-ml-py (`pynvml`) when it is installed (imported lazily), else `nvidia-smi -q -x`.
  A GPU in MIG mode is its MIG devices, each with its own memory (what a process on that slice can use).
- AMD: `rocm-smi --showmeminfo vram --showproductname --json` (VRAM total and used, bytes).
- Apple silicon: unified memory (`sysctl hw.memsize`), of which the GPU may wire `iogpu.wired_limit_mb` when that
  is set, else macOS's default share: 3/4 above 36 GiB, 2/3 at or below (Metal's recommendedMaxWorkingSetSize).
- Mixed cards: one vendor's whole GPUs of several models are also offered together as one setup (gpus.mixed_gpus,
  the `--gpu A+B` one), in the order the models were first listed, each device with its own free memory.
- CPU RAM available for offload: what accelerate's get_max_memory offers "cpu" (psutil's
  virtual_memory().available), else /proc/meminfo MemAvailable (Linux), else sysctl hw.memsize (macOS).
Tests fake the tools by putting executables of those names first on PATH (tests/test_hardware.py).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from .results import Gpu

MIB = 2**20
GIB = 2**30
MEMINFO = Path("/proc/meminfo")
TIMEOUT_S = 5


def _run(*command: str) -> str | None:
    exe = shutil.which(command[0])
    if exe is None:
        return None
    import subprocess  # only where the tool exists: most machines have no nvidia-smi or rocm-smi

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
    for vendor in (nvidia, rocm):
        # a MIG slice (our own "NAME MIG k" label) is not offered with others: a CUDA process sees one slice
        members = _grouped([d for d in vendor if " MIG " not in d[0]], suffix="")
        if len(members) > 1:
            from .gpus import mixed_gpus  # gpus owns the mixing rule (and imports this module lazily)

            mixed = mixed_gpus("+".join(m.name for m in members), members)
            out.append(replace(mixed, name=f"{mixed.name} (local)", source="local"))
    return out


def _grouped(devices: list[Device], suffix: str = " (local)") -> list[Gpu]:
    grouped: dict[tuple[str, int, int], list[int]] = {}
    for name, total, usable, free in devices:
        grouped.setdefault((name, total, usable), []).append(free)
    return [
        Gpu(name=f"{name}{suffix}", count=len(free), memory_bytes=total, usable_bytes=usable, source="local",
            free_bytes=min(free))
        for (name, total, usable), free in grouped.items()
    ]  # fmt: skip


Device = tuple[str, int, int, int]  # name, total, usable, free (bytes)


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
            for k, part in enumerate(slices or [handle]):
                memory = pynvml.nvmlDeviceGetMemoryInfo(part)
                label = f"{name} MIG {k}" if slices else name
                out.append((label, int(memory.total), int(memory.total), int(memory.free)))
    except Exception:  # noqa: BLE001 - a driver that refuses a query: fall back to nvidia-smi
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return out


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
                    devices.append((f"{name} MIG {instance}", total, total, free))
            continue
        total, free = _mib(gpu.findtext("fb_memory_usage/total")), _mib(gpu.findtext("fb_memory_usage/free"))
        if total is not None and free is not None:
            devices.append((name, total, total, free))
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
