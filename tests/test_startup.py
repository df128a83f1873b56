"""`hfsize --help` must start without importing torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from inspector.cli import run; rc = run(['--help']); "
        "heavy = [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage:" in out
    assert "HEAVY []" in out


def test_repeated_run_needs_no_torch(tmp_path):
    """The second report of the same config comes from the architecture cache: torch is never imported."""
    import json
    import os
    from pathlib import Path

    folder = tmp_path / "model"
    folder.mkdir()
    source = Path(__file__).resolve().parent.parent / "fixtures/hub/mistralai/Mistral-7B-v0.1/config.json"
    (folder / "config.json").write_bytes(source.read_bytes())
    env = dict(os.environ, HFSIZE_CACHE=str(tmp_path / "cache"))
    code = (
        "import sys, json; from inspector.cli import run; rc = run([sys.argv[1], '--json']); "
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules], file=sys.stderr); sys.exit(rc)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, check=True)
        for _ in range(2)
    ]
    assert "HEAVY ['torch', 'transformers']" in runs[0].stderr
    assert "HEAVY []" in runs[1].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first == second and first["parameters"]["total"] == 7_241_732_096  # Mistral-7B (SOURCE.md)


def test_console_entry_leaves_at_once_with_all_output_and_its_code(tmp_path):
    """The entry point skips interpreter teardown (os._exit), after torch was imported or not: the output must be
    complete and flushed, and the exit code the command's own."""
    import json
    import os
    from pathlib import Path

    folder = tmp_path / "model"
    folder.mkdir()
    source = Path(__file__).resolve().parent.parent / "fixtures/hub/mistralai/Mistral-7B-v0.1/config.json"
    (folder / "config.json").write_bytes(source.read_bytes())
    env = dict(os.environ, HFSIZE_CACHE=str(tmp_path / "cache"))
    ok = subprocess.run(
        [sys.executable, "-m", "inspector", str(folder), "--json"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["parameters"]["total"] == 7_241_732_096  # Mistral-7B (SOURCE.md)
    # `check` exits 11 (problems): a folder with only config.json has no weight files to load
    args = [sys.executable, "-m", "inspector", "check", str(folder), "--json"]
    problems = subprocess.run(args, capture_output=True, text=True, env=env)
    assert problems.returncode == 11, problems.stderr
    assert [p["code"] for p in json.loads(problems.stdout)["problems"]] == ["no_weights"]


def test_a_sibling_config_reuses_the_cached_architecture(tmp_path):
    """Two real Llama-2-13B configs that differ only in `_name_or_path` and `torch_dtype`: the second build is
    skipped (no torch), and its memory still follows its own dtype."""
    import json
    import os
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent.parent / "fixtures/hub/_derived"
    chat = fixtures / "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian/config.json"  # float16
    base = fixtures / "HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy/config.json"  # float32
    a, b = json.loads(chat.read_text()), json.loads(base.read_text())
    assert {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == {"_name_or_path", "torch_dtype"}
    env = dict(os.environ, HFSIZE_CACHE=str(tmp_path / "cache"))
    code = (
        "import sys, json; from inspector.cli import run; rc = run([sys.argv[1], '--json']); "
        "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules], file=sys.stderr); sys.exit(rc)"
    )
    runs = []
    for source in (chat, base):
        folder = tmp_path / source.parent.name
        folder.mkdir()
        (folder / "config.json").write_bytes(source.read_bytes())
        args = [sys.executable, "-c", code, str(folder)]
        runs.append(subprocess.run(args, capture_output=True, text=True, env=env, check=True))
    assert "HEAVY ['torch', 'transformers']" in runs[0].stderr
    assert "HEAVY []" in runs[1].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["parameters"]["total"] == second["parameters"]["total"] == 13_015_864_320  # Llama-2-13B
    assert (first["memory"]["load_dtype"], second["memory"]["load_dtype"]) == ("fp16", "fp32")


SEVENTY_B = "meta-llama/Llama-2-70b-hf"  # the replica's stand-in: 15 shards, an index, the sharded-metadata route


def _cli(args: list[str], env: dict[str, str], probe: str = "") -> subprocess.CompletedProcess:
    """hfsize in a subprocess, printing after it which of the named modules it had imported (stderr)."""
    import os
    from pathlib import Path

    code = (
        "import sys; from inspector.cli import run; rc = run(sys.argv[1:]); "
        f"print('IMPORTED', [m for m in {probe.split()!r} if m in sys.modules], file=sys.stderr); sys.exit(rc)"
    )
    root = Path(__file__).resolve().parent.parent
    full = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_TELEMETRY"}
    full.update(env, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full, cwd=root)


# What --headers-only and a cached report never need: the model class, the table renderer (JSON output),
# huggingface_hub's HfApi module (its import alone outweighed a round trip), the GGUF parser (the GGUF hook runs
# on every model, the parser only for a .gguf file), the llama.cpp planner and the engine registry (planning only),
# hf_hub_download's module (tqdm, asyncio, its local-folder and Xet code: config.json and the index are one GET
# each), and the architecture builder (the KV-per-token rule config_kv shares with it lives in state.py).
NOT_NEEDED = (
    "torch transformers accelerate rich huggingface_hub.hf_api inspector.gguf inspector.gguf_plan inspector.engines "
    "huggingface_hub.file_download tqdm asyncio inspector.architecture"
)


def test_headers_only_and_a_cached_report_import_only_what_they_use(hub, tmp_path):
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HFSIZE_CACHE": str(tmp_path / "cache")}
    quick = _cli([SEVENTY_B, "--headers-only", "--json"], env, NOT_NEEDED)
    assert quick.returncode == 0, quick.stderr
    assert "IMPORTED []" in quick.stderr
    import json

    # 68,976,648,192: Llama-2-70B's parameters (fixtures/hub/meta-llama/Llama-2-70b-chat-hf/SOURCE.md)
    assert json.loads(quick.stdout)["parameters"]["total"] == 68_976_648_192
    full = _cli([SEVENTY_B, "--json"], env, NOT_NEEDED)  # builds the architecture once (torch), caches it
    assert full.returncode == 0, full.stderr
    again = _cli([SEVENTY_B, "--json"], env, NOT_NEEDED)
    assert again.returncode == 0, again.stderr
    assert "IMPORTED []" in again.stderr
    assert again.stdout == full.stdout


def test_a_cold_sharded_repo_takes_one_round_trip_and_no_agent_registry(tmp_path):
    """A repo never read before: model_info, config.json, the index and every shard header at once (the three
    at `main`, kept because model_info's commit is theirs); a repeated run: model_info alone. huggingface_hub's
    telemetry (which first fetches /api/agent-harnesses, answered 404 by the replica as by mirrors) is off."""
    from tests.hub_replica import HubReplica

    # 0.5 s per answer: reads sent together are seen in flight together (one after another: never more than 1)
    with HubReplica(latency=0.5) as slow:
        env = {"HF_ENDPOINT": slow.endpoint, "HF_HOME": str(tmp_path / "hf"), "HFSIZE_CACHE": str(tmp_path / "c")}
        proc = _cli([SEVENTY_B, "--headers-only", "--json"], env)
        assert proc.returncode == 0, proc.stderr
        logged = [(r.method, r.path.rsplit("/", 1)[-1], r.path.split("/")[-2]) for r in slow.requests]
        in_flight = slow.max_in_flight
        slow.reset_requests()
        again = _cli([SEVENTY_B, "--headers-only", "--json"], env)
        assert again.returncode == 0, again.stderr
        repeated = [r.path for r in slow.requests]
    config, index = "config.json", "model.safetensors.index.json"
    # model info (the commit and the file list); one GET per small file at main through huggingface_hub's session
    # (no hf_hub_download HEAD first, and the files do not land in the HF cache); the sharded-metadata route
    expected = [("GET", "Llama-2-70b-hf", "meta-llama"), ("GET", config, "main"), ("GET", index, "main")]
    expected.append(("GET", index, "safetensors-metadata"))
    assert sorted(logged) == sorted(expected)  # nothing read twice: each early answer was model_info's commit's
    # all four are sent at once (a loaded machine may start one late, after an import)
    assert in_flight >= 3
    assert repeated == [f"/api/models/{SEVENTY_B}"]  # answered from hfsize's cache: model info only


def test_a_gguf_repo_still_loads_the_parser_it_needs(hub, tmp_path):
    """The GGUF parser is imported where a .gguf header is read: a GGUF repo is still read through it."""
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HFSIZE_CACHE": str(tmp_path / "cache")}
    proc = _cli(["TheBloke/Llama-2-13B-chat-GGUF", "--json"], env, "inspector.gguf torch")
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED ['inspector.gguf']" in proc.stderr
    import json

    # the file types are read from each header's general.file_type (the parser's work), not from the names
    files = json.loads(proc.stdout)["gguf"]["files"]
    assert [f["file_type"] for f in files] == ["Q2_K", "Q4_K_M", "Q8_0"]


def test_stage_dataclasses_stay_frozen_value_objects():
    """schemes, memory, plan, gguf... use results.frozen (shared eq/hash/repr): still frozen, equal by value."""
    import dataclasses

    import pytest

    from inspector.gguf import GGML_TYPES
    from inspector.memory import MemorySettings
    from inspector.schemes import LOAD_SCHEMES

    for value in (LOAD_SCHEMES["nf4_double_quant"], MemorySettings(), next(iter(GGML_TYPES.values()))):
        copy = dataclasses.replace(value)
        assert copy == value and hash(copy) == hash(value) and repr(copy) == repr(value)
        assert copy is not value
        with pytest.raises(dataclasses.FrozenInstanceError):
            copy.__setattr__(dataclasses.fields(copy)[0].name, None)
    assert LOAD_SCHEMES["bf16"] != LOAD_SCHEMES["nf4_double_quant"]
    assert repr(MemorySettings()).startswith("MemorySettings(")


def test_the_launcher_knows_every_subcommand_and_imports_no_click():
    """launch.py decides the read-ahead before click is imported: its list of subcommands is cli.main's."""
    code = "import sys, inspector.launch; print('click' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    from inspector.cli import main
    from inspector.launch import COMMANDS

    assert set(main.commands) == COMMANDS


def test_the_console_script_prints_whole_what_the_command_prints(hub, tmp_path):
    """`python -m inspector MODEL --headers-only --json` (launch.py: the Hub reads started before click, reads
    sent beside model_info, the exit without teardown and without torch) prints what cli.run prints in-process
    for the same cold caches, to the last byte, and exits 0."""
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    outputs = []
    for name, launcher in (("script", ["-m", "inspector"]), ("in-process", None)):
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / name / "hf")}
        env["HFSIZE_CACHE"] = str(tmp_path / name / "cache")
        if launcher is None:
            proc = _cli([SEVENTY_B, "--headers-only", "--json"], env)
        else:
            full = dict(os.environ, **env, PYTHONPATH=str(root))
            args = [sys.executable, *launcher, SEVENTY_B, "--headers-only", "--json"]
            proc = subprocess.run(args, capture_output=True, text=True, env=full, cwd=root)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] and outputs[0].endswith("}\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("output", [[], ["--json"]], ids=["text", "json"])
def test_output_to_a_full_disk_is_one_line_and_exit_1(tmp_path, output):
    """Writing the answer fails (ENOSPC): one line on stderr, exit 1 (the README), not a report of a bug and
    not exit 0 (the console script ends with os._exit, so hfsize itself must notice a failed flush)."""
    import os

    folder = tmp_path / "model"
    folder.mkdir()
    source = Path(__file__).resolve().parent.parent / "fixtures/hub/mistralai/Mistral-7B-v0.1/config.json"
    (folder / "config.json").write_bytes(source.read_bytes())
    env = dict(os.environ, HFSIZE_CACHE=str(tmp_path / "cache"))
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "inspector", str(folder), *output], stdout=full, stderr=subprocess.PIPE,
            text=True, env=env, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == "Error: the output could not be written (No space left on device).\n"
