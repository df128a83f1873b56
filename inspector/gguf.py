"""The GGUF file format: a bounded parser of the header (metadata and tensor infos) and the ggml type table.

Pure Python (struct only): no numpy, no torch, no gguf package. The parser works on a byte buffer that may
hold only the start of a file; when the header runs past the buffer it returns `NeedBytes` (how many bytes
from the start it needs at least, and an estimate of the whole header), so a caller can grow a Range read
in few requests. Large arrays (tokenizer tokens, merges, scores) are walked, never materialised: they are
kept as `GGUFArray(item_type, count)`; small ones (per-layer `head_count_kv`, ...) are kept as tuples.

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (v2 and v3; v1's 32-bit counts are
refused). The byte order is detected as ggml-org's gguf-py does: a version whose low 16 bits are zero is
read big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from .errors import BadFilesError
from .results import frozen

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT in ggml's gguf.h
GGML_MAX_DIMS = 4  # ggml tensors have at most 4 dimensions (ggml.h)
MAX_HEADER_BYTES = 256 * 2**20  # a real header is < 10 MB (Llama-3: ~7.9 MB); a bigger one is refused
MAX_KEY_BYTES = 65_535  # the spec's limit for a key
MAX_DEPTH = 8  # arrays of arrays; real files nest at most 2 levels
KEEP_ARRAY_ITEMS = 4096  # arrays up to this long are kept (per-layer values); longer ones are summarised
KEEP_NESTED_ITEMS = 64
MAX_TENSORS = 1_000_000  # DeepSeek-V3 has ~1,000 tensors per file; a million is beyond any real model

_HINT = "The file may be truncated or not a GGUF file; re-download it or report it to the repo's owner."


# ---------------------------------------------------------------- the ggml type table


# Block size (elements per block) and type size (bytes per block) of every ggml type, from ggml's
# `type_traits` (ggml/src/ggml.c) as gguf-py mirrors it in GGML_QUANT_SIZES (gguf 0.19.0,
# gguf/constants.py, with QK_K = 256). tests/test_gguf.py compares this table with the installed gguf
# package's. Types removed from ggml (Q4_2/Q4_3 = 4/5, Q4_0_4_4... = 31-33, IQ4_NL_4_4... = 36-38) are
# not listed: a tensor of such a type cannot be sized and its file is refused.
@frozen
class GGMLType:
    id: int
    name: str
    block_size: int
    type_size: int

    @property
    def bits_per_weight(self) -> float:
        return self.type_size * 8 / self.block_size


GGML_TYPES: dict[int, GGMLType] = {
    t.id: t
    for t in (
        GGMLType(0, "F32", 1, 4),
        GGMLType(1, "F16", 1, 2),
        GGMLType(2, "Q4_0", 32, 2 + 16),
        GGMLType(3, "Q4_1", 32, 2 + 2 + 16),
        GGMLType(6, "Q5_0", 32, 2 + 4 + 16),
        GGMLType(7, "Q5_1", 32, 2 + 2 + 4 + 16),
        GGMLType(8, "Q8_0", 32, 2 + 32),
        GGMLType(9, "Q8_1", 32, 4 + 4 + 32),
        GGMLType(10, "Q2_K", 256, 2 + 2 + 256 // 16 + 256 // 4),
        GGMLType(11, "Q3_K", 256, 2 + 256 // 4 + 256 // 8 + 12),
        GGMLType(12, "Q4_K", 256, 2 + 2 + 256 // 2 + 12),
        GGMLType(13, "Q5_K", 256, 2 + 2 + 256 // 2 + 256 // 8 + 12),
        GGMLType(14, "Q6_K", 256, 2 + 256 // 2 + 256 // 4 + 256 // 16),
        GGMLType(15, "Q8_K", 256, 4 + 256 + 256 // 8),
        GGMLType(16, "IQ2_XXS", 256, 2 + 256 // 4),
        GGMLType(17, "IQ2_XS", 256, 2 + 256 // 4 + 256 // 32),
        GGMLType(18, "IQ3_XXS", 256, 2 + 256 // 4 + 256 // 8),
        GGMLType(19, "IQ1_S", 256, 2 + 256 // 8 + 256 // 16),
        GGMLType(20, "IQ4_NL", 32, 2 + 16),
        GGMLType(21, "IQ3_S", 256, 2 + 256 // 4 + 256 // 8 + 256 // 32 + 4),
        GGMLType(22, "IQ2_S", 256, 2 + 256 // 4 + 256 // 16),
        GGMLType(23, "IQ4_XS", 256, 2 + 2 + 256 // 2 + 256 // 64),
        GGMLType(24, "I8", 1, 1),
        GGMLType(25, "I16", 1, 2),
        GGMLType(26, "I32", 1, 4),
        GGMLType(27, "I64", 1, 8),
        GGMLType(28, "F64", 1, 8),
        GGMLType(29, "IQ1_M", 256, 256 // 8 + 256 // 16 + 256 // 32),
        GGMLType(30, "BF16", 1, 2),
        GGMLType(34, "TQ1_0", 256, 2 + 4 * 13),
        GGMLType(35, "TQ2_0", 256, 2 + 64),
        GGMLType(39, "MXFP4", 32, 1 + 16),
        GGMLType(40, "NVFP4", 64, 4 + 32),
        GGMLType(41, "Q1_0", 128, 2 + 16),
    )
}

# general.file_type values: llama.cpp's `llama_ftype` (include/llama.h, LLAMA_FTYPE_MOSTLY_<name>), as
# gguf-py mirrors it in LlamaFileType (gguf 0.19.0). Removed values (4-6, 33-35) are not listed.
LLAMA_FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 1024: "GUESSED",
}  # fmt: skip


def tensor_nbytes(ggml_type: GGMLType, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor as ggml stores it (ggml_nbytes for a contiguous tensor): rows of whole blocks."""
    elements = 1
    for dim in shape:
        elements *= dim
    return elements // ggml_type.block_size * ggml_type.type_size


