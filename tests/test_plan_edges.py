"""Edges of `hfsize plan` / `check` for llama.cpp found by a user-level review (session 7):

1. --ram short of what llama.cpp keeps in RAM: a verdict (offload.ram_verdict), no tokens/s where it pages from
   disk, `check --ram` failing with not_enough_ram (exit 11).
2. The alternatives table at 80 columns: every figure whole on one line.
3. One -ts over several --gpu setups: each planned as llama.cpp runs it (the first n_devices proportions).
4. check names a mixed setup's devices, not only its smallest.
5. Local mixed GPUs in CUDA's device order (the order llama.cpp's -ts entries follow).

Expected figures are arithmetic on the fixtures (TheBloke/Llama-2-13B-chat-GGUF: fixtures/hub/.../SOURCE.md; ggml
block sizes: Q8_0 32 values in 34 B, Q4_K 256 values in 144 B), shown beside each; rules cited where they are used.
"""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path

import pytest

from tests.helpers import cli

REPO = "TheBloke/Llama-2-13B-chat-GGUF"
Q8 = "llama-2-13b-chat.Q8_0.gguf"
Q4 = "llama-2-13b-chat.Q4_K_M.gguf"
BLOCK = 337_059_840  # a Q8_0 block of Llama-2-13B: 317,194,240 matrix values x 34 / 32 + 2 x 5,120 F32 norms x 4 B
KV_4096 = 2 * 5_120 * 4_096 * 2  # K and V of one block at 4,096 tokens, f16: 83,886,080 B
KV_2048 = 2 * 5_120 * 2_048 * 2  # 41,943,040 B
EMBD_Q8 = 32_000 * 5_120 // 32 * 34  # token_embd, Q8_0: 174,080,000 B
EMBD_Q4K = 32_000 * 5_120 // 256 * 144  # token_embd, Q4_K (llama-quant.cpp keeps Q4_K_M's base type): 92,160,000 B


def plan(capsys, *args: str) -> dict:
    code, out, err = cli(capsys, "plan", REPO, "--json", *args)
    assert code == 0, err
    return json.loads(out)


def ways(data: dict) -> list[dict]:
    return [r for r in [data["plan"], *data["alternatives"]] if r is not None]


# ---------------------------------------------------------------- 1. RAM


def test_partial_offload_short_of_ram_pages_from_disk(capsys, on_replica):
    gpu = ("--gpu", "RTX-3060-12GB", "--file", "Q8_0")  # 12 GiB for a 13.8 GB file: a partial -ngl
    data = plan(capsys, *gpu, "--ram", "2GB")
    run = data["plan"]
    off = run["offload"]
    cpu_blocks = 41 - off["gpu_layers"]  # 40 blocks + the output layer; the output is offloaded first
    assert 0 < cpu_blocks < 41
    # in RAM: token_embd, the blocks past -ngl (mapped) and their KV at 2,048 tokens (allocated)
    assert off["ram_bytes"] == EMBD_Q8 + cpu_blocks * (BLOCK + KV_2048) > 2 * 10**9
    assert cpu_blocks * KV_2048 < 2 * 10**9  # the KV in RAM fits: it runs, paging the weights
    assert off["ram_verdict"] == "pages_from_disk" and run["runs"] is True
    assert run["decode_tokens_per_s"] is None and run["prefill_tokens_per_s"] is None
    code, out, err = cli(capsys, "plan", REPO, *gpu, "--ram", "2GB")
    assert code == 0, err
    decode = next(line for line in out.splitlines() if line.startswith("decode "))
    assert "not estimated: pages from disk" in decode and not re.search(r"\d", decode)
    assert any(line.startswith("RAM ") and "more than --ram" in line for line in out.splitlines())
    # enough RAM: the same way fits and has its speed
    roomy = plan(capsys, *gpu, "--ram", "32GB")["plan"]
    assert roomy["offload"]["gpu_layers"] == off["gpu_layers"]
    assert roomy["offload"]["ram_verdict"] == "fits" and roomy["decode_tokens_per_s"] is not None


def test_kv_in_ram_beyond_ram_does_not_run(capsys, on_replica):
    data = plan(capsys, "--gpu", "8GB", "--file", "Q8_0", "--context", "4096", "--ram", "1GiB")
    assert data["plan"] is None  # the one way does not run
    [run] = data["alternatives"]
    cpu_blocks = 41 - run["offload"]["gpu_layers"]
    assert cpu_blocks * KV_4096 > 2**30  # the KV cache of the CPU blocks alone exceeds --ram
    assert run["offload"]["ram_verdict"] == "does_not_fit" and run["runs"] is False
    assert "--ram" in run["why_not"] and run["decode_tokens_per_s"] is None


