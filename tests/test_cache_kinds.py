"""Cache and state of every kind: hfsize's figure against what transformers' own cache holds after a forward pass.

Each case is a config (a real one from fixtures/hub where a public copy was found, else the model type's own
default config class) shrunk so random fp32 weights run on a CPU, keeping what decides the cache: which layers
are linear attention, Mamba, short convolution, chunked, sliding or MLA, and the sizes of their states. The
expected number is measured, not computed: every tensor the returned cache object holds after `TOKENS` tokens
(scripts/cache_probe.py), which is beyond every window and chunk here. hfsize is run as a user runs it, the CLI
with --json on a local folder holding the config.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="module", autouse=True)
def transformers_logging_outside_capture():
    """transformers binds its log handler to sys.stderr on first use: if that first use is a forward pass inside
    a test's capsys, later tests log into the closed capture ("I/O operation on closed file"). Bind it now."""
    from transformers.utils import logging

    logging.get_logger("transformers")


TOKENS = 24  # > every window (8) and chunk (8) below, so their layers are capped
SMALL = {"hidden_size": 64, "intermediate_size": 128, "vocab_size": 256, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip

CASES = {
    # Qwen3-Next (real config): gated delta net layers (conv + heads x d_k x d_v recurrent state) and one full
    # attention layer in four (full_attention_interval 4), MoE
    "qwen3-next-linear-attention": ("Qwen/Qwen3-Next-80B-A3B-Thinking", {
        "num_hidden_layers": 4, "linear_num_value_heads": 4, "linear_num_key_heads": 2, "linear_key_head_dim": 16,
        "linear_value_head_dim": 32, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32}),
    # Jamba 1.5 Mini (real config): Mamba 1 layers (d_inner x d_conv conv + d_inner x d_state SSM) and attention
    # at layer 4 of every 8 (attn_layer_offset 4), experts every other layer
    "jamba-mamba": ("_derived/sdpython-experimental-experiment/AI21-Jamba-1.5-Mini", {
        "num_hidden_layers": 5, "num_experts": 4, "mamba_dt_rank": 8}),
    # Falcon-H1 0.5B (real config): every layer runs Mamba 2 (heads x d_head x d_state) and attention side by side
    "falcon-h1-hybrid-mamba2": ("_derived/NVIDIA-NeMo-Megatron-Bridge/Falcon-H1-0.5B", {
        "num_hidden_layers": 2, "mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_ssm": 128, "mamba_d_state": 32}),
    # Mamba 2 alone (transformers' default config): no attention at all, only constant state
    "mamba2-ssm-only": ("mamba2", {"num_hidden_layers": 2, "num_heads": 8, "head_dim": 16, "n_groups": 1,
                                   "state_size": 16, "expand": 2}),
    # LFM2 (default config): gated short convolutions (conv state only) beside full attention
    "lfm2-short-conv": ("lfm2", {"num_hidden_layers": 2, "layer_types": ["conv", "full_attention"]}),
    # Llama 4 text (default config): chunked attention keeps attention_chunk_size - 1 tokens; every 4th is full
    "llama4-chunked": ("llama4_text", {"num_hidden_layers": 4, "attention_chunk_size": 8, "num_local_experts": 4,
                                       "intermediate_size_mlp": 128, "no_rope_layers": [1, 1, 1, 0],
                                       "layer_types": ["chunked_attention"] * 3 + ["full_attention"]}),
    # Gemma 3 (default config): five sliding layers per full one
    "gemma3-sliding": ("gemma3_text", {"num_hidden_layers": 3, "sliding_window": 8,
                                       "layer_types": ["sliding_attention", "sliding_attention", "full_attention"]}),
    # Kimi-Linear (default config): Kimi delta attention (its recurrent state cast to fp32) and MLA layers
    "kimi-linear-mla": ("kimi_linear", {"num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"],
                                        "mlp_layer_types": ["dense", "dense"], "num_key_value_heads": 4,
                                        "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16,
                                        "qk_head_dim": 24, "v_head_dim": 16, "linear_num_heads": 4,
                                        "linear_head_dim": 16, "num_experts": 4, "num_experts_per_token": 2}),
}  # fmt: skip


