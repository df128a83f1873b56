"""Precision and quantization schemes: one object each, with its label and byte rule. Pure arithmetic.

Two kinds:
  - `LOAD_SCHEMES` size a model as transformers 5.x + bitsandbytes 0.50 load it (measured exactly in
    docs/quantization-rules.md): fp32/bf16/fp16 load every weight in that dtype; the bitsandbytes ones
    quantize only the nn.Linear / Conv1D weights the built architecture names (`needs_architecture`), and the
    output head, tied weights, _keep_in_fp32_modules and fused 3-D MoE experts stay in the load dtype;
  - `PREQUANTIZED` formats a checkpoint is saved in (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors):
    memory is what the files hold ("as_stored"), and each says which of its tensors pack several
    parameters per stored element.
Adding a scheme: one object here (and its name and label in precisions.py), plus its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dtypes import BYTES
from .precisions import AS_STORED, LABELS, PRECISIONS
from .results import BuiltArchitecture, TensorEntry

BNB_BLOCK = 64  # bitsandbytes 4-bit blocksize; transformers never changes it
BNB_NESTED_BLOCK = 256  # double-quant blocksize, hard-coded in bitsandbytes


def int8_bytes(numel: int, rows: int) -> int:
    """bnb int8: 1 byte per weight + one fp32 scale (SCB) per output row."""
    return numel + 4 * rows


def four_bit_bytes(numel: int, double_quant: bool) -> int:
    """bnb 4-bit (nf4 = fp4 in bytes): ceil(n/2) packed + one fp32 absmax per 64 weights + a 16-entry fp32
    quant map; double quant: uint8 absmax + one fp32 absmax per 256 blocks + 256-entry fp32 code + offset."""
    packed = (numel + 1) // 2
    blocks = -(-numel // BNB_BLOCK)
    if not double_quant:
        return packed + 4 * blocks + 64
    return packed + blocks + 4 * -(-blocks // BNB_NESTED_BLOCK) + 1024 + 4 + 64


@dataclass(frozen=True)
class Scheme:
    """How weights load at one precision: `weight_bytes` of each parameter, and the KV cache's dtype."""

    name: str  # the `memory.<name>` key
    dtype: str | None = None  # what non-quantized weights load as; None: the model's load dtype
    needs_architecture: bool = False  # which modules it replaces is known only from the built model

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def kv_dtype(self, load_dtype: str) -> str:
        """transformers' cache takes the model's dtype: the scheme's own, else the load dtype."""
        return self.dtype or load_dtype

    def quantizes(self, name: str, built: BuiltArchitecture) -> bool:
        return False

    def quantized_bytes(self, numel: int, rows: int) -> int:
        raise NotImplementedError

    def weight_bytes(self, name: str, numel: int, built: BuiltArchitecture, load_dtype: str) -> tuple[int, bool]:
        """(bytes, quantized?) of one parameter; `load_dtype` is what the rest loads as."""
        if self.quantizes(name, built):
            return self.quantized_bytes(numel, built.quantizable[name]), True
        dtype = self.dtype or load_dtype
        if dtype == "fp16" and (name in built.keep_fp32 or name in built.keep_fp32_strict):
            dtype = "fp32"
        elif dtype == "bf16" and name in built.keep_fp32_strict:
            dtype = "fp32"
        return numel * BYTES[dtype], False


@dataclass(frozen=True)
class Bnb(Scheme):
    """bitsandbytes, quantizing at load time the Linear weights transformers hands it."""

    needs_architecture: bool = True
    bits: int = 4
    double_quant: bool = False

    def quantizes(self, name: str, built: BuiltArchitecture) -> bool:
        return name in built.quantizable

    def quantized_bytes(self, numel: int, rows: int) -> int:
        return int8_bytes(numel, rows) if self.bits == 8 else four_bit_bytes(numel, self.double_quant)


LOAD_SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("fp32", dtype="fp32"),
        Scheme("bf16", dtype="bf16"),
        Scheme("fp16", dtype="fp16"),
        Bnb("int8", bits=8),
        Bnb("nf4"),
        Bnb("nf4_double_quant", double_quant=True),
        Bnb("fp4"),
    )
}
assert tuple(LOAD_SCHEMES) == PRECISIONS, "precisions.py and schemes.py name the same schemes"


# ---------------------------------------------------------------- pre-quantized checkpoints


def _quant_bits(quant: Mapping[str, Any]) -> int:
    bits = quant.get("bits") or quant.get("w_bit")
    if isinstance(bits, int) and bits in (2, 3, 4, 8):
        return bits
    for group in (quant.get("config_groups") or {}).values():
        num_bits = (group.get("weights") or {}).get("num_bits") if isinstance(group, dict) else None
        if isinstance(num_bits, int) and num_bits in (2, 4, 8):
            return num_bits
    return 4


@dataclass(frozen=True)
class PreQuantized:
    """A checkpoint format that stores quantized weights: sized as stored (`memory.as_stored`)."""

    quant_method: str  # quantization_config.quant_method
    label: str
    packed_suffix: str | None = None  # tensors holding several low-bit values per stored element

    @property
    def name(self) -> str:
        return AS_STORED

    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        """Parameters a stored tensor stands for when this format packs it, else None."""
        if self.packed_suffix is None or not name.endswith(self.packed_suffix):
            return None
        bits = _quant_bits(quant)  # 32/bits values per int32, 8/bits per byte
        return entry.numel * (32 // bits) if entry.dtype in ("I32", "U32") else entry.numel * (8 // bits)


@dataclass(frozen=True)
class Mxfp4(PreQuantized):
    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        return entry.numel * 2 if name.endswith("_blocks") and entry.dtype == "U8" else None  # two 4-bit per byte


@dataclass(frozen=True)
class BnbSerialized(PreQuantized):
    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        packed = quant.get("quant_method") == "bitsandbytes" and entry.dtype == "U8" and name.endswith(".weight")
        return entry.numel * 2 if packed else None  # bnb 4-bit: two values per byte, kept under `.weight`


PREQUANTIZED: dict[str, PreQuantized] = {
    s.quant_method: s
    for s in (
        PreQuantized("gptq", "GPTQ", packed_suffix=".qweight"),
        PreQuantized("awq", "AWQ", packed_suffix=".qweight"),
        PreQuantized("compressed-tensors", "compressed-tensors", packed_suffix=".weight_packed"),
        PreQuantized("fp8", "FP8 block-scaled"),
        Mxfp4("mxfp4", "MXFP4"),
        BnbSerialized("bitsandbytes", "bitsandbytes (serialized)"),
    )
}


def packed_parameters(name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
    """Parameters a packed quantized tensor stands for, or None when no format packs it.

    Packed tensors hold several low-bit values per stored element, so their element count is not a parameter
    count. Asked of every format, whatever the config's quant_method says (uploads mislabel it).
    """
    for scheme in PREQUANTIZED.values():
        found = scheme.packed_parameters(name, entry, quant)
        if found is not None:
            return found
    return None
