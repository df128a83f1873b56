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


def model_info_requests(hub, repo_id: str = "org/tiny") -> list:
    """The model_info requests the replica answered (not the sharded-metadata route under the same prefix)."""
    return [r for r in hub.requests if r.path == f"/api/models/{repo_id}"]


def test_retries_a_busy_hub_then_succeeds(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"@model_info": {"status": 503, "times": 2}}))
    code, out, err = cli(capsys, "org/tiny", "--json")
    assert code == 0, err
    assert json.loads(out)["parameters"]["total"] > 0
    statuses = [r.status for r in model_info_requests(hub)]
    assert statuses == [503, 503, 200]
    assert waits == [0.5, 1.0]  # exponential backoff from 0.5 s


def test_honours_retry_after(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"config.json": {"status": 429, "times": 2, "retry_after": 7}}))
    code, out, err = cli(capsys, "org/tiny", "--json")
    assert code == 0, err
    # refused twice: the read sent beside model_info (sent once, never retried: the read after model_info
    # replaces it), then that read, which waits what the server asked and is answered
    assert [r.status for r in hub.requests_matching("config.json")] == [429, 429, 200]
    assert waits == [7.0]  # the server's Retry-After, not the backoff, and only the read that counts waited


def test_a_retry_after_too_long_is_reported_not_waited_for(capsys, endpoint, make_repo, waits):
    hub = endpoint(tiny_repo(make_repo, {"@model_info": {"status": 429, "times": 5, "retry_after": 3600}}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK
    assert err.startswith("Error: ") and "HTTP 429" in err and err.count("\n") == 1
    assert len(model_info_requests(hub)) == 1 and waits == []
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
    assert len(model_info_requests(hub)) == 4  # a date is not seconds: the usual backoff


def test_gives_up_after_the_retries(capsys, endpoint, make_repo, monkeypatch, waits):
    monkeypatch.setenv("HFSIZE_RETRIES", "2")
    hub = endpoint(tiny_repo(make_repo, {"@model_info": 502}))
    code, out, err = cli(capsys, "org/tiny")
    assert code == ExitCode.NETWORK and "HTTP 502" in err
    assert len(model_info_requests(hub)) == 3  # the first try and 2 retries
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


# ---------------------------------------------------------------- reads sent beside model_info (hub._EarlyReads)


def test_an_early_read_of_a_commit_pushed_over_is_read_again_at_model_infos(endpoint, make_repo, tmp_path, monkeypatch):
    """config.json read at `main` before model_info answers, then a push: model_info names the new commit, so
    the early answer (X-Repo-Commit: the old one) is dropped and config.json is read at the new commit."""
    from inspector import hub as hub_module

    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cache"))  # this repo listed by no other test
    hub = endpoint(make_repo("org/moving", files={"config.json": TINY_LLAMA}, settings={"sha": "a" * 40}))
    early = hub_module._EarlyReads.start("org/moving", None, None, hub.endpoint)
    assert early is not None and early.files["config.json"].result()[1] == "a" * 40  # read at the old commit
    make_repo("org/moving", files={"config.json": {**TINY_LLAMA, "vocab_size": 512}}, settings={"sha": "b" * 40})
    listing = hub_module.list_hub("org/moving", endpoint=hub.endpoint)
    assert listing.commit == "b" * 40
    hub.reset_requests()
    repo = hub_module._fetch_hub("org/moving", None, None, hub.endpoint, listing, None, early)
    assert repo.config["vocab_size"] == 512  # the pushed config, not the early one (TINY_LLAMA's 32,000)
    assert [r.path for r in hub.requests] == [f"/org/moving/resolve/{'b' * 40}/config.json"]


def test_a_repo_already_listed_or_in_the_hf_cache_is_not_read_early(endpoint, make_repo, hf_home, monkeypatch):
    """No read before model_info where it would be for nothing: a repo hfsize listed before (a repeated run is
    answered from its cache) or one `hf download` fetched (its refs/main: config.json is read from disk)."""
    from inspector import hub as hub_module

    monkeypatch.setenv("HFSIZE_CACHE", str(hf_home / "hfsize"))  # this repo listed by no other test
    hub = endpoint(make_repo("org/tiny", files={"config.json": TINY_LLAMA}))
    refs = hf_home / "hub" / "models--org--tiny" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("0" * 40)
    assert hub_module._EarlyReads.start("org/tiny", None, None, hub.endpoint) is None
    (refs / "main").unlink()
    (refs.parent / "snapshots" / ("1" * 40)).mkdir(parents=True)  # `hf download --revision <commit>`: no ref
    assert hub_module._EarlyReads.start("org/tiny", "1" * 40, None, hub.endpoint) is None
    assert hub_module._EarlyReads.start("org/TheModel-GGUF", None, None, hub.endpoint) is None  # no config.json
    hub_module.list_hub("org/tiny", endpoint=hub.endpoint)  # listed: hfsize's cache remembers the commit
    hub.reset_requests()
    assert hub_module._EarlyReads.start("org/tiny", None, None, hub.endpoint) is None
    assert hub.requests == []
    assert hub_module._EarlyReads.start("org/x" * 200, None, None, hub.endpoint) is None  # no valid repo id


def test_a_stalled_early_read_is_not_waited_for(capsys, endpoint, make_repo, tmp_path, monkeypatch):
    """config.json's early read stalls (5 s, far past model_info's answer): the read after model_info, at its
    commit, answers instead; the early one is not waited for (it is logged only when the replica answers it)."""
    monkeypatch.setenv("HFSIZE_CACHE", str(tmp_path / "cache"))  # this repo listed by no other test
    settings = {"sha": "c" * 40, "fail": {"config.json": {"delay": 5, "times": 1}}}
    hub = endpoint(make_repo("org/stall", files={"config.json": TINY_LLAMA}, settings=settings))
    code, out, err = cli(capsys, "org/stall", "--json")
    assert code == 0, err
    configs = [r.path for r in hub.requests_matching("config.json")]
    assert configs[0] == f"/org/stall/resolve/{'c' * 40}/config.json", configs  # not the stalled one at main


def test_early_reads_that_cannot_start_leave_the_run_as_it_was(tmp_path, hub):
    """The cache folder cannot be found (HFSIZE_CACHE under an unknown user's home): the early reads are given
    up (they hung the run) and the run says so in one line, exit 2 (a bad setting, the README), no thread
    traceback; with HFSIZE_NO_CACHE=1 the cache folder is never looked for, and the run answers."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(root))
    env["HFSIZE_CACHE"] = "~no-such-user-hfsize/cache"
    args = [sys.executable, "-m", "inspector", "meta-llama/Llama-2-70b-hf", "--headers-only"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: hfsize's cache folder cannot be found: HFSIZE_CACHE=~no-such-user-hfsize")
    assert "HFSIZE_NO_CACHE=1" in proc.stderr
    env["HFSIZE_NO_CACHE"] = "1"
    off = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert off.returncode == 0 and off.stderr == "", off.stderr
    # 68,976,648,192: Llama-2-70B's parameters (fixtures/hub/meta-llama/Llama-2-70b-chat-hf/SOURCE.md)
    assert "68,976,648,192" in off.stdout