KINDS = {  # the kinds each case must exercise (state.Kind values), so a case cannot pass on plain attention alone
    "qwen3-next-linear-attention": {"linear_attention", "full_attention"},
    "jamba-mamba": {"mamba", "full_attention"},
    "falcon-h1-hybrid-mamba2": {"mamba+full_attention"},
    "mamba2-ssm-only": {"mamba"},
    "lfm2-short-conv": {"short_conv", "full_attention"},
    "llama4-chunked": {"chunked_attention", "full_attention"},
    "gemma3-sliding": {"sliding_attention", "full_attention"},
    "kimi-linear-mla": {"linear_attention", "mla"},
}


def case_config(name: str) -> dict:
    """The case's config as a plain dict: a real fixture with the sizes replaced, or a default config's."""
    source, overrides = CASES[name]
    if "/" in source:
        config = json.loads((FIXTURES / source / "config.json").read_text())
    else:
        from transformers import CONFIG_MAPPING

        config = CONFIG_MAPPING[source]().to_dict()
        config["architectures"] = None
    config = {**config, **{k: v for k, v in SMALL.items() if k in config or k == "head_dim"}, **overrides}
    return {**config, "dtype": "float32", "torch_dtype": "float32"}


def measured_bytes(config: dict) -> tuple[int, list]:
    from cache_probe import measure
    from transformers import CONFIG_MAPPING

    cfg = CONFIG_MAPPING[config["model_type"]].from_dict(config)
    row = measure(cfg, TOKENS)
    return row["cache_bytes"], [(path, shape) for path, shape, _, _ in row["tensors"]]


@pytest.mark.parametrize("case", CASES)
def test_cache_equals_what_transformers_holds(case: str, capsys, tmp_path) -> None:
    config = case_config(case)
    measured, tensors = measured_bytes(config)
    if not config.get("architectures"):  # a default config: the class AutoModelForCausalLM built
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        config["architectures"] = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config["model_type"]]]
    (tmp_path / "config.json").write_text(json.dumps(config))
    memory = report(capsys, str(tmp_path), "--context", str(TOKENS))["memory"]
    assert measured > 0 and memory["kv_not_counted"] is None
    assert memory["fp32"]["kv_cache_bytes"] == measured, tensors
    assert sum(kind["bytes"] for kind in memory["kv_cache"]) == measured
    assert {kind["kind"] for kind in memory["kv_cache"]} == KINDS[case]


def test_constant_state_does_not_grow_with_the_context(capsys, tmp_path) -> None:
    # Qwen3-Next at 24 and at 2,024 tokens: only the one full-attention layer grows, by
    # 2 (K and V) x 2 KV heads x head_dim 16 x 4 bytes = 256 bytes per token
    config = case_config("qwen3-next-linear-attention")
    (tmp_path / "config.json").write_text(json.dumps(config))
    short = report(capsys, str(tmp_path), "--context", "24")["memory"]
    long = report(capsys, str(tmp_path), "--context", "2024")["memory"]
    assert long["fp32"]["kv_cache_bytes"] - short["fp32"]["kv_cache_bytes"] == 2000 * 256
    kinds = {kind["kind"]: kind for kind in long["kv_cache"]}
    assert kinds["linear_attention"]["layers"] == 3 and kinds["linear_attention"]["bytes_per_token"] == 0
    assert kinds["full_attention"]["layers"] == 1 and kinds["full_attention"]["constant_bytes"] == 0
    # the gated delta net keeps, per layer, conv (2 x 2 x 16 + 4 x 32 channels) x kernel 4 and a
    # 4 x 16 x 32 recurrent matrix, in fp32
    assert kinds["linear_attention"]["constant_bytes"] == 3 * 4 * ((2 * 2 * 16 + 4 * 32) * 4 + 4 * 16 * 32)


