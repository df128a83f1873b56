"""Run hf-mem (0.5.6) against a Hub replica instead of huggingface.co: for scripts/bench.py only.

Usage: HFMEM_ENDPOINT=http://127.0.0.1:PORT /path/to/hfmem-venv/bin/python scripts/hfmem_replica.py --model-id ...

hf-mem hard-codes https://huggingface.co in its URLs. This wrapper mounts an httpx2 transport on every client
hf-mem creates that sends each request to HFMEM_ENDPOINT instead (same path, query, headers and Range), then
runs hf-mem's own `main`. Nothing else of hf-mem changes. The replica speaks HTTP/1.1 only, so the requests go
over HTTP/1.1 connections (up to hf-mem's MAX_CONCURRENCY of them) where the real Hub would multiplex them over
one HTTP/2 connection. Runs in hf-mem's own environment (it needs httpx2 and hf_mem, never hfsize).
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx2

HUB_HOST = "huggingface.co"


class ToReplica(httpx2.AsyncBaseTransport):
    """Requests for huggingface.co go to the replica's scheme, host and port; others are refused."""

    def __init__(self, endpoint: str) -> None:
        target = urlsplit(endpoint)
        self.scheme, self.host, self.port = target.scheme, target.hostname, target.port
        self.inner = httpx2.AsyncHTTPTransport(http1=True, http2=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host != HUB_HOST:
            raise httpx2.ConnectError(f"hfmem_replica: refusing {request.url} (only {HUB_HOST} is redirected)")
        request.url = request.url.copy_with(scheme=self.scheme, host=self.host, port=self.port)
        request.headers["Host"] = f"{self.host}:{self.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def install(endpoint: str) -> None:
    """Every httpx2.AsyncClient made from now on sends huggingface.co requests to `endpoint`."""
    original = httpx2.AsyncClient.__init__

    def init(self: httpx2.AsyncClient, *args: Any, **kwargs: Any) -> None:
        kwargs["transport"] = ToReplica(endpoint)
        kwargs.pop("http2", None)  # the transport decides the protocol
        original(self, *args, **kwargs)

    httpx2.AsyncClient.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    endpoint = os.environ.get("HFMEM_ENDPOINT")
    if not endpoint:
        sys.exit("Error: HFMEM_ENDPOINT is not set. Set it to the replica's URL, e.g. http://127.0.0.1:8765.")
    install(endpoint)
    from hf_mem.cli import main as hf_mem_main

    sys.argv[0] = "hf-mem"
    hf_mem_main()


if __name__ == "__main__":
    main()
