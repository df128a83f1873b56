"""What this install holds: the packages the meta-device build needs (found without importing them), the extra
that adds them, and the versions `--version` reports. Plain data and importlib only: `--help` may import it.

`pip install hfsize` is the light install (huggingface_hub, click, rich): the config, the safetensors headers,
stored bytes, `check` and `compare` need nothing else. Building the model class on the meta device (exact
parameters with buffers and ties, reconciliation, 8/4-bit figures, KV cache, finetuning memory) needs torch,
transformers and accelerate: `pip install 'hfsize[exact]'`.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings

# What architecture.build imports; the `exact` extra of pyproject.toml installs them.
BUILD_PACKAGES = ("torch", "transformers", "accelerate")
EXACT_INSTALL = "pip install 'hfsize[exact]'"
LIGHT = "light install"  # how a reason for not building begins when the packages are missing


def missing() -> tuple[str, ...]:
    """The build packages that cannot be imported here, found without importing them (torch takes seconds)."""
    absent = []
    for name in BUILD_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a blocked or half-imported module
            found = False
        if not found:
            absent.append(name)
    return tuple(absent)


def light_reason(absent: tuple[str, ...]) -> str:
    """Why nothing was built on a light install, naming what is missing and the install that adds it."""
    return f"{LIGHT}: {listed(absent)} {'is' if len(absent) == 1 else 'are'} not installed; {EXACT_INSTALL} adds them"


def model_class_hint(reason: str) -> str:
    """What to do for the figures that need the model class, when they were left out for `reason`."""
    return EXACT_INSTALL if reason.startswith(LIGHT) else "run without --headers-only"


def version(package: str) -> str | None:
    """The installed version of a distribution (None when absent), without importing it."""
    from importlib import metadata  # only when a version is asked (--version)

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class FallbackWarning(UserWarning):
    """A library internal hfsize uses has moved, and the fallback was taken (the CLI silences warnings)."""


# Fallbacks taken in this process for library internals that moved (transformers' weight conversion,
# huggingface_hub's request hook): `tests/test_internals.py` asserts none is taken with the tested versions.
FALLBACKS: dict[str, str] = {}
_fallbacks_lock = threading.Lock()


def fallback(internal: str, detail: str) -> None:
    """Record (and warn about) a fallback taken because `internal` of a library is missing or failed."""
    with _fallbacks_lock:
        first = internal not in FALLBACKS
        FALLBACKS.setdefault(internal, detail)
    if first:
        warnings.warn(f"hfsize: {internal}: {detail}", FallbackWarning, stacklevel=3)


def listed(names: tuple[str, ...]) -> str:
    """'torch', 'torch and accelerate', 'torch, transformers and accelerate'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
