"""Memory per precision, KV cache and fit: arithmetic shown here, rules of thumb, and measured bytes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from inspector.api import inspect_model
from inspector.gpus import parse_gpu
from inspector.memory import MemorySettings
from inspector.schemes import four_bit_bytes, int8_bytes
from tests.helpers import FIXTURES, cli, words
from tests.helpers import report as report_json

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30


def report(tmp_path: Path, repo: str, gpus=(), **settings):
    shutil.copy(FIXTURES / repo / "config.json", tmp_path / "config.json")
    return inspect_model(str(tmp_path), gpus=[parse_gpu(g) for g in gpus], memory=MemorySettings(**settings))


def test_bnb_byte_formulas_match_measured_layers():
    # Measured on a 256x256 nn.Linear loaded by transformers 5.23 + bitsandbytes 0.50 (docs/quantization-rules.md):
    # int8 66,560 B; nf4 36,928 B; nf4 with double quant 34,900 B.
    assert int8_bytes(256 * 256, 256) == 66_560
    assert four_bit_bytes(256 * 256, double_quant=False) == 36_928
    assert four_bit_bytes(256 * 256, double_quant=True) == 34_900


def test_llama2_13b_kv_cache(tmp_path):
    r = report(tmp_path, "_derived/HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy", context=4096, kv_dtype="fp16")
    # 2 (K and V) x 40 layers x 4096 tokens x 40 heads x 128 head_dim x 2 bytes
    assert r.memory["fp16"].kv_cache_bytes == 2 * 40 * 4096 * 40 * 128 * 2 == 3_355_443_200
    # fp16 weights: 2 bytes x 13,015,864,320 parameters + 2 rotary inv_freq buffers of 64 fp32
    assert r.memory["fp16"].weights_bytes == 2 * 13_015_864_320 + 2 * 64 * 4


def test_deepseek_mla_caches_the_latent(tmp_path):
    r = report(tmp_path, "deepseek-ai/DeepSeek-V3", context=1000)
    # transformers caches kv_lora_rank 512 + qk_rope_head_dim 64 per token and layer, bf16, 61 layers
    assert r.memory["bf16"].kv_cache_bytes == 61 * 1000 * (512 + 64) * 2


def test_gpt_oss_sliding_layers_keep_only_the_window(tmp_path):
    r = report(tmp_path, "openai/gpt-oss-120b", context=4096)  # KV in the bf16 model's dtype
    per_token_layer = 2 * 8 * 64 * 2  # K and V x 8 KV heads x head_dim 64 x bf16
    # 18 full-attention layers hold 4096 tokens; 18 sliding layers hold window - 1 = 127 tokens, what
    # transformers' DynamicSlidingWindowLayer keeps (measured for real in tests/test_kv_cache.py)
    assert r.memory["bf16"].kv_cache_bytes == (18 * 4096 + 18 * 127) * per_token_layer


def test_fused_experts_stay_unquantized(tmp_path):
    r = report(tmp_path, "mistralai/Mixtral-8x7B-v0.1")
    experts = 32 * 8 * 3 * 4096 * 14336
    # in bf16 load dtype, the 45.1B expert parameters keep 2 bytes each even at "4-bit"
    assert r.memory["nf4"].weights_bytes > 2 * experts
    assert any("fused" in note for note in r.memory.notes)


def test_rules_of_thumb(tmp_path):
    # 7B in 16-bit fits one 16 GB GPU (T4: 15,360 MiB)
    seven = report(tmp_path, "mistralai/Mistral-7B-Instruct-v0.2", gpus=["T4"])
    assert seven.memory["fp16"].fits["T4"].verdict == "fits"
    # 13B in 16-bit needs two of them
    thirteen = report(tmp_path, "_derived/HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy", gpus=["T4"])
    fit = thirteen.memory["fp16"].fits["T4"]
    assert fit.verdict == "needs_more" and fit.gpus_needed == 2
    # ... and at 4-bit a 13B model fits one
    assert thirteen.memory["nf4"].fits["T4"].verdict == "fits"


def test_a_block_larger_than_the_gpu_does_not_fit(tmp_path):
    r = report(tmp_path, "_derived/HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy", gpus=["1GiBx8"])
    # one Llama-2-13b layer in fp32 is 317,204,480 x 4 bytes = 1.18 GiB: no number of 1 GiB devices helps
    assert r.memory["fp32"].largest_block_bytes >= 317_204_480 * 4
    assert r.memory["fp32"].fits["1GiB x8"].verdict == "does_not_fit"


def test_bad_gpu_spec_is_a_usage_error(capsys, tmp_path):
    from inspector.cli import run

    shutil.copy(FIXTURES / "mistralai/Mistral-7B-Instruct-v0.2/config.json", tmp_path / "config.json")
    assert run([str(tmp_path), "--gpu", "GTX-9999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: Unknown GPU 'GTX-9999'") and err.count("\n") == 1


@pytest.mark.parametrize("precision", ["bf16", "int8", "nf4_double_quant"])
def test_prediction_matches_bytes_measured_after_from_pretrained(precision):
    """Load random weights with from_pretrained (bitsandbytes on CPU) and measure what is held."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from validate_memory import shrink, validate

    config = shrink(json.loads((FIXTURES / "mistralai/Mistral-7B-Instruct-v0.2/config.json").read_text()))
    (row,) = validate(config, [precision])
    assert row["predicted"] == row["measured"]


