"""The one dtype table: every dtype hfsize names, with its bits and how configs and safetensors spell it.

Pure data and lookups, no dataclasses of hfsize, so that any stage (and the CLI's --help) may import it.
"""

from __future__ import annotations

from collections.abc import Iterable

# (hfsize name, bits per element, config.json spelling, safetensors spelling); None: no such spelling.
# The safetensors dtypes are every one the format defines (sub-byte types are packed); the names are
# those hfsize reports memory in (fp32/bf16/fp16 weights, fp8 KV cache).
TABLE: tuple[tuple[str, int, str | None, str | None], ...] = (
    ("fp64", 64, "float64", "F64"),
    ("fp32", 32, "float32", "F32"),
    ("bf16", 16, "bfloat16", "BF16"),
    ("fp16", 16, "float16", "F16"),
    ("fp8", 8, "float8_e4m3fn", "F8_E4M3"),
    ("fp8_e5m2", 8, "float8_e5m2", "F8_E5M2"),
    ("fp8_e8m0", 8, None, "F8_E8M0"),
    ("fp6_e2m3", 6, None, "F6_E2M3"),
    ("fp6_e3m2", 6, None, "F6_E3M2"),
    ("fp4", 4, None, "F4"),
    ("bool", 8, "bool", "BOOL"),
    ("uint8", 8, "uint8", "U8"),
    ("int8", 8, "int8", "I8"),
    ("int16", 16, "int16", "I16"),
    ("uint16", 16, "uint16", "U16"),
    ("int32", 32, "int32", "I32"),
    ("uint32", 32, "uint32", "U32"),
    ("int64", 64, "int64", "I64"),
    ("uint64", 64, "uint64", "U64"),
    ("complex64", 64, "complex64", "C64"),
)

SAFETENSORS_BITS: dict[str, int] = {st: bits for _, bits, _, st in TABLE if st is not None}
BYTES: dict[str, int] = {name: bits // 8 for name, bits, _, _ in TABLE if bits % 8 == 0}
FROM_CONFIG: dict[str, str] = {cfg: name for name, _, cfg, _ in TABLE if cfg is not None}
FROM_SAFETENSORS: dict[str, str] = {st: name for name, _, _, st in TABLE if st is not None}
TO_CONFIG: dict[str, str] = {name: cfg for name, _, cfg, _ in TABLE if cfg is not None}
TO_SAFETENSORS: dict[str, str] = {name: st for name, _, _, st in TABLE if st is not None}

# Floats whose stored elements are parameters (not packed, not quantization codes).
FLOAT_SAFETENSORS = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
# The dtypes weights load as without quantization (transformers' dtype="auto" picks one of these).
LOAD_DTYPES = ("fp32", "bf16", "fp16")
# What --kv-dtype accepts.
KV_DTYPES = ("fp32", "bf16", "fp16", "fp8")
# llama.cpp's --cache-type-k/v values (common/arg.cpp kv_cache_types); ggml type ids in engines/llamacpp.py
LLAMA_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


def config_dtype(config: dict) -> str | None:
    """The load dtype a config declares (`dtype`, or `torch_dtype` before transformers 5), when it is one."""
    name = config.get("dtype") or config.get("torch_dtype")
    found = FROM_CONFIG.get(name) if isinstance(name, str) else None
    return found if found in LOAD_DTYPES else None


def bulk_float(entries: Iterable[tuple[str, int]]) -> str | None:
    """The load dtype most elements are stored in, from (safetensors dtype, elements) pairs; None: no floats.

    The bulk, not the first tensor: safetensors writes F32 buffers such as rotary `inv_freq` first even when
    the weights are F16.
    """
    counts: dict[str, int] = {}
    for dtype, numel in entries:
        name = FROM_SAFETENSORS.get(dtype)
        if name in LOAD_DTYPES:
            counts[name] = counts.get(name, 0) + numel
    return max(counts, key=lambda k: counts[k]) if counts else None