def test_no_ram_figure_no_verdict(capsys, on_replica):
    run = plan(capsys, "--gpu", "RTX-3060-12GB", "--file", "Q8_0", "--ram", "0")["plan"]
    assert run["offload"]["ram_verdict"] is None and run["decode_tokens_per_s"] is not None


def test_the_recommendation_moves_to_a_file_ram_holds(capsys, on_replica):
    # every file fits the 4090 entirely; the report recommends Q8_0 (highest bits per weight), whose token_embd
    # (174,080,000 B) stays in RAM: more than --ram 0.1GB (100,000,000 B). Q4_K_M's (92,160,000 B) fits.
    data = plan(capsys, "--gpu", "RTX-4090", "--ram", "0.1GB")
    assert data["plan"]["file"] == Q4 and data["plan"]["offload"]["ram_bytes"] == EMBD_Q4K
    q8 = next(r for r in data["alternatives"] if r["file"] == Q8)
    assert q8["offload"]["ram_bytes"] == EMBD_Q8 and q8["offload"]["ram_verdict"] == "pages_from_disk"
    assert any(Q4 in n and "rather than" in n for n in data["notes"])


def test_check_fails_when_ram_is_short(capsys, on_replica):
    code, out, err = cli(capsys, "check", REPO, "--gpu", "8GB", "--file", "Q8_0", "--ram", "4GB", "--json")
    assert code == 11, err  # ExitCode.PROBLEMS: an error-severity problem
    result = json.loads(out)
    [problem] = [p for p in result["problems"] if p["code"] == "not_enough_ram"]
    assert problem["severity"] == "error" and "from disk" in problem["message"]
    assert result["exit_code"] == 11 and result["ok"] is False
    # with RAM enough the problem is gone: a partial offload is needs_more, exit 10 (README's table)
    code, out, err = cli(capsys, "check", REPO, "--gpu", "8GB", "--file", "Q8_0", "--ram", "32GB", "--json")
    assert code == 10 and not [p for p in json.loads(out)["problems"] if p["code"] == "not_enough_ram"]
    # without --ram, check judges no RAM
    code, out, err = cli(capsys, "check", REPO, "--gpu", "8GB", "--file", "Q8_0", "--json")
    assert code == 10 and not [p for p in json.loads(out)["problems"] if p["code"] == "not_enough_ram"]
    code, out, err = cli(capsys, "check", REPO, "--gpu", "8GB", "--file", "Q8_0", "--ram", "4GB")
    assert code == 11 and "not_enough_ram" in out
    # the speed gate on a way that pages from disk: no speed, and why
    code, out, err = cli(capsys, "check", REPO, "--gpu", "RTX-3060-12GB", "--file", "Q8_0", "--ram", "2GB",
                         "--min-tokens-per-s", "1", "--json")  # fmt: skip
    problems = {p["code"]: p["message"] for p in json.loads(out)["problems"]}
    assert code == 11 and "not_enough_ram" in problems and "pages its weights from disk" in problems["too_slow"]


def test_readme_lists_the_problem_code():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| `not_enough_ram` | error |" in readme and "`ram_verdict`" in readme


# ---------------------------------------------------------------- 2. the alternatives table at 80 columns


def _figures(run: dict) -> list[str]:
    """The figures the table shows for a way, formatted independently: thousands separators, tokens/s to one
    decimal below 100 and none above (render_plan.rate's rule, as the README's examples show it)."""

    def rate(x: float) -> str:
        return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"

    out = []
    if run["max_context"] is not None and run["runs"]:  # a way that does not run shows "-" and why below the table
        out.append(f"{run['max_context']:,}")
    speed = run["decode_tokens_per_s"]
    if speed is not None:
        out += [f"{rate(speed['expected_low'])}-{rate(speed['expected_high'])}", rate(speed["bound"])]
    if run["offload"] is not None:
        out.append(f"{run['offload']['gpu_layers']}/{run['offload']['cpu_layers']}")
    return out


