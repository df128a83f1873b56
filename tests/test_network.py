"""Network behaviour through the real huggingface_hub client: retries, Retry-After, counting, offline mode.

The replica injects failures (`fail` in _replica.json: a status for every request, or {"status", "times",
"retry_after"} for the first few) and logs every request it answers, so hfsize's own counts are checked
against the server's log, not against themselves.
"""

from __future__ import annotations

import json
import socket

from inspector.errors import ExitCode
from inspector.transport import TRAFFIC
from tests.helpers import TINY_LLAMA, cli


def tiny_repo(make_repo, fail: dict | None = None):
    settings = {"fail": fail} if fail else None
    return make_repo("org/tiny", files={"config.json": TINY_LLAMA}, settings=settings)


def test_retries_a_busy_hub_then_succeeds(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"@model_info": {"status": 503, "times": 2}}))
    code, out, err = cli(capsys, "org/tiny", "--json")
    assert code == 0, err
    assert json.loads(out)["parameters"]["total"] > 0
    statuses = [r.status for r in hub.requests_matching("/api/models/org/tiny")]
    assert statuses == [503, 503, 200]
    assert waits == [0.5, 1.0]  # exponential backoff from 0.5 s


def test_honours_retry_after(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"config.json": {"status": 429, "times": 1, "retry_after": 7}}))
    code, out, err = cli(capsys, "org/tiny", "--json")
    assert code == 0, err
    assert [r.status for r in hub.requests_matching("config.json")][:2] == [429, 200]  # GET refused, then fine
    assert 7.0 in waits  # the server's Retry-After, not the backoff


def test_a_retry_after_too_long_is_reported_not_waited_for(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"@model_info": {"status": 429, "times": 5, "retry_after": 3600}}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK
    assert err.startswith("Error: ") and "HTTP 429" in err and err.count("\n") == 1
    assert len(hub.requests_matching("/api/models/org/tiny")) == 1 and waits == []
    # the wait the server asked for, not a made-up one: 3600 s is an hour
    assert "Retry-After: 3600" in err and "1 hour" in err and "minute" not in err


def test_a_wait_asked_with_an_http_date_is_reported_too(capsys, endpoint, make_repo, waits):
    hub = endpoint(
        tiny_repo(
            make_repo, {"@model_info": {"status": 503, "times": 9, "retry_after": "Wed, 21 Oct 2099 07:28:00 GMT"}}
        )
    )
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK and "HTTP 503" in err and err.count("\n") == 1
    assert "Wed, 21 Oct 2099 07:28:00 GMT" in err and "minute" not in err
    assert len(hub.requests_matching("/api/models/org/tiny")) == 4  # a date is not seconds: the usual backoff


def test_gives_up_after_the_retries(capsys, endpoint, make_repo, monkeypatch, waits):
    monkeypatch.setenv("HFSIZE_RETRIES", "2")
    hub = endpoint(tiny_repo(make_repo, {"@model_info": 502}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK and "HTTP 502" in err
    assert len(hub.requests_matching("/api/models/org/tiny")) == 3  # the first try and 2 retries
    assert waits == [0.5, 1.0]


def test_broken_connections_are_retried(capsys, monkeypatch, hf_home, waits):
    with socket.socket() as s:  # a port nobody listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    TRAFFIC.reset()
    code, out, err = cli(capsys, "org/model")
    assert code == ExitCode.NETWORK
    refused = [e for e in TRAFFIC.exchanges if e.path == "/api/models/org/model"]
    assert [e.status for e in refused] == [None] * 4 and [e.retry for e in refused] == [True, True, True, False]


def test_verbose_counts_what_the_hub_sent(capsys, endpoint, hub, monkeypatch):
    """--verbose: every request and the bytes, equal to the replica's own log (the server's side)."""
    endpoint(hub)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    hub.reset_requests()
    TRAFFIC.reset()
    code, out, err = cli(capsys, "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian", "--json", "-v")
    assert code == 0, err
    logged = hub.requests
    lines = err.splitlines()
    assert len(lines) == len(logged) + 1  # one line per request, then the totals
    assert lines[-1].startswith(f"hfsize: {len(logged)} requests, {hub.bytes_sent:,} bytes received")
    assert all(line.startswith("hfsize: ") for line in lines)
    assert "hf_secret_token_value" not in err and "hf_secret" not in out
    json.loads(out)  # stdout stays pure JSON


def test_verbose_flag_works_on_every_command(capsys, endpoint, hub):
    endpoint(hub)
    for args in (
        ["check", "mistralai/Mistral-7B-v0.1", "-v"],
        ["compare", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.3", "--verbose"],
    ):
        code, out, err = cli(capsys, *args)
        assert code in (0, ExitCode.PROBLEMS), err
        assert "requests" in err.splitlines()[-1] and "bytes received" in err.splitlines()[-1]


# ---------------------------------------------------------------- metadata cache and offline mode

SHARDED = "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian"


def test_a_repeated_run_needs_only_the_model_info_request(capsys, endpoint, hub):
    endpoint(hub)
    hub.reset_requests()
    code, first, err = cli(capsys, SHARDED, "--json")
    assert code == 0, err
    assert len(hub.requests) > 1  # model info, config, index, headers
    hub.reset_requests()
    code, second, err = cli(capsys, SHARDED, "--json")
    assert code == 0, err
    # the commit is resolved again (a branch moves), and what that commit holds is already known
    assert [r.path for r in hub.requests] == [f"/api/models/{SHARDED}"]
    assert json.loads(second) == json.loads(first)


def test_a_new_commit_is_read_again(capsys, endpoint, make_repo):
    hub = endpoint(make_repo("org/moving", files={"config.json": TINY_LLAMA}, settings={"sha": "a" * 40}))
    assert json.loads(cli(capsys, "org/moving", "--json")[1])["commit"] == "a" * 40
    make_repo("org/moving", files={"config.json": {**TINY_LLAMA, "vocab_size": 512}}, settings={"sha": "b" * 40})
    hub.reset_requests()
    report = json.loads(cli(capsys, "org/moving", "--json")[1])
    assert report["commit"] == "b" * 40
    assert report["parameters"]["by_component"]["embeddings"] == 512 * 64  # the new config, not the cached one
    assert any("config.json" in r.path for r in hub.requests)


def test_offline_mode_answers_from_the_cache(capsys, endpoint, hub, monkeypatch):
    import huggingface_hub.constants as constants

    endpoint(hub)
    code, online, err = cli(capsys, SHARDED, "--json")
    assert code == 0, err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads the variable at import
    hub.reset_requests()
    code, offline, err = cli(capsys, SHARDED, "--json")
    assert code == 0, err
    assert hub.requests == []  # not one request
    assert json.loads(offline) == json.loads(online)


def test_offline_mode_without_a_cached_run_says_what_to_do(capsys, endpoint, hub, monkeypatch):
    import huggingface_hub.constants as constants

    endpoint(hub)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.reset_requests()
    code, out, err = cli(capsys, "mistralai/Mistral-7B-v0.1")
    assert code == ExitCode.NETWORK and out == ""
    assert err.startswith("Error: Offline mode (HF_HUB_OFFLINE)") and "'mistralai/Mistral-7B-v0.1'" in err
    assert "unset HF_HUB_OFFLINE" in err and err.count("\n") == 1
    assert hub.requests == []
