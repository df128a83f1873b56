"""The HTTP client huggingface_hub uses inside hfsize: retries, timeouts, and a count of what went over the wire.

- Retries: GET and HEAD requests for what hfsize reads (model info, files, headers) that fail with 429, 500,
  502, 503 or 504, or whose connection breaks (before the reply, or in its body: bodies up to EAGER_BODY_LIMIT
  are read here, inside the retry loop), are retried up to HFSIZE_RETRIES times (default 3) with
  exponential backoff (0.5 s, 1 s, 2 s, ...), honouring the server's `Retry-After` (seconds) when it asks for
  no more than MAX_RETRY_AFTER; a longer wait is not worth blocking on, and the error is reported instead.
- Timeouts: every request gets HFSIZE_TIMEOUT seconds (default 10) unless the caller sets its own.
- Traffic: every request and the body bytes received (as sent, before decompression) are recorded, for
  `--verbose` and the benchmark.

huggingface_hub takes the client from `set_client_factory`; `install()` puts this one in place once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .install import fallback
from .results import frozen

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_METHODS = frozenset({"GET", "HEAD"})
# The Hub routes hfsize reads; huggingface_hub's own best-effort calls (its agent registry) are left alone.
RETRY_ROUTES = ("/api/models/", "/resolve/")
# The request extension that marks a read speculative (hub._EarlyReads: sent before model_info, replaced by the
# read after it if it fails): sent once, never retried or waited for.
SPECULATIVE = "hfsize_speculative"
MAX_RETRY_AFTER = 60.0  # seconds: a server asking for longer gets its error reported instead
FIRST_BACKOFF = 0.5
# hfsize's replies are JSON, configs, indexes and header ranges (at most 25 MB): read them whole in the retry
# loop, so that a connection that breaks mid-body is retried like one that breaks before the reply.
EAGER_BODY_LIMIT = 64 * 2**20


def speculative_extensions() -> dict[str, Any]:
    """The extensions of a speculative request (a new dict each: httpx keeps a request's own)."""
    return {SPECULATIVE: True}


def timeout_seconds() -> float:
    """Seconds to wait for the Hub on each request (HFSIZE_TIMEOUT, default 10)."""
    try:
        return float(os.environ.get("HFSIZE_TIMEOUT", "10"))
    except ValueError:
        return 10.0


def max_retries() -> int:
    try:
        return max(0, int(os.environ.get("HFSIZE_RETRIES", "3")))
    except ValueError:
        return 3


@frozen
class Exchange:
    """One HTTP exchange as hfsize saw it (the URL's path only: no query string, never a header or token)."""

    method: str
    path: str
    status: int | None  # None: the connection broke
    bytes_received: int
    seconds: float
    retry: bool = False  # this attempt failed and was retried


@dataclass
class Traffic:
    """Everything sent through the client since the last reset; thread-safe."""

    exchanges: list[Exchange] = field(default_factory=list)
    listeners: list[Callable[[Exchange], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(exchange)

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.exchanges)

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return sum(e.bytes_received for e in self.exchanges)

    @property
    def retries(self) -> int:
        with self._lock:
            return sum(e.retry for e in self.exchanges)


TRAFFIC = Traffic()

_last = threading.local()


@frozen
class Reply:
    """What the last reply on this thread was, to describe one that is not what the Hub sends."""

    path: str
    status: int
    content_type: str


def last_reply() -> Reply | None:
    """The last reply this thread received through hfsize's client (None before any)."""
    return getattr(_last, "reply", None)


def retry_after(headers: Any) -> float | None:
    """The `Retry-After` header in seconds (the delay-seconds form; an HTTP date is treated as absent)."""
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


_sleep = time.sleep  # one name, so tests can record the waits instead of sleeping


def backoff(attempt: int) -> float:
    return FIRST_BACKOFF * 2**attempt


def _transport_class() -> type:
    import httpx2

    retryable_errors = (httpx2.ConnectError, httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError)

    class _CountingStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, done: Callable[[int], None]) -> None:
            self.inner, self.done, self.received, self.closed = inner, done, 0, False

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                self.received += len(chunk)
                yield chunk

        def close(self) -> None:
            if not self.closed:
                self.closed = True
                self.inner.close()
                self.done(self.received)

    def _read_whole(response: Any, request: Any) -> Any:
        """The reply with its body read (as sent: still compressed), unless it announces more than the limit."""
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > EAGER_BODY_LIMIT:
            return response
        try:
            raw = b"".join(response.stream)
        finally:
            response.close()
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(raw),
            request=request,
            extensions=response.extensions,
        )

    class RetryingTransport(httpx2.HTTPTransport):
        def handle_request(self, request: Any) -> Any:
            path = request.url.path
            retryable = (
                request.method in RETRY_METHODS
                and any(route in path for route in RETRY_ROUTES)
                and not request.extensions.get(SPECULATIVE)
            )
            retries = max_retries() if retryable else 0
            attempt = 0
            while True:
                start = time.monotonic()
                try:
                    response = super().handle_request(request)
                    if retryable and request.method == "GET":
                        response = _read_whole(response, request)
                except retryable_errors:
                    if attempt >= retries:
                        TRAFFIC.add(Exchange(request.method, path, None, 0, time.monotonic() - start))
                        raise
                    TRAFFIC.add(Exchange(request.method, path, None, 0, time.monotonic() - start, True))
                    _sleep(backoff(attempt))
                    attempt += 1
                    continue
                except Exception:  # timeouts and the like: not retried (each already waited), still counted
                    TRAFFIC.add(Exchange(request.method, path, None, 0, time.monotonic() - start))
                    raise
                _last.reply = Reply(path, response.status_code, response.headers.get("content-type", ""))
                if response.status_code in RETRY_STATUSES and attempt < retries:
                    asked = retry_after(response.headers)
                    if asked is None or asked <= MAX_RETRY_AFTER:
                        received = len(response.read())
                        response.close()
                        seconds = time.monotonic() - start
                        status = response.status_code
                        TRAFFIC.add(Exchange(request.method, path, status, received, seconds, True))
                        _sleep(asked if asked is not None else backoff(attempt))
                        attempt += 1
                        continue

                def done(received: int, status: int = response.status_code, start: float = start) -> None:
                    TRAFFIC.add(Exchange(request.method, path, status, received, time.monotonic() - start))

                response.stream = _CountingStream(response.stream, done)
                return response

    return RetryingTransport


_installed = False
_install_lock = threading.Lock()
# The huggingface_hub internal whose absence falls back to its default client (see install.fallback).
REQUEST_HOOK = "huggingface_hub.utils._http.hf_request_event_hook"


def install() -> None:
    """Make huggingface_hub use hfsize's client (idempotent; call before the first Hub request)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import httpx2
        from huggingface_hub import set_client_factory

        try:  # offline-mode guard and request ids, exactly as huggingface_hub's default client has them
            from huggingface_hub.utils._http import hf_request_event_hook
        except ImportError as exc:  # a huggingface_hub that moved it: keep its default client rather than guess
            kept = "huggingface_hub's own client kept: no retries, timeouts or --verbose counts"
            fallback(REQUEST_HOOK, f"not importable ({exc}); {kept}")
            return

        transport = _transport_class()

        def factory() -> Any:
            return httpx2.Client(
                transport=transport(),
                event_hooks={"request": [hf_request_event_hook]},  # offline mode, request ids: as the default
                follow_redirects=True,
                timeout=timeout_seconds(),
            )

        set_client_factory(factory)
        _installed = True