@pytest.mark.parametrize(
    "args",
    [
        (REPO, "--gpu", "RTX-3090+RTX-3060-12GB", "--gpu", "8GB", "--gpu", "T4x2", "--ram", "4GB"),
        (REPO, "--gpu", "RTX-4090", "--gpu", "T4", "--ram", "64GB"),
        ("meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--gpu", "T4x2", "--ram", "64GB"),
        ("meta-llama/Llama-2-70b-hf", "--gpu", "H100x2", "--gpu", "A100-80GBx2", "--engine", "vllm"),
    ],
)
def test_alternatives_keep_every_figure_whole_at_80_columns(capsys, on_replica, monkeypatch, args):
    data = json.loads(cli(capsys, "plan", *args, "--json")[1])
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli(capsys, "plan", *args)
    assert code == 0, err
    table = out[out.index("\nAlternatives\n") : out.index("\nAssumptions\n")]
    lines = table.splitlines()
    assert "…" not in table and all(len(line) <= 80 for line in lines), table
    for run in data["alternatives"]:
        # the way's row: its precision label and GPU setup on one line (repeated on each stacked part)
        name = re.escape(run["gpus"]) + (f" tp{run['tensor_parallel']}" if run["tensor_parallel"] > 1 else "")
        rows = [line for line in lines if re.search(rf"(^|\s){name}(\s|$)", line)]
        assert rows, run["gpus"]
        for figure in _figures(run):
            # whole, as a word of its own, on a row of that setup
            assert any(re.search(rf"(^|\s){re.escape(figure)}(\s|$)", row) for row in rows), (figure, table)
    assert not re.search(r"\(bound\s*$", table, re.M)  # a label never left at a line's end without its figure


