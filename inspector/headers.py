"""The safetensors header format: read a header from a file and validate it into TensorEntry values."""

from __future__ import annotations

import json
import math
import os
import reprlib
import struct
from pathlib import Path
from typing import Any

from .dtypes import SAFETENSORS_BITS
from .errors import BadFilesError
from .results import TensorEntry

# huggingface_hub refuses headers over 25 MB; so do we, before reading a byte of them.
MAX_HEADER_BYTES = 25_000_000

# The format stores shapes and offsets as 64-bit unsigned integers (safetensors rejects larger ones).
MAX_U64 = 2**64 - 1

DTYPE_BITS = SAFETENSORS_BITS  # bits per element of every dtype the format defines (dtypes.py)

_HINT = "The file may be truncated or not a safetensors file; re-upload it or report it to the repo's owner."


def expected_nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    # Integer arithmetic: a float division loses precision above 2**53 and overflows above ~1e308.
    return (math.prod(shape) * DTYPE_BITS[dtype] + 7) // 8


def parse_header(header: dict[str, Any], filename: str) -> dict[str, TensorEntry]:
    """Validate a decoded header (as in the file, `__metadata__` allowed) into entries.

    Rejects what the safetensors format forbids: unknown dtypes, negative or non-integer shapes,
    offsets that do not match dtype x shape, and offsets that overlap or leave holes.
    """
    if not isinstance(header, dict):
        raise BadFilesError(f"'{filename}' has a safetensors header that is not a JSON object", _HINT)
    entries: dict[str, TensorEntry] = {}
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = _Where(name, filename)
        if not isinstance(info, dict):
            raise BadFilesError(f"{where} is not described by a JSON object", _HINT)
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise BadFilesError(f"{where} has unknown dtype {reprlib.repr(dtype)}", _HINT)
        if not isinstance(shape, (list, tuple)) or not all(_is_count(d) for d in shape):
            raise BadFilesError(f"{where} has an invalid shape {reprlib.repr(shape)}", _HINT)
        if not _fits_u64(shape, DTYPE_BITS[dtype]):
            raise BadFilesError(f"{where} has a shape {reprlib.repr(shape)} too large for 64-bit sizes", _HINT)
        if (
            not isinstance(offsets, (list, tuple))
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise BadFilesError(f"{where} has invalid data_offsets {reprlib.repr(offsets)}", _HINT)
        shape_t = tuple(int(d) for d in shape)
        nbytes = offsets[1] - offsets[0]
        if nbytes != expected_nbytes(dtype, shape_t):
            raise BadFilesError(
                f"{where} declares {nbytes} bytes but {dtype} x {reprlib.repr(list(shape_t))} needs "
                f"{expected_nbytes(dtype, shape_t)}",
                _HINT,
            )
        entries[name] = TensorEntry(dtype=dtype, shape=shape_t, nbytes=nbytes)
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else "leaves a gap before it"
            raise BadFilesError(
                f"tensor {quote(name)} in {quote(filename)} {problem} (data_offsets start at {begin})", _HINT
            )
        position = end
    return entries


def read_local_header(path: Path) -> dict[str, TensorEntry]:
    """Read only the header of a local safetensors file (8-byte length, then JSON); refuse a file cut short."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise BadFilesError(f"'{path}' is too small to be a safetensors file", _HINT)
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise BadFilesError(
                f"'{path}' declares a {length}-byte safetensors header (the limit is {MAX_HEADER_BYTES})", _HINT
            )
        raw = f.read(length)
    if len(raw) < length:
        raise BadFilesError(f"'{path}' ends inside its safetensors header", _HINT)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # also UnicodeDecodeError, JSONDecodeError, ints over 4300 digits
        raise BadFilesError(f"'{path}' has a safetensors header that is not valid UTF-8 JSON", _HINT) from None
    entries = parse_header(header, str(path))
    # parse_header checked that the data is contiguous from offset 0: it ends at the sum of the tensors' bytes.
    expected = 8 + length + sum(e.nbytes for e in entries.values())
    if size < expected:  # safetensors refuses such a file (and from_pretrained with it)
        raise BadFilesError(
            f"'{path}' is truncated: {size:,} bytes, where its header describes {expected:,} "
            f"(8 + a {length:,}-byte header + {expected - 8 - length:,} bytes of tensor data)",
            "Download the file again.",
        )
    return entries


class _Where:
    """`tensor 'name' in 'file'` for an error message, formatted only when one is raised."""

    __slots__ = ("name", "filename")

    def __init__(self, name: str, filename: str) -> None:
        self.name, self.filename = name, filename

    def __str__(self) -> str:
        return f"tensor {quote(self.name)} in {quote(self.filename)}"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U64


def _fits_u64(shape: Any, bits: int) -> bool:
    """Whether numel x bits fits 64 bits, as safetensors checks; stops early (no giant products)."""
    total = bits
    for dim in shape:
        total *= dim
        if total == 0:
            return True
        if total > MAX_U64:
            return False
    return True


def quote(text: Any) -> str:
    """'text' as in every message, or its escaped repr when it holds newlines or other control characters."""
    text = str(text)
    return f"'{text}'" if text.isprintable() else repr(text)
