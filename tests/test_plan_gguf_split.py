"""llama.cpp over several GPUs (-ts) and with MoE experts kept in RAM (-ot exps=CPU, --cpu-moe, --n-cpu-moe).

Expected figures are arithmetic on the fixtures' tensor sizes (ggml's block sizes: Q8_0 stores 32 values in 34 B):
- Qwen/Qwen3-30B-A3B-GGUF, Q8_0 (fixtures/hub/Qwen/Qwen3-30B-A3B-GGUF/SOURCE.md), 48 blocks, per block:
  attn_q 4,096 x 2,048 and attn_output 2,048 x 4,096: 8,912,896 B each; attn_k / attn_v 512 x 2,048: 1,114,112 B
  each; ffn_gate_inp 128 x 2,048 F32: 1,048,576 B; four F32 norms: 2 x 512 + 2 x 8,192 B  -> 21,120,000 B outside
  the experts; ffn_{gate,up,down}_exps 128 x 768 x 2,048: 213,909,504 B each -> 641,728,512 B of experts.
  token_embd and output: 151,936 x 2,048 Q8_0 = 330,612,736 B each; output_norm 8,192 B.
  KV at 4,096 tokens (f16): 48 layers x 2 x 512 x 4,096 x 2 B = 402,653,184 B; compute buffer (llamacpp.py's
  approximation) 4 x 512 x (151,936 + 2,048) = 315,359,232 B.
- Rules from llama.cpp's source (engines/llamacpp.py): the layer split of load_tensors and the EXPS regex of
  common/common.h; the published case is PR #11397's (ggml-org/llama.cpp, "-ngl 33 --tensor_split 15/15/3" on
  WizardLM-2-8x22B, 56 blocks: "15 layers on RTX 3090, 15 layers on RTX 3090, 3 layers on GTX 1060 Super").
"""

from __future__ import annotations

import json

import pytest

from inspector.engines.llamacpp import EXPS_REGEX, OptionError, layer_devices, options, split_points
from tests.helpers import cli

QWEN = "Qwen/Qwen3-30B-A3B-GGUF"
QWEN_FILE = "Qwen3-30B-A3B-Q8_0.gguf"
LAYERS = 48
DENSE = 21_120_000  # a block's tensors outside the routed experts
EXPERT = 213_909_504  # one ffn_*_exps tensor
EXPERTS = 3 * EXPERT  # 641,728,512
EMBD = 330_612_736
OUTPUT = EMBD + 8_192
KV = 402_653_184
COMPUTE = 4 * 512 * (151_936 + 2_048)
GPU = "RTX-4090"  # 24,564 MiB (catalog); less the 1 GiB --overhead: 24,683,479,040 B
BUDGET = 24_564 * 2**20 - 2**30


