"""Ad hoc probe for issue 19 (start-up and round trips): hfsize against hf-mem 0.5.6 on the Hub replica.

Usage: python scripts/startup_probe.py [--repeat 5] [--latency 0.05] [--model meta-llama/Llama-2-70b-hf]
       [--hf-mem /work/hfmem-venv/bin/python] [--floor] [--baseline OTHER_CHECKOUT]

Runs, alternating, hf-mem (`--model-id M`, its default report), `hfsize M --headers-only --json` with cold
caches (fresh HF_HOME and HFSIZE_CACHE each run) and `hfsize M --json` answered from a warm cache; prints the
median wall time of each (and its range), the ratios to hf-mem (of the medians, and of each run to the hf-mem
run beside it) and the requests the replica answered per run; `--floor` adds two runs that only import and set
up huggingface_hub's session and headers (and hf_hub_download): what no change to hfsize can go below. hf-mem hard-codes
https://huggingface.co: it runs under a small wrapper that mounts an httpx transport sending those requests to
the replica instead (its own code, client and concurrency otherwise unchanged). The formal side-by-side
benchmark is scripts/bench.py; this one is for measuring while working.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hub_replica import HubReplica  # noqa: E402

HF_MEM_PYTHON = "/work/hfmem-venv/bin/python"
# Run by hf-mem's interpreter: every https://huggingface.co request goes to HFMEM_REPLICA instead.
HF_MEM_WRAPPER = """
import os, sys
import httpx2
target = httpx2.URL(os.environ["HFMEM_REPLICA"])

class ToReplica(httpx2.AsyncHTTPTransport):
    async def handle_async_request(self, request):
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        return await super().handle_async_request(request)

_init = httpx2.AsyncClient.__init__

def init(self, *args, **kwargs):
    # the client's one transport, built as the client would build it (one TLS context, as against the Hub)
    options = {k: kwargs[k] for k in ("limits", "http2") if k in kwargs}
    kwargs["transport"] = ToReplica(**options)
    _init(self, *args, **kwargs)

httpx2.AsyncClient.__init__ = init
from hf_mem.cli import main
sys.argv = ["hf-mem", *sys.argv[1:]]
main()
"""

# The libraries every hfsize Hub run needs before its first request, without any hfsize code: the CLI toolkit,
# huggingface_hub's HTTP session (an httpx2 client with its TLS context) and its request headers (token
# lookup). The second floor adds hf_hub_download's module, which hfsize no longer imports online (config.json
# and the index are one GET each through the session): kept to show what that import cost.
FLOOR_REPEATED = (
    "import click, httpx2; from huggingface_hub.utils import get_session, build_hf_headers, hf_raise_for_status; "
    "get_session(); build_hf_headers()"
)
FLOOR_COLD = FLOOR_REPEATED + "; from huggingface_hub import hf_hub_download"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run, in the checkout PYTHONPATH names (`-m inspector`
    finds the package in its working directory first)."""
    start = time.perf_counter()
    cwd = env.get("PYTHONPATH", str(ROOT))
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"exit {os.waitstatus_to_exitcode(status)}: {' '.join(argv)}", file=sys.stderr)
    return seconds, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--model", default="meta-llama/Llama-2-70b-hf")
    parser.add_argument("--hf-mem", default=HF_MEM_PYTHON, help="the Python that has hf-mem 0.5.6 installed")
    parser.add_argument("--hfsize-root", type=Path, default=ROOT, help="checkout whose hfsize runs")
    parser.add_argument("--floor", action="store_true", help="also run the huggingface_hub import floors")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, run alternately as well")
    args = parser.parse_args()
    hfsize = [sys.executable, "-m", "inspector"]
    # bytecode written and read, as an installed hfsize has it (a shell with PYTHONDONTWRITEBYTECODE=1 would
    # recompile every hfsize module on every run; hf-mem's venv has its .pyc files)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = dict(base, PYTHONPATH=str(args.hfsize_root))
    with HubReplica(ROOT / "fixtures" / "hub", latency=args.latency) as hub:
        env = dict(base, HF_ENDPOINT=hub.endpoint, HFMEM_REPLICA=hub.endpoint)
        warm_dir = tempfile.mkdtemp()
        warm_env = dict(env, HF_HOME=f"{warm_dir}/hf", HFSIZE_CACHE=f"{warm_dir}/hfsize")
        timed([*hfsize, args.model, "--json"], warm_env)  # fills the caches the repeated runs read
        cases = {
            "hf-mem": lambda: ([args.hf_mem, "-c", HF_MEM_WRAPPER, "--model-id", args.model], env),
            "hfsize --headers-only (cold)": lambda: ([*hfsize, args.model, "--headers-only", "--json"], _fresh(env)),
            "hfsize repeated (cache)": lambda: ([*hfsize, args.model, "--json"], warm_env),
        }
        if args.floor:  # what the huggingface_hub path costs before any hfsize code or request
            cases["floor: session + headers"] = lambda: ([sys.executable, "-c", FLOOR_REPEATED], env)
            cases["floor: + hf_hub_download"] = lambda: ([sys.executable, "-c", FLOOR_COLD], env)
        if args.baseline is not None:
            old = dict(env, PYTHONPATH=str(args.baseline))
            old_dir = tempfile.mkdtemp()
            old_warm = dict(old, HF_HOME=f"{old_dir}/hf", HFSIZE_CACHE=f"{old_dir}/hfsize")
            timed([*hfsize, args.model, "--json"], old_warm)
            cases["baseline --headers-only (cold)"] = lambda: (
                [*hfsize, args.model, "--headers-only", "--json"],
                _fresh(old),
            )
            cases["baseline repeated (cache)"] = lambda: ([*hfsize, args.model, "--json"], old_warm)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        requests: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, make in cases.items():  # alternating, so that load on the machine hits all alike
                argv, run_env = make()
                hub.reset_requests()
                seconds, used = timed(argv, run_env)
                times[name].append(seconds)
                cpu[name].append(used)
                requests[name] = len(hub.requests)
    reference, reference_cpu = statistics.median(times["hf-mem"]), statistics.median(cpu["hf-mem"])
    print(
        f"{args.model}, replica latency {args.latency * 1000:.0f} ms, median of {args.repeat} alternating runs "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    for name, values in times.items():
        median, used = statistics.median(values), statistics.median(cpu[name])
        print(
            f"  {name:30s} wall {median:.3f} s ({median / reference:.2f}x hf-mem; runs {min(values):.3f}-"
            f"{max(values):.3f} s), CPU {used:.3f} s ({used / reference_cpu:.2f}x)"
            + ("" if name.startswith("floor") else f", {requests[name]} requests")  # a floor asks nothing
        )
    # each run's ratio to the hf-mem run just before it (alternating: the two saw the same load)
    for name, values in times.items():
        if name != "hf-mem":
            paired = sorted(v / h for v, h in zip(values, times["hf-mem"], strict=True))
            median = statistics.median(paired)
            print(f"  {name:30s} paired ratio median {median:.2f}x, range {paired[0]:.2f}-{paired[-1]:.2f}x")
    print(f"  load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def _fresh(env: dict[str, str]) -> dict[str, str]:
    scratch = tempfile.mkdtemp()
    return dict(env, HF_HOME=f"{scratch}/hf", HFSIZE_CACHE=f"{scratch}/hfsize")


if __name__ == "__main__":
    main()
