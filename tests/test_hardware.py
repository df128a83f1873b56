"""Local hardware (inspector/hardware.py), faked the documented way: executables named nvidia-smi, rocm-smi and
sysctl put first on PATH, printing what those tools print (layouts of `nvidia-smi -q -x`, `rocm-smi --json`).
The code under test is not patched; it runs the fake tools as it would run the real ones."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from inspector.hardware import local_gpus, ram_bytes

MIB = 2**20

# `nvidia-smi -q -x` (trimmed to the fields hfsize reads, in nvidia-smi's layout): one H100 SXM5 80GB as a whole
# GPU, and one A100 80GB in MIG mode with two 3g.40gb slices
NVIDIA_SMI_XML = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
  <driver_version>550.127.05</driver_version>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:18:00.0">
    <product_name>NVIDIA H100 80GB HBM3</product_name>
    <mig_mode><current_mig>Disabled</current_mig><pending_mig>Disabled</pending_mig></mig_mode>
    <mig_devices>None</mig_devices>
    <fb_memory_usage><total>81559 MiB</total><reserved>543 MiB</reserved><used>1 MiB</used>
      <free>81014 MiB</free></fb_memory_usage>
  </gpu>
  <gpu id="00000000:2A:00.0">
    <product_name>NVIDIA A100-SXM4-80GB</product_name>
    <mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>
    <mig_devices>
      <mig_device><index>0</index><gpu_instance_id>1</gpu_instance_id><compute_instance_id>0</compute_instance_id>
        <fb_memory_usage><total>40192 MiB</total><reserved>0 MiB</reserved><used>37 MiB</used>
          <free>40155 MiB</free></fb_memory_usage></mig_device>
      <mig_device><index>1</index><gpu_instance_id>2</gpu_instance_id><compute_instance_id>0</compute_instance_id>
        <fb_memory_usage><total>40192 MiB</total><reserved>0 MiB</reserved><used>2037 MiB</used>
          <free>38155 MiB</free></fb_memory_usage></mig_device>
    </mig_devices>
    <fb_memory_usage><total>81920 MiB</total><reserved>0 MiB</reserved><used>2074 MiB</used>
      <free>79846 MiB</free></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
"""
ROCM_SMI_JSON = {
    "card0": {"VRAM Total Memory (B)": "25753026560", "VRAM Total Used Memory (B)": "26542080",
              "Card Series": "Radeon RX 7900 XTX"},
}  # fmt: skip


def _tool(folder: Path, name: str, output: str) -> None:
    data = folder / f"{name}.out"
    data.write_text(output)
    script = folder / name
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(data)!r}).read())\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is all of PATH: only the fake tools written into it exist."""
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_no_tools_no_gpus(tools):
    assert local_gpus() == []


def test_nvidia_smi_gpus_and_mig_slices(tools):
    _tool(tools, "nvidia-smi", NVIDIA_SMI_XML)
    gpus = {g.name: g for g in local_gpus()}
    h100 = gpus["NVIDIA H100 80GB HBM3 (local)"]
    assert (h100.count, h100.memory_bytes, h100.free_bytes) == (1, 81559 * MIB, 81014 * MIB)
    # a GPU in MIG mode is its slices, each with its own memory; the whole A100 is not offered as well
    assert "NVIDIA A100-SXM4-80GB (local)" not in gpus
    first, second = gpus["NVIDIA A100-SXM4-80GB MIG 1 (local)"], gpus["NVIDIA A100-SXM4-80GB MIG 2 (local)"]
    assert (first.memory_bytes, first.free_bytes) == (40192 * MIB, 40155 * MIB)
    assert second.free_bytes == 38155 * MIB
    assert all(g.source == "local" for g in gpus.values())


def test_rocm_smi_gpu(tools):
    _tool(tools, "rocm-smi", json.dumps(ROCM_SMI_JSON))
    (gpu,) = local_gpus()
    assert gpu.name == "Radeon RX 7900 XTX (local)"
    assert (gpu.memory_bytes, gpu.free_bytes) == (25_753_026_560, 25_753_026_560 - 26_542_080)


def test_apple_unified_memory_share(tools):
    _tool(tools, "sysctl", "")
    script = tools / "sysctl"
    # sysctl -n NAME: Apple silicon, 64 GiB, no wired limit set (the default share: 3/4 above 36 GiB)
    answers = {"hw.optional.arm64": "1", "hw.memsize": str(64 * 2**30), "iogpu.wired_limit_mb": "0"}
    script.write_text(f"#!{sys.executable}\nimport sys\nprint({answers!r}[sys.argv[-1]])\n")
    (gpu,) = local_gpus()
    assert gpu.name == "Apple unified memory (local)"
    assert (gpu.memory_bytes, gpu.usable_bytes) == (64 * 2**30, 48 * 2**30)
    answers["iogpu.wired_limit_mb"] = "57344"  # sudo sysctl iogpu.wired_limit_mb=57344: 56 GiB
    script.write_text(f"#!{sys.executable}\nimport sys\nprint({answers!r}[sys.argv[-1]])\n")
    assert local_gpus()[0].usable_bytes == 56 * 2**30


def test_broken_tool_output_is_ignored(tools):
    _tool(tools, "nvidia-smi", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    _tool(tools, "rocm-smi", "not json")
    assert local_gpus() == []


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_ram_is_memavailable_where_psutil_is_absent(tools):
    import importlib.util

    got = ram_bytes()
    if importlib.util.find_spec("psutil") is not None:
        assert got and got > 0
        return
    line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemAvailable:"))
    expected = int(line.split()[1]) * 1024
    assert abs(got - expected) < 2**30  # read a moment apart on a busy machine
    assert os.environ["PATH"] == str(tools)


# `nvidia-smi -q -x` of a machine with two card models (product names and totals as nvidia-smi reports them, the
# catalog's nvidia-smi basis: RTX-4090 24,564 MiB, RTX-3060-12GB 12,288 MiB), trimmed as above
MIXED_XML = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA GeForce RTX 4090</product_name>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <fb_memory_usage><total>24564 MiB</total><reserved>346 MiB</reserved><used>231 MiB</used>
      <free>23987 MiB</free></fb_memory_usage>
  </gpu>
  <gpu id="00000000:02:00.0">
    <product_name>NVIDIA GeForce RTX 3060</product_name>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <fb_memory_usage><total>12288 MiB</total><reserved>252 MiB</reserved><used>125 MiB</used>
      <free>11911 MiB</free></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
"""


