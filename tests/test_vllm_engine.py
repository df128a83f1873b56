"""vLLM's KV budget rules (inspector/engines/vllm.py), each checked against arithmetic shown in the comments.

The page-size, grouping and concurrency rules are those of vllm/v1/core/kv_cache_utils.py and
vllm/v1/kv_cache_interface.py (cited in the module); tests/test_published.py checks them against vLLM's own logs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from inspector.engines import DEFAULT_ENGINE, ENGINES, engine
from inspector.engines.vllm import (
    CacheLayers,
    VllmConfigError,
    VllmModel,
    VllmSettings,
    budget,
    default_batch_limits,
    kv_capacity,
    per_gpu_layers,
    torch_total_bytes,
)
from inspector.errors import ExitCode
from inspector.gpus import parse_gpu

GIB = 2**30
# one Llama-3-8B layer: 8 KV heads x 128 x (K + V) x 2 bytes (bf16) = 4,096 bytes per token
LLAMA_LAYER = 2 * 8 * 128 * 2


def llama(weights: int = 16 * GIB, replicated: int = 0, kv_heads: int = 8, heads: int = 32) -> VllmModel:
    per_token = 2 * kv_heads * 128 * 2
    return VllmModel(
        weights_bytes=weights,
        replicated_bytes=replicated,
        cache_layers=(CacheLayers("full", 32, per_token, kv_heads=kv_heads),),
        num_attention_heads=heads,
        hidden_size=4096,
        intermediate_size=14336,
        vocab_size=128256,
    )


def test_uniform_full_attention():
    # page = 16 tokens x 4,096 B = 65,536 B; 1 GiB // 65,536 // 32 layers = 512 blocks = 8,192 tokens
    cap = kv_capacity(GIB, [CacheLayers("full", 32, LLAMA_LAYER)], max_model_len=4096, max_num_batched_tokens=2048)
    assert (cap.page_bytes, cap.num_blocks, cap.tokens) == (65_536, 512, 8_192)
    # a 4,096-token request needs 4096 / 16 = 256 blocks: 512 / 256 = 2.0
    assert cap.blocks_per_request == 256 and cap.max_concurrency == 2.0


def test_hybrid_sliding_and_full_groups_like_gemma3():
    # 30 sliding (window 1024) + 6 full layers, same page: group_size = min(30, 6) = 6 -> 5 + 1 = 6 groups
    layers = [CacheLayers("sliding", 30, LLAMA_LAYER, window=1024), CacheLayers("full", 6, LLAMA_LAYER)]
    page = 16 * LLAMA_LAYER
    cap = kv_capacity(page * 6 * 1000, layers, max_model_len=8192, max_num_batched_tokens=2048)
    assert cap.num_blocks == 1000  # available // page // group_size
    assert cap.tokens == 1000 // 6 * 16 == 2656
    # a request: full 8192 / 16 = 512 blocks; each sliding group cdiv(min(1023 + 2048, 8192), 16) + 1 = 193
    assert cap.blocks_per_request == 512 + 5 * 193
    assert cap.max_concurrency == pytest.approx(1000 / 1477)


def test_attention_mamba_hybrid_raises_the_block_size():
    # state page 1,000,000 B; attention 4,096 B/token: block = 16 x cdiv(1e6, 16 x 4096) = 16 x 16 = 256 tokens
    layers = [CacheLayers("full", 4, LLAMA_LAYER), CacheLayers("state", 12, state_bytes=1_000_000)]
    page = 256 * LLAMA_LAYER  # 1,048,576 B >= the state, which is padded up to it
    cap = kv_capacity(page * 4 * 100, layers, max_model_len=8192, max_num_batched_tokens=2048, mamba_cache_mode="none")
    assert (cap.block_size, cap.page_bytes, cap.num_blocks) == (256, page, 100)
    # groups of min(4, 12) = 4 layers: 1 attention + 3 state groups; tokens = 100 // 4 x 256
    assert cap.tokens == 6400
    # a request: 8192 / 256 = 32 attention blocks + one state block per state group ("none")
    assert cap.blocks_per_request == 35
    # prefix caching ("align") keeps two state blocks per group: 32 + 3 x 2; "all" one per 256 tokens
    assert kv_capacity(page * 400, layers, 8192, 2048).blocks_per_request == 38
    assert kv_capacity(page * 400, layers, 8192, 2048, mamba_cache_mode="all").blocks_per_request == 32 + 3 * 32


def test_tensor_parallel_splits_or_replicates_kv_heads():
    full = CacheLayers("full", 32, LLAMA_LAYER, kv_heads=8)
    assert per_gpu_layers([full], 4)[0].bytes_per_token == LLAMA_LAYER // 4  # 2 heads per GPU
    assert per_gpu_layers([full], 16)[0].bytes_per_token == LLAMA_LAYER // 8  # 8 heads on 16 GPUs: one each
    # MLA's latent (kv_lora_rank 512 + rope 64) x 2 bytes is the same on every GPU
    mla = CacheLayers("mla", 61, (512 + 64) * 2)
    assert per_gpu_layers([mla], 8)[0].bytes_per_token == 1152


@pytest.mark.parametrize(
    "model, tp, words",
    [
        (llama(heads=32), 3, "attention heads (32)"),  # 32 % 3
        (llama(heads=48, kv_heads=8), 12, "tensor parallel size (12) is not a multiple"),  # 8 < 12, 12 % 8
        (llama(heads=24, kv_heads=6), 4, "not divisible"),  # 24 % 4 == 0 but 6 KV heads % 4
    ],
)
def test_heads_not_divisible_are_an_error(model, tp, words):
    with pytest.raises(VllmConfigError) as info:
        budget(model, 80 * GIB, "H100-80GB", VllmSettings(max_model_len=4096, tensor_parallel=tp))
    assert words in str(info.value) and info.value.exit_code == ExitCode.USAGE and info.value.hint


def test_budget_arithmetic_with_measured_overrides():
    settings = VllmSettings(
        max_model_len=8192,
        gpu_memory_utilization=0.9,
        max_num_batched_tokens=8192,
        max_num_seqs=256,
        activation_peak_bytes=GIB,
        non_torch_bytes=GIB // 2,
        cuda_graph_bytes=GIB // 2,
    )
    result = budget(llama(), 80 * GIB, "H100-80GB", settings)
    # 80 x 0.9 = 72 GiB requested - 16 weights - 1 activation - 0.5 non-torch - 0.5 graphs = 54 GiB
    assert result.requested_bytes == 72 * GIB
    assert result.kv_cache_bytes_per_gpu == 54 * GIB
    # 54 GiB // 65,536 // 32 = 27,648 blocks = 442,368 tokens; 8192 / 16 = 512 blocks a request: 54.0
    assert result.capacity.num_blocks == 27_648 and result.kv_tokens == 442_368 and result.max_concurrency == 54.0
    assert not any("estimate" in a for a in result.assumptions)


def test_budget_under_tensor_parallel():
    settings = VllmSettings(max_model_len=8192, tensor_parallel=2, max_num_batched_tokens=8192, max_num_seqs=256,
                            activation_peak_bytes=0, non_torch_bytes=0, cuda_graph_bytes=0)  # fmt: skip
    result = budget(llama(weights=17 * GIB, replicated=GIB), 80 * GIB, "H100-80GB", settings)
    # (17 - 1) / 2 sharded + 1 replicated = 9 GiB per GPU; 72 - 9 = 63 GiB of KV per GPU
    assert result.weights_bytes_per_gpu == 9 * GIB and result.kv_cache_bytes_per_gpu == 63 * GIB
    # 4 KV heads per GPU: 2,048 B per token and layer, page 32,768 B: 63 GiB // 32,768 // 32 = 64,512 blocks
    assert result.capacity.num_blocks == 64_512


def test_defaults_are_vllm_serve_defaults_and_say_so():
    assert default_batch_limits(parse_gpu("H100").memory_bytes, "H100-80GB") == (8192, 1024)
    assert default_batch_limits(parse_gpu("A100-80GB").memory_bytes, "A100-80GB") == (2048, 256)  # A100 excluded
    assert default_batch_limits(parse_gpu("RTX-4090").memory_bytes, "RTX-4090") == (2048, 256)
    result = budget(llama(), parse_gpu("H100").memory_bytes, "H100-80GB", VllmSettings(max_model_len=8192))
    assert result.max_num_batched_tokens == 8192 and result.max_num_seqs == 1024
    text = " ".join(result.assumptions)
    for words in ("max_num_batched_tokens", "Activation peak", "Non-torch", "CUDA graphs"):
        assert words in text
    # the estimate: 8,192 x (3 x 14,336 + 3 x 4,096) x 2 B + 1,024 rows x 128,256 x 8 B
    assert result.activation_peak_bytes == 8192 * (3 * 14336 + 3 * 4096) * 2 + 1024 * 128256 * 8
    h100 = parse_gpu("H100").memory_bytes
    eager = budget(llama(), h100, "H100-80GB", VllmSettings(max_model_len=8192, enforce_eager=True))
    assert eager.cuda_graph_bytes == 0 and eager.kv_cache_bytes_per_gpu - result.kv_cache_bytes_per_gpu == (
        result.cuda_graph_bytes
    )


def test_kv_cache_memory_override_and_nothing_left():
    fixed = budget(llama(), 80 * GIB, "H100-80GB", VllmSettings(max_model_len=8192, kv_cache_memory_bytes=GIB))
    assert fixed.kv_cache_bytes_per_gpu == GIB and fixed.capacity.num_blocks == 512
    with pytest.raises(VllmConfigError) as info:
        budget(llama(weights=30 * GIB), 24 * GIB, "RTX-4090", VllmSettings(max_model_len=4096))
    assert "no memory left for the KV cache" in str(info.value)


def test_less_than_one_request_is_flagged():
    result = budget(llama(), 24 * GIB, "RTX-4090", VllmSettings(max_model_len=131072, kv_cache_memory_bytes=GIB))
    # 512 blocks against 131072 / 16 = 8,192 a request
    assert result.max_concurrency == 512 / 8192
    assert any("refuses to start" in a for a in result.assumptions)


def test_engine_registry():
    assert DEFAULT_ENGINE == "transformers" and set(ENGINES) == {"transformers", "vllm", "llama.cpp"}
    assert engine("vLLM").module == "inspector.engines.vllm" and engine("vllm").tensor_parallel
    assert engine("llama.cpp").module == "inspector.engines.llamacpp" and not engine("llama.cpp").tensor_parallel
    with pytest.raises(KeyError, match="transformers, vllm, llama.cpp"):
        engine("exllamav2")


def test_engine_and_speed_modules_import_no_torch():
    code = (
        "import sys, inspector.engines.vllm, inspector.engines.llamacpp, inspector.speed; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_torch_total_from_the_catalog_matches_vllm_logs():
    # vLLM PR #10511 logs total_gpu_memory 79.22 GiB on an H100 80GB; issue #10517 23.58 GiB on an RTX 3090
    assert torch_total_bytes(parse_gpu("H100").memory_bytes) / GIB == pytest.approx(79.22, abs=0.01)
    assert torch_total_bytes(parse_gpu("RTX-3090").memory_bytes) / GIB == pytest.approx(23.58, abs=0.01)
