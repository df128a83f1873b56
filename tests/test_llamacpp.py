"""llama.cpp's allocation (inspector/engines/llamacpp.py) against published llama.cpp logs and arithmetic.

The published figures are llama.cpp's own log lines, quoted in public threads:
- unsloth PR #7530 (danielhanchen, 2026-07-28, measured on a live llama-server, build 10107): gemma-3-270m at
  ctx 1024 "with 3 slots allocates 1536 cells / 27.0 MiB, but 4 slots allocates 1024 cells / 18.0 MiB".
- gpustack issue #1231 (DeepSeek-R1-Distill-Qwen-32B on CPU, n_slots = 4, ctx_size = 8192):
  "KV self size  = 2048.00 MiB, K (f16): 1024.00 MiB, V (f16): 1024.00 MiB".
- JamePeng/llama-cpp-python PR #1 (Qwen2.5-7B, n_embd_k_gqa = 512 over 28 layers): "CUDA0 compute buffer size =
  304" MiB (the excerpt ends there).
Model shapes are the models' published configs (gemma-3-270m: 18 layers, 1 KV head of 256, sliding_window 512;
Qwen2.5-32B: 64 layers, 8 KV heads of 128; Qwen2.5-7B: 28 layers, 4 KV heads of 128, vocab 152,064, hidden 3,584).
"""

from __future__ import annotations

import json

from inspector.engines.llamacpp import (
    compute_buffer_bytes,
    context_sizes,
    kv_cache,
    layer_devices,
    model_facts,
)
from inspector.gguf import GGML_TYPES, GGUFHeader, GGUFTensor
from tests.helpers import FIXTURES, cli, report

MIB = 2**20


def header(arch: str, tensors: tuple[GGUFTensor, ...] = (), **keys: object) -> GGUFHeader:
    meta = {"general.architecture": arch, **{f"{arch}.{k.replace('__', '.')}": v for k, v in keys.items()}}
    return GGUFHeader("x.gguf", 3, "little", meta, tensors, 32, 0, 0, 0)


def gemma3_270m() -> GGUFHeader:
    return header(
        "gemma3", block_count=18, embedding_length=640, attention__head_count=4, attention__head_count_kv=1,
        attention__key_length=256, attention__value_length=256, attention__sliding_window=512,
        context_length=32768,
    )  # fmt: skip


def test_gemma3_swa_cache_matches_the_live_server_figures():
    model = model_facts(gemma3_270m())
    # gemma3.cpp: load_swa_pattern(ml, 6): layers 5, 11, 17 full, the other 15 sliding
    assert [il for il, s in enumerate(model.is_swa) if not s] == [5, 11, 17]
    # ctx 1024, 3 slots: n_ctx_seq = pad(1024 // 3, 256) = 512 per stream, 3 streams = 1536 cells
    three = kv_cache(model, 1024, n_seq=3)
    assert three.cells_full * three.streams == 1536
    # SWA: pad(min(512, 512 + 512), 256) = 512 per stream. K + V per cell and layer: 2 x 256 x 2 B = 1,024 B
    # full 3 x 1536 x 1024 = 4.5 MiB; SWA 15 x 1536 x 1024 = 22.5 MiB; total 27.0 MiB (published)
    assert three.bytes == 27 * MIB
    four = kv_cache(model, 1024, n_seq=4)  # 256 cells per stream x 4; SWA min(256, ...) = 256: 18.0 MiB (published)
    assert four.cells_full * four.streams == 1024 and four.bytes == 18 * MIB


def test_qwen32b_four_slots_matches_the_published_log():
    model = model_facts(
        header("qwen2", block_count=64, embedding_length=5120, attention__head_count=40, attention__head_count_kv=8)
    )
    kv = kv_cache(model, 8192, n_seq=4)  # 4 streams of 2048 cells; 64 x 1024 x 8192 x 2 B = 1 GiB each for K, V
    assert kv.k_bytes == 1024 * MIB and kv.v_bytes == 1024 * MIB and kv.bytes == 2048 * MIB