# ---------------------------------------------------------------- parsed values


class ValueType:
    """GGUF metadata value types (gguf.md `gguf_metadata_value_type`)."""

    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
    NAMES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array",
             "uint64", "int64", "float64")  # fmt: skip


# tokenizer.ggml.model values whose files have no scores / no merges array (llama.cpp's llama-vocab.cpp).
_NO_SCORES = frozenset({"gpt2"})
_NO_MERGES = frozenset({"llama", "t5", "bert", "rwkv", "none", "no_vocab"})

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_SCALAR_SIZE = {t: struct.calcsize("<" + c) for t, c in _SCALAR.items()}


@frozen
class GGUFArray:
    """An array too long to keep (tokenizer tokens, scores, merges): its item type and length only."""

    item_type: str
    count: int


@frozen
class GGUFTensor:
    """One tensor info: ggml's dims (ne[0] first, the fastest-varying), type, offset in the data section."""

    name: str
    shape: tuple[int, ...]
    ggml_type: GGMLType
    offset: int

    @property
    def elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.ggml_type, self.shape)


@frozen
class GGUFHeader:
    """A parsed GGUF header. `header_bytes`: where the tensor infos end; `data_offset`: where tensor data starts
    (header_bytes rounded up to `alignment`); `data_bytes`: the data section's length (end of the last tensor)."""

    filename: str
    version: int
    byte_order: str  # "little" | "big"
    metadata: Mapping[str, Any]
    tensors: tuple[GGUFTensor, ...]
    alignment: int
    header_bytes: int
    data_offset: int
    data_bytes: int
    value_types: Mapping[str, str] = field(default_factory=dict)  # key -> GGUF type name ("uint32", "array")

    @property
    def file_bytes(self) -> int:
        """The smallest size a complete file with this header can have. With no tensors it is the header: the
        padding to the data section's alignment is never read (llama.cpp's own vocab-only files end there, 4
        bytes before the aligned offset in ggml-vocab-llama-bpe.gguf)."""
        return self.data_offset + self.data_bytes if self.tensors else self.header_bytes


