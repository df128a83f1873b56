"""huggingface_hub's HF_HUB_DISABLE_* variables, as hfsize's requests honour them, seen from the replica.

The replica records each request's Authorization header. huggingface_hub reads these variables once, at import,
so every case runs the CLI in a fresh process (--headers-only: no torch to import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY_LLAMA

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPLICIT, EXPLICIT = "hf_implicit_env_token", "hf_explicit_flag_token"
# a one-shard checkpoint whose header the replica serves: embeddings 100 x 64 and a head 100 x 64, F16
HEADER = {
    "model.embed_tokens.weight": {"dtype": "F16", "shape": [100, 64], "data_offsets": [0, 12_800]},
    "lm_head.weight": {"dtype": "F16", "shape": [100, 64], "data_offsets": [12_800, 25_600]},
}


@pytest.fixture
def hub(make_repo):
    return make_repo("org/tiny", files={"config.json": TINY_LLAMA}, headers={"model.safetensors": HEADER})


def _run(hub, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    hub.reset_requests()
    home = tmp_path / "hf_home"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    full = {**base, "PYTHONPATH": str(REPO_ROOT), "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home),
            "HFSIZE_NO_CACHE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **env}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args], capture_output=True, text=True, env=full, timeout=300
    )


def _sent(hub) -> set[str | None]:
    requests = hub.requests_matching("")
    assert requests, "the replica saw no request"
    return {r.authorization for r in requests}


def test_the_token_from_the_environment_is_sent_by_default(hub, tmp_path):
    proc = _run(hub, tmp_path, "org/tiny", "--headers-only", "--json", HF_TOKEN=IMPLICIT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["parameters"]["total"] == 2 * 100 * 64  # the two stored tensors
    assert _sent(hub) == {f"Bearer {IMPLICIT}"}  # model info, config, index/header reads alike


@pytest.mark.parametrize("command", [("org/tiny", "--headers-only"), ("check", "org/tiny")], ids=["inspect", "check"])
def test_disable_implicit_token_sends_no_token_unless_given(hub, tmp_path, command):
    # check's exit is 11 here (the two-tensor checkpoint lacks the layers the config names), never 4 (access)
    proc = _run(hub, tmp_path, *command, "--json", HF_TOKEN=IMPLICIT, HF_HUB_DISABLE_IMPLICIT_TOKEN="1")
    assert proc.returncode in (0, 11) and json.loads(proc.stdout)["model"] == "org/tiny", proc.stderr
    assert _sent(hub) == {None}
    given = _run(hub, tmp_path, *command, "--json", "--token", EXPLICIT, HF_TOKEN=IMPLICIT,
                 HF_HUB_DISABLE_IMPLICIT_TOKEN="1")  # fmt: skip
    assert given.returncode == proc.returncode, given.stderr
    assert _sent(hub) == {f"Bearer {EXPLICIT}"}
    assert EXPLICIT not in given.stdout + given.stderr and IMPLICIT not in proc.stdout + proc.stderr


def test_disable_implicit_token_also_keeps_the_saved_login(hub, tmp_path):
    """A token saved by `hf auth login` (HF_TOKEN_PATH) is implicit too."""
    saved = tmp_path / "token"
    saved.write_text(IMPLICIT)
    proc = _run(hub, tmp_path, "org/tiny", "--headers-only", "--json", HF_TOKEN_PATH=str(saved))
    assert proc.returncode == 0, proc.stderr
    assert _sent(hub) == {f"Bearer {IMPLICIT}"}
    off = _run(hub, tmp_path, "org/tiny", "--headers-only", "--json", HF_TOKEN_PATH=str(saved),
               HF_HUB_DISABLE_IMPLICIT_TOKEN="1")  # fmt: skip
    assert off.returncode == 0, off.stderr
    assert _sent(hub) == {None}


def test_a_gated_repo_without_the_implicit_token_is_exit_access(make_repo, tmp_path):
    hub = make_repo("org/gated", files={"config.json": TINY_LLAMA}, headers={"model.safetensors": HEADER},
                    settings={"gated": "manual", "authorized_tokens": [IMPLICIT]})  # fmt: skip
    ok = _run(hub, tmp_path, "org/gated", "--headers-only", "--json", HF_TOKEN=IMPLICIT)
    assert ok.returncode == 0, ok.stderr
    off = _run(hub, tmp_path, "org/gated", "--headers-only", HF_TOKEN=IMPLICIT, HF_HUB_DISABLE_IMPLICIT_TOKEN="1")
    assert off.returncode == 4, off.stderr  # ExitCode.ACCESS
    assert off.stderr.startswith("Error: ") and IMPLICIT not in off.stderr
