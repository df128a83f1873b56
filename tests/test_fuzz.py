"""Fuzzing the parsers of untrusted input: safetensors headers, config.json and the safetensors index.

Property everywhere: hostile input is either accepted or rejected with an HfsizeError; through the CLI,
a documented exit code (0, 3, 6, 7; never 1, the internal-error code), exactly one `Error: ` line on stderr
and, with --json, the failure's row on stdout; never a traceback. The bugs this file found are fixed and pinned
as regression cases at the end of the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inspector import headers as headers_module
from inspector import hub as hub_module
from inspector.cli import run
from inspector.errors import BadFilesError
from inspector.headers import DTYPE_BITS, MAX_HEADER_BYTES, parse_header, read_local_header
from inspector.results import TensorEntry
from tests.helpers import TINY_LLAMA

MAX_U64 = 2**64 - 1
DOCUMENTED_EXIT_CODES = {0, 3, 6, 7}
DTYPES = sorted(DTYPE_BITS)

# CI budget: the whole file runs in well under a minute. HFSIZE_FUZZ_SCALE=20 fuzzes 20x longer, locally.
SCALE = max(1, int(os.environ.get("HFSIZE_FUZZ_SCALE", "1")))
FAST = settings(max_examples=300 * SCALE, deadline=None)
CLI = settings(max_examples=50 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TINY_GPT2: dict[str, Any] = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_positions": 64,
    "vocab_size": 100,
}


# ---------------------------------------------------------------- environment and helpers


@pytest.fixture(scope="module", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No HFSIZE_DEBUG (it re-raises), and a private architecture cache (fuzzed configs stay out of ~/.cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HFSIZE_DEBUG", raising=False)
        mp.delenv("HFSIZE_NO_CACHE", raising=False)
        mp.setenv("HFSIZE_CACHE", str(tmp_path_factory.mktemp("hfsize_cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")  # local folders only: nothing here may reach the network
        yield


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def _assert_clean_exit(code: int, out: str, err: str, *, command: str = "inspect") -> None:
    """A documented exit code; on failure exactly one `Error: ` line on stderr and the failure's row on stdout."""
    assert "Traceback" not in err, err
    answered = {0, 10, 11} if command == "check" else {0}  # check: 10 does not fit, 11 problems found
    assert code in DOCUMENTED_EXIT_CODES | answered, (code, err)
    if code in answered:
        assert err == "", err
        json.loads(out)  # --json output is one JSON document
        return
    assert out.strip(), "--json printed no failure row"
    row = json.loads(out)  # --json: the failure row, as a batch prints it
    said = " ".join(row["error"].split())[:60]  # stderr's line is the same text on one line (cut at 400 characters)
    assert row["exit_code"] == code and err.startswith(f"Error: {said}"), (row, err)
    assert err.startswith("Error: ") and err.count("\n") == 1 and err.endswith("\n"), err


@pytest.mark.parametrize(
    "code, out, err",
    [
        (7, '{"exit_code": 7, "error": "Building X failed: a"}', "Error: Building X failed: a\nb\n"),  # two lines
        (1, '{"exit_code": 1, "error": "Internal error"}', "Error: Internal error.\n"),  # the bug code
        (5, '{"exit_code": 5, "error": "Could not reach"}', "Error: Could not reach.\n"),  # offline: never
        (6, "", "Error: Config.json is not valid JSON.\n"),  # --json without its row
        (6, '{"exit_code": 6, "error": "Config.json"}', "Traceback (most recent call last):\nError: Config.json\n"),
    ],
    ids=["two-lines", "internal", "network-offline", "no-row", "traceback"],
)
def test_the_clean_exit_check_can_fail(code: int, out: str, err: str) -> None:
    with pytest.raises(AssertionError):
        _assert_clean_exit(code, out, err)


