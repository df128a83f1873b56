"""Precision and quantization schemes: one object each, with its label and byte rule. Pure arithmetic.

Two kinds:
  - `LOAD_SCHEMES` size a model as transformers 5.x + bitsandbytes 0.50 load it (measured exactly in
    docs/quantization-rules.md): fp32/bf16/fp16 load every weight in that dtype; the bitsandbytes ones
    quantize only the nn.Linear / Conv1D weights the built architecture names (`needs_architecture`), and the
    output head, tied weights, _keep_in_fp32_modules and fused 3-D MoE experts stay in the load dtype;
  - `PREQUANTIZED` formats a checkpoint is saved in (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors):
    memory is what the files hold ("as_stored"). Each reads its own quantization_config spelling into a
    `Quantization` (bits, group size, block, double quant, label), says which of its tensors pack several
    parameters per stored element, and sizes its stored weights from the config alone when no safetensors
    headers were read (`stored_bytes`).
Adding a scheme: one object here (and its name and label in precisions.py), plus its tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .dtypes import BYTES
from .names import layer_of
from .precisions import AS_STORED, LABELS, PRECISIONS
from .results import BuiltArchitecture, TensorEntry, frozen

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


@frozen
class Scheme:
    """How weights load at one precision: `weight_bytes` of each parameter, and the KV cache's dtype."""

    name: str  # the `memory.<name>` key
    dtype: str | None = None  # what non-quantized weights load as; None: the model's load dtype
    needs_architecture: bool = False  # which modules it replaces is known only from the built model
    # the share of each device's max_memory transformers lets the weights use when loading at this scheme
    max_memory_fraction: float = 1.0

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


@frozen
class Bnb(Scheme):
    """bitsandbytes, quantizing at load time the Linear weights transformers hands it."""

    needs_architecture: bool = True
    # transformers' bitsandbytes quantizers keep 10% of max_memory for buffers created while quantizing
    # (quantizer_bnb_4bit.py / quantizer_bnb_8bit.py `adjust_max_memory`: max_memory x 0.90)
    max_memory_fraction: float = 0.90
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

_HALF = 2  # GPTQ/AWQ scales are fp16; compressed-tensors' bf16
_BNB_LOAD_KEYS = ("load_in_4bit", "load_in_8bit", "_load_in_4bit", "_load_in_8bit")


def _quant_bits(quant: Mapping[str, Any]) -> int:
    bits = quant.get("bits") or quant.get("w_bit")
    if isinstance(bits, int) and bits in (2, 3, 4, 8):
        return bits
    for group in (quant.get("config_groups") or {}).values():
        num_bits = (group.get("weights") or {}).get("num_bits") if isinstance(group, dict) else None
        if isinstance(num_bits, int) and num_bits in (2, 4, 8):
            return num_bits
    return 4


@frozen
class Quantization:
    """What one checkpoint's quantization_config says: its format and the parameters its stored bytes follow."""

    format: PreQuantized
    bits: int  # bits per quantized weight
    group_size: int | None  # weights sharing one scale along the input dimension; None: per row / per tensor / block
    label: str  # how reports name it: "GPTQ 4-bit, group 128"
    block: tuple[int, int] | None = None  # FP8 fine-grained scales: one per block of [rows, columns]
    double_quant: bool = False  # bitsandbytes 4-bit nested quantization

    @property
    def exact(self) -> bool:
        """Whether weight_bytes reproduces what the files store (else it is a close estimate)."""
        return self.format.exact

    def weight_bytes(self, numel: int, rows: int) -> int:
        """Bytes a checkpoint stores for one quantized weight of `rows` outputs x numel / rows inputs."""
        return self.format.stored_weight_bytes(self, numel, rows)

    def note(self, from_headers: bool) -> str:
        """The report's line naming the scheme and how "as stored" was sized."""
        how = (
            "sized from the stored tensors' headers"
            if from_headers
            else "sized from quantization_config alone (no safetensors headers read): "
            + ("packed weights, zero points and scales as the format stores them" if self.exact else "an estimate")
        )
        return f"Pre-quantized checkpoint: {self.label} (quantization_config); the as-stored row is {how}."


