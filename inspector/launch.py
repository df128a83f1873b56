"""The `hfsize` and `hf-size` console scripts: the process around the command line (cli.py).

A process starts here, before click or any other part of hfsize is imported, so that a plain
`hfsize MODEL [--json] [--headers-only]` sends its first Hub request as early as it can (`read_ahead`), and it
ends here, once the answer is out, without the interpreter's teardown (`_exit`). Plain os, signal and sys only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

DEBUG_ENV = "HFSIZE_DEBUG"
INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it

# The subcommands of `cli.main`, known here without importing click (tests/test_startup.py checks that they agree):
# an argv that starts with one of them is not a model.
COMMANDS = frozenset({"inspect", "check", "compare", "plan", "explain"})

# `hfsize MODEL` with only these flags: nothing to check before the Hub is asked (no option values; -v is not
# here, its listener must see every request).
READ_AHEAD_FLAGS = frozenset({"--json", "--headers-only"})


def entry() -> None:
    """The `hfsize` console script."""
    _exit(_main("hfsize"))


def hf_entry() -> None:
    """The `hf-size` console script: huggingface_hub's `hf` runs it for `hf size ...` (an hf CLI extension)."""
    _exit(_main("hf size"))


def _main(prog_name: str) -> int:
    # Until cli.run's own handler is in place, Ctrl-C ends the process at once: its KeyboardInterrupt would
    # mostly land in an import, where the import system can swallow it ("Exception ignored in ..._get_module_lock")
    # and the run would go on. Nothing is half-written then: no output yet, and the caches write atomically.
    if not os.environ.get(DEBUG_ENV):
        signal.signal(signal.SIGINT, _interrupted)
    quiet_libraries()
    read_ahead(sys.argv[1:])
    from .cli import run  # click and the rest of hfsize: imported while the first request is in flight

    signal.signal(signal.SIGINT, signal.default_int_handler)
    return run(prog_name=prog_name)


def _interrupted(_signum: int, _frame: object) -> None:
    with contextlib.suppress(Exception):
        os.write(2, b"Error: interrupted.\n")
    os._exit(INTERRUPTED)


def read_ahead(args: list[str]) -> None:
    """For `hfsize MODEL [--json] [--headers-only]`, the Hub reads start before click is imported: a thread
    installs the client (importing httpx2 and huggingface_hub, making its TLS context) and sends the first
    request, then this thread imports click and the rest of hfsize, parses and detects the GPUs while the round
    trips are in flight, instead of before they start. `inspect` takes the answers (hub.prefetch); any other
    argv waits for click and inspect's own read-ahead. Safe to call twice (cli.run calls it for a library
    caller): a second read-ahead of the same repo changes nothing."""
    if not args or args[0].startswith("-") or args[0] in COMMANDS or not READ_AHEAD_FLAGS.issuperset(args[1:]):
        return
    from .hub import prefetch
    from .transport import install

    prefetch(args[0], setup=install, head_start=True)


def _exit(code: int) -> None:
    """End the process once the answer is out, without the interpreter's teardown. Tearing down what a run
    imported (about 400 modules, huggingface_hub's session; torch and transformers on an exact run) takes
    0.15 s of a 0.6 s repeated report and about a second after a build, and serves nothing: every file hfsize
    writes (the caches) is written and closed before the command returns, the output is flushed here, and the
    sockets close with the process. A library caller of `cli.run` never gets here.

    A reader that went away (`hfsize ... | head`) changes nothing; output that cannot be written otherwise (a
    full disk) is one line on stderr and exit 1, where the interpreter's own flush at exit would have said it."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    except (OSError, ValueError) as e:  # ValueError: stdout closed
        with contextlib.suppress(Exception):
            print(output_failed(e), file=sys.stderr)
        code = code or 1
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def output_failed(error: Exception) -> str:
    """The one line for output that could not be written (a full disk): README's exit code 1, no bug report."""
    return f"Error: the output could not be written ({getattr(error, 'strerror', None) or error})."


def quiet_libraries() -> None:
    """Library chatter (progress bars, transformers warnings) would break `--json | jq` and the one-line rule.
    Set before huggingface_hub is imported: it reads these at import."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # Telemetry names an AI agent in the user agent, from a registry fetched first ({endpoint}/api/agent-harnesses:
    # a request before the first one hfsize makes, daily on the Hub, every run on a mirror without the route).
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if not os.environ.get(DEBUG_ENV):
        import warnings

        warnings.filterwarnings("ignore")
