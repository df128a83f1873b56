"""`hfsize plan` on a GGUF repo: the llama.cpp engine, on the GGUF report's own figures.

TheBloke/Llama-2-13B-chat-GGUF (replica, real header heads): Llama 2 13B, 40 blocks, n_embd 5120, n_vocab 32000,
n_ctx_train 4096. On an RTX-3060-12GB at 4,096 tokens the report recommends Q4_K_M (every layer fits) and puts
Q8_0 on the GPU partially (-ngl 28).
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli

REPO = "TheBloke/Llama-2-13B-chat-GGUF"
GPU = "RTX-3060-12GB"
ARGS = ("--gpu", GPU, "--context", "4096")

N_LAYER, N_EMBD, N_VOCAB, CTX = 40, 5120, 32_000, 4096
KV_PER_LAYER = 2 * N_EMBD * CTX * 2  # K and V rows of n_embd (no GQA in 13B) x 4,096 cells x 2 B (f16 cache)
COMPUTE = 4 * 512 * (N_VOCAB + N_EMBD)  # the compute-buffer rule of engines/llamacpp.py (F32 logits + input)
# Meta's 13B: 317,204,480 parameters per block, of which 2 x 5,120 are the F32 norms
BLOCK_MATRICES = 317_204_480 - 2 * N_EMBD


def q8_0(elements: int) -> int:
    return elements // 32 * 34  # ggml's block_q8_0: 32 int8 + one f16 scale


def q4_k(elements: int) -> int:
    return elements // 256 * 144  # ggml's block_q4_K: 256 values in 144 bytes


@pytest.fixture
def both(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, *ARGS, "--json")
    assert code == 0, err
    plan = json.loads(out)
    code, out, err = cli(capsys, REPO, *ARGS, "--json")
    assert code == 0, err
    return plan, json.loads(out)["gguf"]


def test_plan_is_the_gguf_reports_figures(both):
    plan, gguf = both
    rows = {f["name"]: f for f in gguf["files"] if f["kind"] == "model"}
    runs = [plan["plan"], *plan["alternatives"]]
    assert plan["plan"]["file"] == gguf["recommended"] == "llama-2-13b-chat.Q4_K_M.gguf"
    assert sorted(r["file"] for r in runs) == sorted(rows)  # one way per file (one GPU setup)
    for run in runs:
        row = rows[run["file"]]
        assert run["engine"] == "llama.cpp"
        assert run["precision"] == row["quant"]
        assert run["gpus"] == GPU
        assert run["offload"]["gpu_layers"] == row["gpu_layers"][GPU]
        assert run["offload"]["gpu_layers"] + run["offload"]["cpu_layers"] == row["block_count"] + 1
        assert run["offload"]["ram_bytes"] == row["ram_bytes"][GPU]
        if row["fits"][GPU] == "fits":  # partly offloaded: the longest context at its -ngl (test below)
            assert run["max_context"] == (row["max_context"][GPU] or None)
        # partly offloaded, a prompt micro-batch copies the largest RAM-kept tensor to the GPU (op offload): in
        # Q8_0 the 13,824 x 5,120 ffn matrices, q8_0(70,778,880) = 75,202,560 B
        copy = q8_0(13_824 * N_EMBD) if row["fits"][GPU] == "partial" else 0
        assert run["weights_bytes_per_gpu"] + run["kv_cache_bytes_per_gpu"] + COMPUTE + copy == row["gpu_bytes"][GPU]
        speed, figures = run["decode_tokens_per_s"], row["decode_tokens_per_s"][GPU]
        assert [round(speed[k], 1) for k in ("expected_low", "expected_high", "bound")] == [
            figures["low"],
            figures["high"],
            figures["bound"],
        ]
        assert run["kv_tokens"] is None and run["max_concurrency"] is None and run["prefill_tokens_per_s"] is not None


def test_recommended_q4_k_m_all_on_the_gpu(both):
    run = both[0]["plan"]
    # -ngl 41 = n_layer + 1: every block and the output layer; token_embd alone stays in RAM (Q4_K in this file)
    off = run["offload"]
    assert (off["gpu_layers"], off["cpu_layers"], off["ram_bytes"]) == (N_LAYER + 1, 0, q4_k(N_VOCAB * N_EMBD))
    assert off["layers_per_gpu"] == [N_LAYER + 1] and off["kept_in_ram_bytes"] == 0  # one GPU, no -ot
    assert off["bytes_per_gpu"] == [run["weights_bytes_per_gpu"] + run["kv_cache_bytes_per_gpu"] + COMPUTE]
    assert run["kv_cache_bytes_per_gpu"] == N_LAYER * KV_PER_LAYER == 3_355_443_200
    assert run["max_context"] == CTX and run["context_limited_by_model"] is True
    assert both[0]["context_limit"] == CTX


def test_partial_offload_follows_llama_cpps_ngl_rule(both):
    # llama.cpp src/llama-model.cpp: i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0). Q8_0 gets -ngl 28, so
    # i_gpu_start = 41 - 28 = 13: blocks 0..12 (13 blocks) stay on the CPU with their KV, plus token_embd.
    [run] = [r for r in both[0]["alternatives"] if r["precision"] == "Q8_0"]
    assert run["runs"] is True
    assert run["offload"]["gpu_layers"] == 28 and run["offload"]["cpu_layers"] == 13
    # -ngl 28 holds the trained 4,096 tokens (it was chosen there); the next 256 would not fit (below)
    assert run["max_context"] == CTX and run["context_limited_by_model"] is True
    block = q8_0(BLOCK_MATRICES) + 2 * N_EMBD * 4  # Q8_0 matrices + F32 norms
    assert run["offload"]["ram_bytes"] == q8_0(N_VOCAB * N_EMBD) + 13 * (block + KV_PER_LAYER) == 5_646_376_960


def test_text_names_the_file(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, *ARGS, "--ram", "0")  # --ram 0: the same title both times
    assert code == 0, err
    assert "Q4_K_M (llama-2-13b-chat.Q4_K_M.gguf) with llama.cpp" in " ".join(out.split())
    code, out2, err = cli(capsys, "plan", REPO, *ARGS, "--ram", "0", "--engine", "llama.cpp")
    assert code == 0, err
    assert out2 == out  # llama.cpp is the default for a GGUF repo


@pytest.mark.parametrize(
    ("repo", "engine", "says"),
    [
        (REPO, "vllm", "--engine vllm does not load"),
        (REPO, "transformers", "--engine transformers does not load"),
        ("openai-community/gpt2-large", "llama.cpp", "--engine llama.cpp needs GGUF files"),
    ],
)
def test_wrong_engine_is_a_usage_error(capsys, on_replica, repo, engine, says):
    code, out, err = cli(capsys, "plan", repo, "--gpu", GPU, "--engine", engine)
    assert code == 2
    assert err.startswith("Error: ") and says in err and repo in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_library_default_engine_is_llama_cpp(on_replica):
    from inspector.api import plan_model
    from inspector.gpus import parse_gpu
    from inspector.plan import PlanSettings

    result = plan_model(REPO, gpus=[parse_gpu(GPU)], settings=PlanSettings(context=CTX), token=False)
    assert result.plan is not None and result.plan.engine == "llama.cpp" and result.plan.file.endswith("Q4_K_M.gguf")


@pytest.mark.parametrize("command", [(), ("check",), ("plan", "--gpu", "RTX-3060-12GB")])
def test_set_on_a_gguf_repo_is_a_usage_error(capsys, on_replica, command):
    """--set edits config.json before the build; a GGUF repo has none, so the option would be silently ignored."""
    code, out, err = cli(capsys, *command, "TheBloke/Llama-2-13B-chat-GGUF", "--set", "num_hidden_layers=61")
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("Error: --set does not apply to 'TheBloke/Llama-2-13B-chat-GGUF'")


def test_plan_file_chooses_one_file(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, *ARGS, "--file", "Q8_0", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["plan"]["file"] == "llama-2-13b-chat.Q8_0.gguf" and data["alternatives"] == []  # one GPU setup
    assert data["plan"]["offload"]["gpu_layers"] == 28  # the same -ngl as in the all-files plan above
    assert "recommended file: llama-2-13b-chat.Q4_K_M.gguf" in data["notes"][0]
    code, out, err = cli(capsys, "plan", REPO, *ARGS, "--file", "Q5_K_M")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("Error: No GGUF file 'Q5_K_M' in 'TheBloke/Llama-2-13B-chat-GGUF'")
    code, out, err = cli(capsys, "plan", "openai-community/gpt2-large", "--gpu", GPU, "--file", "Q8_0")
    assert code == 2 and "--file Q8_0 names a GGUF file" in err and err.count("\n") == 1


def test_plan_cache_type_reaches_the_gguf_plan(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, *ARGS, "--cache-type", "q8_0", "--json")
    assert code == 0, err
    # a q8_0 row of 5,120 values: 160 blocks of 34 B = 5,440 B; K and V x 4,096 cells x 40 layers
    assert json.loads(out)["plan"]["kv_cache_bytes_per_gpu"] == 2 * 5_440 * CTX * N_LAYER == 1_782_579_200


@pytest.mark.parametrize(
    ("gate", "code", "says"),
    [
        (("--min-context", "4096"), 0, None),  # Q4_K_M runs the trained 4,096 tokens with every layer on the GPU
        (
            ("--min-context", "8192"),
            11,
            "--min-context 8,192: the longest context is 4,096 tokens, the model's limit (Q4_K_M",
        ),
        (("--min-tokens-per-s", "1000"), 11, "--min-tokens-per-s 1000: decoding is expected at"),
    ],
)
def test_check_gates_on_gguf_as_on_safetensors(capsys, on_replica, gate, code, says):
    got, out, err = cli(capsys, "check", REPO, *ARGS, *gate, "--json")
    assert got == code, err
    problems = json.loads(out)["problems"]
    if says is None:
        assert problems == []
    else:
        [problem] = problems
        assert problem["code"] in ("context_too_short", "too_slow") and says in problem["message"]


# RTX-3060-12GB: 12,288 MiB less --overhead 1 GiB = 11,811,160,064 B for llama.cpp. Q8_0 partly offloaded, -ngl N
# puts N - 1 blocks (Q8_0 matrices + F32 norms, 337,059,840 B, each with its KV) and the output layer on the GPU:
# output.weight q8_0(32,000 x 5,120) = 174,080,000 + output_norm 20,480, the compute buffer COMPUTE = 76,021,760 and
# the largest RAM-kept tensor copied for a prompt micro-batch q8_0(13,824 x 5,120) = 75,202,560: 325,324,800 B in all
# besides the blocks.
Q8_BLOCK = q8_0(BLOCK_MATRICES) + 2 * N_EMBD * 4
Q8_FIXED = q8_0(N_VOCAB * N_EMBD) + N_EMBD * 4 + COMPUTE + q8_0(13_824 * N_EMBD)
BUDGET = 12_288 * 2**20 - 2**30


def kv_layer(ctx: int) -> int:
    return 2 * N_EMBD * ctx * 2  # K and V, f16


def test_partly_offloaded_longest_context_is_at_the_plans_ngl(capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, "--gpu", GPU, "--context", "2048", "--file", "Q8_0", "--json")
    assert code == 0, err
    run = json.loads(out)["plan"]
    # at 2,048 tokens: 30 blocks fit (30 x (337,059,840 + 41,943,040) + 325,324,800 = 11,695,411,200 <= budget),
    # 31 do not: -ngl 31 (30 blocks + the output layer)
    assert 30 * (Q8_BLOCK + kv_layer(2048)) + Q8_FIXED <= BUDGET < 31 * (Q8_BLOCK + kv_layer(2048)) + Q8_FIXED
    assert run["offload"]["gpu_layers"] == 31
    # 256 more tokens add 30 x 5,242,880 = 157,286,400 B of KV on the GPU, more than the 115,748,864 left: at -ngl
    # 31 the longest context is 2,048 (a multiple of 256), short of the model's 4,096
    assert 30 * (Q8_BLOCK + kv_layer(2048 + 256)) + Q8_FIXED > BUDGET
    assert run["max_context"] == 2048 and run["context_limited_by_model"] is False
    code, out, err = cli(capsys, "plan", REPO, "--gpu", GPU, "--context", "2048", "--file", "Q8_0")
    assert "2,048 tokens at -ngl 31" in out


@pytest.mark.parametrize(
    ("context", "code", "says"),
    [
        # -ngl 28 chosen at 4,096 tokens holds 4,096: the context gate passes; the file only fits partly (exit 10)
        ("4096", 10, None),
        ("2048", 11, "Q8_0 on RTX-3060-12GB does not fit fully on the GPU; with -ngl 31 the longest context is "
                     "2,048 tokens (a longer one runs with fewer layers on the GPU: `hfsize plan --context 4096`"),
    ],
)  # fmt: skip
def test_check_min_context_on_a_partly_offloaded_file(capsys, on_replica, context, code, says):
    args = ("check", REPO, "--gpu", GPU, "--file", "Q8_0", "--context", context, "--min-context", "4096", "--json")
    got, out, err = cli(capsys, *args)
    assert got == code, err
    problems = [p for p in json.loads(out)["problems"] if p["code"] == "context_too_short"]
    if says is None:
        assert problems == []
    else:
        [problem] = problems
        assert says in problem["message"] and "0 tokens" not in problem["message"]


def test_prefill_bound_is_compute_at_the_16_bit_peak(both):
    run = both[0]["plan"]
    # matmul parameters a token runs through: all but token_embd (a row lookup): 13,015,864,320 - 32,000 x 5,120;
    # causal attention at 4,096 tokens: 40 layers x 2 x q_width 5,120 x 4,096. RTX-3060-12GB: 25.5 fp16 TFLOPS
    flops = 2 * (13_015_864_320 - N_VOCAB * N_EMBD) + N_LAYER * 2 * N_EMBD * CTX  # 27,381,770,240
    assert run["prefill_tokens_per_s"]["bound"] == pytest.approx(25.5e12 / flops)
    assert run["prefill_tokens_per_s"]["limited_by"] == "compute"
    [q8] = [r for r in both[0]["alternatives"] if r["precision"] == "Q8_0"]
    # -ngl 28: 13 Q8_0 blocks (337,059,840 B each) stay in RAM and cross PCIe 4.0 x16 (31.5 GB/s) per 512 tokens
    pcie = 16e9 * 16 * 128 / 130 / 8
    t = flops / 25.5e12 + 13 * (q8_0(BLOCK_MATRICES) + 2 * N_EMBD * 4) / pcie / 512
    assert q8["prefill_tokens_per_s"]["bound"] == pytest.approx(1 / t)


@pytest.mark.parametrize(
    ("command", "option", "named"),
    [
        ((), ("--cpu-moe",), "--cpu-moe"),
        (("check",), ("--tensor-split", "3,1"), "--tensor-split"),
        (("plan", "--gpu", GPU), ("-ot", "exps=CPU"), "--override-tensor"),
        (("plan", "--gpu", GPU), ("--n-cpu-moe", "4"), "--n-cpu-moe"),
        (("check",), ("--cache-type", "q8_0"), "--cache-type"),
    ],
)
def test_llama_cpp_options_on_a_safetensors_repo_are_a_usage_error(capsys, on_replica, command, option, named):
    """They place or size what llama.cpp loads from a GGUF file; on a safetensors repo they would change nothing."""
    repo = "openai-community/gpt2-large"
    code, out, err = cli(capsys, *command, repo, *option)
    assert code == 2, err
    assert err.count("\n") == 1 and out == ""
    assert err.startswith(f"Error: {named} applies to GGUF files (llama.cpp) and '{repo}' has none")
    code, out, err = cli(capsys, *command, REPO, *option, "--json")  # the same option on a GGUF repo is used
    assert code in (0, 10), err
