"""`compare`: an omitted class default is no change (rope_theta under transformers 5), the as-stored memory delta of a
pre-quantized finetune, and small deltas in a unit that shows them. Expectations: LlamaConfig's documented default
(rope_theta 10000.0), the real configs, and arithmetic in the comments."""

from __future__ import annotations

import json

from inspector.cli import run
from inspector.units import signed_gib
from tests.helpers import words

QLORA_MERGE = "IrfanUruchi-Llama-2-13B-Computer-Engineering/Llama-2-13B-Computer-Engineering"


def _json(capsys, *args: str) -> dict:
    code = run([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_small_deltas_never_read_as_zero():
    # 2 added tokens x hidden 4096 x (embeddings + head) x 2 bytes = 32,768 B = 32 x 1024 B
    assert signed_gib(2 * 4096 * 2 * 2) == "+32.0 KiB"
    assert signed_gib(-100) == "-100 B" and signed_gib(0) == "0"
    assert signed_gib(3 * 2**20) == "+3.0 MiB" and signed_gib(2**30) == "+1.00 GiB"


def test_rope_theta_omitted_in_base_is_llamas_default(capsys, on_replica):
    # Llama-2-13b-hf's config.json (transformers 4.31) has no rope_theta; LlamaConfig's default is 10000.0, the value
    # the finetune writes: no change, in the table or the verdict
    r = _json(capsys, "compare", "meta-llama/Llama-2-13b-hf", QLORA_MERGE)
    keys = {c["key"] for c in r["config_changes"]}
    assert "rope_theta" not in keys and "max_position_embeddings" in keys  # 4096 -> 2048 is a real change
    assert "rope_theta" not in r["verdict"]


def test_quantized_finetune_has_an_as_stored_memory_delta(capsys, on_replica):
    r = _json(capsys, "compare", "meta-llama/Llama-2-13b-hf", QLORA_MERGE)
    assert r["memory_delta"]["bf16"] == 0  # both loaded at 16 bit: the same model
    base = _json(capsys, "meta-llama/Llama-2-13b-hf")
    fine = _json(capsys, QLORA_MERGE)
    # the base loads in fp16 as it ships: 13,015,864,320 parameters x 2 bytes (Llama-2-13B's published count), plus
    # the rotary inv_freq buffer (under a KiB)
    assert 0 <= base["memory"]["fp16"]["weights_bytes"] - 13_015_864_320 * 2 < 1024
    # as each ships: the merge's nf4 files as stored vs the base at fp16, the same KV and overhead on both sides
    want = fine["memory"]["as_stored"]["total_bytes"] - base["memory"]["fp16"]["total_bytes"]
    assert r["memory_delta"]["as_stored"] == want
    # and about the stored size's drop (26,031,738,880 -> 7,201,770,923 bytes, the two real index total_sizes)
    assert abs(want - (7_201_770_923 - 26_031_738_880)) < 2**20
    code = run(["compare", "meta-llama/Llama-2-13b-hf", QLORA_MERGE])
    out = words(capsys.readouterr().out)
    assert code == 0 and "as stored -17.54 GiB" in out  # -18,830,004,640 / 2**30 = -17.537


def test_gpu_options_give_a_fit_per_model(capsys, on_replica):
    # T4: 15,360 MiB (nvidia-smi). The base at fp16: 13,015,864,320 x 2 B = 24.2 GiB of weights alone, more than a T4;
    # the nf4 merge as stored: 7,201,770,923 B (its index) + KV 2,048 x 40 layers x 2 x 5,120 x 2 B (1.56 GiB) +
    # 1 GiB overhead = 9.3 GiB, fits. Two H100s (2 x 79.6 GiB) hold either.
    r = _json(capsys, "compare", "meta-llama/Llama-2-13b-hf", QLORA_MERGE, "--gpu", "T4", "--gpu", "H100x2")
    assert r["fits"]["T4"] == {"base": "needs_more", "finetune": "fits"}
    assert r["fits"]["H100-80GB x2"] == {"base": "fits", "finetune": "fits"}
    code = run(["compare", "meta-llama/Llama-2-13b-hf", QLORA_MERGE, "--gpu", "T4"])
    assert code == 0 and "T4: base needs more GPUs, finetune fits" in words(capsys.readouterr().out)


def test_adapter_fit_needs_its_fp32_weights_in_the_headroom(capsys, on_replica):
    adapter = "devadigapratham-MistralXGo-7B/MistralXGo-7B"  # r=16, 41,943,040 parameters, fp32 in PEFT: 167,772,160 B
    # T4 16,106,127,360 B - bf16 weights 7,241,732,096 x 2 - 1 GiB overhead = 548,921,344 B before the KV cache of
    # 131,072 B per token (32 layers x 2 x 8 KV heads x 128 x 2 B). At 2,048 tokens 280,485,888 B are left: the
    # adapter fits; at 3,072 tokens 146,268,160 B are left, less than the adapter, while the base alone still fits.
    r = _json(capsys, "compare", "mistralai/Mistral-7B-v0.1", adapter, "--gpu", "T4")
    assert r["fits"]["T4"] == {"base": "fits", "finetune": "fits"}
    r = _json(capsys, "compare", "mistralai/Mistral-7B-v0.1", adapter, "--gpu", "T4", "--context", "3072")
    assert r["fits"]["T4"] == {"base": "fits", "finetune": "needs_more"}
