"""Replies the Hub never sends (a captive portal's page, broken bytes, JSON of the wrong shape, a body cut short):
what is transient is retried, the rest exits 5 naming the endpoint and what came back; never exit 1.

The replica answers them through its `fail` rules ({"body": ..., "cut": N}, see tests/hub_replica.py); the
real huggingface_hub client reads them.
"""

from __future__ import annotations

import json
import shutil

import pytest

from inspector.cache import cache_dir
from inspector.errors import ExitCode
from tests.helpers import TINY_LLAMA, cli
from tests.hub_replica import build_header

PORTAL = "<!DOCTYPE html><html><body><h1>Welcome to Airport Wi-Fi</h1>Please accept the terms.</body></html>"


def one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "reply, what_came_back",
    [
        ({"body": PORTAL, "content_type": "text/html; charset=utf-8"}, "not JSON (HTTP 200, text/html)"),
        ({"body": '{"id": "org/\xff"}', "content_type": "application/json"}, "not UTF-8"),
        ({"body": json.dumps({"id": 5, "sha": ["x"], "siblings": "nope"})}, "unexpected shape"),
        ({"body": json.dumps({"id": "org/tiny", "sha": ["x"], "siblings": []})}, "unexpected shape"),
        ({"body": json.dumps(["not", "an", "object"])}, "unexpected shape"),
    ],
    ids=["captive-portal-html", "not-utf8", "wrong-shape", "sha-not-a-commit", "json-list"],
)
def test_a_reply_that_is_not_the_hubs_exits_5_naming_endpoint_and_reply(
    capsys, endpoint, make_repo, reply, what_came_back
):
    hub = endpoint(
        make_repo(
            "org/tiny", files={"config.json": TINY_LLAMA}, settings={"fail": {"@model_info": {**reply, "times": 99}}}
        )
    )
    for args in (["org/tiny"], ["check", "org/tiny"]):
        code, out, err = cli(capsys, *args)
        assert code == ExitCode.NETWORK == 5, err
        line = one_line_error(err)
        assert hub.endpoint in line and "'org/tiny'" in line and "model info" in line
        assert what_came_back in line, line


def test_a_body_cut_short_is_retried_then_succeeds(capsys, endpoint, make_repo, waits):
    body = json.dumps({"id": "org/tiny", "sha": "0" * 40, "siblings": []} | {"padding": "x" * 2000})
    rule = {"body": body, "cut": 100, "times": 2}
    hub = endpoint(make_repo("org/tiny", files={"config.json": TINY_LLAMA}, settings={"fail": {"@model_info": rule}}))
    code, out, err = cli(capsys, "org/tiny", "--json")
    assert code == 0, err
    assert json.loads(out)["parameters"]["total"] > 0
    model_info = [r for r in hub.requests if r.path == "/api/models/org/tiny"]
    assert len(model_info) == 3  # two cut short, then the whole reply
    assert waits == [0.5, 1.0]  # the README's backoff for broken connections


def test_a_body_always_cut_short_exits_5_after_the_retries(capsys, endpoint, make_repo, monkeypatch, waits):
    monkeypatch.setenv("HFSIZE_RETRIES", "2")
    rule = {"body": "x" * 5000, "cut": 10, "times": 99}
    hub = endpoint(make_repo("org/tiny", files={"config.json": TINY_LLAMA}, settings={"fail": {"@model_info": rule}}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK, err
    line = one_line_error(err)
    assert hub.endpoint in line and "'org/tiny'" in line
    assert len([r for r in hub.requests if r.path == "/api/models/org/tiny"]) == 3  # the first try and 2 retries


def sharded_repo(make_repo, fail: dict | None = None):
    """Two shards and their index, as save_pretrained writes them (tensor names of TINY_LLAMA's layers)."""
    first = build_header({"model.embed_tokens.weight": ("F16", [100, 64])})
    second = build_header({"lm_head.weight": ("F16", [100, 64])})
    shards = {"model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second}
    index = {
        "metadata": {"total_size": 2 * 100 * 64 * 2},
        "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                       "lm_head.weight": "model-00002-of-00002.safetensors"},
    }  # fmt: skip
    files = {"config.json": TINY_LLAMA, "model.safetensors.index.json": index}
    return make_repo("org/sharded", files=files, headers=shards, settings={"fail": fail} if fail else None)


@pytest.mark.parametrize(
    "body",
    [json.dumps({"index": {}}), json.dumps({"error": "nope"}), PORTAL, json.dumps({"index": {}, "headers": [1]})],
    ids=["no-headers-key", "error-object", "html", "headers-a-list"],
)
def test_an_unexpected_sharded_metadata_body_falls_back_to_per_file_headers(capsys, endpoint, make_repo, body):
    """The README: the sharded-metadata route is an optimisation; without it, each header is read on its own."""
    hub = endpoint(sharded_repo(make_repo))
    code, expected, err = cli(capsys, "org/sharded", "--json", "--headers-only")  # the route answers as the Hub's
    assert code == 0, err
    assert not [r for r in hub.requests if r.path.endswith(".safetensors")]  # one request gave every header
    hub = endpoint(sharded_repo(make_repo, {"@safetensors-metadata": {"body": body, "times": 99}}))
    shutil.rmtree(cache_dir() / "commits", ignore_errors=True)
    hub.reset_requests()
    code, out, err = cli(capsys, "org/sharded", "--json", "--headers-only")
    assert code == 0, err
    assert json.loads(out) == json.loads(expected)
    shard_reads = {r.path.rsplit("/", 1)[1] for r in hub.requests if r.path.endswith(".safetensors")}
    assert shard_reads == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