def plan(capsys, *args: str) -> dict:
    code, out, err = cli(capsys, "plan", QWEN, "--gpu", GPU, "--context", "4096", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_the_tensor_split_of_the_published_three_gpu_run():
    # -ngl 33 of 57: the last 33 layers, k = 0..32; splits 15/33, 30/33, 1 -> GPU i while k/33 < its point
    where = layer_devices(56, 33, 3, [15, 15, 3])
    assert where[:24] == [-1] * 24
    assert [where.count(i) for i in range(3)] == [15, 15, 3]
    # 3,1 over 41 layers: points 0.75, 1.0; k/41 < 0.75 for k <= 30 -> 31 and 10
    assert [layer_devices(40, 41, 2, [3, 1]).count(i) for i in (0, 1)] == [31, 10]
    # a proportion of 0 gives that GPU nothing; all zero is the default (equal here)
    assert layer_devices(40, 41, 2, [0, 1]) == [1] * 41
    assert layer_devices(40, 41, 2, [0, 0]) == layer_devices(40, 41, 2)
    assert split_points([1, 1, 1]) == pytest.approx([1 / 3, 2 / 3, 1.0], rel=1e-7)


def test_experts_regex_is_llama_cpps():
    import re

    kept = [n for n in ("blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight",
                        "blk.3.ffn_gate_up_exps.weight", "blk.0.ffn_down_chexps.weight", "blk.0.ffn_up_exps.bias")
            if re.search(EXPS_REGEX, n)]  # fmt: skip
    assert len(kept) == 6
    for name in ("blk.0.ffn_gate_inp.weight", "blk.0.ffn_up_shexp.weight", "blk.0.ffn_down.weight"):
        assert not re.search(EXPS_REGEX, name)
    # --n-cpu-moe 2: blk.0 and blk.1 only (blk.10 is not blk.1)
    two = options(n_cpu_moe=2).cpu_patterns
    assert any(re.search(p, "blk.1.ffn_up_exps.weight") for p in two)
    assert not any(re.search(p, "blk.10.ffn_up_exps.weight") for p in two)


def test_bad_options_are_usage_errors():
    for bad in ("3,x", "-1,1", ""):
        if bad:
            with pytest.raises(OptionError):
                options(tensor_split=bad)
    with pytest.raises(OptionError):
        options(override_tensor=["exps=CUDA0"])
    with pytest.raises(OptionError):
        options(override_tensor=["(=CPU"])
    assert options(override_tensor=["exps=CPU,attn=CPU"]).cpu_patterns == ("exps", "attn")


def test_moe_on_one_gpu_partly(capsys, on_replica):
    run = plan(capsys)["plan"]
    # all of it: 48 x 662,848,512 + output 330,620,928 + KV + compute = 32,865,361,920 B > 24,683,479,040
    assert 48 * (DENSE + EXPERTS) + OUTPUT + KV + COMPUTE > BUDGET
    assert run["file"] == QWEN_FILE and 0 < run["offload"]["gpu_layers"] < LAYERS + 1
    assert run["offload"]["kept_in_ram_bytes"] == 0


def test_cpu_moe_keeps_every_expert_in_ram(capsys, on_replica):
    # --ram 64GiB: a machine that holds the 29 GiB of experts (without --ram, this machine's RAM is judged)
    run = plan(capsys, "--cpu-moe", "--ram", "64GiB")["plan"]
    off = run["offload"]
    assert off["gpu_layers"] == LAYERS + 1 and off["layers_per_gpu"] == [LAYERS + 1]
    assert off["kept_in_ram_bytes"] == LAYERS * EXPERTS == 30_802_968_576
    assert off["ram_bytes"] == EMBD + LAYERS * EXPERTS  # token_embd always in RAM; no KV there
    # the GPU: every block's other tensors, the output layer, KV, compute, and one expert tensor copied for a prompt
    gpu = LAYERS * DENSE + OUTPUT + KV + COMPUTE + EXPERT
    assert off["bytes_per_gpu"] == [gpu] == [2_276_302_848]
    assert run["weights_bytes_per_gpu"] == LAYERS * DENSE + OUTPUT
    assert run["max_context"] == 40_960  # 48 x 2,048 B of KV per token: the trained context fits
    # decode reads 8 of 128 experts per token: 1/16 of the RAM-kept bytes at 51.2 GB/s, the rest at the 4090's
    # 1,008 GB/s: (48 x 21,120,000 + 330,620,928 + KV) / 1.008e12 + 30,802,968,576 / 16 / 51.2e9
    t = (LAYERS * DENSE + OUTPUT + KV) / 1.008e12 + LAYERS * EXPERTS / 16 / 51.2e9
    assert run["decode_tokens_per_s"]["bound"] == pytest.approx(1 / t)
    assert run["decode_tokens_per_s"]["limited_by"] == "CPU RAM"
    assert any("-ot" in a and "exps=CPU" in a for a in run["assumptions"])


def test_n_cpu_moe_and_the_same_as_ot(capsys, on_replica):
    run = plan(capsys, "--n-cpu-moe", "20")["plan"]
    off = run["offload"]
    assert off["gpu_layers"] == LAYERS + 1
    assert off["kept_in_ram_bytes"] == 20 * EXPERTS
    gpu = 48 * (DENSE + EXPERTS) + OUTPUT + KV + COMPUTE - 20 * EXPERTS + EXPERT  # 20,244,701,184
    assert off["bytes_per_gpu"] == [gpu] and gpu <= BUDGET
    same = plan(capsys, "-ot", r"blk\.([0-9]|1[0-9])\.ffn_.*_exps=CPU")["plan"]["offload"]
    assert same == off


def test_tensor_split_over_two_gpus(capsys, on_replica):
    code, out, err = cli(capsys, "plan", "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3090x2", "--context",
                         "4096", "--tensor-split", "3,1", "--json")  # fmt: skip
    assert code == 0, err
    runs = json.loads(out)
    q8 = next(r for r in [runs["plan"], *runs["alternatives"]] if r["file"] == "llama-2-13b-chat.Q8_0.gguf")
    off = q8["offload"]
    assert off["layers_per_gpu"] == [31, 10]  # 41 layers at 3:1 (see above); the output layer is the 41st
    said = [a for a in q8["assumptions"] if "-ts 3,1" in a]  # the split is said as a split, not as -ot's RAM rule
    assert len(said) == 1 and "split over the GPUs" in said[0] and "RAM" not in said[0]
    # Llama-2-13B Q8_0 block: 317,194,240 matrix values -> 337,018,880 B, + 2 x 5,120 F32 norms = 337,059,840 B;
    # its KV: 2 x 5,120 x 4,096 x 2 B = 83,886,080 B. GPU 0: 31 blocks, no compute buffer (the output is on GPU 1)
    assert off["bytes_per_gpu"][0] == 31 * (337_059_840 + 83_886_080)
    # GPU 1: 9 blocks + output (32,000 x 5,120 Q8_0 = 174,080,000 B, norm 20,480 B) + compute 4 x 512 x 37,120
    assert off["bytes_per_gpu"][1] == 9 * (337_059_840 + 83_886_080) + 174_080_000 + 20_480 + 4 * 512 * 37_120
    # llama.cpp refuses 16 proportions or more (common/arg.cpp: split_arg.size() >= llama_max_devices() = 16)
    code, out, err = cli(capsys, "plan", "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3090x2",
                         "--tensor-split", ",".join(["1"] * 16))  # fmt: skip
    assert code == 2 and out == "" and err.startswith("Error: --tensor-split '1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1' has 16")
    assert len(err.strip().splitlines()) == 1


def test_gguf_report_shows_the_split(capsys, on_replica):
    code, out, err = cli(capsys, QWEN, "--gpu", GPU, "--context", "4096", "--cpu-moe", "--json")
    assert code == 0, err
    row = json.loads(out)["gguf"]["files"][0]
    assert row["fits"] == {GPU: "fits"} and row["kept_in_ram_bytes"] == {GPU: LAYERS * EXPERTS}
    assert row["layers_per_gpu"] == {GPU: [LAYERS + 1]} and row["bytes_per_gpu"] == {GPU: [2_276_302_848]}
    assert row["parameters"] == 30_532_122_624  # Qwen3-30B-A3B: half its bf16 total_size 61,064,245,248


def test_unequal_gpus_split_by_their_memory(capsys, on_replica):
    from inspector.gpus import parse_gpu

    mixed = parse_gpu("RTX-4090+RTX-3060-12GBx2")
    assert mixed.label == "RTX-4090+RTX-3060-12GBx2" and mixed.count == 3
    assert [d.name for d in mixed.devices] == ["RTX-4090", "RTX-3060-12GB", "RTX-3060-12GB"]
    assert mixed.usable_bytes == 12_288 * 2**20  # the smallest device's, for engines that assume equal devices
    code, out, err = cli(capsys, "plan", "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3090+RTX-3060-12GB",
                         "--context", "4096", "--json")  # fmt: skip
    assert code == 0, err
    runs = json.loads(out)
    q8 = next(r for r in [runs["plan"], *runs["alternatives"]] if r["file"] == "llama-2-13b-chat.Q8_0.gguf")
    off = q8["offload"]
    # by memory, 24,576 : 12,288 MiB -> point 2/3: k/41 < 2/3 for k <= 27 -> 28 and 13 layers
    assert off["layers_per_gpu"] == [28, 13]
    block, kv = 337_059_840, 83_886_080  # Llama-2-13B Q8_0 block and its KV at 4,096 (see above)
    gpu1 = 12 * (block + kv) + 174_080_000 + 20_480 + 4 * 512 * 37_120  # 12 blocks + output + compute
    assert off["bytes_per_gpu"] == [28 * (block + kv), gpu1]
    assert gpu1 <= 12_288 * 2**20 - 2**30  # fits the 3060 with 1 GiB left
    # decode: each GPU reads its blocks at its own bandwidth, one after the other (RTX-3090 936 GB/s, 3060 360 GB/s)
    t = 28 * (block + kv) / 936e9 + (12 * (block + kv) + 174_080_000 + 20_480) / 360e9
    assert q8["decode_tokens_per_s"]["bound"] == pytest.approx(1 / t)
    assert q8["decode_tokens_per_s"]["limited_by"] == "GPU 1 (RTX-3060-12GB)"


def test_ram_short_of_what_stays_there_pages_from_disk(capsys, on_replica):
    data = plan(capsys, "--cpu-moe", "--ram", "16GiB")
    # token_embd + every routed expert: 330,612,736 + 30,802,968,576 B = 31,133,581,312 B = 29.00 GiB > 16 GiB, and
    # no KV in RAM (every layer on the GPU): the mapped experts are paged from disk, no tokens/s
    run = data["plan"]
    assert run["offload"]["ram_bytes"] == EMBD + LAYERS * EXPERTS > 16 * 2**30
    assert run["offload"]["ram_verdict"] == "pages_from_disk" and run["runs"] is True
    assert run["decode_tokens_per_s"] is None and run["prefill_tokens_per_s"] is None
    assert any(n.startswith("Q8_0 on RTX-4090 keeps 29.00 GiB in RAM") and "--ram offers 16.00 GiB" in n
               and "from disk" in n for n in data["notes"])  # fmt: skip
    roomy = plan(capsys, "--cpu-moe", "--ram", "64GiB")
    assert roomy["plan"]["offload"]["ram_verdict"] == "fits" and roomy["plan"]["decode_tokens_per_s"] is not None
    assert not any("keeps" in n for n in roomy["notes"])


def test_placement_options_are_said_in_the_report_and_a_pattern_matching_nothing_is_flagged(capsys, on_replica):
    # --cpu-moe is llama.cpp's expert-tensor pattern: Llama-2-13B has no expert tensors (a dense model: its
    # ffn_up/ffn_down/ffn_gate tensors carry no "_exps"), so it keeps nothing in RAM and the report says so;
    # Qwen3-30B-A3B's blk.N.ffn_*_exps tensors match it
    code, out, err = cli(capsys, "TheBloke/Llama-2-13B-chat-GGUF", "--gpu", "RTX-3090x2", "--cpu-moe",
                         "--tensor-split", "3,1", "--json")  # fmt: skip
    assert code == 0, err
    notes = json.loads(out)["gguf"]["notes"]
    assert len(notes) == 2 and "-ts 3,1" in notes[0] and "matches no tensor" in notes[1]
    code, out, err = cli(capsys, "Qwen/Qwen3-30B-A3B-GGUF", "--gpu", "RTX-4090", "--cpu-moe", "--json")
    assert code == 0, err
    notes = json.loads(out)["gguf"]["notes"]
    assert len(notes) == 1 and "matching tensors stay in RAM" in notes[0]
    code, out, err = cli(capsys, "Qwen/Qwen3-30B-A3B-GGUF", "--gpu", "RTX-4090", "--json")
    assert json.loads(out)["gguf"]["notes"] == []  # no option, nothing said
