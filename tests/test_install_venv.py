"""A real `pip install .` into a fresh venv: no torch, and a report from the headers that names the extra; then
`.[exact]` (with the CPU torch pin) restores the full report; `hf size` runs the installed console script.

Slow (a venv, pip resolving from the package index, then torch): skipped unless HFSIZE_TEST_VENV=1.
`tests/test_light_install.py` covers the same behaviour in the suite by hiding torch from one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("HFSIZE_TEST_VENV"), reason="set HFSIZE_TEST_VENV=1 (minutes)")

REPO_ROOT = Path(__file__).resolve().parent.parent
LLAMA_2_13B = 13_015_864_320  # Meta's Llama-2-13B: 40 x 317,204,480 + 2 x 163,840,000 + 5,120
EXTRA = "pip install 'hfsize[exact]'"
LLAMA_2_13B_KV_2048 = 40 * 2 * 40 * 128 * 2 * 2048  # 1,677,721,600 B


def _ok(args: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=1200, **kw)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return proc


def test_pip_install_is_light_and_exact_adds_the_model_class(tmp_path, on_replica):
    venv = tmp_path / "venv"
    _ok([sys.executable, "-m", "venv", venv])
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "-c", REPO_ROOT / "constraints.txt"]
    _ok([*pip, REPO_ROOT])
    installed = _ok([venv / "bin" / "python", "-m", "pip", "list", "--format=json"]).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert names.isdisjoint({"torch", "transformers", "accelerate", "bitsandbytes"}), names
    assert not any(n.startswith("nvidia") for n in names), names

    # outside the checkout, without PYTHONPATH: the installed package answers
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_ENDPOINT=on_replica.endpoint, HFSIZE_CACHE=str(tmp_path / "cache"))
    run = {"env": env, "cwd": tmp_path}
    light = _ok([venv / "bin" / "hfsize", "meta-llama/Llama-2-13b-hf", "--json"], **run)
    r = json.loads(light.stdout)
    assert (r["architecture"]["how"], r["parameters"]["total"]) == ("headers only", LLAMA_2_13B)
    assert EXTRA in r["architecture"]["reason"] and r["memory"]["nf4"] is None
    assert light.stderr.count(EXTRA) == 1
    # the KV cache from config.json: 40 layers x (K + V) x 40 heads x 128 x 2 bytes x the default 2,048 tokens
    assert r["memory"]["fp16"]["kv_cache_bytes"] == LLAMA_2_13B_KV_2048
    assert r["memory"]["max_positions"] == 4096
    notes = r["memory"]["notes"]
    assert any("int8/4-bit" in n and EXTRA in n for n in notes)  # what still needs the extra, named
    assert any("KV cache is read from config.json" in n for n in notes)
    gate = [venv / "bin" / "hfsize", "check", "meta-llama/Llama-2-13b-hf", "--gpu", "A100-80GB", "--json"]
    short = subprocess.run([str(a) for a in [*gate, "--min-context", "8192"]], capture_output=True, text=True, **run)
    assert short.returncode == 11 and "4,096 tokens" in short.stdout, short.stderr  # the model's 4,096 positions
    version = _ok([venv / "bin" / "hfsize", "--version"], **run).stdout
    assert "torch not installed" in version and "transformers not installed" in version

    # `hf size`: the hf of the same venv (huggingface_hub is a dependency) runs the installed hf-size script
    extension = tmp_path / "home/.local/share/hf/extensions/hf-size"
    extension.mkdir(parents=True)
    manifest = {
        "owner": "example", "repo": "hf-size", "repo_id": "example/hf-size", "short_name": "size",
        "executable_path": str(venv / "bin" / "hf-size"), "type": "python",
        "installed_at": "2026-12-01T21:00:00+00:00", "description": "hfsize", "commit_sha": None,
    }  # fmt: skip
    (extension / "manifest.json").write_text(json.dumps(manifest))
    hf_env = {**env, "HOME": str(tmp_path / "home"), "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    hf = _ok([venv / "bin" / "hf", "size", "meta-llama/Llama-2-13b-hf", "--json"], env=hf_env, cwd=tmp_path)
    assert json.loads(hf.stdout)["parameters"]["total"] == LLAMA_2_13B

    # the extra, after the CPU torch pin, restores the full report
    _ok([*pip, "torch==2.13.0"])
    _ok([*pip, f"{REPO_ROOT}[exact]"])
    full = _ok([venv / "bin" / "hfsize", "meta-llama/Llama-2-13b-hf", "--json"], **run)
    f = json.loads(full.stdout)
    assert (f["architecture"]["how"], f["parameters"]["source"]) == ("native", "architecture")
    assert f["parameters"]["total"] == LLAMA_2_13B and f["reconciliation"]["unexplained"] == 0
    assert f["memory"]["nf4"] is not None and f["memory"]["fp16"]["kv_cache_bytes"] == LLAMA_2_13B_KV_2048
    assert f["memory"]["kv_cache"] == r["memory"]["kv_cache"]  # the built model's cache is the config's
    assert EXTRA not in full.stderr
