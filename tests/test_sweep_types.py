"""Model types the cache sweep (docs/cache-sweep.md) once skipped, each against transformers' own cache.

A row of scripts/sweep_cache.py runs here as in the sweep: the type's default config shrunk (scripts/cache_probe.py),
random fp32 weights, a forward pass of 24 tokens, and every tensor the returned cache (or the model's own output
state) holds, against hfsize's library report at --context 24. The 8/4-bit rows load the same shrunk model with
bitsandbytes on the CPU and measure the tensors it holds (scripts/validate_memory.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="module", autouse=True)
def transformers_logging_outside_capture():
    from transformers.utils import logging

    logging.get_logger("transformers")


EXACT = {
    # what each type's cache holds that hfsize had to learn (or the sweep's shrinker had to keep)
    "zaya": "short_conv+full_attention",  # CCA: conv state and the last token's delayed value projection
    "dory": "sliding_attention",  # looped layers: each loop past the first writes its own copy of the cache
    "qwen4_exp_text": "indexed_attention",  # the first indexer also keeps int64 [3, batch, T] position ids
    "marian": "full_attention",  # decoder_layers (2 here) cache, not num_hidden_layers (= encoder_layers, 12)
}


@pytest.mark.parametrize("model_type", EXACT)
def test_formerly_skipped_type_is_exact(model_type: str) -> None:
    from sweep_cache import one

    row = one(model_type, 24)
    assert row["verdict"] == "exact", row
    assert row["measured"] > 0 and row["predicted"] == row["measured"]
    assert EXACT[model_type] in row["kinds"]


# XLNet returns its memory of past hidden states (mems) in its outputs, one [tokens, batch, d_model] tensor per
# layer (modeling_xlnet.py cache_mem): the shrunk config has 2 layers, d_model 64, fp32 weights, and keeps
# min(context, reuse_len, mem_len) tokens (None or 0: no limit)
XLNET_MEMS = {
    "default mem_len 512": ({}, 1, 2 * 24 * 64 * 4),  # 12,288 B: all 24 tokens
    "mem_len 8": ({"mem_len": 8}, 1, 2 * 8 * 64 * 4),  # the last 8 tokens
    "mem_len null, batch 2": ({"mem_len": None}, 2, 2 * 2 * 24 * 64 * 4),
    "reuse_len 5 under mem_len 30": ({"mem_len": 30, "reuse_len": 5}, 1, 2 * 5 * 64 * 4),
    "use_mems_eval false": ({"use_mems_eval": False}, 1, 0),  # no mems returned in eval mode
}


@pytest.mark.parametrize("case", XLNET_MEMS)
def test_xlnet_mems_are_what_its_forward_pass_returns(case: str) -> None:
    from cache_probe import measure, predict, shrunk_config

    overrides, batch, expected = XLNET_MEMS[case]
    cfg = shrunk_config("xlnet")
    for key, value in overrides.items():
        setattr(cfg, key, value)
    measured = measure(cfg, 24, batch)
    assert measured["cache_bytes"] == expected, measured["tensors"]
    report = predict(cfg, 24, batch, class_name=measured["class"], model_type=measured["config_model_type"])
    assert report.memory.kv_not_counted is None
    assert report.memory.by_scheme["fp32"].kv_cache_bytes == expected
    if expected:
        assert {k.kind for k in report.memory.kv_cache} == {"mems"}
        assert any("XLNet mems" in note for note in report.memory.notes)


@pytest.mark.parametrize("model_type", ["gpt2", "falcon"])
def test_bitsandbytes_bytes_after_loading(model_type: str) -> None:
    # GPT-2's Conv1D projections are quantized; falcon's FalconLinear (an nn.Linear subclass) are not, so its
    # 8/4-bit figures equal what the unquantized load holds
    from cache_probe import shrunk_config
    from validate_memory import validate

    rows = validate(shrunk_config(model_type).to_dict(), ["int8", "nf4"])
    by = {r["precision"]: r for r in rows}
    assert all(r["predicted"] == r["measured"] for r in rows), rows
    if model_type == "gpt2":
        assert by["nf4"]["measured"] < by["int8"]["measured"]  # the 4-bit weights are there, and smaller
    else:
        assert by["nf4"]["measured"] == by["int8"]["measured"]
