"""Shared pytest fixtures: a local Hub replica over fixtures/hub, throwaway replicas, and an empty HF cache per test."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_replica import HubReplica

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_HUB = REPO_ROOT / "fixtures" / "hub"

MakeRepo = Callable[..., HubReplica]


@pytest.fixture(scope="session", autouse=True)
def architecture_cache(tmp_path_factory) -> Iterator[Path]:
    """hfsize's architecture cache for this test session only (never the user's ~/.cache/hfsize)."""
    import os

    folder = tmp_path_factory.mktemp("hfsize_cache")
    previous = os.environ.get("HFSIZE_CACHE")
    os.environ["HFSIZE_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("HFSIZE_CACHE", None)
    else:
        os.environ["HFSIZE_CACHE"] = previous


@pytest.fixture(autouse=True)
def fresh_hub_metadata(architecture_cache: Path) -> None:
    """hfsize's cached Hub metadata is per test (replica repos reuse ids and commits with other content);
    the architecture cache is kept for the session."""
    import shutil

    for folder in ("refs", "commits", "gguf"):
        shutil.rmtree(architecture_cache / folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds hfsize's retries asked to sleep, recorded instead of slept (in-process runs only)."""
    from inspector import transport

    asked: list[float] = []
    monkeypatch.setattr(transport, "_sleep", asked.append)
    return asked


@pytest.fixture(scope="session")
def hub() -> Iterator[HubReplica]:
    """The replica over the real fixtures/hub (shared by the session: call hub.reset_requests() before counting)."""
    with HubReplica(FIXTURES_HUB) as replica:
        yield replica


@pytest.fixture
def on_replica(monkeypatch: pytest.MonkeyPatch, hf_home: Path, hub: HubReplica) -> HubReplica:
    """The CLI pointed (HF_ENDPOINT) at the session's replica over fixtures/hub, with an empty HF cache."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    return hub


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> Callable[[HubReplica], HubReplica]:
    """endpoint(replica): point the CLI at a replica (e.g. one from make_repo), with an empty HF cache."""

    def point(replica: HubReplica) -> HubReplica:
        monkeypatch.setenv("HF_ENDPOINT", replica.endpoint)
        return replica

    return point


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF_HOME / HF_HUB_CACHE and no token for this test.

    huggingface_hub copies these environment variables into `huggingface_hub.constants` at import time, so the
    constants are patched as well as the environment (the env covers subprocesses and late importers).
    """
    import huggingface_hub.constants as constants

    # `huggingface_hub.utils.tqdm` the attribute is the tqdm class, shadowing the module of the same name.
    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    env = {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))  # absent => no stored token
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    return home


def _write(path: Path, content: bytes | str | dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content, indent=2))


@pytest.fixture
def make_repo(tmp_path: Path) -> Iterator[MakeRepo]:
    """Build repos in a throwaway replica root and return the (single, started) replica serving them.

    make_repo("org/name", files={...}, headers={...}, settings={...}) -> HubReplica
      files:    repo path -> bytes (served raw: use it for corrupt .safetensors), str, or dict/list (written as JSON)
      headers:  weight filename -> safetensors header dict (written to headers/<filename>.json, served virtually)
      settings: the _replica.json dict (sha, gated, private, authorized_tokens, virtual_files, revisions, ...)
    Call it several times to put several repos behind the same replica.
    """
    root = tmp_path / "hub_root"
    root.mkdir()
    replica = HubReplica(root)

    def _make(
        repo_id: str = "org/model",
        files: dict[str, bytes | str | dict | list] | None = None,
        headers: dict[str, dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> HubReplica:
        repo_dir = root / repo_id
        repo_dir.mkdir(parents=True, exist_ok=True)
        for path, content in (files or {}).items():
            _write(repo_dir / path, content)
        for filename, header in (headers or {}).items():
            _write(repo_dir / "headers" / f"{filename}.json", header)
        if settings is not None:
            _write(repo_dir / "_replica.json", settings)
        return replica.start()

    yield _make
    replica.stop()