def test_note_names_the_kinds(capsys, tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(case_config("jamba-mamba")))
    notes = " ".join(report(capsys, str(tmp_path))["memory"]["notes"])
    assert "4 Mamba (conv + SSM state)" in notes and "1 full attention" in notes


def test_own_cache_class_is_not_counted(capsys, tmp_path) -> None:
    # MiniMax keeps its linear-attention state in its own MiniMaxCache: hfsize says so instead of a figure
    from transformers import CONFIG_MAPPING

    config = CONFIG_MAPPING["minimax"](**{**SMALL, "num_hidden_layers": 2, "num_local_experts": 4}).to_dict()
    config["architectures"] = ["MiniMaxForCausalLM"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    memory = report(capsys, str(tmp_path))["memory"]
    assert "MiniMaxCache" in memory["kv_not_counted"]
    assert any(note.startswith("KV cache not counted: ") for note in memory["notes"])


def test_falcon_40b_refinedweb_config(capsys, tmp_path) -> None:
    # tiiuae/falcon-40b's original config as the issue quotes it (model_type RefinedWeb, the repo code's key
    # names; no public verbatim copy was found). The Hub lists 41,835,970,560 parameters, the head stored
    # separately: less 65,024 x 8,192 = 532,676,608 gives 41,303,293,952.
    config = {"architectures": ["RWForCausalLM"], "model_type": "RefinedWeb", "hidden_size": 8192, "n_head": 128,
              "n_head_kv": 8, "n_layer": 60, "parallel_attn": True, "bias": False, "alibi": False,
              "vocab_size": 65024, "torch_dtype": "bfloat16",
              "auto_map": {"AutoConfig": "configuration_RW.RWConfig",
                           "AutoModelForCausalLM": "modelling_RW.RWForCausalLM"}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = report(capsys, str(tmp_path))
    assert data["parameters"]["total"] == 41_835_970_560 - 65_024 * 8_192 == 41_303_293_952
    # two layer norms per layer (ln_attn, ln_mlp) of weight + bias, and the final one
    assert data["parameters"]["by_component"]["norms"] == 60 * 2 * 2 * 8192 + 2 * 8192
    # 8 KV heads of 8192 / 128 = 64: 2 x 8 x 64 x 2 bytes x 60 layers per token
    assert data["memory"]["kv_cache"][0]["bytes_per_token"] == 2 * 8 * 64 * 2 * 60


def test_falcon_h1_copy_lacks_mamba_d_ssm_and_builds_at_full_size_with_it() -> None:
    # The Megatron-Bridge copy of Falcon-H1-0.5B has no mamba_d_ssm, so FalconH1Config keeps its class default
    # 1,024, which 24 Mamba heads do not divide: transformers refuses it (a gap in the copy, not in hfsize or
    # transformers). The Hub's model has d_ssm = 24 heads x d_head 64 = 1,536 (transformers' FalconH1 table;
    # Megatron-Bridge writes heads x head_dim back as mamba_d_ssm). With it the full-size build gives, per layer,
    # the shapes a third-party run of tiiuae/Falcon-H1-0.5B-Base recorded from transformers' DynamicCache: K and
    # V [1, 2, T, 64] = 256 elements per token, conv [1, 1792, 4] (1,536 + 2 x 128 state channels) and Mamba 2
    # state [1, 24, 64, 128], 7,168 + 196,608 = 203,776 constant elements, in all 36 layers.
    from inspector.architecture import build

    path = FIXTURES / "_derived/NVIDIA-NeMo-Megatron-Bridge/Falcon-H1-0.5B/config.json"
    config = json.loads(path.read_text())
    assert "mamba_d_ssm" not in config
    refused = build(dict(config))
    assert not refused.built and "mamba_n_heads must divide" in refused.reason
    built = build({**config, "mamba_d_ssm": 24 * 64})
    assert built.built and not built.kv_not_counted, built.reason
    assert len(built.kv_layers) == 36
    assert {(layer.kind, layer.elements_per_token, layer.constant_elements) for layer in built.kv_layers} == {
        ("mamba+full_attention", 2 * 2 * 64, 1792 * 4 + 24 * 64 * 128)
    }
