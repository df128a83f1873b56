"""Cards without bf16 (Turing T4, Volta V100: compute capability 7.x) run a bf16 model in fp16.

Sources: the catalog's own datasheet notes (NVIDIA T4 and Tesla V100 datasheets list no bf16 rate; "Turing has no
bf16", "Volta has no bf16"), and vLLM's _check_if_gpu_supports_dtype: "Bfloat16 is only supported on GPUs with
compute capability of at least 8.0 ... --dtype=half". The bytes are the same (2 per parameter), so the memory table
keeps its bf16 row while the recommendation and the speeds say fp16.
"""

from __future__ import annotations

import json

from inspector.gpus import has_bf16, parse_gpu, run_dtype
from tests.helpers import cli, words

MISTRAL = "mistralai/Mistral-7B-v0.1"  # config.json: "torch_dtype": "bfloat16"


def test_catalog_knows_which_cards_lack_bf16():
    assert not has_bf16(parse_gpu("T4")) and not has_bf16(parse_gpu("V100-16GB"))
    assert has_bf16(parse_gpu("A100-80GB")) and has_bf16(parse_gpu("RTX-3060-12GB"))  # Ampere: cc 8.x
    assert has_bf16(parse_gpu("24GB"))  # a size says nothing about the card: the model's own dtype stays
    assert not has_bf16(parse_gpu("A100-80GB+T4"))  # one device without bf16 decides a mixed setup
    assert run_dtype("bf16", parse_gpu("T4")) == "fp16" and run_dtype("int8", parse_gpu("T4")) == "int8"


def test_report_recommends_fp16_on_t4_and_keeps_the_bf16_row(capsys, on_replica):
    code, out, err = cli(capsys, MISTRAL, "--gpu", "T4", "--gpu", "A100-80GB")
    assert code == 0, err
    runs = out.split("How it runs", 1)[1]
    assert "T4: fp16," in runs and "T4: bf16" not in runs
    assert "A100-80GB: bf16," in runs  # Ampere keeps the model's dtype
    assert "T4: no bf16" in words(runs) and "--dtype half" in words(runs)
    assert any(line.strip().startswith("bf16 ") for line in out.splitlines())  # bytes are bytes


def test_plan_on_t4_and_v100_runs_fp16_at_the_fp16_rate(capsys, on_replica):
    code, out, err = cli(capsys, "plan", MISTRAL, "--gpu", "T4", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["plan"]["precision"] == "fp16"
    assert all(p["precision"] != "bf16" for p in plan["alternatives"])
    assert any("T4: no bf16" in n for n in plan["notes"])
    assert "fp16 on T4, without bf16" in plan["plan"]["assumptions"][0]  # the KV cache's dtype too
    code, out, err = cli(capsys, "plan", MISTRAL, "--gpu", "V100-16GB", "--engine", "vllm")
    assert code == 0, err
    # the V100 SXM2 datasheet's tensor figure is 125 TFLOPS, and it is an fp16 one (Volta has no bf16)
    assert "peak dense fp16 (125.0 TFLOPS)" in words(out) and "peak dense bf16" not in words(out)
    assert "with vllm on V100-16GB" in out