def _folder(scratch: Path, files: dict[str, bytes]) -> Path:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def _safetensors(header: Any, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _nbytes(dtype: str, shape: list[int]) -> int:
    return (math.prod(shape) * DTYPE_BITS[dtype] + 7) // 8


# ---------------------------------------------------------------- strategies

HUGE_INTS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, -(2**63), 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**300, 10**4000]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["", "\n", "a\nb", "\x00", "\ud800", "F16", "BF16", "f16", "F16 "]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
TENSOR_NAMES = st.text(min_size=1, max_size=12).filter(lambda s: s != "__metadata__") | st.sampled_from(
    ["model.embed_tokens.weight", "a\nb", "it's", "\x1b[31mred", "\u2028"]
)
TENSOR_INFOS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "dtype": st.sampled_from(DTYPES) | JSON_VALUES,
            "shape": st.lists(HUGE_INTS | JSON_VALUES, max_size=4) | JSON_VALUES,
            "data_offsets": st.lists(HUGE_INTS, max_size=3) | JSON_VALUES,
            "extra": JSON_VALUES,
        },
    ),
)
ARBITRARY_HEADERS = st.one_of(
    JSON_VALUES,
    st.dictionaries(TENSOR_NAMES | st.just("__metadata__"), TENSOR_INFOS, max_size=5),
)


@st.composite
def valid_headers(draw: st.DrawFn, min_tensors: int = 0) -> tuple[dict[str, Any], int]:
    """A consistent header (contiguous offsets in a random order, keys in another) and its data length."""
    tensors = draw(
        st.dictionaries(
            TENSOR_NAMES,
            st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 7), max_size=4)),
            min_size=min_tensors,
            max_size=6,
        )
    )
    header: dict[str, Any] = {}
    offset = 0
    for name in draw(st.permutations(list(tensors))):
        dtype, shape = tensors[name]
        n = _nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
    order = draw(st.permutations(list(header)))
    return {key: header[key] for key in order}, offset


NOT_A_COUNT = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**64),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
)


