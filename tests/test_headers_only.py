"""`--headers-only`: the safetensors headers alone, no torch, unless the architecture is already cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inspector.errors import ExitCode
from tests.helpers import FIXTURES, cell, cli, report, total_size, words, write_safetensors

LZLV_70B = "YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf"  # served from _derived/
GPT_OSS_20B = "EchoCog-gpt-oss-20b/gpt-oss-20b"
# meta-llama/Llama-2-70b-chat-hf's own index: total_size 137,953,316,864 B of F16 less 80 x 256 B of inv_freq
LLAMA_2_70B = (137_953_316_864 - 80 * 256) // 2  # = 68,976,648,192 parameters
# Llama-2-70B's config: 80 layers x 8 KV heads x head_dim 8,192 / 64 = 128 x 2 (K, V) x 2 bytes (fp16) per token
LLAMA_2_70B_KV_PER_TOKEN = 80 * 8 * 128 * 2 * 2  # = 327,680
SEVENTY_B = "meta-llama/Llama-2-70b-hf"  # the replica's stand-in (_stand_ins.json): lzlv's exact 70B shape


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
    # the KV cache from config.json: 80 layers x 8 KV heads x 128 head dim x 2 (K, V) x 2 bytes at 2,048 tokens
    assert m["fp16"]["kv_cache_bytes"] == LLAMA_2_70B_KV_PER_TOKEN * 2048 == 671_088_640
    assert m["fp16"]["total_bytes"] == 2 * LLAMA_2_70B + 671_088_640 + 2**30  # + the default 1 GiB overhead
    # 128.48 GiB of weights + 0.63 GiB of KV cache over two H100s (81,559 MiB = 79.6 GiB each, less 1 GiB each)
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


def test_table_counts_the_kv_cache_from_the_config(capsys, on_replica, empty_cache):
    code, out, _ = cli(capsys, LZLV_70B, GPT_OSS_20B, "--headers-only", "--gpu", "L4")
    assert code == 0
    # 137,953,296,384 B of weights + 671,088,640 B of KV cache (327,680 B x 2,048 tokens) + 1 GiB overhead
    # = 130.11 GiB: a total with the KV cache, so no "*" (weights + overhead only) mark
    assert "130.1" in out and "129.5" not in out and "*" not in out
    # gpt-oss-20b as stored: 13,761,264,768 B + 1 GiB + its KV cache (53,452,800 B, see below) = 13.9 GiB fits an
    # L4 (23,034 MiB = 22.5 GiB); the 70B at 16-bit, 130.1 GiB, fits none of them
    assert cell(out, GPT_OSS_20B, "L4") == "as stored"
    assert cell(out, LZLV_70B, "L4") == "no"


def _falcon_h1(tmp_path):
    """Falcon-H1's real config (Mamba 2 + attention in every layer, sized by the modules transformers builds, so
    not from config.json) and a one-tensor checkpoint (its real embedding shape) to count from."""
    folder = tmp_path / "falcon-h1"
    folder.mkdir()
    source = FIXTURES / "_derived/NVIDIA-NeMo-Megatron-Bridge/Falcon-H1-0.5B/config.json"
    (folder / "config.json").write_bytes(source.read_bytes())
    write_safetensors(folder / "model.safetensors", {"model.embed_tokens.weight": ("BF16", [32784, 1024])})
    return folder


def test_table_marks_totals_without_kv_cache(capsys, on_replica, empty_cache, tmp_path):
    folder = str(_falcon_h1(tmp_path))
    code, out, _ = cli(capsys, folder, LZLV_70B, "--headers-only", "--gpu", "L4")
    assert code == 0
    # 32,784 x 1,024 x 2 B = 67,141,632 B of BF16 weights + 1 GiB overhead = 1.0625 GiB, no KV cache: marked
    assert "1.1*" in out and "130.1*" not in out
    assert "no KV cache" in out


def test_a_cache_the_config_cannot_lay_out_says_why(capsys, on_replica, empty_cache, tmp_path):
    """The model types config_kv does not cover get no KV figure with --headers-only, and the note says why."""
    r = report(capsys, str(_falcon_h1(tmp_path)), "--headers-only")
    m = r["memory"]
    assert m["bf16"]["kv_cache_bytes"] is None and m["kv_cache"] == []
    note = words(next(n for n in m["notes"] if n.startswith("Headers only")))
    assert "the cache layout of model_type 'falcon_h1' is not read from the config" in note
    assert "run without --headers-only for them" in note


# Real fixtures with safetensors headers on the replica, one per cache kind config_kv lays out: full attention (GQA,
# the 70B) and gpt-oss's alternating sliding window (128) and full layers.
SAME_KV = [SEVENTY_B, GPT_OSS_20B]


def test_headers_only_gives_the_built_models_kv_cache_without_torch(on_replica, tmp_path):
    """--headers-only on the full install reads the cache layout from config.json (no torch, no transformers);
    its figures equal the built model's (the report without --headers-only, which tests/test_kv_cache.py and
    tests/test_light_install.py check against transformers' own cache)."""
    models = tmp_path / "models.txt"
    models.write_text("\n".join(SAME_KV) + "\n")
    args = ["--from", str(models), "--json", "--gpu", "RTX-4090", "--gpu", "A100-80GB", "--context", "8192"]
    runs = {}
    for name, extra in (("headers", ["--headers-only"]), ("built", [])):
        env = {**os.environ, "HFSIZE_CACHE": str(tmp_path / name), "HF_ENDPOINT": on_replica.endpoint}
        proc, heavy = _heavy_run([*args, *extra], env)
        assert proc.returncode == 0, proc.stderr
        assert (heavy == []) == (name == "headers"), heavy
        runs[name] = {row["model"]: row for row in map(json.loads, proc.stdout.splitlines())}
    for model in SAME_KV:
        fast, built = runs["headers"][model], runs["built"][model]
        assert (fast["architecture"]["how"], built["architecture"]["how"]) == ("headers only", "native")
        assert fast["memory"]["kv_cache"] == built["memory"]["kv_cache"], model
        assert fast["memory"]["max_positions"] == built["memory"]["max_positions"], model
        for line in ("fp32", "bf16", "fp16"):
            assert fast["memory"][line]["kv_cache_bytes"] == built["memory"][line]["kv_cache_bytes"], (model, line)
            assert fast["memory"][line]["max_context"] == built["memory"][line]["max_context"], (model, line)
        note = words(" ".join(fast["memory"]["notes"]))
        # what the figure rests on, and what the fast path still leaves to the model class
        model_type = fast["architecture"]["model_type"]
        assert f"The KV cache is read from config.json (model_type '{model_type}'" in note
        assert "No int8/4-bit figures or finetuning estimate" in note and "run without --headers-only" in note
    seventy = runs["headers"][SEVENTY_B]["memory"]
    # 8,192 tokens x 327,680 B (fp16, the config's dtype); the context is past the 4,096 positions, which is said
    assert seventy["kv_cache"] == [
        {"kind": "full_attention", "layers": 80, "window": None, "bytes_per_token": LLAMA_2_70B_KV_PER_TOKEN,
         "constant_bytes": 0, "bytes": 8192 * LLAMA_2_70B_KV_PER_TOKEN}
    ]  # fmt: skip
    assert any("beyond the 4,096 positions" in n for n in seventy["notes"])
    oss = runs["headers"][GPT_OSS_20B]["memory"]
    # gpt-oss-20b's config: 24 layers alternating sliding (window 128: DynamicSlidingWindowLayer keeps 127 tokens)
    # and full; 8 KV heads x head_dim 64 x 2 (K, V) x 2 bytes (bf16, the headers' dtype) = 2,048 B per layer-token
    assert oss["kv_cache"] == [
        {"kind": "sliding_attention", "layers": 12, "window": 128, "bytes_per_token": 12 * 2048,
         "constant_bytes": 0, "bytes": 12 * 2048 * 127},
        {"kind": "full_attention", "layers": 12, "window": None, "bytes_per_token": 12 * 2048,
         "constant_bytes": 0, "bytes": 12 * 2048 * 8192},
    ]  # fmt: skip
    assert oss["bf16"]["kv_cache_bytes"] == 12 * 2048 * (127 + 8192)
