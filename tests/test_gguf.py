"""The GGUF header parser and the GGUF reading stage, against ggml-org's own gguf package and published figures.

References outside the code under test:
  - gguf 0.19.0 (ggml-org, gguf-py): GGUFReader reads the same files; GGML_QUANT_SIZES / LlamaFileType are ggml's
    type table and llama.cpp's file types; GGUFWriter writes the fuzz seeds and the big-tokenizer file.
  - huggingface.js packages/gguf/src/gguf.spec.ts (@ 082092c): TheBloke/Llama-2-7B-Chat-GGUF Q2_K has version 2,
    19 metadata keys, 291 tensors (token_embd.weight [4096, 32000] Q2_K first, output_norm.weight [4096] F32 last),
    6,738,415,616 parameters and tensor data at byte 741,056.
  - Meta's published Llama-2-13B count, 13,015,864,320 parameters.
Real files: llama-cpp-python 0.3.36's vocab-only GGUF files (fixtures/gguf/vocab, gzipped verbatim); set
HFSIZE_GGUF_VOCAB_DIR to the sdist's vendor/llama.cpp/models to run the parser tests over all 19 of them.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import tracemalloc
from pathlib import Path

import gguf as gguf_py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.errors import BadFilesError, ExitCode
from inspector.gguf import (
    CHUNK,
    GGML_TYPES,
    LLAMA_FILE_TYPES,
    GGUFArray,
    GGUFHeader,
    NeedBytes,
    grow_read,
    parse_gguf,
    read_local_gguf,
)
from inspector.gguf_repo import group_files, inspect_gguf, quant_label
from tests.helpers import FIXTURES, cli, report
from tests.hub_replica import HubReplica

GGUF_FIXTURES = FIXTURES.parent / "gguf"
VOCABS = sorted((GGUF_FIXTURES / "vocab").glob("*.gguf.gz"))
LLAMA2_7B = FIXTURES / "TheBloke" / "Llama-2-7B-Chat-GGUF"
LLAMA2_13B = FIXTURES / "TheBloke" / "Llama-2-13B-chat-GGUF"
SPLIT = FIXTURES / "_derived" / "hfsize-gguf-split" / "Llama-2-13B-chat-GGUF-split"


def _vocab_files(tmp: Path) -> list[Path]:
    extra = os.environ.get("HFSIZE_GGUF_VOCAB_DIR")
    if extra:
        return sorted(Path(extra).glob("ggml-vocab-*.gguf"))
    out = []
    for gz in VOCABS:
        path = tmp / gz.name[: -len(".gz")]
        path.write_bytes(gzip.decompress(gz.read_bytes()))
        out.append(path)
    return out


def materialise(repo: Path, name: str, tmp: Path) -> Path:
    """A fixture head written out as the whole file: the head, then a sparse hole up to the declared size."""
    import json

    size = json.loads((repo / "_replica.json").read_text())["sizes"][name]
    path = tmp / name
    with open(path, "wb") as f:
        f.write(gzip.decompress((repo / "headers" / f"{name}.gz").read_bytes()))
        f.truncate(size)
    return path


@pytest.fixture(scope="module")
def vocab_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _vocab_files(tmp_path_factory.mktemp("vocab"))


# ---------------------------------------------------------------- tables


def test_type_table_is_ggmls():
    """Every ggml type gguf-py knows has the same block size, bytes per block and name here (and no other)."""
    theirs = {int(t): (t.name, *gguf_py.GGML_QUANT_SIZES[t]) for t in gguf_py.GGMLQuantizationType}
    ours = {i: (t.name, t.block_size, t.type_size) for i, t in GGML_TYPES.items()}
    assert ours == theirs
    # the two figures issue 16 quotes against hf-mem's rounded table
    assert GGML_TYPES[22].bits_per_weight == 2.5625  # IQ2_S: 82 bytes per 256 weights
    assert GGML_TYPES[15].bits_per_weight == 9.125  # Q8_K: 292 bytes per 256 weights


def test_file_type_names_are_llama_cpps():
    theirs = {int(t): t.name.removeprefix("MOSTLY_").removeprefix("ALL_") for t in gguf_py.LlamaFileType}
    assert LLAMA_FILE_TYPES == theirs


# ---------------------------------------------------------------- the parser against GGUFReader


def assert_same_as_reader(path: Path) -> GGUFHeader:
    ours = read_local_gguf(str(path)).header
    reader = gguf_py.GGUFReader(path)
    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert ours.version == reader.fields["GGUF.version"].contents()
    assert list(ours.metadata) == list(fields)
    for key, f in fields.items():
        value = ours.metadata[key]
        if f.types[0] == gguf_py.GGUFValueType.ARRAY:
            if isinstance(value, GGUFArray):
                assert value.count == len(f.data)
                continue
            items = f.contents()
            if items and isinstance(items[0], float):
                assert list(value) == pytest.approx(items)
            else:
                assert [list(v) if isinstance(v, tuple) else v for v in value] == items
        elif isinstance(value, float):
            assert value == pytest.approx(f.contents(), rel=1e-7)
        else:
            assert value == f.contents(), key
    assert ours.data_offset == reader.data_offset
    assert [(t.name, t.ggml_type.id, t.elements, t.nbytes) for t in ours.tensors] == [
        (t.name, int(t.tensor_type), int(t.n_elements), int(t.n_bytes)) for t in reader.tensors
    ]
    assert [list(t.shape) for t in ours.tensors] == [[int(d) for d in t.shape] for t in reader.tensors]
    assert [ours.data_offset + t.offset for t in ours.tensors] == [t.data_offset for t in reader.tensors]
    return ours


def test_real_vocab_files_parse_as_gguf_py_reads_them(vocab_files):
    assert len(vocab_files) >= 4
    for path in vocab_files:
        header = assert_same_as_reader(path)
        assert header.tensors == ()  # vocab-only
        assert isinstance(header.metadata["tokenizer.ggml.tokens"], GGUFArray)


def test_a_vocab_only_file_is_not_truncated_and_check_renders_it(capsys, vocab_files):
    """llama.cpp's vocab-only files end where the header does (ggml-vocab-llama-spm.gguf: 723,869 bytes, the data
    section's aligned start 723,872): with no tensors the padding is never read, and gguf-py's GGUFReader opens
    them (test above). `check` flagged them gguf_truncated, and without a memory figure its text crashed."""
    for path in vocab_files:
        code, out, err = cli(capsys, "check", str(path), "--json")
        problems = [p["code"] for p in json.loads(out)["problems"]]
        assert "gguf_truncated" not in problems, (path.name, problems)
        code, out, err = cli(capsys, "check", str(path))
        assert "internal error" not in err and "Fit" in out, err


def test_per_layer_values_are_kept(tmp_path):
    """Gemma 4's real metadata: head_count_kv per layer (2 KV heads on every 6th, global layer)."""
    header = assert_same_as_reader(GGUF_FIXTURES / "gemma4-metadata.gguf")
    kv = header.metadata["gemma4.attention.head_count_kv"]
    assert len(kv) == header.metadata["gemma4.block_count"] == 30
    assert kv[5] == 2 and kv[0] == 8
    assert header.metadata["gemma4.attention.sliding_window_pattern"][5] is False


