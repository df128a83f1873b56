"""Golden JSON: `--json` of real fixtures captured before the issue-12 restructuring, compared after it.

These files are a regression net, not a source of truth: the figures in them are checked against independent
sources by the other test files. A change here must be additive (a new key) or one of the documented fixes
(tests/golden/README.md); regenerate with HFSIZE_GOLDEN_UPDATE=1 only for such a change, and say so in the commit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli

GOLDEN = Path(__file__).resolve().parent / "golden"

GPUS = ("--gpu", "RTX-4090", "--gpu", "A100-80GBx2", "--gpu", "24GBx4")
CASES: dict[str, tuple[str, ...]] = {
    # dense
    "llama2_13b": ("bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian", *GPUS),
    "llama31_8b": ("xap/Meta-Llama3.1-8B-Instruct-assessment", "--context", "8192", "--batch", "2", *GPUS),
    "qwen25_14b": ("deepcogito/cogito-v1-preview-qwen-14B", "--kv-dtype", "fp8", "--overhead", "2GiB"),
    "gemma_2b": ("ananddhanabal-gemma/gemma-2b-it-prerelease",),
    "lzlv_70b_headers_only": ("YouZiSoftware-lzlv_70b_fp16_hf/lzlv_70b_fp16_hf", "--headers-only", *GPUS),
    "mistral_7b_sliding": ("mistralai/Mistral-7B-v0.1", "--context", "32768"),
    "falcon_7b_legacy_keys": ("tiiuae/falcon-7b",),
    # mixture of experts
    "granite_moe": ("jeremieconte-granite-3.1-1b-a400m-instruct/granite-3.1-1b-a400m-instruct-fp32-resave",),
    "mixtral_8x7b": ("mistralai/Mixtral-8x7B-v0.1", *GPUS),
    # MLA
    "deepseek_v3": ("deepseek-ai/DeepSeek-V3", "--gpu", "H100x8"),
    # pre-quantized
    "gpt_oss_20b_mxfp4": ("EchoCog-gpt-oss-20b/gpt-oss-20b", *GPUS),
    "llama2_7b_awq": ("gogongxt-python/Llama-2-7B-AWQ",),
    "llama2_13b_gptq": ("TheBloke/Llama-2-13B-chat-GPTQ",),
    "qwen3_30b_fp8": ("gogongxt-python/Qwen3-30B-A3B-Thinking-2507-FP8-listing",),
    # pickle only
    "wizard_vicuna_30b_pickle": ("cognitivecomputations/Wizard-Vicuna-30B-Uncensored",),
    # compare (adapter, finetune)
    "compare_adapter": ("compare", "mistralai/Mistral-7B-v0.1", "devadigapratham-MistralXGo-7B/MistralXGo-7B"),
    "compare_finetune": ("compare", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2"),
    # check
    "check_llama2_13b": ("check", "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian", *GPUS),
    "check_pickle": ("check", "lmsys/vicuna-7b-delta-v0", "--gpu", "H100"),
    "check_gptq": ("check", "TheBloke/Llama-2-13B-chat-GPTQ", "--gpu", "T4", "--precision", "nf4"),
}


# Keys added since the capture, each documented in tests/golden/README.md: an addition at one of these paths is
# the only difference allowed (a changed or removed value, or any other new key, fails).
ADDED = [
    r"\.json\.memory\.gpus\[\d+\]\.(variant|bandwidth_bytes_per_s|tflops|interconnect)",  # GPU datasheet figures
    r"\.json\.memory\.gpus\[\d+\]\.devices",  # a mixed setup's devices (issue 16, `--gpu A+B`), [] otherwise
    r"\.json\.memory\.gpus\[\d+\]\.device_order",  # a local mixed setup's device order rule, null otherwise
    r"\.json\.memory\.\w+\.max_context",  # longest context per GPU setup (issue 15)
    r"\.json\.overrides",  # `--set` (issue 17): the config values changed, [] without --set
    r"\.json\.architecture\.reason",  # why the class was not built (--headers-only, light install, a failure)
    r"\.json\.fits",  # compare: base and finetune fit per GPU setup, each as it ships (s7 review item 2)
    r"\.json\.gguf_offload",  # check: llama.cpp's -ngl and bytes per GPU of a GGUF repo's file, {} otherwise
]


def _stable(value: Any) -> Any:
    """The JSON without what depends on this machine: the disk's path and free bytes (`check`)."""
    if isinstance(value, dict):
        out = {k: _stable(v) for k, v in value.items()}
        disk = out.get("disk")
        if isinstance(disk, dict):
            disk.pop("path", None)
            disk.pop("free_bytes", None)
        return out
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_is_unchanged(capsys, on_replica, monkeypatch, name):
    if "--headers-only" in CASES[name]:
        # captured with the architecture not cached; other tests (test_explain's sum over every fixture) may have
        # built it in this session's shared cache, which --headers-only would then use
        monkeypatch.setenv("HFSIZE_NO_CACHE", "1")
    code, out, err = cli(capsys, *CASES[name], "--json")
    got = {"exit_code": code, "json": _stable(json.loads(out))}
    path = GOLDEN / f"{name}.json"
    if os.environ.get("HFSIZE_GOLDEN_UPDATE"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    unexpected = [d for d in _differences(want, got) if not _documented_addition(d)]
    assert not unexpected, f"{unexpected[:10]} {err}"


def _documented_addition(difference: str) -> bool:
    path, _, change = difference.rpartition(": ")
    return change == "added" and any(re.fullmatch(p, path) for p in ADDED)


def _differences(want: Any, got: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, as paths: enough to tell an additive change from a real one."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: removed" for k in want.keys() - got.keys()]
        out += [f"{where}.{k}: added" for k in got.keys() - want.keys()]
        for k in want.keys() & got.keys():
            out += _differences(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (a, b) in enumerate(zip(want, got, strict=True)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if want == got else [f"{where}: {want!r} -> {got!r}"]