def test_mixed_cards_are_also_one_setup(tools):
    _tool(tools, "nvidia-smi", MIXED_XML)
    gpus = {g.name: g for g in local_gpus()}
    assert list(gpus) == [
        "NVIDIA GeForce RTX 4090 (local)",
        "NVIDIA GeForce RTX 3060 (local)",
        "NVIDIA GeForce RTX 4090+NVIDIA GeForce RTX 3060 (local)",
    ]
    both = gpus["NVIDIA GeForce RTX 4090+NVIDIA GeForce RTX 3060 (local)"]
    assert both.count == 2 and both.source == "local" and both.label == both.name
    assert [(d.memory_bytes, d.free_bytes) for d in both.devices] == [
        (24564 * MIB, 23987 * MIB),
        (12288 * MIB, 11911 * MIB),
    ]
    assert both.usable_bytes == 12288 * MIB  # the setup's own figure is its smallest device's (gpus.mixed_gpus)


def test_mig_slices_are_not_combined(tools):
    _tool(tools, "nvidia-smi", NVIDIA_SMI_XML)  # an H100 and two MIG slices of an A100: one whole GPU model
    assert not any("+" in g.name for g in local_gpus())


def test_llama_cpp_spreads_a_gguf_file_over_the_mixed_local_setup(tools, capsys, on_replica):
    from tests.helpers import cli

    _tool(tools, "nvidia-smi", MIXED_XML)
    repo = "TheBloke/Llama-2-13B-chat-GGUF"
    code, out, err = cli(capsys, "plan", repo, "--context", "4096", "--file", "Q8_0", "--ram", "0", "--json")
    assert code == 0, err
    runs = [json.loads(out)["plan"], *json.loads(out)["alternatives"]]
    [run] = [r for r in runs if r["gpus"] == "NVIDIA GeForce RTX 4090+NVIDIA GeForce RTX 3060 (local)"]
    # llama.cpp's default split is by free memory: shares 23,987 / 35,898 = 0.6682 and 1; of the 41 layers (40
    # blocks + output) layer k goes to the first GPU whose share is > k / 41: k <= 27 (27/41 = 0.659) the 4090,
    # 28..40 (28/41 = 0.683) the 3060. 13B Q8_0 fits both (12 blocks of 420,945,920 B with KV + output on 11 GiB)
    assert run["runs"] is True and run["offload"]["layers_per_gpu"] == [28, 13]
    assert run["offload"]["cpu_layers"] == 0