def test_the_common_llama_cpp_table_is_one_table_at_80_columns(capsys, on_replica, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli(capsys, "plan", REPO, "--gpu", "RTX-3090+RTX-3060-12GB", "--gpu", "T4x2", "--ram", "64GB")
    assert code == 0, err
    table = out[out.index("\nAlternatives\n") : out.index("\nAssumptions\n")]
    heads = [line for line in table.splitlines() if line.startswith("precision")]
    assert len(heads) == 1  # not stacked: decode and context beside the layers
    assert "KV" not in table and "runs" not in table  # vLLM's columns only for vLLM, "runs" only when one does not


# ---------------------------------------------------------------- 3. one -ts over several setups


def test_tensor_split_applies_per_setup_as_llama_cpp_reads_it(capsys, on_replica):
    data = plan(capsys, "--gpu", "RTX-3090+RTX-3060-12GB", "--gpu", "T4", "--gpu", "T4x3", "-ts", "3,1",
                "--context", "4096")  # fmt: skip
    layers = {(r["file"], r["gpus"]): r["offload"]["layers_per_gpu"] for r in ways(data)}
    # 3,1 over 41 layers: split points 0.75, 1.0; layer k on GPU 0 while k/41 < 0.75 (k <= 30): 31 and 10
    assert layers[(Q4, "RTX-3090+RTX-3060-12GB")] == [31, 10]
    # one T4: llama.cpp reads the first proportion only (load_tensors copies tensor_split[0..n_devices)): all on it.
    # Q4_K_M 13B (7,865,956,224 B) fits a T4's 15 GiB with its 3.1 GiB of KV at 4,096 tokens
    assert layers[(Q4, "T4")] == [41]
    # three T4s: the third has no proportion, 0: none of the layers; the first two as above
    assert layers[(Q4, "T4 x3")] == [31, 10, 0]
    notes = data["notes"]
    assert any(n.startswith("-ts 3,1 on T4 (1 GPU): llama.cpp reads the first 1 of its 2 proportions") for n in notes)
    assert any(n.startswith("-ts 3,1 on T4 x3 (3 GPUs): the last GPU of the setup has no proportion") for n in notes)
    assert not any("RTX-3090+RTX-3060-12GB (" in n for n in notes)  # two proportions, two GPUs: nothing to say
    # the report says the same
    code, out, err = cli(capsys, REPO, "--gpu", "RTX-3090x2", "--gpu", "T4", "-ts", "3,1", "--json")
    assert code == 0, err
    assert any(n.startswith("-ts 3,1 on T4 (1 GPU)") for n in json.loads(out)["gguf"]["notes"])


def test_tensor_split_of_zeros_for_a_setup_splits_by_memory(capsys, on_replica):
    # -ts 0,0,1 on two GPUs: the two proportions llama.cpp reads are 0: all zero, its default split by free memory
    # (catalog GPUs of one setup: equal), 41 layers: k/41 < 0.5 for k <= 20 -> 21 and 20
    data = plan(capsys, "--gpu", "RTX-3090x2", "-ts", "0,0,1", "--file", "Q4_K_M")
    assert data["plan"]["offload"]["layers_per_gpu"] == [21, 20]
    assert any("(0,0)" in n and "free memory" in n for n in data["notes"])


# ---------------------------------------------------------------- 4. check names the whole mixed setup


@pytest.mark.parametrize("repo", [REPO, "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"])
def test_check_names_every_device_of_a_mixed_setup(capsys, on_replica, monkeypatch, repo):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = cli(capsys, "check", repo, "--gpu", "RTX-3090+RTX-3060-12GB")
    assert code in (0, 10), err
    # the catalog: RTX-3090 24,576 MiB = 24.0 GiB, RTX-3060-12GB 12,288 MiB = 12.0 GiB (NVIDIA: 24 GB and 12 GB)
    assert "RTX-3090+RTX-3060-12GB (24.0 + 12.0 GiB)" in out
    assert "RTX-3090+RTX-3060-12GB (12.0 GiB)" not in out


# ---------------------------------------------------------------- 5. local mixed GPUs in CUDA's order


def _dev(name: str, bus: str, compute=None, cores=None, clock=None):
    from inspector.hardware import Device

    return Device(name, 12 * 2**30, 12 * 2**30, 11 * 2**30, bus, compute, cores, clock)


def test_cuda_order_on_data():
    from inspector.hardware import cuda_order

    # a 3060 in the first slot, a 4090 in the second: compute capability 8.6 and 8.9 (NVIDIA's CUDA GPUs table)
    slow = _dev("RTX 3060", "00000000:01:00.0", (8, 6))
    fast = _dev("RTX 4090", "00000000:02:00.0", (8, 9))
    order, rule = cuda_order([slow, fast], {})
    assert [d.name for d in order] == ["RTX 4090", "RTX 3060"] and "FASTEST_FIRST" in rule
    order, rule = cuda_order([fast, slow], {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert [d.name for d in order] == ["RTX 3060", "RTX 4090"] and "PCI_BUS_ID" in rule
    # one compute capability (8.6 both): more CUDA cores x max SM clock first where NVML gives both; RTX 3090:
    # 10,496 cores x 1,695 MHz = 17.8 M, RTX 3060: 3,584 x 1,777 = 6.4 M (NVIDIA's specifications)
    small = _dev("RTX 3060", "00000000:01:00.0", (8, 6), 3_584, 1_777)
    big = _dev("RTX 3090", "00000000:02:00.0", (8, 6), 10_496, 1_695)
    assert [d.name for d in cuda_order([small, big], {})[0]] == ["RTX 3090", "RTX 3060"]
    # without the core count (nvidia-smi gives none) a tie keeps the PCI bus order
    small, big = small._replace(cores=None), big._replace(cores=None)
    assert [d.name for d in cuda_order([big, small], {})[0]] == ["RTX 3060", "RTX 3090"]
    # no compute capability read: PCI bus order, and the rule says it could not judge CUDA's
    order, rule = cuda_order([_dev("B", "00000000:02:00.0"), _dev("A", "00000000:01:00.0")], {})
    assert [d.name for d in order] == ["A", "B"] and "could not be judged" in rule
    assert "CUDA_VISIBLE_DEVICES" in cuda_order([slow, fast], {"CUDA_VISIBLE_DEVICES": "1"})[1]


# `nvidia-smi -q -x` (trimmed as in tests/test_hardware.py) with the slower card in the first PCI slot, and what
# `nvidia-smi --query-gpu=pci.bus_id,compute_cap --format=csv,noheader` prints for it
SLOW_FIRST_XML = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA GeForce RTX 3060</product_name>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <fb_memory_usage><total>12288 MiB</total><reserved>252 MiB</reserved><used>125 MiB</used>
      <free>11911 MiB</free></fb_memory_usage>
    <max_clocks><graphics_clock>2100 MHz</graphics_clock><sm_clock>2100 MHz</sm_clock></max_clocks>
  </gpu>
  <gpu id="00000000:02:00.0">
    <product_name>NVIDIA GeForce RTX 4090</product_name>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <fb_memory_usage><total>24564 MiB</total><reserved>346 MiB</reserved><used>231 MiB</used>
      <free>23987 MiB</free></fb_memory_usage>
    <max_clocks><graphics_clock>3120 MHz</graphics_clock><sm_clock>3120 MHz</sm_clock></max_clocks>
  </gpu>
</nvidia_smi_log>
"""
QUERY_CSV = "00000000:01:00.0, 8.6\n00000000:02:00.0, 8.9\n"


@pytest.fixture
def smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake nvidia-smi, all of PATH: `-q -x` prints the XML, `--query-gpu=...` the CSV."""
    (tmp_path / "q.xml").write_text(SLOW_FIRST_XML)
    (tmp_path / "q.csv").write_text(QUERY_CSV)
    script = tmp_path / "nvidia-smi"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"name = 'q.csv' if any(a.startswith('--query-gpu') for a in sys.argv) else 'q.xml'\n"
        f"sys.stdout.write(open({str(tmp_path)!r} + '/' + name).read())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return tmp_path


def test_local_mixed_setup_follows_cuda_order(smi, monkeypatch):
    from inspector.hardware import local_gpus

    [mixed] = [g for g in local_gpus() if g.devices]
    # FASTEST_FIRST: compute capability 8.9 (the 4090) before 8.6, whatever the slots
    assert [d.name for d in mixed.devices] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3060"]
    assert [d.free_bytes for d in mixed.devices] == [23987 * 2**20, 11911 * 2**20]  # each its own free memory
    assert mixed.name == "NVIDIA GeForce RTX 4090+NVIDIA GeForce RTX 3060 (local)"
    assert mixed.device_order.startswith("CUDA's default order, FASTEST_FIRST")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    [mixed] = [g for g in local_gpus() if g.devices]
    assert [d.name for d in mixed.devices] == ["NVIDIA GeForce RTX 3060", "NVIDIA GeForce RTX 4090"]
    assert mixed.device_order.startswith("PCI bus order")


def test_plan_on_the_local_mixed_setup_says_the_order(smi, capsys, on_replica):
    code, out, err = cli(capsys, "plan", REPO, "--file", "Q8_0", "--context", "4096", "--ram", "0", "--json")
    assert code == 0, err
    data = json.loads(out)
    name = "NVIDIA GeForce RTX 4090+NVIDIA GeForce RTX 3060 (local)"
    [run] = [r for r in ways(data) if r["gpus"] == name]
    # by free memory in CUDA's order: 23,987 / 35,898 = 0.668 then 1; layer k on the 4090 while k/41 < 0.668
    # (k <= 27): 28 layers there, 13 on the 3060 (the output layer last)
    assert run["offload"]["layers_per_gpu"] == [28, 13]
    said = [a for a in run["assumptions"] if a.startswith(name)]
    assert len(said) == 1 and "0 NVIDIA GeForce RTX 4090, 1 NVIDIA GeForce RTX 3060" in said[0]
    assert "FASTEST_FIRST" in said[0]


@pytest.mark.parametrize("width", [60, 80])
@pytest.mark.parametrize(
    "args",
    [
        (REPO, "--gpu", "RTX-3090+RTX-3060-12GB", "--gpu", "RTX-3060-12GB", "--ram", "2GB"),
        (REPO, "--gpu", "RTX-3060-12GB", "--file", "Q8_0", "--ram", "2GB"),
        ("meta-llama/Llama-2-70b-hf", "--gpu", "RTX-4090", "--ram", "64GB"),
    ],
)
def test_plan_prose_never_parts_a_figure_from_its_unit(capsys, on_replica, monkeypatch, args, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = cli(capsys, "plan", *args)
    assert code == 0, err
    head, _, rest = out.partition("\nAlternatives\n")
    prose = (head + rest[rest.find("\nAssumptions\n") :] if "\nAssumptions\n" in rest else head).splitlines()
    for line, after in zip(prose, prose[1:], strict=False):
        # a line ending in a figure is never followed by its unit or label ("9.88" / "GiB", "4,096" / "tokens")
        if line.rstrip()[-1:].isdigit():
            assert not re.match(r"\s*(GiB|GB|MiB|tokens|layers|requests|in CPU|\(|at -ngl|\+|x )", after), (line, after)
        # nor a label left without its figure ("(bound" / "38.1)", "-ngl" / "18")
        assert not re.search(r"(\(bound|-ngl| x)\s*$", line), (line, after)
        assert len(line) <= width