@st.composite
def mutated_headers(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A valid header with one hostile change; True when the change must be rejected."""
    header, _ = draw(valid_headers(min_tensors=1))
    names = [k for k in header if k != "__metadata__"]
    name = draw(st.sampled_from(names))
    info = header[name]
    begin, end = info["data_offsets"]
    kind = draw(
        st.sampled_from(
            [
                "dtype", "drop_key", "extra_key", "metadata", "info_not_object", "offset_not_count",
                "offsets_length", "reversed", "shift", "dim_not_count", "dim_change", "overflow", "not_a_list",
            ]
        )
    )  # fmt: skip
    if kind == "dtype":
        info["dtype"] = draw(JSON_VALUES.filter(lambda v: not (isinstance(v, str) and v in DTYPE_BITS)))
        return header, True
    if kind == "drop_key":
        del info[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))]
        return header, True
    if kind == "extra_key":  # safetensors ignores unknown fields: still valid
        info[draw(st.text(max_size=8).filter(lambda k: k not in info))] = draw(JSON_VALUES)
        return header, False
    if kind == "metadata":  # never used for counting: accepted or rejected, but no crash
        header["__metadata__"] = draw(JSON_VALUES)
        return header, False
    if kind == "info_not_object":
        header[name] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return header, True
    if kind == "offset_not_count":
        info["data_offsets"][draw(st.integers(0, 1))] = draw(NOT_A_COUNT)
        return header, True
    if kind == "offsets_length":
        info["data_offsets"] = draw(st.lists(st.integers(0, end + 8), max_size=5).filter(lambda v: len(v) != 2))
        return header, True
    if kind == "reversed":
        info["data_offsets"] = [end, begin]
        return header, begin != end
    if kind == "shift":  # moves one tensor: overlaps, gaps, or negative offsets
        k = draw(st.integers(-begin - 16, 16).filter(lambda k: k != 0))
        info["data_offsets"] = [begin + k, end + k]
        return header, end > begin or begin + k < 0
    if kind == "dim_not_count":
        info["shape"] = [*info["shape"], draw(NOT_A_COUNT)]
        draw(st.randoms()).shuffle(info["shape"])
        return header, True
    if kind == "dim_change":
        if not info["shape"]:
            info["shape"] = [draw(st.integers(0, 2**40))]
        else:
            info["shape"][draw(st.integers(0, len(info["shape"]) - 1))] = draw(st.integers(0, 2**40))
        return header, _nbytes(info["dtype"], info["shape"]) != end - begin
    if kind == "overflow":  # consistent offsets, but numel x bits beyond 64 bits (shapes that overflow int64)
        dims = draw(st.lists(st.integers(2**16, MAX_U64), min_size=2, max_size=5))
        while math.prod(dims) * DTYPE_BITS[info["dtype"]] <= MAX_U64:
            dims.append(2**32)
        info["shape"] = dims
        info["data_offsets"] = [begin, begin + _nbytes(info["dtype"], dims)]
        return header, True
    info["shape"] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, list)))  # not_a_list
    return header, True


def _check_parse(header: Any) -> dict[str, TensorEntry] | None:
    """parse_header either rejects with a one-line BadFilesError or returns entries consistent with the header."""
    try:
        entries = parse_header(header, "model.safetensors")
    except BadFilesError as e:
        assert len(e.message.splitlines()) == 1, e.message
        assert "model.safetensors" in e.message
        return None
    assert isinstance(header, dict) and isinstance(entries, dict)
    assert set(entries) == set(header) - {"__metadata__"}
    spans = []
    for name, entry in entries.items():
        assert isinstance(entry, TensorEntry)
        info = header[name]
        assert entry.dtype == info["dtype"] in DTYPE_BITS
        assert list(entry.shape) == list(info["shape"])
        assert all(type(d) is int and 0 <= d <= MAX_U64 for d in entry.shape)
        assert entry.nbytes == _nbytes(entry.dtype, list(entry.shape)) <= MAX_U64
        spans.append(tuple(info["data_offsets"]))
    position = 0
    for begin, end in sorted(spans):
        assert begin == position
        position = end
    return entries


# ---------------------------------------------------------------- 1. parse_header


@FAST
@given(ARBITRARY_HEADERS)
@example({"t": {"dtype": ["F16"], "shape": [1], "data_offsets": [0, 2]}})  # unhashable dtype: was TypeError
@example({"t": {"dtype": {"a": 1}, "shape": [], "data_offsets": [0, 2]}})
@example({"t": {"dtype": "F16", "shape": [10**200, 10**200], "data_offsets": [0, 2]}})  # was OverflowError
@example({"t": {"dtype": "F16", "shape": [10**4000], "data_offsets": [0, 10**4000]}})
@example({"a\nb": {"dtype": "X"}})  # a newline in a tensor name must not split the error line
@example({"\u2028": {"dtype": "F16", "shape": [1], "data_offsets": [2, 4]}})
@example([])
@example(None)
def test_parse_header_arbitrary_json(header: Any) -> None:
    _check_parse(header)


@FAST
@given(valid_headers())
@example(({"t": {"dtype": "F32", "shape": [2**53 + 1], "data_offsets": [0, 4 * (2**53 + 1)]}}, 4 * (2**53 + 1)))
@example(({"t": {"dtype": "U8", "shape": [2**30, 2**31 - 1], "data_offsets": [0, 2**30 * (2**31 - 1)]}}, 0))
@example(({"t": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2))  # sub-byte types round up
@example(({"z": {"dtype": "F16", "shape": [0], "data_offsets": [0, 0]}}, 0))
def test_parse_header_accepts_valid_headers(case: tuple[dict[str, Any], int]) -> None:
    header, data_length = case
    entries = _check_parse(header)
    assert entries is not None, header
    if data_length:
        assert sum(e.nbytes for e in entries.values()) == data_length


@FAST
@given(mutated_headers())
@example(({"t": {"dtype": "F16", "shape": [2**62, 4], "data_offsets": [0, 2**65]}}, True))  # overflows 64 bits
@example(({"t": {"dtype": "F16", "shape": [-1], "data_offsets": [0, 0]}}, True))
@example(({"t": {"dtype": "F16", "shape": [1], "data_offsets": [-2, 0]}}, True))
@example(({"t": {"dtype": "F16", "shape": [1], "data_offsets": [0.0, 2.0]}}, True))
@example(({"t": {"dtype": "F16", "shape": [1], "data_offsets": [True, 3]}}, True))
@example(({"t": {"dtype": "F16", "shape": [2**64], "data_offsets": [0, 2**65]}}, True))
def test_parse_header_mutations(case: tuple[dict[str, Any], bool]) -> None:
    header, must_reject = case
    entries = _check_parse(header)
    if must_reject:
        assert entries is None, header


# ---------------------------------------------------------------- 2. read_local_header on raw bytes


class _SpyFile:
    """Wraps a real file and records every read size: the length cap must hold before any read."""

    def __init__(self, real: Any, sizes: list[int]) -> None:
        self._real, self._sizes = real, sizes

    def read(self, size: int = -1) -> bytes:
        self._sizes.append(size)
        return self._real.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _SpyFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._real.close()


def _read_header_bytes(path: Path, content: bytes) -> dict[str, TensorEntry] | None:
    path.write_bytes(content)
    sizes: list[int] = []

    def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> _SpyFile:
        return _SpyFile(open(file, mode, *args, **kwargs), sizes)

    with mock.patch.object(headers_module, "open", spy_open, create=True):
        try:
            entries = read_local_header(path)
        except BadFilesError as e:
            entries = None
            assert len(e.message.splitlines()) == 1, e.message
    assert sizes, "the file was not read through open()"
    assert all(0 <= s <= MAX_HEADER_BYTES for s in sizes), sizes  # never unbounded, never past the cap
    return entries


def _with_prefix(length: int, body: bytes) -> bytes:
    return struct.pack("<Q", length) + body


ABSURD_LENGTHS = st.one_of(
    st.sampled_from([0, 1, 2, MAX_HEADER_BYTES - 1, MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1, 2**32, 2**63, MAX_U64]),
    st.integers(0, MAX_U64),
)
NESTING = st.sampled_from([10, 500, 900, 990, 999, 1000, 1001, 10_000, 100_000])


@st.composite
def hostile_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 7))
    if kind == 0:  # random bytes, often shorter than the 8-byte prefix
        return draw(st.binary(max_size=80))
    if kind == 1:  # an absurd declared length over a short body
        return _with_prefix(draw(ABSURD_LENGTHS), draw(st.binary(max_size=80)))
    if kind == 2:  # a valid or hostile header, exact length, with data after it
        header = draw(valid_headers().map(lambda c: c[0]) | mutated_headers().map(lambda c: c[0]) | ARBITRARY_HEADERS)
        raw = json.dumps(header).encode()
        return _with_prefix(len(raw), raw) + draw(st.binary(max_size=16))
    if kind == 3:  # truncated anywhere (prefix or header)
        header, _ = draw(valid_headers())
        content = _safetensors(header)
        return content[: draw(st.integers(0, len(content) - 1))]
    if kind == 4:  # non-UTF-8 bytes inside otherwise valid JSON
        raw = json.dumps({"t": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}).encode()
        at = draw(st.integers(0, len(raw)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]))
        raw = raw[:at] + bad + raw[at:]
        return _with_prefix(len(raw), raw)
    if kind == 5:  # deeply nested JSON, in several places
        n = draw(NESTING)
        nest = draw(st.sampled_from([(b"[" * n, b"]" * n), (b'{"a":' * n, b"1" + b"}" * n)]))
        raw = draw(
            st.sampled_from(
                [
                    nest[0] + nest[1],
                    b'{"t":' + nest[0] + nest[1] + b"}",
                    b'{"t":{"dtype":' + nest[0] + nest[1] + b',"shape":[1],"data_offsets":[0,2]}}',
                    b'{"t":{"dtype":"F16","shape":' + nest[0] + nest[1] + b',"data_offsets":[0,2]}}',
                    b'{"__metadata__":' + nest[0] + nest[1] + b"}",
                    nest[0],  # unterminated
                ]
            )
        )
        return _with_prefix(len(raw), raw)
    if kind == 6:  # JSON that is not an object, or odd JSON text
        raw = draw(
            st.sampled_from(
                [b"[]", b"null", b"1", b'"x"', b"NaN", b"-Infinity", b"1" * 5000, b'{"t":' + b"9" * 5000 + b"}",
                 b"\xef\xbb\xbf{}", b"{} {}", b"", b" ", b"{", b'{"t":{"dtype":"F16","shape":[1]},}']
            )
        )  # fmt: skip
        return _with_prefix(len(raw), raw)
    raw = json.dumps(draw(JSON_VALUES)).encode()  # kind 7: the prefix disagrees with the real length
    return _with_prefix(max(0, len(raw) + draw(st.integers(-8, 8))), raw)


@FAST
@given(content=hostile_files())
@example(content=_with_prefix(2**63, b"{}"))
@example(content=_with_prefix(MAX_HEADER_BYTES + 1, b"{}"))
@example(content=_with_prefix(MAX_HEADER_BYTES, b"{}"))  # within the cap but past the end: truncated
@example(content=_with_prefix(0, b""))
@example(content=_with_prefix(10_000, b"[" * 10_000))
@example(content=_with_prefix(5000, b"1" * 5000))  # over Python's int-digits limit: was ValueError
@example(content=b"\x00" * 7)
def test_read_local_header_hostile_bytes(scratch: Path, content: bytes) -> None:
    _read_header_bytes(scratch / "model.safetensors", content)


@FAST
@given(case=valid_headers(), data=st.binary(max_size=8))
def test_read_local_header_valid_files(scratch: Path, case: tuple[dict[str, Any], int], data: bytes) -> None:
    header, length = case
    entries = _read_header_bytes(scratch / "valid.safetensors", _safetensors(header, b"\0" * length + data))
    assert entries is not None
    assert sum(e.nbytes for e in entries.values()) == length


# ---------------------------------------------------------------- 3. config.json through the real CLI

KNOWN_KEYS = [
    "architectures", "model_type", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
    "num_hidden_layers", "vocab_size", "torch_dtype", "dtype", "rope_scaling", "rope_theta", "max_position_embeddings",
    "tie_word_embeddings", "head_dim", "quantization_config", "sliding_window", "layer_types", "auto_map",
    "num_experts", "num_local_experts", "num_experts_per_tok", "kv_lora_rank", "qk_rope_head_dim", "multi_query",
    "new_decoder_architecture", "n_head", "num_heads", "n_embd", "n_layer", "n_positions", "use_cache",
    "transformers_version", "pad_token_id", "_name_or_path",
]  # fmt: skip
# Layer/expert counts are capped in the random tests to keep them fast; huge counts are pinned below ("layers").
_COUNT_KEYS = {"num_hidden_layers", "n_layer", "num_layers", "num_experts", "num_local_experts"}


CONFIG_BYTES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"\xef\xbb\xbf{}", b"{", b"[" * 100_000, b"{}" * 3, b'{"a":1,}', b"\xff\xfe{\x00}\x00"]),
)


@CLI
@given(raw=CONFIG_BYTES)
def test_config_random_bytes(scratch: Path, raw: bytes) -> None:
    folder = _folder(scratch, {"config.json": raw})
    _assert_clean_exit(*_cli(str(folder), "--json"))


CONFIG_VALUES = st.one_of(
    JSON_VALUES,
    st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), JSON_VALUES, max_size=6),
)


@CLI
@given(config=CONFIG_VALUES)
@example(config={})
@example(config={"model_type": None, "architectures": None})
@example(config={"model_type": "no-such-type", "architectures": "LlamaForCausalLM"})
@example(config={"model_type": "x", "auto_map": {"AutoModel": "evil.Model"}})  # remote code: never run untrusted
def test_config_random_json(scratch: Path, config: Any) -> None:
    folder = _folder(scratch, {"config.json": json.dumps(config).encode()})
    _assert_clean_exit(*_cli(str(folder), "--json"))


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    config = dict(draw(st.sampled_from([TINY_LLAMA, TINY_GPT2])))
    for key in draw(st.lists(st.sampled_from(KNOWN_KEYS), min_size=1, max_size=3, unique=True)):
        value = draw(JSON_VALUES)
        if key in _COUNT_KEYS and isinstance(value, int) and value > 64:
            value = 64
        config[key] = value
    return config


@CLI
@given(config=mutated_configs())
@example(config={**TINY_LLAMA, "hidden_size": "big"})
@example(config={**TINY_LLAMA, "num_hidden_layers": -1})
@example(config={**TINY_LLAMA, "vocab_size": 1e300})
@example(config={**TINY_LLAMA, "model_type": None})
@example(config={**TINY_LLAMA, "rope_scaling": "x"})
@example(config={**TINY_LLAMA, "rope_scaling": {"rope_type": "yarn", "factor": "x"}})
@example(config={**TINY_LLAMA, "torch_dtype": 3})
@example(config={**TINY_LLAMA, "torch_dtype": "bogus"})
@example(config={**TINY_LLAMA, "hidden_size": 2**40})
@example(config={**TINY_LLAMA, "vocab_size": 2**62})
@example(config={**TINY_LLAMA, "head_dim": 2**40})
@example(config={**TINY_LLAMA, "num_attention_heads": 0})
@example(config={**TINY_LLAMA, "quantization_config": "x"})
@example(config={**TINY_LLAMA, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": "x"}})
@example(config={**TINY_GPT2, "head_dim": -1})
@example(config={**TINY_GPT2, "head_dim": 1e308})
def test_config_mutations(scratch: Path, config: dict[str, Any]) -> None:
    folder = _folder(scratch, {"config.json": json.dumps(config).encode()})
    _assert_clean_exit(*_cli(str(folder), "--json"))


COMMANDS = st.sampled_from(["inspect", "check"])


@CLI
@given(case=mutated_headers() | valid_headers().map(lambda c: (c[0], False)), unknown=st.booleans(), command=COMMANDS)
def test_hostile_header_through_cli(
    scratch: Path, case: tuple[dict[str, Any], bool], unknown: bool, command: str
) -> None:
    """A folder with a (mutated) safetensors header: whatever parse_header accepts, the rest must survive."""
    header, _ = case
    config = {"model_type": "no-such-type", "architectures": ["NoSuch"]} if unknown else TINY_LLAMA
    folder = _folder(scratch, {"config.json": json.dumps(config).encode(), "model.safetensors": _safetensors(header)})
    _assert_clean_exit(*_cli(command, str(folder), "--json"), command=command)


# ---------------------------------------------------------------- 4. model.safetensors.index.json


SHARD = "model-00001-of-00001.safetensors"
SHARD_HEADER = {"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}
SHARD_NAMES = st.one_of(
    st.sampled_from(
        [SHARD, "../outside.safetensors", "../../etc/passwd", "/etc/passwd", "sub/../" + SHARD, "./" + SHARD,
         "config.json", "model.safetensors.index.json", "", ".", "..", "nope.safetensors", "a\nb.safetensors"]
    ),
    st.text(max_size=12),
)  # fmt: skip
WEIGHT_MAPS = st.one_of(
    JSON_VALUES,
    st.dictionaries(st.text(max_size=8), SHARD_NAMES, max_size=4),
    st.dictionaries(st.text(max_size=8), SHARD_NAMES | JSON_VALUES, max_size=4),
)
INDEXES = st.one_of(
    st.fixed_dictionaries(
        {"weight_map": WEIGHT_MAPS},
        optional={"metadata": st.fixed_dictionaries({}, optional={"total_size": JSON_VALUES}) | JSON_VALUES},
    ),
    JSON_VALUES,
)


def _run_index_case(
    scratch: Path, index_bytes: bytes, with_shard: bool, command: str = "inspect"
) -> tuple[int, str, str]:
    outside = scratch / "outside.safetensors"
    outside.write_bytes(_safetensors(SHARD_HEADER, b"\0" * 4))
    files = {"config.json": json.dumps(TINY_LLAMA).encode(), "model.safetensors.index.json": index_bytes}
    if with_shard:
        files[SHARD] = _safetensors(SHARD_HEADER, b"\0" * 4)
    folder = _folder(scratch, files).resolve()
    read: list[Path] = []
    real = hub_module.read_local_header

    def spy(path: Path) -> dict[str, TensorEntry]:
        read.append(Path(path))
        return real(path)

    with mock.patch.object(hub_module, "read_local_header", spy):
        result = _cli(command, str(folder), "--json")
    for path in read:  # never outside the folder, whatever the index names
        assert Path(os.path.realpath(path)).is_relative_to(folder), path
    return result


@CLI
@given(index=INDEXES, with_shard=st.booleans(), command=COMMANDS)
@example(index={"weight_map": {"x": "../outside.safetensors"}}, with_shard=False, command="inspect")
@example(index={"weight_map": {"x": "../../etc/passwd", "y": SHARD}}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": "/etc/passwd"}}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": "../outside.safetensors", "y": SHARD}}, with_shard=True, command="check")
@example(index={"weight_map": ["x", SHARD]}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": 5}}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": "config.json"}}, with_shard=True, command="inspect")  # not a safetensors file
@example(index={"weight_map": {}}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": SHARD}, "metadata": {"total_size": "big"}}, with_shard=True, command="inspect")
@example(index={"weight_map": {"x": SHARD}, "metadata": {"total_size": 10**300}}, with_shard=True, command="inspect")
def test_index_random(scratch: Path, index: Any, with_shard: bool, command: str) -> None:
    result = _run_index_case(scratch, json.dumps(index).encode(), with_shard, command)
    _assert_clean_exit(*result, command=command)


@CLI
@given(raw=st.binary(max_size=100), with_shard=st.booleans(), command=COMMANDS)
@example(raw=b"[" * 100_000, with_shard=True, command="inspect")
@example(raw=b'{"weight_map": ' + b"1" * 5000 + b"}", with_shard=True, command="check")
def test_index_random_bytes(scratch: Path, raw: bytes, with_shard: bool, command: str) -> None:
    _assert_clean_exit(*_run_index_case(scratch, raw, with_shard, command), command=command)


# ---------------------------------------------------------------- bugs this file found, fixed: regression cases


def _nested(n: int) -> bytes:
    return b'{"model_type": "x", "a": ' + b"[" * n + b"]" * n + b"}"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps({**TINY_LLAMA, "architectures": 5}).encode(), id="architectures-int"),
        pytest.param(json.dumps({**TINY_LLAMA, "model_type": ["llama"]}).encode(), id="model_type-list"),
        pytest.param(json.dumps({**TINY_LLAMA, "model_type": {"a": 1}}).encode(), id="model_type-dict"),
        pytest.param(b"1" * 5000, id="int-5000-digits"),
        pytest.param(b'{"vocab_size": ' + b"1" * 5000 + b"}", id="int-5000-digits-in-object"),
        pytest.param(b'{"model_type": "llama"}', id="llama-without-sizes"),
        pytest.param(json.dumps({**TINY_GPT2, "head_dim": "x"}).encode(), id="gpt2-head_dim-str"),
        pytest.param(json.dumps({**TINY_GPT2, "head_dim": [1]}).encode(), id="gpt2-head_dim-list"),
        pytest.param(json.dumps({**TINY_LLAMA, "sliding_window": [4]}).encode(), id="llama-sliding_window-list"),
        pytest.param(_nested(900), id="nested-900"),
        pytest.param(json.dumps({**TINY_LLAMA, "num_hidden_layers": 100_000}).encode(), id="layers-100k"),
        pytest.param(json.dumps({**TINY_GPT2, "n_layer": 10**9}).encode(), id="gpt2-layers-1e9"),
        pytest.param(
            json.dumps({**TINY_LLAMA, "text_config": {"num_local_experts": 10**6}}).encode(), id="nested-experts-1e6"
        ),
        pytest.param(json.dumps({**TINY_LLAMA, "hidden_size": "big"}).encode(), id="strict-field-error"),
        pytest.param(json.dumps({**TINY_LLAMA, "vocab_size": 2**63}).encode(), id="torch-overflow"),
        pytest.param(json.dumps({**TINY_LLAMA, "model_type": "a\nb"}).encode(), id="model_type-newline"),
    ],
)
def test_fixed_config_bugs(scratch: Path, raw: bytes) -> None:
    folder = _folder(scratch, {"config.json": raw})
    _assert_clean_exit(*_cli(str(folder), "--json"))


@pytest.mark.parametrize("metadata", [5, "x", [1], None], ids=["int", "str", "list", "null"])
def test_fixed_index_metadata_bug(scratch: Path, metadata: Any) -> None:
    index = {"weight_map": {"x": SHARD}, "metadata": metadata}
    _assert_clean_exit(*_run_index_case(scratch, json.dumps(index).encode(), with_shard=True))


def test_absurd_layer_counts_are_refused_before_the_build(scratch: Path) -> None:
    # Llama-3.1-405B, the deepest real model, has 126 layers; hfsize builds at most 1,024
    folder = _folder(scratch, {"config.json": json.dumps({**TINY_LLAMA, "num_hidden_layers": 1025}).encode()})
    code, out, err = _cli(str(folder), "--json")
    assert code == 6 and json.loads(out)["exit_code"] == 6  # bad model files
    assert err.count("\n") == 1 and "num_hidden_layers = 1,025" in err
