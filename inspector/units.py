"""Units for rendering, the only place bytes and counts become text: GiB = 2**30, GB = 10**9, labelled."""

from __future__ import annotations

GIB = 2**30
MIB = 2**20
GB = 10**9


def gib(n: int, decimals: int = 2) -> str:
    """3_355_443_200 -> '3.12 GiB'."""
    return f"{n / GIB:,.{decimals}f} GiB"


def gib_number(n: int, decimals: int = 2) -> str:
    """The number of GiB alone, for a column headed 'GiB'."""
    return f"{n / GIB:,.{decimals}f}"


def gb(n: int, decimals: int = 2) -> str:
    """13_478_238_208 -> '13.48 GB' (decimal, as disk sizes and downloads are quoted)."""
    return f"{n / GB:,.{decimals}f} GB"


def signed_gib(n: int) -> str:
    """A difference: '+1.25 GiB', in MiB below a tenth of a GiB ('-12.0 MiB'), in KiB below a MiB ('+32.0 KiB'),
    in bytes below a KiB ('+100 B'): a non-zero change never reads as zero. No change is '0'."""
    sign = "+" if n >= 0 else "-"
    if n == 0:
        return "0"
    if abs(n) >= GIB // 10:
        return f"{sign}{abs(n) / GIB:,.2f} GiB"
    if abs(n) >= MIB:
        return f"{sign}{abs(n) / MIB:,.1f} MiB"
    return f"{sign}{abs(n) / 1024:,.1f} KiB" if abs(n) >= 1024 else f"{sign}{abs(n)} B"


def human_count(n: int) -> str:
    """13015864320 -> '13.0B' (decimal, as model names use)."""
    for scale, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return str(n)


def kib(n: int) -> str:
    """819_200 -> '800.0 KiB' (a KV cache per token)."""
    return f"{n / 1024:,.1f} KiB"


def plural(n: int, thing: str) -> str:
    """(1, 'tensor') -> '1 tensor'; (1024, 'tensor') -> '1,024 tensors'."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
