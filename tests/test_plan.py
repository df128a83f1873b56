"""`hfsize plan` and the longest context (inspector/plan.py), against figures from outside the code under test:
accelerate's own infer_auto_device_map on the meta model, published vLLM start-up logs (tests/data/published.json),
datasheet link speeds and arithmetic shown in the comments."""

from __future__ import annotations

import json

import pytest

from inspector.placement import Device
from inspector.plan import context_limit, longest_context, offloaded_placement, scheme_sizes, weight_blocks
from tests.helpers import FIXTURES, cli, words
from tests.helpers import report as report_json

GIB = 2**30
PUBLISHED = json.loads((FIXTURES.parent.parent / "tests" / "data" / "published.json").read_text())
MISTRAL = json.loads((FIXTURES / "mistralai" / "Mistral-7B-v0.1" / "config.json").read_text())
# One Llama-2-70B decoder layer: q and o 8192 x 8192, k and v 8192 x 1024 (8 KV heads), MLP 3 x 8192 x 28672,
# two norms of 8192 = 855,654,400 parameters, 1,711,308,800 bytes in fp16
LLAMA2_70B_LAYER_FP16 = 2 * (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192)
# PCIe 4.0 x16, one direction: 16 GT/s x 16 lanes x 128/130 / 8 = 31.5 GB/s (the RTX 4090's host link)
PCIE4_X16 = 16e9 * 16 * 128 / 130 / 8


# ---------------------------------------------------------------- the model's limit, the search


