"""`--headers-only`: the safetensors headers alone, no torch, unless the architecture is already cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inspector.errors import ExitCode
from tests.helpers import cell, cli, report, total_size

LZLV_70B = "YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf"  # served from _derived/
GPT_OSS_20B = "EchoCog-gpt-oss-20b/gpt-oss-20b"
# meta-llama/Llama-2-70b-chat-hf's own index: total_size 137,953,316,864 B of F16 less 80 x 256 B of inv_freq
LLAMA_2_70B = (137_953_316_864 - 80 * 256) // 2  # = 68,976,648,192 parameters


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """No architecture cached: --headers-only must then count from the headers."""
    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cache"))


def _heavy_run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    code = (
        "import sys; from inspector.cli import run; rc = run(sys.argv[1:]); "
        "print('HEAVY', [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules], file=sys.stderr); "
        "sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    heavy = next(line for line in proc.stderr.splitlines() if line.startswith("HEAVY"))
    return proc, json.loads(heavy.removeprefix("HEAVY ").replace("'", '"'))


def test_a_70b_report_from_headers_imports_no_torch(on_replica, tmp_path):
    env = {**os.environ, "HFSIZE_CACHE": str(tmp_path / "cache")}
    proc, heavy = _heavy_run([LZLV_70B, "--headers-only", "--json", "--gpu", "H100x2"], env)
    assert proc.returncode == 0, proc.stderr
    assert heavy == []
    r = json.loads(proc.stdout)
    assert r["architecture"]["how"] == "headers only"
    assert r["architecture"]["class"] == "LlamaForCausalLM"  # as the config declares it
    assert r["parameters"]["total"] == LLAMA_2_70B
    assert r["parameters"]["source"] == "checkpoint"
    m = r["memory"]
    # every stored parameter at 2 and 4 bytes; the few KiB of rotary buffers are not in the headers
    assert m["fp16"]["weights_bytes"] == m["bf16"]["weights_bytes"] == 2 * LLAMA_2_70B
    assert m["fp32"]["weights_bytes"] == 4 * LLAMA_2_70B
    assert m["fp16"]["kv_cache_bytes"] is None
    assert m["fp16"]["total_bytes"] == 2 * LLAMA_2_70B + 2**30  # weights + the default 1 GiB overhead
    # 128.48 GiB of weights over two H100s (81,559 MiB = 79.6 GiB each, less 1 GiB overhead each)
    assert m["fp16"]["fits"]["H100-80GB x2"]["verdict"] == "fits"
    for precision in ("int8", "nf4", "nf4_double_quant", "fp4", "as_stored", "training"):
        assert m[precision] is None, precision
    assert r["reconciliation"]["unexplained"] is None
    assert any("--headers-only" in note for note in r["notes"])


def test_pre_quantized_as_stored_is_the_stored_bytes(capsys, on_replica, empty_cache):
    r = report(capsys, GPT_OSS_20B, "--headers-only")
    assert r["parameters"]["total"] == 20_914_757_184  # huggingface.js's count for openai/gpt-oss-20b
    # MXFP4 blocks stand for two parameters a byte; the full report adds 256 B of rotary inv_freq on top
    assert r["memory"]["as_stored"]["weights_bytes"] == total_size("_derived/EchoCog-gpt-oss-20b/gpt-oss-20b")
    assert r["memory"]["bf16"]["weights_bytes"] == 2 * 20_914_757_184
    assert r["parameters"]["active_excluding_embeddings"] == pytest.approx(3.61e9, rel=0.005)  # OpenAI's card


def test_a_cached_architecture_gives_the_full_report(capsys, on_replica, tmp_path):
    env = {**os.environ, "HFSIZE_CACHE": str(tmp_path / "cache"), "HF_ENDPOINT": on_replica.endpoint}
    full, _ = _heavy_run([GPT_OSS_20B, "--json"], env)
    assert full.returncode == 0, full.stderr
    again, heavy = _heavy_run([GPT_OSS_20B, "--json", "--headers-only"], env)
    assert again.returncode == 0, again.stderr
    assert heavy == []
    assert json.loads(again.stdout) == json.loads(full.stdout)  # KV cache, 8/4-bit, reconciliation and all


def test_pickle_only_repo_has_no_headers_to_count(capsys, on_replica, empty_cache):
    code, out, err = cli(capsys, "cognitivecomputations/Wizard-Vicuna-30B-Uncensored", "--headers-only")
    assert code == ExitCode.UNSUPPORTED
    assert out == ""
    assert err.count("\n") == 1 and "has no safetensors headers" in err and "without --headers-only" in err


def test_table_marks_totals_without_kv_cache(capsys, on_replica, empty_cache):
    code, out, _ = cli(capsys, LZLV_70B, GPT_OSS_20B, "--headers-only", "--gpu", "L4")
    assert code == 0
    assert "129.5*" in out  # 137,953,296,384 B of weights + 1 GiB overhead = 129.48 GiB, no KV cache
    assert "no KV cache" in out
    # gpt-oss-20b as stored: 13,761,264,768 B + 1 GiB = 13.8 GiB fits an L4 (23,034 MiB = 22.5 GiB), read in its
    # row under L4 (the caption says "as stored" too, so the text alone proved nothing); the 70B at 16-bit,
    # 129.5 GiB, fits none of them
    assert cell(out, GPT_OSS_20B, "L4") == "as stored"
    assert cell(out, LZLV_70B, "L4") == "no"
