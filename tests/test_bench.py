"""The benchmark's helper pieces work (quick checks; the benchmark itself, scripts/bench.py, is never run here)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from scripts import bench
from scripts.hfmem_replica import ToReplica

HFMEM_PYTHON = Path(os.environ.get("HFMEM_PYTHON", Path(__file__).parent.parent / ".venv-hfmem" / "bin" / "python"))


def test_aliases_name_each_repo_once_and_take_the_targets_in_turn():
    names = bench.aliases(5, ["a/x", "b/y"])
    assert list(names) == [f"scan/model-000{i}" for i in range(5)]
    assert list(names.values()) == ["a/x", "b/y", "a/x", "b/y", "a/x"]


def test_alternate_interleaves_and_measured_counts_what_the_replica_served(hub):
    order: list[str] = []

    def side(name: str):
        def go() -> bench.Run:
            order.append(name)
            return bench.measured(hub, [sys.executable, "-c", "pass"], dict(os.environ))

        return go

    a, b = bench.alternate(side("a"), side("b"), 2)
    assert order == ["a", "b", "a", "b"] and len(a) == len(b) == 2
    assert {r.code for r in a + b} == {0} and a[0].requests == 0 and a[0].rss_kib > 0
    assert bench.outcome(a) == "" and bench.outcome([bench.Run(1.0, 7, 1)]) == " (exit 7)"


def test_the_transport_sends_huggingface_co_to_the_replica_and_refuses_other_hosts(hub):
    async def get(url: str) -> httpx2.Response:
        async with httpx2.AsyncClient(transport=ToReplica(hub.endpoint)) as client:
            return await client.get(url)

    hub.reset_requests()
    reply = asyncio.run(get("https://huggingface.co/api/models/mistralai/Mistral-7B-v0.1"))
    assert reply.status_code == 200 and reply.json()["id"] == "mistralai/Mistral-7B-v0.1"
    assert [r.path for r in hub.requests] == ["/api/models/mistralai/Mistral-7B-v0.1"]
    with pytest.raises(httpx2.ConnectError, match="refusing"):
        asyncio.run(get("https://example.com/"))


@pytest.mark.skipif(not HFMEM_PYTHON.is_file(), reason="hf-mem's venv is not installed (set HFMEM_PYTHON)")
def test_hf_mem_through_the_wrapper_reads_every_shard_of_the_replica(hub):
    hub.reset_requests()
    proc = subprocess.run(
        bench.hfmem_argv(HFMEM_PYTHON, "meta-llama/Llama-2-70b-hf"),
        env={**os.environ, "HFMEM_ENDPOINT": hub.endpoint, "PYTHONPATH": ""},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # Llama-2-70B's 68,976,648,192 parameters in fp16, plus embed_tokens and lm_head (32,000 x 8,192 each) that
    # this merge stores in F32 (2 more bytes each): 137,953,296,384 + 1,048,576,000
    assert '"memory": 139001872384' in proc.stdout
    shards = [r for r in hub.requests if r.path.endswith(".safetensors")]
    assert len(shards) == 15 and {r.range for r in shards} == {"bytes=0-100000"}  # one header read per shard