def test_context_limit_from_max_position_embeddings_and_rope_scaling():
    assert context_limit({"max_position_embeddings": 4096, "rope_scaling": None}) == 4096
    # Qwen2.5's cards: yarn factor 4 on original_max_position_embeddings 32,768 enables 131,072 tokens
    yarn = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert context_limit({"max_position_embeddings": 32768, "rope_scaling": yarn}) == 131072
    # linear scaling x2 without an original length extends max_position_embeddings
    assert context_limit({"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}}) == 8192
    # Llama 3.1's llama3 rope: max_position_embeddings already states 131,072
    llama3 = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert context_limit({"max_position_embeddings": 131072, "rope_scaling": llama3}) == 131072
    assert context_limit({}) is None


def test_longest_context_is_the_exact_largest_that_fits():
    # 1,000 bytes of weights + 7 bytes per token in 10,000 bytes: (10,000 - 1,000) // 7 = 1,285
    def fits(context: int) -> bool:
        return 1000 + 7 * context <= 10_000

    assert longest_context(fits, None) == 1285
    assert longest_context(fits, 1000) == 1000  # clipped to the model's limit
    assert longest_context(lambda c: False, 4096) is None


# ---------------------------------------------------------------- CPU offload against accelerate itself


@pytest.fixture(scope="module")
def mistral_meta():
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    from inspector.architecture import build

    built = build(dict(MISTRAL))
    config = AutoConfig.for_model(**{k: v for k, v in MISTRAL.items() if k != "architectures"})
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return built, model, torch


@pytest.mark.parametrize(
    "gpu_bytes, ram_bytes",
    [
        (6 * GIB, 64 * 10**9),  # a few layers on the GPU, the rest in RAM
        (10 * GIB, 2 * GIB),  # RAM too small: the rest goes to disk (hfsize: not placed)
        # 0.1 GB short of the whole model (14.48 GB in fp16): the embeddings and all 32 layers (14.22 GB) would fit,
        # but accelerate keeps room for the largest block still to come (the 0.26 GB head) on GPU 0, so layer 31
        # goes to the CPU too
        (14_483_464_192 - 100_000_000, 64 * 10**9),
        # 50 MB to spare: all on the GPU. (hfsize places what follows the layers, the final norm and the head, as one
        # block, accelerate as two modules: they can differ within the norm's 8 kB of a boundary, not elsewhere)
        (14_483_464_192 + 50_000_000, 64 * 10**9),
    ],
)
def test_offload_agrees_with_accelerates_infer_auto_device_map(mistral_meta, gpu_bytes, ram_bytes):
    from accelerate.utils import infer_auto_device_map

    built, model, torch = mistral_meta
    device_map = infer_auto_device_map(
        model,
        max_memory={0: gpu_bytes, "cpu": ram_bytes},
        no_split_module_classes=model._no_split_modules,
        dtype=torch.float16,
    )

    def device_of(module: str) -> object:  # the map names the largest module placed whole
        owner = max((k for k in device_map if k == "" or module == k or module.startswith(k + ".")), key=len)
        return device_map[owner]

    layers = {i: device_of(f"model.layers.{i}") for i in range(MISTRAL["num_hidden_layers"])}
    blocks = weight_blocks(scheme_sizes(built, "fp16", None)["fp16"], built.buffer_bytes)
    ours = offloaded_placement(blocks, [Device("gpu", gpu_bytes)], Device("cpu", ram_bytes))
    on_gpu = [int(n[6:]) for n in ours.gpu_blocks["gpu"] if n.startswith("layer ")]
    on_cpu = [int(n[6:]) for n in ours.cpu_blocks if n.startswith("layer ")]
    unplaced = [int(n[6:]) for n in ours.unplaced if n.startswith("layer ")]
    assert on_gpu == sorted(k for k, v in layers.items() if v == 0)
    assert on_cpu == sorted(k for k, v in layers.items() if v == "cpu")
    assert unplaced == sorted(k for k, v in layers.items() if v == "disk")
    assert device_of("model.embed_tokens") == 0 and "embeddings" in ours.gpu_blocks["gpu"]
    head_on_cpu = "head" in ours.cpu_blocks
    assert head_on_cpu == (device_of("lm_head") == "cpu")
    if gpu_bytes == 14_483_464_192 - 100_000_000:
        assert on_cpu == [31], "the reservation for the largest block to come offloads layer 31"


@pytest.mark.parametrize(
    "spec, rooms",
    [
        ("10GiB+5GiB", (10 * GIB, 5 * GIB)),  # 15 GiB in all hold Mistral's 14.48 GB; two 5 GiB GPUs would not
        ("5GiB+10GiB", (5 * GIB, 10 * GIB)),  # the small one first: it fills, then the large one
        ("12GiB+2GiB", (12 * GIB, 2 * GIB)),  # 14 GiB: short of the whole model, some layers left over
    ],
)
def test_an_unequal_setup_is_filled_as_accelerate_fills_each_gpus_own_memory(mistral_meta, spec, rooms):
    """device_map="auto" on unequal GPUs gives each its own max_memory (it did count as the smallest GPU, so
    RTX-4090+RTX-3060 held no more than two 3060s): the verdict and GPU count are accelerate's own map's."""
    from accelerate.utils import infer_auto_device_map

    from inspector.gpus import parse_gpu
    from inspector.placement import blocks as make_blocks
    from inspector.placement import fit

    built, model, torch = mistral_meta
    device_map = infer_auto_device_map(
        model,
        max_memory={0: rooms[0], 1: rooms[1], "cpu": 0},
        no_split_module_classes=model._no_split_modules,
        dtype=torch.float16,
    )
    used = set(device_map.values())
    sizes = scheme_sizes(built, "fp16", None)["fp16"]
    pieces = make_blocks(sizes, list(sizes), [], built.buffer_bytes)
    verdict = fit(pieces, parse_gpu(spec), 0, weights=pieces)
    if used <= {0, 1}:  # all on the two GPUs
        assert verdict.verdict == "fits" and verdict.gpus_needed == len(used)
    else:  # accelerate sends the rest to the CPU or disk: more than these GPUs hold
        assert verdict.verdict != "fits"


# ---------------------------------------------------------------- the longest context in the main report


def test_max_context_in_memory_json_is_exact(capsys, on_replica):
    code, out, err = cli(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "28GiB", "--gpu", "40GiB", "--json")
    assert code == 0, err
    memory = json.loads(out)["memory"]
    # fp16 weights: 13,015,864,320 parameters x 2 = 26,031,728,640 B (Llama-2-13B's published count and the
    # index total_size of the same shape); KV per token: 40 layers x 2 x 40 heads x 128 x 2 B = 819,200 B.
    # 28 GiB less 1 GiB overhead = 28,991,029,248 B: (28,991,029,248 - 26,031,728,640 - rotary buffers of a few
    # hundred bytes) // 819,200 = 3,612 tokens
    assert memory["fp16"]["max_context"]["28GiB"] == 3612
    # 40 GiB leaves room for 19,341 tokens: clipped to the model's 4,096 (max_position_embeddings)
    assert memory["max_positions"] == 4096
    assert memory["fp16"]["max_context"]["40GiB"] == 4096
    assert memory["fp32"]["max_context"]["28GiB"] is None  # 52 GB of fp32 weights
    code, out, err = cli(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "28GiB")
    assert code == 0, err
    assert "How it runs" in out and "28GiB: fp16, up to 3,612 tokens" in out


# ---------------------------------------------------------------- `hfsize plan`, transformers with CPU offload


def test_plan_llama2_70b_on_a_4090_offloads_a_4_bit_build(capsys, on_replica):
    code, out, err = cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--ram", "64GB", "--json")
    assert code == 0, err
    result = json.loads(out)
    plan = result["plan"]
    assert plan["engine"] == "transformers" and plan["runs"]
    assert plan["precision"] in ("nf4", "nf4_double_quant")  # fp16 (138 GB) and int8 do not fit 24 GB + 64 GB
    offload = plan["offload"]
    assert offload["gpu_layers"] + offload["cpu_layers"] == 80 and offload["cpu_layers"] > 0
    # bitsandbytes leaves offloaded layers unquantized: each is a whole fp16 layer in RAM, within the 64 GB
    assert offload["cpu_layers"] * LLAMA2_70B_LAYER_FP16 <= offload["ram_bytes"] <= 64 * 10**9
    assert plan["weights_bytes_per_gpu"] + plan["kv_cache_bytes_per_gpu"] <= 24 * GIB - GIB
    assert plan["max_context"] == 4096 and plan["context_limited_by_model"]
    decode = plan["decode_tokens_per_s"]
    # every token streams the offloaded layers over PCIe 4.0 x16: no faster than 31.5 GB/s / their bytes
    assert decode["bound"] <= PCIE4_X16 / (offload["cpu_layers"] * LLAMA2_70B_LAYER_FP16)
    assert 0 < decode["expected_low"] < decode["expected_high"] < decode["bound"]
    assert decode["limited_by"] == "PCIe host link"
    names = {(a["precision"], a["runs"]) for a in result["alternatives"]}
    assert ("fp16", False) in names
    code, text, err = cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--ram", "64GB")
    assert code == 0, err
    assert "How it runs: nf4" in text and "in CPU RAM" in text and "Alternatives" in text
    assert "4,096 tokens (the model's limit)" in text


def test_plan_without_ram_says_what_does_not_fit(capsys, on_replica):
    code, out, err = cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--ram", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["plan"] is None
    assert all(not a["runs"] and "give --ram" in a["why_not"] for a in result["alternatives"])


def test_plan_usage_errors_are_one_line(capsys, on_replica):
    # Llama-2-70B has 64 attention heads: 3 does not divide them (vLLM's verify_with_parallel_config)
    code, out, err = cli(
        capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100x3", "--engine", "vllm", "--tp", "3"
    )
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and "(64)" in err and "divisible" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100x2", "--tp", "2")
    assert code == 2 and "--engine vllm" in err
    code, out, err = cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100", "--ram", "lots")
    assert code == 2 and "'lots'" in err


# ---------------------------------------------------------------- `hfsize plan --engine vllm`


def test_plan_vllm_tp2_kv_tokens_and_concurrency(capsys, on_replica):
    code, out, err = cli(
        capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100x2", "--engine", "vllm", "--tp", "2", "--json"
    )
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert (plan["engine"], plan["precision"], plan["tensor_parallel"]) == ("vllm", "fp16", 2)
    # each GPU holds half the fp16 weights (68,976,648,192 parameters x 2 B / 2) plus its copy of the norms
    assert 68_976_648_192 <= plan["weights_bytes_per_gpu"] <= 68_976_648_192 + 3_000_000
    # a block per GPU: 16 tokens x 2 (K, V) x (8 KV heads / 2) x 128 x 2 B = 32,768 B per layer, 80 layers
    blocks = plan["kv_cache_bytes_per_gpu"] // 32_768 // 80
    assert plan["kv_tokens"] == blocks * 16
    assert plan["max_concurrency"] == pytest.approx(blocks / (2048 // 16))  # --context 2048: 128 blocks each
    assert plan["max_context"] == 4096


@pytest.mark.parametrize(
    "row_id, gpu", [("vllm-10511-llama3-8b-h100", "H100-80GB"), ("vllm-10517-llama3.1-8b-3090-29k", "RTX-3090")]
)
def test_plan_vllm_matches_published_logs(capsys, on_replica, row_id, gpu):
    row = next(r for r in PUBLISHED["vllm"] if r["id"] == row_id)
    s, measured = row["settings"], row["measured"]
    low, high = PUBLISHED["bands"]["vllm_budget"]
    # the log's own settings; the non-torch memory it printed (v0 engines; no CUDA graph estimate then)
    code, out, err = cli(
        capsys, "plan", "tenstorrent-tt-metal/Llama-3.1-8B-Instruct", "--gpu", gpu, "--engine", "vllm",
        "--context", str(s["max_model_len"]), "--max-num-batched-tokens", str(s["max_num_batched_tokens"]),
        "--non-torch", f"{measured['non_torch_gib']}GiB", "--enforce-eager", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    # bf16 as the log's model ran; at 29,000 tokens vLLM (and hfsize) find less than one request's room
    run = next(r for r in [result["plan"], *result["alternatives"]] if r and r["precision"] == "bf16")
    assert low <= run["weights_bytes_per_gpu"] / GIB / measured["weights_gib"] <= high
    assert low <= run["kv_cache_bytes_per_gpu"] / GIB / measured["kv_cache_gib"] <= high
    if "num_blocks" in measured:
        assert low <= run["kv_tokens"] / 16 / measured["num_blocks"] <= high
        assert low <= run["max_concurrency"] / measured["max_concurrency"] <= high


# ---------------------------------------------------------------- `hfsize check` gating on a plan


def test_check_gates_on_the_plan(capsys, on_replica):
    args = ("check", "meta-llama/Llama-2-13b-hf", "--gpu", "RTX-4090", "--precision", "int8", "--ram", "0", "--json")
    code, out, err = cli(capsys, *args, "--min-context", "2048")
    assert code == 0, err  # int8 (13.5 GB) leaves room for the model's whole 4,096 tokens on 24 GB
    # the model's own limit is 4,096 tokens (max_position_embeddings, no rope scaling): 8,192 cannot run
    code, out, err = cli(capsys, *args, "--min-context", "8192")
    assert code == 11, err
    assert [p["code"] for p in json.loads(out)["problems"]].count("context_too_short") == 1
    # an RTX 4090 reads 1,008 GB/s; any 13B build reads at least 6.5 GB (4-bit) per token: < 155 tokens/s
    code, out, err = cli(capsys, *args, "--min-tokens-per-s", "1000")
    assert code == 11
    assert "too_slow" in [p["code"] for p in json.loads(out)["problems"]]


def test_readme_documents_every_plan_and_check_option():
    from inspector.cli import main

    readme = (FIXTURES.parent.parent / "README.md").read_text()
    for command in ("plan", "check"):
        for param in main.commands[command].params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in readme, (command, opt)


def test_plan_of_a_pre_quantized_checkpoint_is_as_stored(capsys, on_replica):
    # a bitsandbytes int8 checkpoint (Llama-3.1-8B): it loads as its files hold it, never requantized or in 16-bit
    code, out, err = cli(capsys, "plan", "xap/Meta-Llama3.1-8B-Instruct-assessment", "--gpu", "T4", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["plan"]["precision"] == "as_stored"
    assert {a["precision"] for a in result["alternatives"]} <= {"as_stored"}


def test_plan_engines_are_the_registry():
    from inspector.cli import ENGINE_NAMES
    from inspector.engines import ENGINES

    # a new engine appears in both; llama.cpp (GGUF files) is planned on the GGUF report's figures (gguf_plan.py)
    assert ENGINE_NAMES == tuple(ENGINES)
    assert ENGINES["llama.cpp"].checkpoint == "gguf"


# ---------------------------------------------------------------- every layer's KV cache, and one rule for the report

# T4: 15 GiB (16,106,127,360 B, the catalog's usable memory) less the default 1 GiB overhead = 15,032,385,536 B
T4_ROOM = 16_106_127_360 - GIB
# Mistral-7B-v0.1: 7,241,732,096 parameters (the published count) x 2 B in bf16 = 14,483,464,192 B, + 512 B of
# rotary buffers (inv_freq) = 14,483,464,704 B; KV per token, all layers: 32 x 2 (K, V) x 8 KV heads x 128 x 2 B
MISTRAL_BF16 = 7_241_732_096 * 2 + 512
MISTRAL_KV_PER_TOKEN = 32 * 2 * 8 * 128 * 2  # 131,072 B
# Llama-2-7B: 6,738,415,616 parameters x 2 B in fp16 + 512 B of buffers; KV per token: 32 x 2 x 32 heads x 128 x 2 B
LLAMA2_7B_FP16 = 6_738_415_616 * 2 + 512
LLAMA2_7B_KV_PER_TOKEN = 32 * 2 * 32 * 128 * 2  # 524,288 B


def _way(result: dict, precision: str) -> dict:
    """The way of that precision; a bf16 model on a T4 (no bf16) is planned in fp16, the same bytes
    (tests/test_no_bf16.py)."""
    ways = [r for r in [result["plan"], *result["alternatives"]] if r]
    if precision == "bf16" and not any(r["precision"] == "bf16" for r in ways):
        precision = "fp16"
    return next(r for r in ways if r["precision"] == precision)


@pytest.mark.parametrize(
    "model, precision, weights, per_token, longest",
    [
        # (15,032,385,536 - 14,483,464,704) // 131,072 = 548,920,832 // 131,072 = 4,187
        # (4,187 x 131,072 = 548,798,464 fits; 4,188 x 131,072 = 548,929,536 does not)
        ("mistralai/Mistral-7B-v0.1", "bf16", MISTRAL_BF16, MISTRAL_KV_PER_TOKEN, 4187),
        # (15,032,385,536 - 13,476,831,744) // 524,288 = 1,555,553,792 // 524,288 = 2,966
        ("meta-llama/Llama-2-7b-hf", "fp16", LLAMA2_7B_FP16, LLAMA2_7B_KV_PER_TOKEN, 2966),
    ],
)
def test_plan_counts_every_layers_kv_cache_and_agrees_with_the_report(
    capsys, on_replica, model, precision, weights, per_token, longest
):
    assert (T4_ROOM - weights) // per_token == longest  # the arithmetic in the comments above
    report = json.loads(cli(capsys, model, "--gpu", "T4", "--json")[1])
    assert report["memory"][precision]["max_context"]["T4"] == longest
    args = ("plan", model, "--gpu", "T4", "--ram", "0", "--json")
    at_longest = _way(json.loads(cli(capsys, *args, "--context", str(longest))[1]), precision)
    assert at_longest["runs"] and at_longest["max_context"] == longest == at_longest["max_context_on_gpus"]
    assert at_longest["offload"]["gpu_layers"] == 32
    assert at_longest["weights_bytes_per_gpu"] == weights
    assert at_longest["kv_cache_bytes_per_gpu"] == 32 * (per_token // 32) * longest  # all 32 layers, not 31
    # one token more: weights + KV + 1 GiB overhead exceed the T4's 16,106,127,360 B
    assert weights + per_token * (longest + 1) + GIB > 16_106_127_360
    beyond = _way(json.loads(cli(capsys, *args, "--context", str(longest + 1))[1]), precision)
    assert not beyond["runs"] and "fit neither" in beyond["why_not"]
    # the reviewer's case: Mistral at 4,323 tokens needs 14,483,464,704 + 4,323 x 131,072 + 1 GiB = 16,123,830,784 B
    if precision == "bf16":
        assert MISTRAL_BF16 + 4323 * MISTRAL_KV_PER_TOKEN + GIB == 16_123_830_784
        assert not _way(json.loads(cli(capsys, *args, "--context", "4323")[1]), precision)["runs"]


@pytest.mark.parametrize(
    "model, precision, context, kv_total",
    [
        # the reviewer's case: 32,768 x 131,072 B = 4,294,967,296 B (Mistral's 32 layers are full attention in
        # transformers' cache: memory.kv_cache)
        ("mistralai/Mistral-7B-v0.1", "bf16", 32768, 4_294_967_296),
        # 4,096 x 524,288 B = 2,147,483,648 B
        ("meta-llama/Llama-2-7b-hf", "fp16", 4096, 2_147_483_648),
    ],
)
def test_offloaded_layers_keep_their_kv_cache_on_the_first_gpu(capsys, on_replica, model, precision, context, kv_total):
    # on a T4 with 32 GB of RAM some layers go to RAM; the KV cache of every layer, offloaded or not, is on the GPU
    per_token = MISTRAL_KV_PER_TOKEN if precision == "bf16" else LLAMA2_7B_KV_PER_TOKEN
    assert per_token * context == kv_total
    args = ("plan", model, "--gpu", "T4", "--ram", "32GB", "--context", str(context), "--json")
    run = _way(json.loads(cli(capsys, *args)[1]), precision)
    assert run["runs"] and run["offload"]["cpu_layers"] > 0
    assert run["kv_cache_bytes_per_gpu"] == kv_total


def test_longest_context_says_where_the_layers_go_there(capsys, on_replica):
    args = ("plan", "mistralai/Mistral-7B-v0.1", "--gpu", "T4", "--ram", "32GB")
    run = json.loads(cli(capsys, *args, "--json")[1])["plan"]
    # a bf16 model, planned in fp16 on a T4 (no bf16; the same bytes): at 2,048 tokens all on the GPU
    assert run["precision"] == "fp16" and run["offload"]["cpu_layers"] == 0
    assert run["max_context"] == 32768 and run["context_limited_by_model"]
    # all on the GPU: the report's 4,187 (test above). At 32,768 tokens the KV cache of all 32 layers is
    # 32,768 x 131,072 = 4,294,967,296 B on the GPU, leaving 15,032,385,536 - 4,294,967,296 = 10,737,418,240 B; the
    # embeddings (32,000 x 4,096 x 2 + 512 = 262,144,512 B) and k layers of 436,224,000 B (218,112,000 parameters
    # x 2) with room kept for one more (accelerate's reservation): 262,144,512 + (k + 1) x 436,224,000 <=
    # 10,737,418,240 gives k = 23, so 32 - 23 = 9 layers in CPU RAM
    assert run["max_context_on_gpus"] == 4187
    assert run["offload"]["cpu_layers_at_max_context"] == 9
    assert 262_144_512 + 24 * 436_224_000 <= T4_ROOM - 32768 * MISTRAL_KV_PER_TOKEN < 262_144_512 + 25 * 436_224_000
    code, text, err = cli(capsys, *args)
    assert code == 0, err
    line = words(text)
    assert "32,768 tokens (the model's limit) with 9 layers in CPU RAM; all on the GPU(s): 4,187 tokens" in line
    code, text, err = cli(capsys, "mistralai/Mistral-7B-v0.1", "--gpu", "T4")
    assert "T4: fp16, up to 4,187 tokens" in words(text)


def test_report_and_plan_keep_bitsandbytes_share_free_alike(capsys, on_replica):
    # transformers keeps 10% of max_memory for bitsandbytes (adjust_max_memory): int8 Llama-2-13B on a T4 has
    # int(15,032,385,536 x 0.9) = 13,529,146,982 B. Its int8 weights: 40 layers x (4 x 5120^2 + 3 x 5120 x 13,824)
    # = 12,687,769,600 B + an fp32 scale per output row (40 x 53,248 rows x 4 B = 8,519,680) + fp16 embeddings and
    # head (2 x 32,000 x 5,120 x 2 = 655,360,000) + norms (81 x 5,120 x 2 = 829,440) = 13,352,478,720 B, + 512 B of
    # rotary buffers; KV per token 40 x 2 x 40 x 128 x 2 = 819,200 B: (13,529,146,982 - 13,352,479,232) // 819,200
    # = 215 tokens, short of the report's 2,048: int8 does not run there, nf4 does (plan's recommendation too)
    int8 = 12_687_769_600 + 8_519_680 + 655_360_000 + 829_440 + 512
    assert (int(T4_ROOM * 0.9) - int8) // 819_200 == 215
    report = json.loads(cli(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "T4", "--json")[1])["memory"]
    assert report["int8"]["weights_bytes"] == int8
    assert report["int8"]["max_context"]["T4"] == 215
    assert report["int8"]["fits"]["T4"]["verdict"] == "needs_more"
    plan = json.loads(cli(capsys, "plan", "meta-llama/Llama-2-13b-hf", "--gpu", "T4", "--ram", "0", "--json")[1])
    assert plan["plan"]["precision"] == "nf4"
    assert _way(plan, "int8")["max_context"] == 215
    code, text, err = cli(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "T4")
    assert "T4: nf4 (bnb), up to 4,096 tokens (the model's limit)" in words(text)


def test_plan_text_and_markdown_say_why_a_way_does_not_run(capsys, on_replica):
    # Llama-2-70B fp16 on an RTX-4090 with 64 GB of RAM at 2,048 tokens: 24,683,479,040 B on the GPU (24,564 MiB
    # less 1 GiB). A layer is 1,711,308,800 B + 8,388,608 B of KV (2 x 8 KV heads x 128 x 2 B x 2,048). The GPU
    # also holds the KV of the 36 offloaded layers (36 x 8,388,608 = 301,989,888) and room for one layer to run:
    # 524,288,000 (embeddings) + 12 x 1,719,697,408 <= 24,683,479,040 - 301,989,888 - 1,711,308,800 < 13 layers.
    # RAM, with room for one layer more: 37 x 1,711,308,800 = 63,318,425,600 <= 64e9 < 38 x 1,711,308,800 (36
    # layers). 80 - 12 - 36 = 32 layers and the head go nowhere.
    room = 25_757_220_864 - GIB - 36 * 8_388_608 - LLAMA2_70B_LAYER_FP16
    assert (
        524_288_000 + 12 * (LLAMA2_70B_LAYER_FP16 + 8_388_608)
        <= room
        < 524_288_000 + 13 * (LLAMA2_70B_LAYER_FP16 + 8_388_608)
    )
    assert 37 * LLAMA2_70B_LAYER_FP16 <= 64 * 10**9 < 38 * LLAMA2_70B_LAYER_FP16
    args = ("plan", "meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--ram", "64GB")
    result = json.loads(cli(capsys, *args, "--json")[1])
    fp16 = _way(result, "fp16")
    assert (fp16["offload"]["gpu_layers"], fp16["offload"]["cpu_layers"]) == (12, 36)
    reason = "32 of 80 layers and the head fit neither the GPUs nor the CPU RAM given at 2,048 tokens"
    assert fp16["why_not"] == reason
    not_running = [a for a in result["alternatives"] if not a["runs"]]
    assert {a["precision"] for a in not_running} >= {"fp16", "int8"}
    code, text, err = cli(capsys, *args)
    assert code == 0, err
    said = words(text)
    assert f"fp16 on RTX-4090: {reason}." in said
    for a in not_running:
        assert words(a["why_not"]) in said
        if a["max_context"] is not None:  # a shorter --context runs; not shown as this way's context
            assert f"it runs with --context {a['max_context']:,} or less" in a["why_not"]
            assert f"{a['max_context']:,} tokens" not in said.replace(a["why_not"], "")
    for row in text.splitlines():
        if row.startswith(("fp16 ", "int8 ")) and " no " in row:
            assert row.split()[-1] == "-"  # the context column of a way that does not run
    code, md, err = cli(capsys, *args, "--format", "markdown")
    assert code == 0, err
    assert f"- fp16 on RTX-4090: {reason}." in md
    rows = [r for r in md.splitlines() if r.startswith("| fp16 ")]
    assert rows and all(r.split("|")[9].strip() == "-" for r in rows)  # the context column


def test_two_gpus_keep_room_for_a_layer_on_the_first_alike_in_report_and_plan(capsys, on_replica):
    # Llama-2-13B fp16 on two T4s (15,032,385,536 B each after the overhead). A layer: 4 x 5120^2 + 3 x 5120 x 13,824
    # + 2 x 5120 = 317,204,480 parameters = 634,408,960 B, + 40 heads x 128 x 2 (K, V) x 2 B = 20,480 B of KV per
    # token; the embeddings 32,000 x 5,120 x 2 = 327,680,000 B + 512 B of buffers; the head 327,690,240 B.
    # accelerate keeps room for one layer (its weights) on GPU 0: at c tokens GPU 0 takes k layers with
    # 327,680,512 + k x (634,408,960 + 20,480 c) <= 15,032,385,536 - 634,408,960, GPU 1 the other 40 - k and the head.
    room, layer, head, embeddings = T4_ROOM, 634_408_960, 327_690_240, 327_680_512

    def fits(c: int) -> bool:
        k = (room - layer - embeddings) // (layer + 20_480 * c)
        return (40 - k) * (layer + 20_480 * c) + head <= room

    assert fits(3374) and not fits(3375)  # k = 20 at 3,374 tokens; k = 19 at 3,375 and GPU 1's 21 layers overflow
    report = json.loads(cli(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "T4x2", "--json")[1])["memory"]
    assert report["fp16"]["max_context"]["T4 x2"] == 3374
    plan = json.loads(cli(capsys, "plan", "meta-llama/Llama-2-13b-hf", "--gpu", "T4x2", "--ram", "0", "--json")[1])
    assert plan["plan"]["precision"] == "fp16" and plan["plan"]["max_context"] == 3374
    # the report's verdict follows the same rule: at 3,375 tokens fp16 no longer fits the two T4s
    for context, verdict in ((3374, "fits"), (3375, "needs_more")):
        args = ("meta-llama/Llama-2-13b-hf", "--gpu", "T4x2", "--context", str(context), "--json")
        assert json.loads(cli(capsys, *args)[1])["memory"]["fp16"]["fits"]["T4 x2"]["verdict"] == verdict


def test_plan_names_the_busiest_gpu_figure_on_several_gpus(capsys, on_replica):
    # Llama-2-13B fp16 on two T4s at 2,048 tokens (the arithmetic of the test above): a layer 634,408,960 B + 2,048 x
    # 20,480 = 41,943,040 B of KV; GPU 0 keeps room for one layer: (15,032,385,536 - 634,408,960 - 327,680,512) //
    # 676,352,000 = 20 layers with the embeddings (327,680,512 + 20 x 634,408,960 = 13,015,859,712 B of weights),
    # GPU 1 the other 20 and the head (20 x 634,408,960 + 327,690,240 = 13,015,869,440 B). The figure shown is GPU
    # 1's, so the label says it is the most one GPU holds, not what each GPU holds.
    assert (T4_ROOM - 634_408_960 - 327_680_512) // (634_408_960 + 41_943_040) == 20
    args = ("plan", "meta-llama/Llama-2-13b-hf", "--gpu", "T4x2", "--ram", "0")
    plan = report_json(capsys, *args)["plan"]
    assert plan["weights_bytes_per_gpu"] == max(327_680_512 + 20 * 634_408_960, 20 * 634_408_960 + 327_690_240)
    assert plan["kv_cache_bytes_per_gpu"] == 20 * 41_943_040
    gib = 13_015_869_440 / GIB  # 12.12 GiB; KV 838,860,800 B = 0.78 GiB
    text = words(cli(capsys, *args)[1])
    assert f"weights {gib:.2f} GiB, the most on one GPU" in text
    assert "KV cache 0.78 GiB at the context, the most on one GPU" in text
    md = cli(capsys, *args, "--format", "markdown")[1]
    assert f"| weights | {gib:.2f} GiB, the most on one GPU |" in md
    # an unequal setup alike; one GPU and tensor parallelism keep their words
    text = words(cli(capsys, "plan", "meta-llama/Llama-2-13b-hf", "--gpu", "RTX-4090+RTX-3060", "--ram", "0")[1])
    assert "GiB, the most on one GPU" in text and "per GPU" not in text.replace("overhead per GPU", "")
    text = words(cli(capsys, "plan", "meta-llama/Llama-2-13b-hf", "--gpu", "H100")[1])
    assert "GiB on the GPU" in text and "the most on one GPU" not in text
    text = words(cli(capsys, "plan", "meta-llama/Llama-2-70b-hf", "--gpu", "H100x2", "--engine", "vllm")[1])
    assert "GiB per GPU, tensor parallel 2" in text and "the most on one GPU" not in text


def test_plan_vllm_says_why_sliding_layers_let_more_requests_in(capsys, on_replica):
    # gpt-oss-20b: 24 layers, 12 sliding (window 128) and 12 full; 2 (K, V) x 8 KV heads x 64 x 2 B = 2,048 B per
    # token and layer, a page of 16 tokens 32,768 B; two groups of 12 layers: num_blocks = KV bytes // 32,768 // 12,
    # and vLLM's "GPU KV cache size" num_blocks // 2 x 16 tokens. A request of 16,384 tokens (max_num_batched_tokens
    # 2,048 on an RTX-4090) takes 16,384 / 16 = 1,024 blocks of the full group and cdiv(min(127 + 2,048, 16,384),
    # 16) + 1 = 137 of the sliding one (vLLM's SlidingWindowSpec.max_memory_usage_bytes): concurrency is
    # num_blocks / 1,161, above KV tokens / context = num_blocks / 2,048, and a note says why.
    args = ("plan", "EchoCog-gpt-oss-20b/gpt-oss-20b", "--engine", "vllm", "--gpu", "RTX-4090", "--context", "16384")
    plan = report_json(capsys, *args)["plan"]
    blocks = plan["kv_cache_bytes_per_gpu"] // 32_768 // 12
    assert plan["kv_tokens"] == blocks // 2 * 16
    assert plan["max_concurrency"] == pytest.approx(blocks / (1024 + 137))
    assert plan["max_concurrency"] > plan["kv_tokens"] / 16_384
    ratio = plan["kv_tokens"] / 16_384
    note = [a for a in plan["assumptions"] if "SlidingWindowSpec.max_memory_usage_bytes" in a]
    assert len(note) == 1
    assert f"Concurrency {plan['max_concurrency']:,.2f} is above KV tokens / context" in note[0]
    assert f"({plan['kv_tokens']:,} / 16,384 = {ratio:.2f})" in note[0]
    assert "(12 with window 128: 137; a full-attention layer 1,024;" in note[0]
    text = words(cli(capsys, *args)[1])
    assert "vLLM's KV cache manager gives sliding-window layers only the blocks of their window" in text
    assert "vLLM's KV cache manager gives sliding-window layers" in cli(capsys, *args, "--format", "markdown")[1]
    # full attention only (Llama-2-13B): a request takes 2,048 / 16 blocks of each layer, concurrency is tokens /
    # context exactly, and nothing needs saying
    full = report_json(capsys, "plan", "meta-llama/Llama-2-13b-hf", "--engine", "vllm", "--gpu", "H100")["plan"]
    assert full["max_concurrency"] == pytest.approx(full["kv_tokens"] / 2048)
    assert not [a for a in full["assumptions"] if "SlidingWindowSpec" in a]