def test_fixture_heads_parse_as_gguf_py_reads_the_whole_file(tmp_path):
    for repo, name in [
        (LLAMA2_7B, "llama-2-7b-chat.Q2_K.gguf"),
        (SPLIT, "llama-2-13b-chat.Q8_0-00002-of-00003.gguf"),  # GGUFReader takes ~6 s per 32k-token tokenizer
        (SPLIT, "llama-2-13b-chat.Q8_0-00003-of-00003.gguf"),
    ]:
        header = assert_same_as_reader(materialise(repo, name, tmp_path))
        assert header.file_bytes <= (tmp_path / name).stat().st_size


def test_llama2_7b_q2k_matches_huggingface_js(tmp_path):
    header = read_local_gguf(str(materialise(LLAMA2_7B, "llama-2-7b-chat.Q2_K.gguf", tmp_path))).header
    assert (header.version, len(header.metadata), len(header.tensors)) == (2, 19, 291)
    assert header.data_offset == 741_056
    first, last = header.tensors[0], header.tensors[-1]
    assert (first.name, first.shape, first.ggml_type.name) == ("token_embd.weight", (4096, 32000), "Q2_K")
    assert (last.name, last.shape, last.ggml_type.name) == ("output_norm.weight", (4096,), "F32")
    assert sum(t.elements for t in header.tensors) == 6_738_415_616
    assert header.metadata["general.name"] == "LLaMA v2"
    assert header.metadata["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(9.999999974752427e-7)


def test_big_endian(tmp_path, vocab_files, monkeypatch):
    """gguf-py's own converter turns a real file big-endian; the parser reads the same values from it."""
    from gguf.scripts.gguf_convert_endian import convert_byteorder

    little = next(p for p in vocab_files if "llama-spm" in p.name)
    big = tmp_path / "big.gguf"
    big.write_bytes(little.read_bytes())

    class Args:
        order, dry_run = "big", False

    monkeypatch.setattr("builtins.input", lambda prompt="": "YES")  # the converter asks before writing
    convert_byteorder(gguf_py.GGUFReader(big, "r+"), Args())
    a, b = read_local_gguf(str(little)).header, read_local_gguf(str(big)).header
    assert (a.byte_order, b.byte_order) == ("little", "big")
    assert b.metadata == a.metadata and b.data_offset == a.data_offset
    assert big.read_bytes()[4:8] == struct.pack(">I", 3)


# ---------------------------------------------------------------- bounded reads


def test_partial_buffer_asks_for_more(vocab_files):
    raw = next(p for p in vocab_files if "deepseek-coder" in p.name).read_bytes()
    for n in (0, 3, 100, 4096, len(raw) // 2, len(raw) - 1):
        result = parse_gguf(raw[:n], "x.gguf", file_size=10 * len(raw))
        assert isinstance(result, NeedBytes)
        assert n < result.minimum <= len(raw) and result.minimum <= result.estimate
    assert isinstance(parse_gguf(raw, "x.gguf", file_size=10 * len(raw)), GGUFHeader)


def test_truncated_file_is_exit_6_naming_it(vocab_files):
    raw = vocab_files[0].read_bytes()
    # the last key's length or value runs past the end of the file
    with pytest.raises(
        BadFilesError, match="'cut.gguf' (ends inside its GGUF header|declares .* more than the file ho)"
    ) as e:
        parse_gguf(raw[:-10], "cut.gguf", file_size=len(raw) - 10)
    assert e.value.exit_code == ExitCode.BAD_FILES
    # cut inside the tokenizer: the token count alone is already more than the rest of the file can hold
    with pytest.raises(BadFilesError, match="'cut.gguf' declares an array of [0-9,]+ items for 'tokenizer.ggml.tok"):
        parse_gguf(raw[:5000], "cut.gguf", file_size=5000)


def big_tokenizer_file(path: Path) -> int:
    """A GGUF with Llama-3's tokenizer sizes (128,256 tokens, 280,147 merges; ~7.5 MB header) and one tensor."""
    w = gguf_py.GGUFWriter(path, "llama")
    n = 128_256
    tokens = [("t" * (2 + i * 14 // n)) + str(i) for i in range(n)]  # longer tokens later, as in real BPE vocabs
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * n)
    w.add_token_merges([f"{tokens[i % n][:4]} {tokens[(i * 7) % n][:6]}" for i in range(280_147)])
    w.add_tensor_info(
        "token_embd.weight", (n, 4096), np.dtype(np.float32), n * 4096 * 2, gguf_py.GGMLQuantizationType.F16
    )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return path.stat().st_size


def test_llama3_sized_header_in_three_requests_over_the_replica(tmp_path):
    repo = tmp_path / "hub" / "someone" / "Big-Tokenizer-GGUF"
    (repo / "headers").mkdir(parents=True)
    head = big_tokenizer_file(tmp_path / "model-f16.gguf")
    raw = (tmp_path / "model-f16.gguf").read_bytes()
    (repo / "headers" / "model-f16.gguf.gz").write_bytes(gzip.compress(raw, 1))
    size = -(-head // 32) * 32 + 128_256 * 4096 * 2
    (repo / "_replica.json").write_text(f'{{"sizes": {{"model-f16.gguf": {size}}}}}')
    with HubReplica(tmp_path / "hub") as hub:
        report = inspect_gguf("someone/Big-Tokenizer-GGUF", endpoint=hub.endpoint, token=False)
        reads = hub.requests_matching("/resolve/")
    (row,) = report.gguf.files
    assert row.bytes == size and row.parameters == 128_256 * 4096
    assert row.header_bytes > 7_000_000
    assert len(reads) == row.requests <= 3
    assert all(r.status == 206 for r in reads)
    assert sum(r.body_bytes for r in reads) == row.bytes_read <= row.header_bytes + CHUNK


def test_real_vocab_headers_in_at_most_three_reads(vocab_files):
    """Each real header (0.6-15.8 MB with all 19 files) as if tensor data followed: <= 3 reads, <= 1 chunk over."""
    for path in vocab_files:
        raw = path.read_bytes()
        size = len(raw) + 10**10
        calls = []

        def read(start: int, stop: int, raw=raw, size=size, calls=calls) -> bytes:
            calls.append((start, stop))
            return raw[start:stop] + bytes(max(0, min(stop, size) - max(start, len(raw))))

        result = grow_read(read, size, path.name)
        assert result.requests == len(calls) <= 3, path.name
        assert result.bytes_read <= result.header.header_bytes + CHUNK, path.name


def test_hub_reads_of_the_13b_repo(hub):
    hub.reset_requests()
    report = inspect_gguf("TheBloke/Llama-2-13B-chat-GGUF", endpoint=hub.endpoint, token=False)
    reads = hub.requests_matching("/resolve/")
    assert len(reads) == 3  # one Range request per file: each header (745,344 B) fits the first 1 MiB
    assert all(r.range == f"bytes=0-{CHUNK - 1}" and r.status == 206 for r in reads)
    for row in report.gguf.files:
        assert row.parameters == 13_015_864_320  # Meta's published count; output.weight is stored (untied)
        assert row.tied_embeddings is False and row.requests == 1
        assert row.bytes_read <= row.header_bytes + CHUNK


# The Hub's own listings (see each fixture's SOURCE.md). TheBloke/Llama-2-13B-chat-GGUF: model info, repo sha
# 4458acc9, siblings with LFS sha256: Q2_K 5,429,348,224 B (fb693520...), Q4_K_M 7,865,956,224 B (7ddfe27f...),
# Q8_0 13,831,319,424 B (9f4d0611...). TheBloke/Llama-2-7B-Chat-GGUF: a Hub tree listing quoted in a Kotlin test and
# a model-info mock: Q2_K 2,825,940,672 B (lfs oid c0dd304d...).
HUB_SIZES = {
    ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q2_K.gguf"): 5_429_348_224,
    ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q4_K_M.gguf"): 7_865_956_224,
    ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q8_0.gguf"): 13_831_319_424,
    ("TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf"): 2_825_940_672,
}


def test_heads_add_up_to_the_hubs_file_sizes(hub):
    """Header bytes + tensor bytes by hfsize's ggml type table (every tensor a multiple of the 32-byte alignment)
    give each real file's size: the heads carry the tensor types TheBloke's llama.cpp (Sept 2023) assigned."""
    for repo in ("TheBloke/Llama-2-13B-chat-GGUF", "TheBloke/Llama-2-7B-Chat-GGUF"):
        rows = {r.name: r for r in inspect_gguf(repo, endpoint=hub.endpoint, token=False).gguf.files}
        for (r, name), size in HUB_SIZES.items():
            if r == repo:
                assert rows[name].header_bytes + rows[name].tensor_bytes == size, name


def test_q2k_heads_have_2023s_q2k_mix(hub):
    """Q2_K as llama.cpp quantized it from bac66994c (#2707, 2023-08-22) to 469e75d0a (#4872, 2024-01-11):
    token_embd, attn_q, attn_k Q2_K (84 B per 256); attn_v, attn_output, ffn_gate, ffn_up, ffn_down Q3_K (110 B);
    output Q6_K (210 B); norms F32. The element and byte sums per type add up to the Hub's files above."""
    for repo, name, hidden, layers, mlp, head in [
        ("TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf", 4096, 32, 11008, 741_056),
        ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q2_K.gguf", 5120, 40, 13824, 745_344),
    ]:
        rows = {r.name: r for r in inspect_gguf(repo, endpoint=hub.endpoint, token=False).gguf.files}
        row = rows[name]
        q2 = 32000 * hidden + layers * 2 * hidden * hidden
        q3 = layers * (2 * hidden * hidden + 3 * mlp * hidden)
        elements = {"Q2_K": q2, "Q3_K": q3, "Q6_K": 32000 * hidden, "F32": (2 * layers + 1) * hidden}
        per_block = {"Q2_K": 84, "Q3_K": 110, "Q6_K": 210}
        assert row.elements_by_type == elements
        nbytes = {t: n // 256 * per_block[t] for t, n in elements.items() if t != "F32"} | {"F32": elements["F32"] * 4}
        assert row.bytes_by_type == nbytes
        assert row.header_bytes == head and head + sum(nbytes.values()) == HUB_SIZES[(repo, name)]
    # 7B:  Q2_K 1,204,813,824 el -> 395,329,536 B; Q3_K 5,402,263,552 el -> 2,321,285,120 B;
    #      Q6_K 131,072,000 el -> 107,520,000 B; F32 266,240 el -> 1,064,960 B; + 741,056 = 2,825,940,672
    # 13B: Q2_K 2,260,992,000 -> 741,888,000 B; Q3_K 10,590,617,600 -> 4,550,656,000 B; Q6_K 163,840,000 ->
    #      134,400,000 B; F32 414,720 -> 1,658,880 B; + 745,344 = 5,429,348,224


def test_bits_per_weight_are_llama_cpps_published_ones(hub):
    """llama.cpp's examples/quantize/README.md (ffe88a36a, #3340, 2023-09-27: "recent ... bpw measurements") gives
    Llama 2 7B Q2_K 3.35 BPW, 13B Q2_K 3.34 and Q4_K_M 4.83; and the commit that made Q2_K "mostly Q3_K except for
    tok_embeddings, attention.wq, attention.wk" (bac66994c, #2707) reports its files as 2.632G (7B) and 5.056G (13B):
    2,825,940,672 / 2**30 = 2.6319, 5,429,348,224 / 2**30 = 5.0565. (Today's Q2_K mix, the first heads: 3.01, 2.98.)"""
    published = {
        ("TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf"): (3.35, 2.632),
        ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q2_K.gguf"): (3.34, 5.056),
        ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat.Q4_K_M.gguf"): (4.83, None),
    }
    for (repo, name), (bpw, gib) in published.items():
        rows = {r.name: r for r in inspect_gguf(repo, endpoint=hub.endpoint, token=False).gguf.files}
        assert round(rows[name].bits_per_weight, 2) == bpw, name
        if gib is not None:
            assert round(rows[name].bytes / 2**30, 3) == gib, name


# ---------------------------------------------------------------- fuzz


def _seed() -> bytes:
    """A small GGUF with every value type, nested and per-layer arrays and two tensors, written by gguf-py."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.gguf"
        w = gguf_py.GGUFWriter(path, "lfm2")
        w.add_uint8("a.u8", 7)
        w.add_int8("a.i8", -7)
        w.add_uint16("a.u16", 700)
        w.add_int16("a.i16", -700)
        w.add_uint32("lfm2.block_count", 4)
        w.add_int32("a.i32", -70000)
        w.add_float32("a.f32", 0.5)
        w.add_bool("a.bool", True)
        w.add_string("a.str", "héllo")
        w.add_uint64("a.u64", 2**40)
        w.add_int64("a.i64", -(2**40))
        w.add_float64("a.f64", 0.25)
        w.add_array("lfm2.attention.head_count_kv", [0, 8, 0, 8])
        w.add_array("a.nested", [[1, 2], [3]])
        w.add_array("a.strings", ["x", "yz"])
        w.add_tensor_info("token_embd.weight", (8, 32), np.dtype(np.float32), 8 * 34, gguf_py.GGMLQuantizationType.Q8_0)
        w.add_tensor_info("output_norm.weight", (32,), np.dtype(np.float32), 128)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
        return path.read_bytes()


SEED = _seed()


def _parse_or_bad(data: bytes, file_size: int | None) -> None:
    tracemalloc.start()
    try:
        result = parse_gguf(data, "fuzz.gguf", file_size=file_size)
    except BadFilesError as e:
        assert "'fuzz.gguf'" in str(e) and "\n" not in str(e)
        result = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * len(data) + 2**20  # never allocates beyond a small multiple of the input
    if isinstance(result, NeedBytes):  # only when more of the file exists than the buffer holds
        assert result.minimum > len(data) and (file_size is None or file_size > len(data))


def test_seed_parses():
    header = parse_gguf(SEED, "seed.gguf", len(SEED))
    assert isinstance(header, GGUFHeader)
    assert header.metadata["lfm2.attention.head_count_kv"] == (0, 8, 0, 8)
    assert header.metadata["a.nested"] == ((1, 2), (3,)) and header.metadata["a.str"] == "héllo"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutations(data):
    raw = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _parse_or_bad(bytes(raw[:cut]), data.draw(st.sampled_from([None, cut, cut + 10**9])))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_absurd_counts_and_lengths(data):
    """A count or length field overwritten with a huge value is refused before anything that size is made."""
    positions = [8, 16, 24]  # tensor count, kv count, first key length
    raw = bytearray(SEED)
    at = data.draw(st.sampled_from(positions + [data.draw(st.integers(24, len(raw) - 8))]))
    value = data.draw(st.sampled_from([2**63, 2**64 - 1, 2**40, 10**12, 2**32 + 1]))
    order = data.draw(st.sampled_from(["<", ">"]))
    raw[at : at + 8] = struct.pack(order + "Q", value)
    _parse_or_bad(bytes(raw), data.draw(st.sampled_from([None, len(raw), 10**10])))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.integers(2, 3), st.sampled_from(["<", ">"]))
def test_fuzz_random_bodies(body, version, order):
    _parse_or_bad(b"GGUF" + struct.pack(order + "IQQ", version, 1, 3) + body, None)
    _parse_or_bad(b"GGUF" + struct.pack(order + "IQQ", version, 1, 3) + body, 28 + len(body))


def test_bad_value_type_and_tensor_type_are_named():
    kv = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", 13)
    with pytest.raises(BadFilesError, match="unknown value type 13 for metadata key 'k'"):
        parse_gguf(kv, "f.gguf", len(kv))
    ti = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 1) + b"w" + struct.pack("<IQIQ", 1, 32, 31, 0)
    with pytest.raises(BadFilesError, match="unknown ggml type 31"):
        parse_gguf(ti, "f.gguf", len(ti))


# ---------------------------------------------------------------- repo listing


def test_quant_labels_as_huggingface_js_reads_them():
    # huggingface.js gguf.spec.ts "parse quant label"
    assert quant_label("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf") == "Q4_K_M"
    assert quant_label("subdir/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf") == "Q4_K_M"
    assert quant_label("Codestral-22B-v0.1-Q2_K.gguf") == "Q2_K"
    assert quant_label("Codestral-22B-v0.1.gguf") is None
    assert quant_label("Codestral-22B-v0.1-F32-Q2_K.gguf") == "Q2_K"
    assert quant_label("Codestral-22B-v0.1-IQ3_XS.gguf") == "IQ3_XS"
    assert quant_label("llama-2-13b-chat.Q4_K_M.gguf") == "Q4_K_M"  # TheBloke's spelling
    assert quant_label("grok-1-IQ3_XS-split-00001-of-00009.gguf") == "IQ3_XS"


def test_grouping_split_sets_and_projectors():
    files = {
        "grok-1-IQ3_XS-split-00001-of-00009.gguf": 100,  # Arki05/Grok-1-GGUF (huggingface.js test), 2 of 9 here
        "grok-1-IQ3_XS-split-00002-of-00009.gguf": 100,
        "mmproj-model-f16.gguf": 600,
        "llava-v1.6-mistral-7b.Q4_K_M.gguf": 4_000,
        "README.md": 5,
    }
    groups = group_files(files)
    assert [(g.name, g.kind) for g in groups] == [
        ("llava-v1.6-mistral-7b.Q4_K_M.gguf", "model"),
        ("grok-1-IQ3_XS-split.gguf", "model"),
        ("mmproj-model-f16.gguf", "mmproj"),
    ]
    split = groups[1]
    assert split.bytes is None and len(split.missing) == 7 and split.quant == "IQ3_XS"


def test_split_set_over_the_replica(hub):
    report = inspect_gguf("hfsize-gguf-split/Llama-2-13B-chat-GGUF-split", endpoint=hub.endpoint, token=False)
    (row,) = report.gguf.files
    assert row.name == "llama-2-13b-chat.Q8_0.gguf" and len(row.parts) == 3
    assert row.parameters == 13_015_864_320 and row.problems == [] and row.tensor_count == 363
    # the parts' own sizes (the replica's declared sizes) add up to the set's bytes
    assert row.bytes == 4_921_501_984 + 4_774_551_136 + 4_135_266_656


def test_local_file_and_folder(tmp_path):
    path = materialise(LLAMA2_13B, "llama-2-13b-chat.Q8_0.gguf", tmp_path)
    for model in (str(path), str(tmp_path)):
        report = inspect_gguf(model)
        (row,) = report.gguf.files
        assert row.parameters == 13_015_864_320 and row.file_type == "Q8_0" and row.bytes == path.stat().st_size
    (tmp_path / "empty").mkdir()
    assert inspect_gguf(str(tmp_path / "empty")) is None


# ---------------------------------------------------------------- the command line


def test_cli_table_and_json(on_replica, capsys):
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF")
    assert code == 0, err
    assert "GGUF files" in out and "Q4_K_M" in out and "13,015,864,320" in out
    assert "7.87 GB" in out  # 7,865,956,224 bytes, the replica's declared size of the Q4_K_M file
    data = report(capsys, "TheBloke/Llama-2-13B-chat-GGUF")
    # default GPUs, T4 first: 15,360 MiB - 1 GiB = 15.03 GB; Q8_0's 13.83 GB + 1.68 GB of KV at 2048 do not fit
    assert data["gguf"]["recommended"] == "llama-2-13b-chat.Q4_K_M.gguf"
    assert data["gguf"]["hub_parameters"] == 13_015_864_320  # the replica's model-info `gguf.total`
    files = data["gguf"]["files"]
    assert [f["file_type"] for f in files] == ["Q2_K", "Q4_K_M", "Q8_0"]  # smallest first
    q4 = files[1]
    assert q4["bytes"] == 7_865_956_224 and q4["parts"] == ["llama-2-13b-chat.Q4_K_M.gguf"]
    # Q4_K_M per llama-quant.cpp: Q6_K for output.weight and for attn_v / ffn_down in 20 of 40 layers
    # (use_more_bits: layers 0-4, 35-39, and every third from 7), Q4_K for the other matrices
    n_q6 = 5120 * 32000 + 20 * (5120 * 5120 + 13824 * 5120)
    assert q4["elements_by_type"]["Q6_K"] == n_q6
    assert q4["bytes_by_type"]["Q6_K"] == n_q6 // 256 * 210
    assert q4["elements_by_type"]["F32"] == 81 * 5120  # 40 x 2 norms + output_norm


def test_cli_bad_gguf_is_exit_6_one_line(tmp_path, capsys):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 1))
    code, out, err = cli(capsys, str(path))
    assert code == 6 and out == ""
    assert err.count("\n") == 1 and err.startswith("Error: ") and "broken.gguf" in err and "Traceback" not in err


def test_token_and_revision_are_honoured(tmp_path):
    """Header reads go through huggingface_hub with the caller's token, at the listing's commit."""
    import json
    import shutil

    from inspector.errors import AccessError

    repo = tmp_path / "hub" / "someone" / "Gated-GGUF"
    shutil.copytree(LLAMA2_7B / "headers", repo / "headers")
    settings = json.loads((LLAMA2_7B / "_replica.json").read_text())
    settings.update(gated="manual", authorized_tokens=["hf_granted"], sha="a" * 40, revisions={"v1": "b" * 40})
    (repo / "_replica.json").write_text(json.dumps(settings))
    with HubReplica(tmp_path / "hub") as hub:
        with pytest.raises(AccessError):
            inspect_gguf("someone/Gated-GGUF", endpoint=hub.endpoint, token="hf_other")
        hub.reset_requests()
        report = inspect_gguf("someone/Gated-GGUF", revision="v1", endpoint=hub.endpoint, token="hf_granted")
        (read,) = hub.requests_matching("/resolve/")
    assert report.commit == "b" * 40 and f"/resolve/{'b' * 40}/" in read.path
    assert report.gguf.files[0].parameters == 6_738_415_616


def test_a_server_ignoring_range_is_read_only_as_far_as_asked():
    """A 200 answer with the whole (here 2.8 GB) body: the read stops after the bytes it asked for."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from inspector.hub import read_gguf_header

    head = gzip.decompress((LLAMA2_7B / "headers" / "llama-2-7b-chat.Q2_K.gguf.gz").read_bytes())
    size = 2_825_940_672  # the Hub's file (HUB_SIZES)
    sent = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            written = 0
            try:
                self.wfile.write(head)
                written = len(head)
                while written < size:
                    self.wfile.write(bytes(2**16))
                    written += 2**16
            except (BrokenPipeError, ConnectionResetError):
                pass
            sent.append(written)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        read = read_gguf_header(
            "TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.Q2_K.gguf", commit="main", size=size,
            token=False, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert read.header.data_offset == 741_056 and read.requests == 1
    assert sent and sent[0] < 64 * 2**20  # the socket buffers, not the 2.8 GB body


def test_per_layer_facts_of_a_file():
    (row,) = inspect_gguf(str(GGUF_FIXTURES / "gemma4-metadata.gguf")).gguf.files
    assert row.architecture == "gemma4" and row.block_count == 30 and row.head_count == 16
    assert row.head_count_kv == [8, 8, 8, 8, 8, 2] * 5  # the real file's per-layer list
    assert (row.key_length, row.value_length, row.sliding_window, row.context_length) == (512, 512, 1024, 262_144)
    assert row.parameters == 0 and row.bits_per_weight is None and row.file_type == "F16"  # vocab only: no tensors