@frozen
class NeedBytes:
    """The buffer ended inside the header: at least `minimum` bytes from the start are needed, probably `estimate`."""

    minimum: int
    estimate: int


class _Short(Exception):
    def __init__(self, minimum: int, estimate: int | None = None) -> None:
        self.minimum, self.estimate = minimum, estimate if estimate is not None else minimum


# ---------------------------------------------------------------- the parser


def parse_gguf(
    buf: bytes | bytearray | memoryview, filename: str, file_size: int | None = None
) -> GGUFHeader | NeedBytes:
    """Parse the GGUF header at the start of `buf` (the first len(buf) bytes of a file of `file_size` bytes).

    Returns the header, or NeedBytes when `buf` ends inside it (never when `buf` is the whole file: then a
    truncated header is a BadFilesError). Every count and length is checked against what the file can hold
    before anything is allocated; the only exception raised on bad input is BadFilesError.
    """
    data = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf.cast("B")
    limit = min(file_size, MAX_HEADER_BYTES) if file_size is not None else MAX_HEADER_BYTES
    complete = file_size is not None and len(data) >= file_size
    try:
        return _Parser(data, filename, limit, complete).header()
    except _Short as short:
        if complete or short.minimum > limit:
            if file_size is not None and short.minimum > file_size:
                raise BadFilesError(f"'{filename}' ends inside its GGUF header ({file_size:,} bytes)", _HINT) from None
            raise BadFilesError(
                f"'{filename}' has a GGUF header longer than {MAX_HEADER_BYTES:,} bytes, beyond any real model", _HINT
            ) from None
        return NeedBytes(short.minimum, min(max(short.estimate, short.minimum), limit))


