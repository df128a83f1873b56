"""What users expect of a CLI: --version, shell completion, NO_COLOR, HF_HUB_CACHE, and `hf size` as an hf extension."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LLAMA_2_13B = "meta-llama/Llama-2-13b-hf"  # the replica's stand-in with Meta's shard sizes
PYPROJECT = (REPO_ROOT / "pyproject.toml").read_text()  # read by regex: tomllib is 3.11+, hfsize supports 3.10
COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;[0-9;]+|9[0-7])m")  # an SGR sequence that sets a foreground color


def _run(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT, **kw)


def test_version_names_the_libraries_without_importing_torch():
    import huggingface_hub
    import transformers

    code = (
        "import sys; from inspector.cli import run; rc = run(['--version']); "
        "print('HEAVY', [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]); sys.exit(rc)"
    )
    proc = _run([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    line, heavy = proc.stdout.splitlines()
    assert heavy == "HEAVY []"
    version = re.search(r'^version = "([^"]+)"', PYPROJECT, re.M).group(1)
    assert line.startswith(f"hfsize {version} (")
    assert f"transformers {transformers.__version__}" in line
    assert f"huggingface_hub {huggingface_hub.__version__}" in line


def test_bash_completion_is_clicks_own():
    proc = _run([sys.executable, "-m", "inspector"], env={"_HFSIZE_COMPLETE": "bash_source"})
    assert proc.returncode == 0, proc.stderr
    assert "_hfsize_completion()" in proc.stdout and "complete -o nosort -F _hfsize_completion hfsize" in proc.stdout


def test_no_color_is_respected(on_replica, tmp_path):
    env = {"HF_ENDPOINT": on_replica.endpoint, "HFSIZE_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "inspector", LLAMA_2_13B, "--headers-only"]
    forced = _run(args, env={**env, "FORCE_COLOR": "1"})
    assert forced.returncode == 0, forced.stderr
    assert COLOR.search(forced.stdout)  # the CLI does colour when the terminal is taken to be one
    plain = _run(args, env={**env, "FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0, plain.stderr
    assert not COLOR.search(plain.stdout)  # bold and dim stay: NO_COLOR (no-color.org) is about colour
    assert "13,015,864,320" in plain.stdout
    # no-color.org: "when present and not an empty string"; the README says the same
    empty = _run(args, env={**env, "FORCE_COLOR": "1", "NO_COLOR": ""})
    assert COLOR.search(empty.stdout)
    piped = _run(args, env={k: v for k, v in {**env}.items()})
    assert "\x1b[" not in piped.stdout  # not a terminal: no escapes at all


def test_check_uses_hf_hub_cache(on_replica, tmp_path):
    """The disk check and the already-cached bytes follow HF_HUB_CACHE, as huggingface_hub's downloads do; hfsize
    reads config.json and the index from there when they are cached and writes nothing there itself."""
    from huggingface_hub import hf_hub_download

    cache = tmp_path / "elsewhere" / "hub"
    env = {"HF_ENDPOINT": on_replica.endpoint, "HF_HUB_CACHE": str(cache), "HFSIZE_CACHE": str(tmp_path / "c")}
    args = [sys.executable, "-m", "inspector", "check", LLAMA_2_13B, "--json"]
    proc = _run(args, env=env)
    assert proc.returncode == 0, proc.stderr
    disk = json.loads(proc.stdout)["disk"]
    assert disk["path"] == str(cache)
    assert disk["cached_bytes"] == 0 and not cache.exists()  # read over HTTP, not downloaded into the cache
    # the two small files downloaded by huggingface_hub itself (as `hf download` does): 631 + 35,067 bytes cached
    served = REPO_ROOT / "fixtures/hub/_derived/bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"
    small = ("config.json", "model.safetensors.index.json")
    for name in small:
        hf_hub_download(LLAMA_2_13B, name, cache_dir=cache, endpoint=on_replica.endpoint)
    on_replica.reset_requests()
    proc = _run(args, env={**env, "HFSIZE_CACHE": str(tmp_path / "fresh")})  # hfsize's own cache empty again
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["disk"]["cached_bytes"] == sum((served / name).stat().st_size for name in small)
    assert not [r.path for r in on_replica.requests if "/resolve/" in r.path]  # both read from the HF cache


def _console_script(bin_dir: Path, name: str) -> Path:
    """The launcher pip writes for a [project.scripts] entry (pip's own template), here for this checkout."""
    target = re.search(rf'^{name} = "([^"]+)"', PYPROJECT, re.M).group(1)  # under [project.scripts]
    module, _, function = target.partition(":")
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    return script


def test_hf_size_runs_as_an_hf_extension(on_replica, tmp_path):
    """`hf size MODEL`: huggingface_hub's hf finds ~/.local/share/hf/extensions/hf-size/manifest.json (what
    `hf extensions install OWNER/hf-size` writes after pip-installing the package into the extension's venv) and
    runs its `hf-size` console script with the remaining arguments."""
    home = tmp_path / "home"
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = _console_script(bin_dir, "hf-size")
    extension = home / ".local/share/hf/extensions/hf-size"
    extension.mkdir(parents=True)
    manifest = {
        "owner": "example", "repo": "hf-size", "repo_id": "example/hf-size", "short_name": "size",
        "executable_path": str(script), "type": "python", "installed_at": "2026-12-01T21:00:00+00:00",
        "description": "hfsize", "commit_sha": None,
    }  # fmt: skip
    (extension / "manifest.json").write_text(json.dumps(manifest))
    env = {
        "HOME": str(home),
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # no GitHub request for a newer commit
        "HF_ENDPOINT": on_replica.endpoint,
        "HFSIZE_CACHE": str(tmp_path / "cache"),
    }
    hf = Path(sys.executable).parent / "hf"
    proc = _run([str(hf), "size", LLAMA_2_13B, "--headers-only", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["parameters"]["total"] == 13_015_864_320  # Llama-2-13B
    # its own usage and errors say `hf size`, and its exit codes come through hf
    bad = _run([str(hf), "size", "check", "--precision", "int3", LLAMA_2_13B], env=env)
    assert bad.returncode == 2
    assert "Run 'hf size check --help' for usage." in bad.stderr