def test_cache_types_by_the_ggml_table():
    model = model_facts(
        header("llama", block_count=40, embedding_length=5120, attention__head_count=40, attention__head_count_kv=40)
    )
    # Llama-2-13B at 4096: f16 40 x 2 x 5120 x 4096 x 2 B = 3,355,443,200 (3200 MiB)
    assert kv_cache(model, 4096).bytes == 3_355_443_200
    # q8_0: 34 bytes per 32 values: 40 x 2 x (5120 / 32 x 34) x 4096 = 1,782,579,200 (1700 MiB)
    assert kv_cache(model, 4096, cache_type_k="q8_0").bytes == 1_782_579_200
    # q4_0 K, f16 V: 40 x 4096 x (5120 / 32 x 18 + 5120 x 2)
    assert kv_cache(model, 4096, cache_type_k="q4_0", cache_type_v="f16").bytes == 40 * 4096 * (2880 + 10240)
    assert GGML_TYPES[8].type_size == 34 and GGML_TYPES[2].type_size == 18
    # context padding to 256 (llama-context.cpp): 4000 -> 4096 cells
    assert kv_cache(model, 4000).bytes == kv_cache(model, 4096).bytes


def test_sliding_window_ignored_where_llama_cpp_has_no_rule():
    # Mistral-7B-v0.1 converts as `llama` with sliding_window 4096: llama.cpp caches the whole context anyway
    model = model_facts(
        header("llama", block_count=32, embedding_length=4096, attention__head_count=32, attention__head_count_kv=8,
               attention__sliding_window=4096)
    )  # fmt: skip
    assert not any(model.is_swa) and model.notes
    assert kv_cache(model, 32768).bytes == 32 * 2 * 1024 * 32768 * 2


def test_mamba_state_is_per_sequence_not_per_token():
    # Mamba-2.8B shape: d_conv 4, d_inner 5120, d_state 16: r = 3 x 5120, s = 16 x 5120 values, F32, 64 layers
    model = model_facts(
        header("mamba", block_count=64, embedding_length=2560, ssm__conv_kernel=4, ssm__inner_size=5120,
               ssm__state_size=16, attention__head_count=0)
    )  # fmt: skip
    per_layer = (3 * 5120 + 16 * 5120) * 4
    assert kv_cache(model, 4096).bytes == kv_cache(model, 65536).bytes == 64 * per_layer
    assert kv_cache(model, 4096, n_seq=2).bytes == 2 * 64 * per_layer


def test_hybrid_layers_with_no_kv_heads_are_recurrent():
    # Jamba-style: head_count_kv 0 marks the Mamba layers (jamba.cpp); one attention layer in four
    kv_heads = tuple(8 if il % 4 == 3 else 0 for il in range(8))
    model = model_facts(
        header("jamba", block_count=8, embedding_length=4096, attention__head_count=32,
               attention__head_count_kv=kv_heads, ssm__conv_kernel=4, ssm__inner_size=8192, ssm__state_size=16)
    )  # fmt: skip
    kv = kv_cache(model, 4096)
    assert kv.k_bytes == 2 * 1024 * 4096 * 2  # 2 attention layers x 8 x 128 x 4096 cells x 2 B
    assert kv.recurrent_bytes == 6 * (3 * 8192 + 16 * 8192) * 4


def test_gpu_layers_rule_of_load_tensors():
    # i_gpu_start = max(n_layer + 1 - ngl, 0): the output layer (index n_layer) is offloaded first
    assert layer_devices(40, 1, 1) == [-1] * 40 + [0]
    assert layer_devices(40, 40, 1) == [-1] + [0] * 40  # -ngl 40 of 41 leaves block 0 on the CPU
    assert layer_devices(40, 41, 1) == [0] * 41 == layer_devices(40, -1, 1) == layer_devices(40, 99, 1)
    two = layer_devices(40, 41, 2)  # equal free memory: splits 0.5 / 1.0 over the 41 offloaded layers
    assert two.count(0) == 21 and two.count(1) == 20


def test_compute_buffer_approximation_against_the_published_log():
    tensors = (GGUFTensor("token_embd.weight", (3584, 152064), GGML_TYPES[12], 0),)
    model = model_facts(
        header("qwen2", tensors, block_count=28, embedding_length=3584, attention__head_count=28,
               attention__head_count_kv=4)
    )  # fmt: skip
    # 4 x 512 x (152,064 + 3,584) = 318,767,104 B = 304.0 MiB; the log prints "304.xx" MiB
    assert 304 * MIB <= compute_buffer_bytes(model) < 305 * MIB
    assert model.tied_output_bytes == tensors[0].nbytes  # no output.weight: token_embd again on the output device