class _Parser:
    def __init__(self, data: memoryview, filename: str, limit: int, complete: bool) -> None:
        self.data, self.filename, self.limit, self.complete = data, filename, limit, complete
        self.pos = 0
        self.order = "<"
        self.seen: set[str] = set()  # metadata keys parsed so far
        self.tokenizer_model: str | None = None
        self.tokens: tuple[int, float] | None = None  # (count, bytes per token string) once known

    # -- primitives

    def bad(self, what: str) -> BadFilesError:
        # a key read from a broken file may hold newlines or other control characters: the message stays one line
        what = "".join(c if c.isprintable() else repr(c)[1:-1] for c in what)
        return BadFilesError(f"'{self.filename}' {what}", _HINT)

    def need(self, n: int) -> None:
        end = self.pos + n
        if end > self.limit:
            raise _Short(end)  # beyond the file (or any real header): parse_gguf reports it
        if end > len(self.data):
            raise _Short(end)

    def scalar(self, vtype: int) -> Any:
        size = _SCALAR_SIZE[vtype]
        self.need(size)
        (value,) = struct.unpack_from(self.order + _SCALAR[vtype], self.data, self.pos)
        self.pos += size
        return value

    def u32(self) -> int:
        return self.scalar(ValueType.UINT32)

    def u64(self) -> int:
        return self.scalar(ValueType.UINT64)

    def string(self, what: str, keep: bool = True, max_len: int | None = None) -> str | None:
        length = self.u64()
        if max_len is not None and length > max_len:
            raise self.bad(f"has a {what} of {length:,} bytes (at most {max_len:,} allowed)")
        if self.pos + length > self.limit:
            raise self.bad(f"declares a {what} of {length:,} bytes, more than the file holds")
        self.need(length)
        start, self.pos = self.pos, self.pos + length
        if not keep:
            return None
        return bytes(self.data[start : self.pos]).decode("utf-8", errors="replace")

    # -- structure

    def header(self) -> GGUFHeader:
        self.need(4)
        if bytes(self.data[:4]) != MAGIC:
            raise self.bad("is not a GGUF file (it does not start with 'GGUF')")
        self.pos = 4
        self.need(4)
        (version,) = struct.unpack_from("<I", self.data, 4)
        if version & 0xFFFF == 0:  # as gguf-py: a byte-swapped small version means a big-endian file
            self.order = ">"
            (version,) = struct.unpack_from(">I", self.data, 4)
        self.pos = 8
        if version == 1:
            raise self.bad("is GGUF version 1 (2023, 32-bit counts), which llama.cpp no longer reads")
        if version not in (2, 3):
            raise self.bad(f"has GGUF version {version}; hfsize reads versions 2 and 3")
        tensor_count, kv_count = self.u64(), self.u64()
        # Each KV takes at least 12 bytes (key length + value type) and each tensor info at least 24.
        if kv_count * 12 > self.limit - self.pos:
            raise self.bad(f"declares {kv_count:,} metadata entries, more than the file can hold")
        if tensor_count > MAX_TENSORS or tensor_count * 24 > self.limit - self.pos:
            raise self.bad(f"declares {tensor_count:,} tensors, more than the file can hold")
        metadata: dict[str, Any] = {}
        types: dict[str, str] = {}
        for i in range(kv_count):
            key = self.string("metadata key", max_len=MAX_KEY_BYTES)
            assert key is not None
            vtype = self.u32()
            value = self.value(vtype, key, depth=0, kv_left=kv_count - i - 1, tensors=tensor_count)
            if key in metadata:
                raise self.bad(f"has the metadata key '{key}' twice")
            metadata[key], types[key] = value, ValueType.NAMES[vtype]
            self.seen.add(key)
            if key == "tokenizer.ggml.model" and isinstance(value, str):
                self.tokenizer_model = value
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if types.get("general.alignment", "uint32") != "uint32" or not (
            isinstance(alignment, int) and alignment > 0 and alignment & (alignment - 1) == 0
        ):
            raise self.bad(f"has general.alignment {alignment!r}; it must be a power of two (uint32)")
        tensors = tuple(self.tensor_info(i, tensor_count) for i in range(tensor_count))
        header_bytes = self.pos
        data_offset = -(-header_bytes // alignment) * alignment
        data_bytes = self.check_layout(tensors, alignment)
        return GGUFHeader(
            filename=self.filename,
            version=version,
            byte_order="big" if self.order == ">" else "little",
            metadata=metadata,
            tensors=tensors,
            alignment=alignment,
            header_bytes=header_bytes,
            data_offset=data_offset,
            data_bytes=data_bytes,
            value_types=types,
        )

    def value(self, vtype: int, key: str, depth: int, kv_left: int, tensors: int) -> Any:
        if vtype in _SCALAR:
            return self.scalar(vtype)
        if vtype == ValueType.STRING:
            return self.string(f"string value for '{key}'")
        if vtype != ValueType.ARRAY:
            raise self.bad(f"has an unknown value type {vtype} for metadata key '{key}'")
        if depth >= MAX_DEPTH:
            raise self.bad(f"nests arrays more than {MAX_DEPTH} deep in '{key}'")
        item_type, count = self.u32(), self.u64()
        if item_type in _SCALAR:
            size = _SCALAR_SIZE[item_type]
            if count * size > self.limit - self.pos:
                raise self.bad(f"declares an array of {count:,} items for '{key}', more than the file holds")
            end = self.pos + count * size
            if end > len(self.data):  # fixed-size items: the array's end is known exactly
                raise _Short(end, end + self.tail(key, kv_left, tensors))
            if count > (KEEP_ARRAY_ITEMS if depth == 0 else KEEP_NESTED_ITEMS):
                self.pos = end
                return GGUFArray(ValueType.NAMES[item_type], count)
            items = struct.unpack_from(f"{self.order}{count}{_SCALAR[item_type]}", self.data, self.pos)
            self.pos += count * size
            return tuple(items)
        if item_type not in (ValueType.STRING, ValueType.ARRAY):
            raise self.bad(f"has an array of unknown value type {item_type} for metadata key '{key}'")
        least = 8 if item_type == ValueType.STRING else 12  # a string's length / an array's type + count
        if count * least > self.limit - self.pos:
            raise self.bad(f"declares an array of {count:,} items for '{key}', more than the file holds")
        # Nested arrays are kept only when short, so that kept items stay bounded (4,096 x 64).
        keep = count <= (KEEP_ARRAY_ITEMS if depth == 0 else KEEP_NESTED_ITEMS)
        items: list[Any] = []
        start = self.pos
        if item_type == ValueType.STRING and not keep:
            return self.skip_strings(key, count, kv_left, tensors)
        for done in range(count):
            try:
                if item_type == ValueType.STRING:
                    item = self.string(f"string in '{key}'", keep=keep)
                else:
                    item = self.value(ValueType.ARRAY, key, depth + 1, kv_left, tensors)
            except _Short as short:
                # Extrapolate the rest of this array from its items so far, then the rest of the header.
                per_item = (self.pos - start) / done if done else least
                rest = int((count - done) * per_item) + self.tail(key, kv_left, tensors)
                raise _Short(short.minimum, max(short.minimum, self.pos + rest)) from None
            if keep:
                items.append(item)
        return tuple(items) if keep else GGUFArray(ValueType.NAMES[item_type], count)

    def skip_strings(self, key: str, count: int, kv_left: int, tensors: int) -> GGUFArray:
        """Walk `count` strings without decoding them (the tokenizer's tokens and merges: the header's bulk)."""
        data, pos, end = self.data, self.pos, min(len(self.data), self.limit)
        unpack, fmt = struct.unpack_from, self.order + "Q"
        start, done, length = pos, 0, 0
        while done < count:
            if pos + 8 > end:
                break
            (length,) = unpack(fmt, data, pos)
            if pos + 8 + length > self.limit:
                raise self.bad(f"declares a string in '{key}' of {length:,} bytes, more than the file holds")
            if pos + 8 + length > end:
                break
            pos += 8 + length
            done += 1
        self.pos = pos
        per_item = (pos - start) / done if done else 8
        if key == "tokenizer.ggml.tokens":
            self.tokens = (count, per_item)
        if done == count:
            return GGUFArray("string", count)
        need = pos + 8 if pos + 8 > end else pos + 8 + length
        rest = int((count - done) * per_item) + self.tail(key, kv_left, tensors)
        raise _Short(need, max(need, pos + rest))

    def tail(self, key: str, kv_left: int, tensors: int) -> int:
        """A guess of the header's bytes after metadata `key`, so that the next read rarely falls short.

        The tokenizer's arrays dominate: token_type (int32 per token), scores (float32 per token, not in
        GPT-2-style BPE files) and merges (about one string per token, not in SentencePiece/Unigram/WordPiece
        files) follow the tokens in every converter's order; other keys take ~64 bytes and tensor infos ~96.
        """
        rest = kv_left * 64 + tensors * 96
        if self.tokens is None or kv_left == 0:
            return rest
        count, per_token = self.tokens
        pending = self.seen | {key}
        model = self.tokenizer_model
        if "tokenizer.ggml.token_type" not in pending:
            rest += 4 * count
        if "tokenizer.ggml.scores" not in pending and model not in _NO_SCORES:
            rest += 4 * count
        if "tokenizer.ggml.merges" not in pending and model not in _NO_MERGES:
            rest += int(count * per_token)
        return rest

    def tensor_info(self, index: int, count: int) -> GGUFTensor:
        try:
            name = self.string("tensor name", max_len=MAX_KEY_BYTES)
            assert name is not None
            n_dims = self.u32()
            if n_dims > GGML_MAX_DIMS:
                raise self.bad(f"gives tensor '{name}' {n_dims} dimensions (ggml allows {GGML_MAX_DIMS})")
            shape = tuple(self.u64() for _ in range(n_dims))
            type_id = self.u32()
            offset = self.u64()
        except _Short as short:
            raise _Short(short.minimum, self.pos + (count - index) * 96) from None
        ggml_type = GGML_TYPES.get(type_id)
        if ggml_type is None:
            raise self.bad(f"gives tensor '{name}' the unknown ggml type {type_id}")
        if shape and shape[0] % ggml_type.block_size:
            raise self.bad(
                f"gives tensor '{name}' a row of {shape[0]:,} elements, not a multiple of "
                f"{ggml_type.name}'s block of {ggml_type.block_size}"
            )
        elements = 1
        for dim in shape:
            elements *= dim
        if elements >= 2**63:
            raise self.bad(f"gives tensor '{name}' a shape {list(shape)} too large for 64-bit sizes")
        return GGUFTensor(name, shape, ggml_type, offset)

    def check_layout(self, tensors: tuple[GGUFTensor, ...], alignment: int) -> int:
        """Tensors are aligned and do not overlap (as ggml's gguf_init checks); returns the data section length."""
        seen: set[str] = set()
        spans = []
        for t in tensors:
            if t.name in seen:
                raise self.bad(f"lists tensor '{t.name}' twice")
            seen.add(t.name)
            if t.offset % alignment:
                raise self.bad(f"puts tensor '{t.name}' at offset {t.offset:,}, not a multiple of {alignment}")
            spans.append((t.offset, t.offset + t.nbytes, t.name))
        spans.sort()
        end = 0
        for begin, stop, name in spans:
            if begin < end:
                raise self.bad(f"puts tensor '{name}' over the tensor before it (offset {begin:,})")
            end = stop
        return end


# ---------------------------------------------------------------- reading


def read_local_gguf(path: str, name: str | None = None) -> HeaderRead:
    """The header of a local GGUF file, read in growing chunks (`name`: how messages call the file)."""
    import os

    size = os.path.getsize(path)
    with open(path, "rb") as f:

        def read(start: int, stop: int) -> bytes:
            f.seek(start)
            return f.read(stop - start)

        return grow_read(read, size, name or path)


CHUNK = 2**20  # the first read (1 MiB: a Llama-2 header, ~0.74 MB, in one request) and the bound on over-reading
# Added to each later read's estimate so that its error rarely costs another request. Measured on the 19 real
# vocab-only GGUF files of llama-cpp-python 0.3.36 (headers 0.6-15.8 MB): at most 3 reads and at most
# 786,589 bytes read past the header (tests/test_gguf.py); half a MiB also kept 3 reads, a full MiB over-read.
MARGIN = 3 * CHUNK // 4


@frozen
class HeaderRead:
    """A header and what reading it cost: `bytes_read` from the start of the file in `requests` reads."""

    header: GGUFHeader
    bytes_read: int
    requests: int


def grow_read(read: Callable[[int, int], bytes], file_size: int | None, filename: str) -> HeaderRead:
    """Read a header with `read(start, stop) -> bytes`: one CHUNK, then the estimated rest plus MARGIN.

    A Llama-2 header (~0.74 MB) takes one read; a Llama-3 one (~7.9 MB, tokenizer arrays) two or three.
    """
    stop = CHUNK if file_size is None else min(CHUNK, file_size)
    buf = bytearray(read(0, stop))
    requests = 1
    while True:
        result = parse_gguf(buf, filename, file_size)
        if isinstance(result, GGUFHeader):
            return HeaderRead(result, len(buf), requests)
        if len(buf) < stop:  # the source ended early: what it holds is the whole file
            return HeaderRead(_whole(buf, filename), len(buf), requests)
        stop = result.estimate + MARGIN
        if file_size is not None:
            stop = min(stop, file_size)
        stop = max(stop, result.minimum)
        more = read(len(buf), stop)
        requests += 1
        if not more:
            return HeaderRead(_whole(buf, filename), len(buf), requests)
        buf += more


def _whole(buf: bytearray, filename: str) -> GGUFHeader:
    result = parse_gguf(buf, filename, len(buf))
    assert isinstance(result, GGUFHeader)  # with file_size == len(buf) a short header raises BadFilesError
    return result
