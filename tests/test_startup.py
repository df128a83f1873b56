"""`hfsize --help` must start without importing torch or transformers."""

from __future__ import annotations

import subprocess
import sys


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
    """After torch was imported the entry point skips interpreter teardown (os._exit): the output must be
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
