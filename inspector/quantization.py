"""What a config's quantization_config says about the stored weights, from the config alone; pure arithmetic.

One place maps every quantization_config spelling to a scheme (name, bits per weight, group size) and sizes the
weights a pre-quantized checkpoint stores when its safetensors headers were not read (GPTQ/AWQ packing, FP8 block
scales, bitsandbytes, MXFP4, compressed-tensors). With headers, checkpoint.loaded_bytes measures them instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .parameters import layer_of
from .results import BuiltArchitecture

_HALF = 2  # GPTQ/AWQ scales are fp16; compressed-tensors' bf16


@dataclass(frozen=True)
class Scheme:
    method: str  # quant_method as the config spells it ("gptq", "awq", "fp8", "bitsandbytes", ...)
    bits: int  # bits per quantized weight
    group_size: int | None  # weights sharing one scale along the input dimension; None: per row / per tensor / block
    label: str  # how reports name it: "GPTQ 4-bit, group 128"
    block: tuple[int, int] | None = None  # FP8 fine-grained scales: one per block of [rows, columns]
    double_quant: bool = False  # bitsandbytes 4-bit nested quantization

    @property
    def exact(self) -> bool:
        """Whether weight_bytes reproduces what the files store (else it is a close estimate)."""
        return self.method in ("gptq", "awq", "fp8", "bitsandbytes")


def scheme(quantization_config: Any) -> Scheme | None:
    """The scheme a quantization_config names, or None when there is none (or it is not understood)."""
    qc = quantization_config
    if not isinstance(qc, Mapping):
        return None
    method = str(qc.get("quant_method") or "").lower()
    if not method and any(k in qc for k in ("load_in_4bit", "load_in_8bit", "_load_in_4bit", "_load_in_8bit")):
        method = "bitsandbytes"
    if method in ("gptq", "awq"):
        bits = qc.get("bits") or qc.get("w_bit") or 4
        group = qc.get("group_size") or qc.get("q_group_size")
        group = group if isinstance(group, int) and group > 0 else None
        tail = f", group {group}" if group else ", per channel"
        return Scheme(method, int(bits), group, f"{method.upper()} {bits}-bit{tail}")
    if method == "fp8":
        block = qc.get("weight_block_size")
        block = (int(block[0]), int(block[1])) if isinstance(block, (list, tuple)) and len(block) == 2 else None
        tail = f", {block[0]}x{block[1]} block scales" if block else ", one scale per tensor"
        return Scheme("fp8", 8, None, f"FP8 (e4m3){tail}", block=block)
    if method == "bitsandbytes":
        if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
            return Scheme("bitsandbytes", 8, None, "bitsandbytes int8")
        kind = str(qc.get("bnb_4bit_quant_type") or "fp4")
        double = bool(qc.get("bnb_4bit_use_double_quant"))
        return Scheme("bitsandbytes", 4, 64, f"bitsandbytes {kind}" + (" double quant" if double else ""),
                      double_quant=double)  # fmt: skip
    if method == "mxfp4":
        return Scheme("mxfp4", 4, 32, "MXFP4 (4-bit, one 8-bit scale per 32)")
    if method == "compressed-tensors":
        for group in (qc.get("config_groups") or {}).values():
            weights = group.get("weights") if isinstance(group, Mapping) else None
            if isinstance(weights, Mapping) and isinstance(weights.get("num_bits"), int):
                size = weights.get("group_size")
                size = size if isinstance(size, int) and size > 0 else None
                kind = weights.get("type") or "int"
                tail = f", group {size}" if size else f", {weights.get('strategy') or 'per channel'}"
                return Scheme("compressed-tensors", weights["num_bits"], size,
                              f"compressed-tensors {kind}{weights['num_bits']}{tail}")  # fmt: skip
        return None
    return None


def weight_bytes(s: Scheme, numel: int, rows: int) -> int:
    """Bytes a checkpoint stores for one quantized weight of `rows` outputs x numel / rows inputs."""
    columns = numel // max(rows, 1)
    if s.method in ("gptq", "awq"):
        groups = -(-columns // (s.group_size or columns))
        packed = numel * s.bits // 8  # qweight: 32 / bits values per int32
        zeros = groups * rows * s.bits // 8  # qzeros, packed the same way
        scales = groups * rows * _HALF
        g_idx = 4 * columns if s.method == "gptq" else 0  # GPTQ's int32 group index per input column
        return packed + zeros + scales + g_idx
    if s.method == "fp8":
        if s.block is None:
            return numel + 4
        return numel + 4 * -(-rows // s.block[0]) * -(-columns // s.block[1])  # fp32 weight_scale_inv per block
    if s.method == "bitsandbytes":
        from .schemes import four_bit_bytes, int8_bytes

        # an int8 checkpoint also stores each module's 1-byte weight_format beside the weight and its SCB
        return int8_bytes(numel, rows) + 1 if s.bits == 8 else four_bit_bytes(numel, s.double_quant)
    if s.method == "mxfp4":
        return numel // 2 + numel // 32  # two values per byte + one uint8 scale per 32
    groups = -(-columns // (s.group_size or columns))
    return numel * s.bits // 8 + groups * rows * _HALF  # compressed-tensors: packed + bf16 scales (estimate)


def _skipped(qc: Mapping[str, Any]) -> list[str]:
    names = qc.get("modules_to_not_convert") or qc.get("ignore") or []
    return [n for n in names if isinstance(n, str)]


def _is_skipped(name: str, patterns: list[str]) -> bool:
    module = name.rsplit(".", 1)[0]
    for pattern in patterns:
        if pattern.startswith("re:"):
            if re.search(pattern[3:], module):
                return True
        elif module == pattern or module.endswith("." + pattern) or f".{pattern}." in f".{module}.":
            return True
    return False


def stored_bytes(built: BuiltArchitecture, config: Mapping[str, Any], base_bytes: int) -> dict[str, int] | None:
    """Bytes each parameter takes as a pre-quantized checkpoint stores it, from the config alone.

    Quantized: the Linear weights inside the decoder layers (bitsandbytes: those transformers would convert) and,
    except for bitsandbytes, fused 3-D expert weights; not the modules quantization_config leaves out. The rest
    is stored at `base_bytes` per element (the config's dtype). None when the config names no known scheme.
    """
    qc = config.get("quantization_config")
    s = scheme(qc)
    if s is None:
        return None
    skip = _skipped(qc)
    sizes: dict[str, int] = {}
    for name, shape in built.parameters.items():
        numel = 1
        for d in shape:
            numel *= d
        rows = built.quantizable.get(name)
        if s.method == "mxfp4":
            quantized = ".experts." in name and len(shape) == 3 and not name.endswith("_bias")
            rows = shape[-1] if quantized else None  # gpt-oss stores [experts, out, in] blocks
        elif rows is not None and s.method != "bitsandbytes" and layer_of(name) is None:
            rows = None  # GPTQ/AWQ/FP8 quantize the decoder layers only, never the head or embeddings
        elif rows is None and s.method != "bitsandbytes" and ".experts." in name and len(shape) == 3:
            rows = shape[0] * shape[1]  # fused experts, each [out, in], stored quantized per expert
        if rows and not _is_skipped(name, skip):
            sizes[name] = weight_bytes(s, numel, rows)
        else:
            sizes[name] = numel * base_bytes
    return sizes


def note(s: Scheme, from_headers: bool) -> str:
    """The report's line naming the scheme and how "as stored" was sized."""
    how = (
        "sized from the stored tensors' headers"
        if from_headers
        else "sized from quantization_config alone (no safetensors headers read): "
        + ("packed weights, zero points and scales as the format stores them" if s.exact else "an estimate")
    )
    return f"Pre-quantized checkpoint: {s.label} (quantization_config); the as-stored row is {how}."
