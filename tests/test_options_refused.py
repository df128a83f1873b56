"""Options that no chosen engine or file uses are refused (exit 2, one line naming the option and who takes it),
never silently ignored. The rule is the one llama.cpp's options follow on a safetensors repo (api._no_llama_cpp).
Who takes which option: vLLM's own flags (vllm serve --gpu-memory-utilization, --max-num-batched-tokens,
--enforce-eager, and the log lines --activation-peak / --non-torch / --cuda-graphs copy); a GGUF file is quantized
as stored, so --precision has nothing to choose (--file picks the quant)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import cli

LLAMA = "meta-llama/Llama-2-13b-hf"
VLLM_OPTIONS = [
    ("--enforce-eager",),
    ("--cuda-graphs", "2GiB"),
    ("--gpu-memory-utilization", "0.5"),
    ("--max-num-batched-tokens", "99"),
    ("--activation-peak", "9GiB"),
    ("--non-torch", "1GiB"),
]


@pytest.mark.parametrize("option", VLLM_OPTIONS, ids=lambda o: o[0])
def test_vllm_options_with_transformers_are_refused(capsys, on_replica, option):
    code, out, err = cli(capsys, "plan", LLAMA, "--gpu", "A100-80GB", *option)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("Error: ")
    assert f"{option[0]} applies to vLLM" in err and "is transformers" in err and "--engine vllm" in err


def test_eager_and_cuda_graph_size_contradict(capsys, on_replica):
    code, out, err = cli(
        capsys, "plan", LLAMA, "--gpu", "A100-80GB", "--engine", "vllm", "--enforce-eager", "--cuda-graphs", "2GiB"
    )
    assert code == 2 and "--cuda-graphs" in err and "--enforce-eager" in err and err.count("\n") == 1


def test_vllm_options_with_vllm_still_apply(capsys, on_replica):
    # half of the A100's memory is a smaller vLLM pool than 0.9 of it: the option reaches the engine
    args = ("plan", LLAMA, "--gpu", "A100-80GB", "--engine", "vllm", "--json")
    code, full, err = cli(capsys, *args)
    assert code == 0, err
    code, half, err = cli(capsys, *args, "--gpu-memory-utilization", "0.5")
    assert code == 0, err
    assert json.loads(half)["plan"]["kv_cache_bytes_per_gpu"] < json.loads(full)["plan"]["kv_cache_bytes_per_gpu"]


def test_precision_on_a_gguf_repo_is_refused(capsys, on_replica):
    code, out, err = cli(capsys, "check", "TheBloke/Llama-2-13B-chat-GGUF", "--precision", "int8")
    assert code == 2 and out == ""
    assert "--precision int8 does not apply to 'TheBloke/Llama-2-13B-chat-GGUF'" in err and "--file" in err


def test_ram_with_vllm_is_refused(capsys, on_replica):
    # --ram sizes device_map / llama.cpp CPU offload; the vLLM plan keeps everything on the GPUs
    code, out, err = cli(capsys, "plan", LLAMA, "--gpu", "A100-80GB", "--engine", "vllm", "--ram", "64GB")
    assert code == 2 and out == "" and "--ram" in err and "vllm" in err and err.count("\n") == 1


def test_as_stored_on_a_gguf_repo_is_what_it_checks(capsys, on_replica):
    code, out, err = cli(capsys, "check", "TheBloke/Llama-2-13B-chat-GGUF", "--precision", "as_stored", "--gpu", "H100")
    assert code != 2 and "--precision" not in err