def test_cache_type_names_agree():
    from inspector.dtypes import LLAMA_CACHE_TYPES
    from inspector.engines.llamacpp import CACHE_TYPES

    assert tuple(CACHE_TYPES) == LLAMA_CACHE_TYPES


def test_context_sizes():
    assert context_sizes(4096) == context_sizes(4000)
    assert context_sizes(100).n_ubatch == 100  # n_batch = min(n_ctx, 2048), n_ubatch = min(n_batch, 512)
    assert context_sizes(1000, 3).cells == 512  # pad(1024 // 3, 256)


# ---------------------------------------------------------------- the report over the replica


def test_llama2_13b_on_an_rtx_3060(on_replica, capsys):
    data = report(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB", "--context", "4096")
    g = data["gguf"]
    q2, q4, q8 = g["files"]
    for f in g["files"]:
        assert f["kv_cache_bytes"] == 3_355_443_200  # 40 x 2 x 5120 x 4096 x 2 B
        assert f["kv_bytes_per_token"] == 819_200  # 40 x 2 x 5120 x 2 B
    # budget 12,288 MiB - 1 GiB --overhead = 11 GiB = 11,811,160,064 B. Q4_K_M: its tensors (7.87 GB) + KV 3.36 GB +
    # compute 4 x 512 x (32,000 + 5,120) = 76 MB: fits. Q8_0's 13.83 GB alone does not: some layers only.
    assert q2["fits"] == q4["fits"] == {"RTX-3060-12GB": "fits"} and q4["gpu_layers"]["RTX-3060-12GB"] == 41
    assert q8["fits"] == {"RTX-3060-12GB": "partial"} and 0 < q8["gpu_layers"]["RTX-3060-12GB"] < 41
    assert q4["gpu_bytes"]["RTX-3060-12GB"] <= 11 * 2**30 < q8["gpu_bytes"]["RTX-3060-12GB"] + 2**30
    assert q4["max_context"]["RTX-3060-12GB"] == 4096  # the trained context is the cap
    speed = q4["decode_tokens_per_s"]["RTX-3060-12GB"]
    assert speed["low"] < speed["high"] < speed["bound"]
    # 360 GB/s over the Q4_K_M tensors less token_embd, plus the 4096-token KV cache read per token
    assert 25 < speed["bound"] < 40
    assert g["recommended"] == "llama-2-13b-chat.Q4_K_M.gguf" and g["recommended_for"] == "RTX-3060-12GB"
    assert g["download"] == "hf download TheBloke/Llama-2-13B-chat-GGUF llama-2-13b-chat.Q4_K_M.gguf"
    assert (g["context"], g["sequences"], g["cache_type"]) == (4096, 1, "f16")
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB", "--context", "4096")
    assert code == 0, err
    assert "3,200.00 MiB" in out and "recommended for RTX-3060-12GB" in out
    assert "hf download TheBloke/Llama-2-13B-chat-GGUF llama-2-13b-chat.Q4_K_M.gguf\n" in out


def test_cache_type_and_kv_dtype(on_replica, capsys):
    data = report(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB", "--cache-type", "q8_0",
                  "--context", "4096")  # fmt: skip
    assert data["gguf"]["files"][0]["kv_cache_bytes"] == 1_782_579_200 and data["gguf"]["cache_type"] == "q8_0"
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--kv-dtype", "fp8")
    assert code == 2 and out == "" and err.count("\n") == 1 and "fp8" in err


def test_split_set_download_is_one_include_pattern(on_replica, capsys):
    data = report(capsys, "hfsize-gguf-split/Llama-2-13B-chat-GGUF-split", "--gpu", "H100")
    g = data["gguf"]
    assert g["recommended"] is not None and "--include" in g["download"] and "\n" not in g["download"]
    assert g["download"].startswith("hf download hfsize-gguf-split/Llama-2-13B-chat-GGUF-split --include ")
    code, out, err = cli(capsys, "hfsize-gguf-split/Llama-2-13B-chat-GGUF-split", "--gpu", "H100")
    assert code == 0 and g["download"] + "\n" in out  # one line, longer than the 80-column terminal
    assert len(g["download"]) > 80


def test_several_repos_including_gguf_ones(on_replica, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = cli(
        capsys, "TheBloke/Llama-2-13B-chat-GGUF", "TheBloke/Llama-2-7B-Chat-GGUF", "--gpu", "RTX-3060-12GB"
    )
    assert code == 0, err
    flat = "".join(out.split())  # a narrow terminal folds long names
    assert "llama-2-13b-chat.Q4_K_M.gguf(recommended)" in flat and "TheBloke/Llama-2-7B-Chat-GGUF" in flat
    # the "stored GiB" column in GiB for GGUF rows too (it showed the file's GB): Q4_K_M's tensor bytes are its
    # Hub size 7,865,956,224 B less its 745,344 B header = 7,865,210,880 B = 7.33 GiB (not "7.87 GB")
    row = next(line for line in out.splitlines() if line.strip().startswith("TheBloke/Llama-2-13B-chat-GGUF"))
    assert " 7.33 " in row and "GB" not in row
    assert "GGUFrepos:therecommendedfile" in flat  # the legend says what a GGUF row shows
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "TheBloke/Llama-2-7B-Chat-GGUF", "--json")
    assert code == 0 and len([json.loads(line) for line in out.splitlines() if line.strip()]) == 2


# ---------------------------------------------------------------- check on GGUF repos

HUB = FIXTURES


def _gguf_repo(make_repo, repo_id: str, heads: dict[str, str], sizes: dict[str, int]):
    """A replica repo from real fixture heads (`heads`: served file name -> fixture head path under fixtures/hub)."""
    files = {f"headers/{name}.gz": (HUB / src).read_bytes() for name, src in heads.items()}
    return make_repo(repo_id, files=files, settings={"sizes": sizes})


def test_check_gates_on_the_recommended_file(on_replica, capsys):
    code, out, err = cli(capsys, "check", "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB",
                         "--context", "4096", "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["precision"] == "Q4_K_M (llama-2-13b-chat.Q4_K_M.gguf)"
    assert result["verdicts"]["RTX-3060-12GB"]["verdict"] == "fits" and result["fits"] is True
    assert result["parameters"] == 13_015_864_320 and result["problems"] == []
    plan = result["download"]
    assert [w["path"] for w in plan["weights"]] == ["llama-2-13b-chat.Q4_K_M.gguf"]
    assert plan["bytes"] == 7_865_956_224 and plan["unused_bytes"] == 5_429_348_224 + 13_831_319_424
    assert result["command"] == "hf download TheBloke/Llama-2-13B-chat-GGUF llama-2-13b-chat.Q4_K_M.gguf"
    # Q8_0 (13.83 GB) cannot be fully offloaded to 11 GiB: exit 10, a partial offload
    code, out, err = cli(capsys, "check", "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB",
                         "--file", "Q8_0", "--json")  # fmt: skip
    assert code == 10, err
    gated = json.loads(out)
    assert gated["verdicts"]["RTX-3060-12GB"]["verdict"] == "needs_more"
    # the figure shown is what a safetensors Fit's is, the need set against the GPU: every layer on one GPU (-ngl all)
    # + the 1 GiB --overhead. Llama-2-13B Q8_0 at 2,048 tokens: 40 blocks of 337,059,840 B (Q8_0 matrices + F32
    # norms) with their KV (2 x 5,120 x 2,048 x 2 B = 41,943,040), the Q8_0 output 174,080,000 + its norm 20,480, the
    # compute buffer 4 x 512 x (32,000 + 5,120) = 76,021,760; token_embd stays in RAM
    need = 40 * (337_059_840 + 41_943_040) + 174_080_000 + 20_480 + 76_021_760  # 15,410,237,440
    assert gated["memory_bytes"] == need + 2**30
    # where the bytes go at the -ngl that fits: the GGUF report's two columns for the same file and GPU
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3060-12GB", "--json")
    q8 = next(f for f in json.loads(out)["gguf"]["files"] if f["name"] == "llama-2-13b-chat.Q8_0.gguf")
    off = gated["gguf_offload"]["RTX-3060-12GB"]
    assert (
        off["bytes_per_gpu"] == [q8["gpu_bytes"]["RTX-3060-12GB"]]
        and off["ram_bytes"] == q8["ram_bytes"]["RTX-3060-12GB"]
    )
    assert off["gpu_layers"] == q8["gpu_layers"]["RTX-3060-12GB"] < 41 and off["gpu_layers"] + off["cpu_layers"] == 41
    code, out, err = cli(capsys, "check", "TheBloke/Llama-2-13B-chat-GGUF", "--file", "Q3_K_S")
    assert code == 2 and out == "" and err.count("\n") == 1 and "Q3_K_S" in err


def test_check_problems_exit_11(make_repo, endpoint, capsys):
    split = "_derived/hfsize-gguf-split/Llama-2-13B-chat-GGUF-split/headers/"
    parts = [f"llama-2-13b-chat.Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    sizes = {"llama-2-13b-chat.Q8_0-00001-of-00003.gguf": 4921501984, parts[2]: 4135266656}
    _gguf_repo(make_repo, "org/split-missing", {p: split + p + ".gz" for p in (parts[0], parts[2])}, sizes)
    q2 = "TheBloke/Llama-2-7B-Chat-GGUF/headers/llama-2-7b-chat.Q2_K.gguf.gz"
    # the Q2_K head declares tensor data up to byte 2,825,940,672 (the Hub file's size): 1 GB less is truncated
    _gguf_repo(make_repo, "org/truncated", {"llama-2-7b-chat.Q2_K.gguf": q2}, {"llama-2-7b-chat.Q2_K.gguf": 10**9})
    q13 = "TheBloke/Llama-2-13B-chat-GGUF/headers/llama-2-13b-chat.Q2_K.gguf.gz"
    replica = _gguf_repo(
        make_repo, "org/mixed", {"llama-2-7b-chat.Q2_K.gguf": q2, "llama-2-13b-chat.Q2_K.gguf": q13},
        {"llama-2-7b-chat.Q2_K.gguf": 2825940672, "llama-2-13b-chat.Q2_K.gguf": 5429348224},
    )  # fmt: skip
    endpoint(replica)
    code, out, err = cli(capsys, "check", "org/split-missing", "--json")
    result = json.loads(out)
    assert code == 11 and [p["code"] for p in result["problems"]] == ["gguf_split_incomplete"], err
    assert "llama-2-13b-chat.Q8_0-00002-of-00003.gguf" in result["problems"][0]["message"]
    code, out, err = cli(capsys, "check", "org/truncated", "--json")
    assert code == 11 and [p["code"] for p in json.loads(out)["problems"]] == ["gguf_truncated"], err
    code, out, err = cli(capsys, "check", "org/mixed", "--json")  # a warning: exit 0, 11 with --strict
    assert code == 0 and [p["code"] for p in json.loads(out)["problems"]] == ["gguf_parameters"], err
    assert cli(capsys, "check", "org/mixed", "--strict")[0] == 11


def test_gemma4_real_metadata_sliding_pattern_and_per_layer_heads():
    from inspector.gguf import read_local_gguf
    from tests.test_gguf import GGUF_FIXTURES

    model = model_facts(read_local_gguf(str(GGUF_FIXTURES / "gemma4-metadata.gguf")).header)
    # the real file's sliding_window_pattern: every sixth layer full; SWA layers 8 KV heads x key_length_swa 256,
    # full layers 2 x key_length 512
    assert [il for il, s in enumerate(model.is_swa) if not s] == [5, 11, 17, 23, 29]
    assert set(model.n_embd_k_gqa[il] for il in (5, 11)) == {1024} and model.n_embd_k_gqa[0] == 2048
    kv = kv_cache(model, 8192)
    # SWA cells pad(min(8192, 1024 + 512), 256) = 1536. Full: 5 x 2 x 1024 x 8192 x 2 B = 160 MiB;
    # SWA: 25 x 2 x 2048 x 1536 x 2 B = 300 MiB
    assert kv.cells_swa == 1536 and kv.bytes == 460 * MIB


# ---------------------------------------------------------------- compare BASE GGUF_REPO


def test_compare_gguf_repo_with_its_base(on_replica, capsys):
    # the replica's meta-llama/Llama-2-13b-hf (a declared stand-in with Llama-2-13B's shape: 13,015,864,320)
    data = report(capsys, "compare", "meta-llama/Llama-2-13b-hf", "TheBloke/Llama-2-13B-chat-GGUF")
    assert (data["gguf"], data["base"], data["base_from"]) == (
        "TheBloke/Llama-2-13B-chat-GGUF", "meta-llama/Llama-2-13b-hf", "argument",
    )  # fmt: skip
    assert data["same_architecture"] is True and data["same_parameters"] is True
    assert data["gguf_parameters"] == data["base_parameters"] == 13_015_864_320
    assert data["base_bf16_bytes"] == 26_031_728_640  # 13,015,864,320 x 2
    q4 = next(f for f in data["files"] if f["quant"] == "Q4_K_M")
    assert q4["saved_bytes"] == 26_031_728_640 - q4["tensor_bytes"]
    assert q4["fraction_of_bf16"] == q4["tensor_bytes"] / 26_031_728_640
    # either order; two GGUF repos is a usage error
    again = report(capsys, "compare", "TheBloke/Llama-2-13B-chat-GGUF", "meta-llama/Llama-2-13b-hf")
    assert again["files"] == data["files"]
    code, out, err = cli(capsys, "compare", "TheBloke/Llama-2-13B-chat-GGUF", "TheBloke/Llama-2-7B-Chat-GGUF")
    assert code == 2 and err.count("\n") == 1
    # a base that is another model (Mistral-7B: 7,241,732,096 parameters): no share of its bf16 bytes is shown
    # for files that are not its weights, and "same" architecture is said to be llama.cpp's naming
    other = report(capsys, "compare", "mistralai/Mistral-7B-v0.1", "TheBloke/Llama-2-13B-chat-GGUF")
    assert other["same_parameters"] is False and other["base_parameters"] == 7_241_732_096
    assert all(f["fraction_of_bf16"] is None and f["saved_bytes"] is None for f in other["files"])
    assert any("writes model_type 'mistral' as architecture 'llama'" in n for n in other["notes"])


def test_compare_keeps_llama_cpp_options_to_the_gguf_side(on_replica, capsys):
    """--cache-type sizes the GGUF files; the safetensors base is sized as without it (no usage error for it)."""
    args = ("compare", "meta-llama/Llama-2-13b-hf", "TheBloke/Llama-2-13B-chat-GGUF")
    data = report(capsys, *args, "--cache-type", "q8_0")
    assert data["gguf_parameters"] == data["base_parameters"] == 13_015_864_320
    # two safetensors repos: the option would change nothing, a usage error as for `hfsize` and `check`
    code, out, err = cli(capsys, "compare", "meta-llama/Llama-2-13b-hf", "openai-community/gpt2-large", "--cpu-moe")
    assert code == 2 and err.count("\n") == 1 and "--cpu-moe applies to GGUF files" in err


def test_every_json_answer_carries_the_schema_version(on_replica, capsys):
    # the GGUF report lacked it (every other command's JSON has it, README "JSON")
    from inspector.results import SCHEMA_VERSION

    for args in (("TheBloke/Llama-2-13B-chat-GGUF",), ("check", "TheBloke/Llama-2-13B-chat-GGUF")):
        assert report(capsys, *args)["schema_version"] == SCHEMA_VERSION == 1


def test_batch_multiplies_the_kv_cache(on_replica, capsys):
    # --context is tokens per sequence, --batch the sequences: llama.cpp -np 4 -c 16384 (n_ctx shared by the 4),
    # 40 layers x 2 x 5120 x 2 B x 16,384 cells = 13,421,772,800 B = 12,800 MiB = 3,200 MiB x 4
    args = ("TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3090", "--context", "4096")
    one = report(capsys, *args)["gguf"]
    data = report(capsys, *args, "--batch", "4")["gguf"]
    assert (data["context"], data["sequences"]) == (16384, 4)
    for f1, f4 in zip(one["files"], data["files"], strict=True):
        assert f1["kv_cache_bytes"] == 3_355_443_200
        assert f4["kv_cache_bytes"] == 13_421_772_800 == 4 * f1["kv_cache_bytes"]
        assert f4["kv_bytes_per_token"] == f1["kv_bytes_per_token"] == 819_200
        assert f4["max_context"]["RTX-3090"] <= 4096  # per sequence, the trained context at most
    code, out, err = cli(capsys, *args, "--batch", "4")
    assert code == 0, err
    assert "12,800.00 MiB at n_ctx 16,384" in out and "-np 4 -c 16384" in out
    assert "llama.cpp at 4,096 tokens x 4" in out
    code, out, err = cli(capsys, "plan", *args, "--batch", "4", "--json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["kv_cache_bytes_per_gpu"] == 13_421_772_800  # every layer on the one GPU
    assert any("-np 4 -c 16384" in a for a in plan["assumptions"])