# T4: 15,360 MiB = 16,106,127,360 B less the default 1 GiB overhead
T4_ROOM = 16_106_127_360 - GIB  # 15,032,385,536 B


def test_bnb_share_note_says_which_verdict_the_share_decides(capsys, on_replica):
    # int8 Llama-2-13B: 13,352,479,232 B of weights (tests/test_plan.py's arithmetic) + KV 2,048 tokens x 40 layers x
    # 2 (K, V) x 40 heads x 128 x 2 B = 1,677,721,600 B = 15,030,200,832 B. That fits the whole room of a T4
    # (15,032,385,536 B) but not the 90% transformers leaves the weights when loading with bitsandbytes
    # (quantizer_bnb_8bit.py `adjust_max_memory`: max_memory x 0.90; int(15,032,385,536 x 0.9) = 13,529,146,982 B):
    # the verdict "2 GPUs" rests on that share, so a note says so. nf4 (7.26 GiB + KV) fits either way: not named.
    weights, kv = 13_352_479_232, 2048 * 40 * 2 * 40 * 128 * 2
    assert int(T4_ROOM * 0.9) < weights + kv <= T4_ROOM
    args = ("meta-llama/Llama-2-13b-hf", "--gpu", "T4")
    memory = report_json(capsys, *args)["memory"]
    assert memory["int8"]["weights_bytes"] + memory["int8"]["kv_cache_bytes"] == weights + kv
    assert memory["int8"]["fits"]["T4"]["gpus_needed"] == 2
    share = [n for n in memory["notes"] if "adjust_max_memory" in n]
    assert len(share) == 1
    assert "count 90% of each GPU's memory less the overhead" in share[0]
    assert "keep 10% of max_memory free" in share[0]
    decides = share[0].split("This share decides ")[1]
    assert decides == "int8 (bnb) on T4: needs 2 GPUs (on the whole memory: fits on one GPU)."
    code, text, err = cli(capsys, *args)
    assert code == 0, err
    assert "This share decides int8 (bnb) on T4: needs 2 GPUs (on the whole memory: fits on one GPU)." in words(text)
    code, md, err = cli(capsys, *args, "--format", "markdown")
    assert code == 0, err
    assert "This share decides int8 (bnb) on T4: needs 2 GPUs (on the whole memory: fits on one GPU)." in md
    # an H100 (79 GiB room, 71.1 GiB of it for bnb) fits every row either way: no verdict rests on the share
    notes = report_json(capsys, "meta-llama/Llama-2-13b-hf", "--gpu", "H100")["memory"]["notes"]
    assert not [n for n in notes if "adjust_max_memory" in n]
