"""KV cache: hfsize's figure against the bytes transformers' own DynamicCache holds after a forward pass.

Each case is a real fixture config with its sizes shrunk (layers, width, vocab, window) so random weights
run on a CPU, keeping what decides the cache: multi-head vs grouped vs multi-query attention, an explicit
head_dim, sliding and hybrid layers, Qwen2's sliding_window that is switched off, and DeepSeek's MLA
latent. The expected number is measured, not computed: the key/value tensors left in the cache by
transformers itself (scripts/validate_memory.py measure_kv), compared for equality.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
CONTEXT, BATCH = 40, 2
SMALL = {"num_hidden_layers": 2, "vocab_size": 1024, "max_position_embeddings": 512}
NO_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")  # real ids fall outside the small vocabulary

CASES = {
    # multi-head attention, 40 heads = 40 KV heads
    "llama2-mha": ("_derived/HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy", {
        "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 4}),
    # grouped-query attention (32 heads, 8 KV heads) and a sliding window on every layer
    "mistral-gqa-sliding": ("mistralai/Mistral-7B-v0.1", {
        "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
        "sliding_window": 8}),
    # sliding_window is set but use_sliding_window is false: every layer keeps the whole context
    "qwen2-window-off": ("deepcogito/cogito-v1-preview-qwen-14B", {
        "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
        "sliding_window": 8, "max_window_layers": 1}),
    # multi-query (1 KV head) with an explicit head_dim that is not hidden_size / heads
    "gemma-mqa-head_dim": ("_derived/ananddhanabal-gemma/gemma-2b-it-prerelease", {
        "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 96}),
    # hybrid: sliding and full-attention layers alternate; MoE experts
    "gpt-oss-hybrid": ("openai/gpt-oss-120b", {
        "hidden_size": 256, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 64, "sliding_window": 8, "num_local_experts": 4, "experts_per_token": 2,
        "layer_types": ["sliding_attention", "full_attention"]}),
    # MLA: the cache holds the compressed latent and the shared rotary key, not per-head keys and values
    "deepseek-v3-mla": ("deepseek-ai/DeepSeek-V3", {
        "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 64, "num_attention_heads": 4,
        "num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": 64, "qk_rope_head_dim": 16,
        "qk_nope_head_dim": 32, "v_head_dim": 32, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 2,
        "topk_group": 1, "first_k_dense_replace": 1, "quantization_config": None}),
    # gpt2's own key names (n_embd, n_head, n_layer)
    "gpt2": ("openai-community/gpt2-large", {
        "n_embd": 256, "n_head": 4, "n_layer": 2, "n_positions": 512}),
    # the legacy RefinedWebModel config: multi_query true, 71 heads sharing one KV head
    "falcon-legacy-mqa": ("tiiuae/falcon-7b", {
        "hidden_size": 256, "n_head": 4, "n_layer": 2}),
}  # fmt: skip


def small_config(fixture: str, overrides: dict) -> dict:
    config = json.loads((FIXTURES / fixture / "config.json").read_text())
    config = {k: v for k, v in config.items() if k not in NO_IDS}
    config.update(SMALL)
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize("case", CASES)
def test_kv_cache_equals_what_transformers_holds(case: str) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from validate_memory import measure_kv

    row = measure_kv(small_config(*CASES[case]), CONTEXT, BATCH)
    assert row["measured"] > 0
    assert row["predicted"] == row["measured"]