@frozen
class PreQuantized:
    """A checkpoint format that stores quantized weights: sized as stored (`memory.as_stored`).

    Each format knows its config spelling (`parse`), which stored tensors pack several parameters per element
    (`packed_parameters`, from the headers) and, for when no headers were read, which parameters it stores
    quantized (`stored_rows`) and in how many bytes (`stored_weight_bytes`).
    """

    quant_method: str  # quantization_config.quant_method
    label: str
    packed_suffix: str | None = None  # tensors holding several low-bit values per stored element
    exact: bool = True  # whether stored_weight_bytes is what the files store (else a close estimate)

    @property
    def name(self) -> str:
        return AS_STORED

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        """The parameters this format's quantization_config spells, or None when it is not understood."""
        raise NotImplementedError

    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        """Parameters a stored tensor stands for when this format packs it, else None."""
        if self.packed_suffix is None or not name.endswith(self.packed_suffix):
            return None
        bits = _quant_bits(quant)  # 32/bits values per int32, 8/bits per byte
        return entry.numel * (32 // bits) if entry.dtype in ("I32", "U32") else entry.numel * (8 // bits)

    def stored_rows(self, name: str, shape: tuple[int, ...], built: BuiltArchitecture) -> int | None:
        """Output rows of a parameter the checkpoint stores quantized, else None: the Linear weights inside the
        decoder layers (never the head or embeddings) and fused 3-D expert weights, each [out, in] per expert."""
        rows = built.quantizable.get(name)
        if rows is not None:
            return rows if layer_of(name) is not None else None
        return shape[0] * shape[1] if ".experts." in name and len(shape) == 3 else None

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        raise NotImplementedError


@frozen
class GroupQuantized(PreQuantized):
    """GPTQ / AWQ: int32-packed weights and zero points, fp16 scales per group of input columns."""

    group_index: bool = False  # GPTQ's int32 group index per input column

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        bits = quant.get("bits") or quant.get("w_bit") or 4
        group = quant.get("group_size") or quant.get("q_group_size")
        group = group if isinstance(group, int) and group > 0 else None
        tail = f", group {group}" if group else ", per channel"
        return Quantization(self, int(bits), group, f"{self.quant_method.upper()} {bits}-bit{tail}")

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        columns = numel // max(rows, 1)
        groups = -(-columns // (q.group_size or columns))
        packed = numel * q.bits // 8  # qweight: 32 / bits values per int32
        zeros = groups * rows * q.bits // 8  # qzeros, packed the same way
        scales = groups * rows * _HALF
        g_idx = 4 * columns if self.group_index else 0
        return packed + zeros + scales + g_idx


@frozen
class Fp8(PreQuantized):
    """FP8 e4m3 weights with fp32 scales: one per tensor, or one per block (`weight_block_size`)."""

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        block = quant.get("weight_block_size")
        block = (int(block[0]), int(block[1])) if isinstance(block, (list, tuple)) and len(block) == 2 else None
        tail = f", {block[0]}x{block[1]} block scales" if block else ", one scale per tensor"
        return Quantization(self, 8, None, f"FP8 (e4m3){tail}", block=block)

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        if q.block is None:
            return numel + 4
        columns = numel // max(rows, 1)
        return numel + 4 * -(-rows // q.block[0]) * -(-columns // q.block[1])  # fp32 weight_scale_inv per block


@frozen
class Mxfp4(PreQuantized):
    """MXFP4 (gpt-oss): the fused experts' weights as 4-bit `_blocks` with one uint8 scale per 32."""

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        return Quantization(self, 4, 32, "MXFP4 (4-bit, one 8-bit scale per 32)")

    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        return entry.numel * 2 if name.endswith("_blocks") and entry.dtype == "U8" else None  # two 4-bit per byte

    def stored_rows(self, name: str, shape: tuple[int, ...], built: BuiltArchitecture) -> int | None:
        quantized = ".experts." in name and len(shape) == 3 and not name.endswith("_bias")
        return shape[-1] if quantized else None  # gpt-oss stores [experts, out, in] blocks

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        return numel // 2 + numel // 32  # two values per byte + one uint8 scale per 32


@frozen
class BnbSerialized(PreQuantized):
    """A bitsandbytes model saved after loading: the Linear weights transformers converts, as bnb stores them."""

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        if quant.get("load_in_8bit") or quant.get("_load_in_8bit"):
            return Quantization(self, 8, None, "bitsandbytes int8")
        kind = str(quant.get("bnb_4bit_quant_type") or "fp4")
        double = bool(quant.get("bnb_4bit_use_double_quant"))
        label = f"bitsandbytes {kind}" + (" double quant" if double else "")
        return Quantization(self, 4, BNB_BLOCK, label, double_quant=double)

    def packed_parameters(self, name: str, entry: TensorEntry, quant: Mapping[str, Any]) -> int | None:
        packed = quant.get("quant_method") == "bitsandbytes" and entry.dtype == "U8" and name.endswith(".weight")
        return entry.numel * 2 if packed else None  # bnb 4-bit: two values per byte, kept under `.weight`

    def stored_rows(self, name: str, shape: tuple[int, ...], built: BuiltArchitecture) -> int | None:
        return built.quantizable.get(name)  # what transformers would convert, as at load time

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        # an int8 checkpoint also stores each module's 1-byte weight_format beside the weight and its SCB
        return int8_bytes(numel, rows) + 1 if q.bits == 8 else four_bit_bytes(numel, q.double_quant)


@frozen
class CompressedTensors(PreQuantized):
    """compressed-tensors (llm-compressor): the first config group's weights, packed, with bf16 group scales."""

    exact: bool = False

    def parse(self, quant: Mapping[str, Any]) -> Quantization | None:
        for group in (quant.get("config_groups") or {}).values():
            weights = group.get("weights") if isinstance(group, Mapping) else None
            if isinstance(weights, Mapping) and isinstance(weights.get("num_bits"), int):
                size = weights.get("group_size")
                size = size if isinstance(size, int) and size > 0 else None
                kind = weights.get("type") or "int"
                tail = f", group {size}" if size else f", {weights.get('strategy') or 'per channel'}"
                label = f"compressed-tensors {kind}{weights['num_bits']}{tail}"
                return Quantization(self, weights["num_bits"], size, label)
        return None

    def stored_weight_bytes(self, q: Quantization, numel: int, rows: int) -> int:
        columns = numel // max(rows, 1)
        groups = -(-columns // (q.group_size or columns))
        return numel * q.bits // 8 + groups * rows * _HALF  # packed + bf16 scales (an estimate)


PREQUANTIZED: dict[str, PreQuantized] = {
    s.quant_method: s
    for s in (
        GroupQuantized("gptq", "GPTQ", packed_suffix=".qweight", group_index=True),
        GroupQuantized("awq", "AWQ", packed_suffix=".qweight"),
        CompressedTensors("compressed-tensors", "compressed-tensors", packed_suffix=".weight_packed"),
        Fp8("fp8", "FP8 block-scaled"),
        Mxfp4("mxfp4", "MXFP4", exact=False),
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


def prequantized(quantization_config: Any) -> Quantization | None:
    """The format and parameters a quantization_config names, or None when there is none (or it is not
    understood). A config without quant_method but with bitsandbytes' load_in_* keys is bitsandbytes."""
    qc = quantization_config
    if not isinstance(qc, Mapping):
        return None
    method = str(qc.get("quant_method") or "").lower()
    if not method and any(k in qc for k in _BNB_LOAD_KEYS):
        method = "bitsandbytes"
    fmt = PREQUANTIZED.get(method)
    return None if fmt is None else fmt.parse(qc)


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
    """Bytes each parameter takes as a pre-quantized checkpoint stores it, from the config alone (with headers,
    checkpoint.loaded_bytes measures them instead).

    Quantized: what the format's `stored_rows` names, except the modules quantization_config leaves out. The
    rest is stored at `base_bytes` per element (the config's dtype). None when the config names no known format.
    """
    qc = config.get("quantization_config")
    q = prequantized(qc)
    if q is None:
        return None
    skip = _skipped(qc)
    sizes: dict[str, int] = {}
    for name, shape in built.parameters.items():
        numel = 1
        for d in shape:
            numel *= d
        rows = q.format.stored_rows(name, shape, built)
        if rows and not _is_skipped(name, skip):
            sizes[name] = q.weight_bytes(numel, rows)
        else:
            sizes[name] = numel * base_bytes
    return sizes
