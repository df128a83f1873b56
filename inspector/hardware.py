"""This machine's memory: CPU RAM (and, later, GPUs beyond nvidia-smi); silently absent where it cannot be read.

RAM available for offload is what accelerate's get_max_memory offers "cpu" when max_memory is not given:
psutil.virtual_memory().available. Without psutil: /proc/meminfo's MemAvailable (Linux), else sysctl hw.memsize
(macOS: the total, as no "available" figure is exposed without psutil).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


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
    exe = shutil.which("sysctl")
    if exe is not None:
        try:
            out = subprocess.run([exe, "-n", "hw.memsize"], capture_output=True, text=True, timeout=5, check=True)
            return int(out.stdout.strip())
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return None
