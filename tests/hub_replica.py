"""Local HTTP replica of the Hugging Face Hub URL layout over a fixtures folder, for the real huggingface_hub client."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import mimetypes
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "hub"

SETTINGS_FILE = "_replica.json"
HEADERS_DIR = "headers"
# Notes kept next to the fixtures (tensor_names.json: input of make_fixture_headers.py); never part of the repo.
NOT_SERVED = frozenset({"SOURCE.md", "README.md", SETTINGS_FILE, "tensor_names.json"})

# Files the Hub stores with Git LFS (the default .gitattributes patterns), plus anything >= 10 MiB.
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf",
    ".pkl", ".pickle", ".npy", ".npz", ".tflite", ".ot", ".model", ".zip", ".gz", ".tar",
)  # fmt: skip
LFS_MIN_SIZE = 10 * 1024 * 1024

CHUNK = 1 << 20
ZEROS = bytes(CHUNK)
FAKE_DATE = "2024-01-01T00:00:00.000Z"
DERIVED_DIR = "_derived"  # fixtures/hub/_derived/<github-owner>-<github-repo>/<name> is served as that id
REPO_PART = re.compile(r"^[A-Za-z0-9][\w.-]*$")
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class RequestLog:
    """One request as the replica answered it (appended before the response is flushed, so no race with tests)."""

    method: str
    path: str  # raw (percent-encoded) URL path, without the query string
    range: str | None  # the request's Range header, verbatim
    status: int
    body_bytes: int  # body bytes actually written (0 for HEAD)
    query: str = ""
    authorization: str | None = None  # the request's Authorization header, verbatim (tests of which token is sent)


class HubError(Exception):
    """An error answer in the Hub's shape: status + X-Error-Code / X-Error-Message headers + {"error": ...} body."""

    def __init__(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class _Unsatisfiable(Exception):
    pass


class InjectedReply(Exception):
    """A reply that is not what the Hub sends (fail rule with a "body"): that body, cut after `cut` bytes if set."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, cut: int | None) -> None:
        super().__init__(f"injected reply ({status}, {len(body)} bytes)")
        self.status, self.headers, self.body, self.cut = status, headers, body, cut


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def encode_safetensors_header(header: dict[str, Any]) -> bytes:
    """The first bytes of a safetensors file: u64 LE length N, then the compact JSON header space-padded to 8*k."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


def build_header(tensors: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """A consistent safetensors header dict (contiguous data_offsets) for {name: (dtype, shape)}; test helper."""
    header: dict[str, Any] = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = DTYPE_BYTES[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    return header


def _data_length(header: dict[str, Any]) -> int:
    """Size of the data section: the largest tensor end offset (malformed entries are ignored, not fatal)."""
    ends = [0]
    for key, tensor in header.items():
        if key == "__metadata__" or not isinstance(tensor, dict):
            continue
        offsets = tensor.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
            ends.append(offsets[1])
    return max(ends)


@dataclass
class Entry:
    """A file of a replicated repo: a real file on disk, or virtual bytes (a known prefix followed by zeros)."""

    path: str
    size: int
    lfs: bool
    blob_id: str  # git oid (of the LFS pointer for LFS files), as the Hub reports it
    sha256: str | None  # LFS oid; fake but stable for virtual files (hashing tens of GB of zeros is pointless)
    pointer_size: int | None
    source: Path | None = None  # real file, served as-is
    prefix: bytes = b""  # virtual file: these bytes, then zeros up to `size`
    header: dict[str, Any] | None = None  # virtual safetensors header, kept for the metadata routes

    @property
    def etag(self) -> str:
        # The Hub's ETag is the git blob sha1 for regular files and the sha256 for LFS files.
        return self.sha256 if self.lfs and self.sha256 else self.blob_id

    def iter_bytes(self, start: int, stop: int) -> Iterator[bytes]:
        """Yield bytes [start, stop) lazily: virtual data is never materialised."""
        if self.source is not None:
            with self.source.open("rb") as f:
                f.seek(start)
                remaining = stop - start
                while remaining > 0:
                    chunk = f.read(min(CHUNK, remaining))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    yield chunk
            return
        pos = start
        if pos < len(self.prefix):
            end = min(stop, len(self.prefix))
            yield self.prefix[pos:end]
            pos = end
        while pos < stop:
            n = min(CHUNK, stop - pos)
            yield ZEROS[:n]
            pos += n

    def read_safetensors_header(self) -> dict[str, Any]:
        """The parsed header of this file (raises ValueError if it is not a readable safetensors file)."""
        if self.header is not None:
            return self.header
        head = b"".join(self.iter_bytes(0, min(self.size, 8)))
        if len(head) < 8:
            raise ValueError("file too small to be a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > self.size - 8:
            raise ValueError(f"header length {length} exceeds the file size")
        header = json.loads(b"".join(self.iter_bytes(8, 8 + length)))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        return header


def _virtual_entry(repo_id: str, path: str, size: int, prefix: bytes = b"", header: dict | None = None) -> Entry:
    lfs = _is_lfs(path, size)
    if lfs:
        seed = b"\0".join([b"hub-replica", repo_id.encode(), path.encode(), str(size).encode(), prefix])
        sha256 = hashlib.sha256(seed).hexdigest()
        pointer = _lfs_pointer(sha256, size)
        return Entry(path, size, True, _git_blob_sha1(pointer), sha256, len(pointer), prefix=prefix, header=header)
    content = prefix + bytes(size - len(prefix))  # small (< LFS_MIN_SIZE) by construction
    return Entry(path, size, False, _git_blob_sha1(content), None, None, prefix=prefix, header=header)


def _real_entry(path: str, source: Path) -> Entry:
    content = source.read_bytes()  # fixture files are small; virtual ones cover the big weights
    size = len(content)
    if _is_lfs(path, size):
        sha256 = hashlib.sha256(content).hexdigest()
        pointer = _lfs_pointer(sha256, size)
        return Entry(path, size, True, _git_blob_sha1(pointer), sha256, len(pointer), source=source)
    return Entry(path, size, False, _git_blob_sha1(content), None, None, source=source)


# ---------------------------------------------------------------------------------------------------------------
# Repos
# ---------------------------------------------------------------------------------------------------------------


class Repo:
    """One fixtures/hub/<org>/<name> directory seen as a Hub model repo."""

    def __init__(self, replica: HubReplica, repo_id: str, directory: Path, alias_of: str | None = None) -> None:
        self.replica, self.repo_id, self.directory = replica, repo_id, directory
        settings_path = directory / SETTINGS_FILE
        self.settings: dict[str, Any] = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
        self.sha: str = self.settings.get("sha") or hashlib.sha1(repo_id.encode()).hexdigest()
        # An alias is a repo of its own (its own commit: caches keyed per commit see it) holding the same blobs as
        # its target (as a re-upload does on the Hub); the replica keeps one Entry per blob for all of them.
        self.files_id = alias_of or repo_id
        if alias_of is not None:
            self.sha = hashlib.sha1(f"{repo_id}\0{self.sha}".encode()).hexdigest()
        self.gated: str | bool = self.settings.get("gated") or False
        self.private: bool = bool(self.settings.get("private", False))
        self.fail: dict[str, int] = self.settings.get("fail", {})
        self._sources: dict[str, tuple[str, Any]] | None = None

    def resolve_revision(self, revision: str) -> str:
        revisions: dict[str, str] = self.settings.get("revisions", {})
        if revision == "main" or revision == self.sha:
            return self.sha
        if revision in revisions:
            return revisions[revision]
        if revision in revisions.values():
            return revision
        raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def sources(self) -> dict[str, tuple[str, Any]]:
        """path -> (kind, source) for every served file; real files win over headers/ which win over virtual_files."""
        if self._sources is None:
            found: dict[str, tuple[str, Any]] = {}
            for name, size in self.settings.get("virtual_files", {}).items():
                found[name] = ("zeros", int(size))
            headers_dir = self.directory / HEADERS_DIR
            if headers_dir.is_dir():
                for p in sorted(headers_dir.rglob("*.json")):
                    found[p.relative_to(headers_dir).as_posix()[: -len(".json")]] = ("header", p)
                for p in sorted(headers_dir.rglob("*.gz")):  # a file's first bytes (a GGUF head), gzipped
                    found[p.relative_to(headers_dir).as_posix()[: -len(".gz")]] = ("head", p)
            for p in sorted(self.directory.rglob("*")):
                rel = p.relative_to(self.directory).as_posix()
                if p.is_file() and rel not in NOT_SERVED and not rel.startswith(HEADERS_DIR + "/"):
                    found[rel] = ("real", p)
            self._sources = dict(sorted(found.items()))
        return self._sources

    def entry(self, path: str) -> Entry | None:
        source = self.sources().get(path)
        return None if source is None else self.replica._entry(self.files_id, path, *source)

    def entries(self) -> list[Entry]:
        return [e for e in (self.entry(p) for p in self.sources()) if e is not None]

    def check_read(self, token: str | None, *, files: bool) -> None:
        """Access rules: private acts as missing; gated repos show their info but not their files."""
        authorized = token is not None and token in self.settings.get("authorized_tokens", [])
        if self.private and not authorized:
            raise _repo_not_found()
        if files and self.gated and not authorized:
            # The Hub answers 401 to anonymous callers and 403 to logged-in users who were not granted access.
            if token is None:
                raise HubError(
                    401,
                    "GatedRepo",
                    f"Access to model {self.repo_id} is restricted. You must have access to it and be authenticated "
                    "to access it. Please log in.",
                )
            raise HubError(
                403,
                "GatedRepo",
                f"Access to model {self.repo_id} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{self.repo_id} to ask for access.",
            )

    def check_fail(self, key: str, commit: str | None = None) -> None:
        """fail {key: status} fails every request; {key: {"status", "times", "retry_after"}} the first `times`;
        {key: {"body", "content_type", "status", "cut", "times"}} answers that body instead (status 200 unless
        given; `cut`: close the connection after that many bytes of it, its full Content-Length announced);
        {key: {"delay", "times"}} answers the first `times` as usual after `delay` seconds (a stalled request)."""
        if key not in self.fail:
            return
        rule = self.fail[key]
        headers = {"X-Repo-Commit": commit} if commit else {}
        if isinstance(rule, dict):
            if not self.replica._count_failure((self.repo_id, key), int(rule.get("times", 1))):
                return
            if "delay" in rule:
                time.sleep(float(rule["delay"]))
                if "status" not in rule and "body" not in rule:
                    return
            if "retry_after" in rule:
                headers["Retry-After"] = str(rule["retry_after"])
            if "body" in rule:
                body = rule["body"]
                body = body.encode("latin-1") if isinstance(body, str) else bytes(body)
                headers["Content-Type"] = rule.get("content_type", "application/json")
                raise InjectedReply(int(rule.get("status", 200)), headers, body, rule.get("cut"))
            rule = rule["status"]
        raise HubError(int(rule), None, f"Injected failure for {key}", headers)

    def safetensors_info(self) -> dict[str, Any] | None:
        """The model_info `safetensors` block (parameter count per dtype), computed like the Hub from the weights."""
        sources = self.sources()
        if "model.safetensors.index.json" in sources:
            try:
                index_entry = self.entry("model.safetensors.index.json")
                assert index_entry is not None
                index = json.loads(b"".join(index_entry.iter_bytes(0, index_entry.size)))
                files = sorted(set(index["weight_map"].values()))
            except (ValueError, KeyError, AttributeError, TypeError):
                return None
        elif "model.safetensors" in sources:
            files = ["model.safetensors"]
        else:
            return None
        parameters: dict[str, int] = {}
        try:
            for name in files:
                entry = self.entry(name)
                if entry is None:
                    return None
                for key, tensor in entry.read_safetensors_header().items():
                    if key != "__metadata__":
                        count = 1
                        for dim in tensor["shape"]:
                            count *= dim
                        parameters[tensor["dtype"]] = parameters.get(tensor["dtype"], 0) + count
        except (ValueError, KeyError, TypeError, struct.error):
            return None
        return {"parameters": parameters, "total": sum(parameters.values())}


def _repo_not_found() -> HubError:
    # What the Hub sends for missing *and* private-without-access repos (it does not leak existence).
    return HubError(401, "RepoNotFound", "Repository not found")


# ---------------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------------


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """Single `bytes=a-b` / `bytes=a-` / `bytes=-n` range -> [start, stop); None = ignore (serve the whole file)."""
    if not value:
        return None
    m = RANGE_RE.match(value.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # multi-range or malformed: RFC 9110 lets a server ignore it
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range
        n = int(last)
        if n == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _Unsatisfiable
    return start, size if not last else min(int(last) + 1, size)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub; every response carries a Content-Length
    # TCP_NODELAY, as web servers set it: without it, a reused keep-alive connection waited about 40 ms for the
    # client's delayed ACK between the response's headers and its body (Nagle's algorithm), a stall the Hub
    # does not have, on every request after a connection's first, for every client the benchmarks compare
    disable_nagle_algorithm = True
    server: _Server

    # -- plumbing ------------------------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.replica.verbose:
            sys.stderr.write(f"[hub-replica] {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        with self.server.replica.answering():
            if self.server.replica.latency:  # a round trip to a distant Hub, for benchmarks
                time.sleep(self.server.replica.latency)
            self._dispatch()

    def do_HEAD(self) -> None:
        with self.server.replica.answering():
            if self.server.replica.latency:
                time.sleep(self.server.replica.latency)
            self._dispatch()  # same answer as GET, minus the body (see _send)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain the body so the keep-alive connection stays usable
        self._dispatch()

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        return auth[len("bearer ") :].strip() or None

    def _send(
        self, status: int, headers: dict[str, str], body: bytes | Iterator[bytes], length: int, cut: int | None = None
    ) -> None:
        """Send a response; the log entry is appended before headers are flushed so tests never race it."""
        replica = self.server.replica
        send_body = self.command != "HEAD"
        log = RequestLog(
            self.command,
            self.url_path,
            self.headers.get("Range"),
            status,
            length if send_body else 0,
            self.query,
            self.headers.get("Authorization"),
        )
        replica._record(log)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if not send_body:
            return
        written = 0
        try:
            for chunk in [body] if isinstance(body, bytes) else body:
                if cut is not None:
                    chunk = chunk[: max(0, cut - written)]
                self.wfile.write(chunk)
                written += len(chunk)
            if cut is not None and cut < length:
                self.close_connection = True  # the rest of the announced body never comes
        except OSError:  # client hung up (or a fixture read failed): the response is cut short
            self.close_connection = True
        finally:
            log.body_bytes = written

    def _send_json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self._send(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body, len(body))

    def _send_error(self, err: HubError) -> None:
        headers = dict(err.headers)
        if err.code:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message  # HEAD answers have no body: the client reads this header
        self._send_json({"error": err.message}, err.status, headers)

    # -- routing -------------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self.url_path, self.query = split.path, split.query
        params = parse_qs(split.query)
        # Split the *raw* path before unquoting: revisions such as refs%2Fpr%2F1 contain encoded slashes.
        parts = split.path.split("/")[1:]
        try:
            if self.command == "POST":
                raise HubError(405, None, "Method not supported by the hub replica")
            if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
                repo = self._repo(parts[2], parts[3])
                rest = parts[4:]
                if not rest or rest == [""]:
                    return self._model_info(repo, "main", params)
                if rest[0] == "revision" and len(rest) == 2:
                    return self._model_info(repo, unquote(rest[1]), params)
                if rest[0] == "tree" and len(rest) >= 2:
                    return self._tree(repo, unquote(rest[1]), unquote("/".join(rest[2:])), params)
                if rest[0] == "safetensors-metadata" and len(rest) >= 2:
                    return self._safetensors_metadata(repo, unquote("/".join(rest[1:])))
            elif len(parts) == 3 and parts[:2] == ["api", "models"] and parts[2]:
                # A one-word id (`gpt2`): the Hub redirects its few legacy ids to their org; the replica has none.
                raise _repo_not_found()
            elif len(parts) >= 5 and parts[2] == "resolve":
                repo = self._repo(parts[0], parts[1])
                return self._resolve(repo, unquote(parts[3]), unquote("/".join(parts[4:])))
            raise HubError(404, None, f"Route not replicated: {self.command} {split.path}")
        except HubError as err:
            self._send_error(err)
        except InjectedReply as reply:
            self._send(reply.status, reply.headers, reply.body, len(reply.body), reply.cut)
        except Exception as exc:  # a broken fixture: say so loudly instead of hanging the client
            sys.stderr.write(f"[hub-replica] error on {self.command} {self.path}: {exc!r}\n")
            self._send_error(HubError(500, None, f"hub replica error: {exc!r}"))

    def _repo(self, org: str, name: str) -> Repo:
        org, name = unquote(org), unquote(name)
        if not (REPO_PART.match(org) and REPO_PART.match(name)):
            raise _repo_not_found()
        replica = self.server.replica
        repo_id = f"{org}/{name}"
        replica._wait_if_slow(repo_id)
        target = replica.aliases.get(repo_id)
        if target is not None:  # the target's files under this id (a scan over many names of real fixtures)
            found = self._directory(*target.split("/", 1))
            return Repo(replica, repo_id, found, alias_of=target)
        return Repo(replica, repo_id, self._directory(org, name))

    def _directory(self, org: str, name: str) -> Path:
        """The fixture folder served as org/name: root/org/name, root/_derived/org/name, or a declared stand-in."""
        root = self.server.replica.root
        directory = root / org / name
        if not directory.is_dir():  # copies that are not the Hub's own bytes live under _derived/, same id
            directory = root / DERIVED_DIR / org / name
        if not directory.is_dir():  # a declared stand-in for a repo whose own files are not in fixtures/
            stand_in = _stand_ins(root).get(f"{org}/{name}")
            directory = root / stand_in["serves"] if stand_in else directory
        if not directory.is_dir():
            raise _repo_not_found()
        return directory

    # -- routes --------------------------------------------------------------------------------------------------

    def _model_info(self, repo: Repo, revision: str, params: dict[str, list[str]]) -> None:
        """GET /api/models/{id}[/revision/{rev}] -> the JSON `HfApi.model_info` parses into `ModelInfo`."""
        repo.check_read(self._token(), files=False)
        commit = repo.resolve_revision(revision)
        repo.check_fail("@model_info")
        blobs = params.get("blobs", ["false"])[-1].lower() in ("true", "1")
        entries = repo.entries()
        siblings = []
        for e in entries:
            sibling: dict[str, Any] = {"rfilename": e.path}
            if blobs:  # the Hub only sends sizes / oids when asked with ?blobs=true (files_metadata=True)
                sibling.update(size=e.size, blobId=e.blob_id)
                if e.lfs:
                    sibling["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": e.pointer_size}
            siblings.append(sibling)
        config: dict[str, Any] = {}
        config_entry = repo.entry("config.json")
        if config_entry is not None:
            try:
                full = json.loads(b"".join(config_entry.iter_bytes(0, config_entry.size)))
                # The Hub exposes only a subset of config.json in model_info.
                config = {k: full[k] for k in ("architectures", "model_type", "quantization_config") if k in full}
            except ValueError:
                pass
        card_data = repo.settings.get("card_data")
        tags = ["transformers"]
        if any(e.path.endswith(".safetensors") for e in entries):
            tags.append("safetensors")
        if config.get("model_type"):
            tags.append(config["model_type"])
        tags += [t for t in repo.settings.get("tags", []) if t not in tags]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit,
            "lastModified": FAKE_DATE,
            "createdAt": FAKE_DATE,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": "transformers",
            "tags": tags,
            "config": config,
            "spaces": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in entries),
        }
        if card_data is not None:
            info["cardData"] = card_data
        if repo.settings.get("gguf") is not None:  # the Hub's summary of a GGUF repo (total parameters, ...)
            info["gguf"] = repo.settings["gguf"]
        if repo.settings.get("safetensors_info", True):
            safetensors = repo.safetensors_info()
            if safetensors is not None:
                info["safetensors"] = safetensors
        expand = params.get("expand")
        if expand:  # like the Hub: only the requested properties (plus ids)
            info = {k: v for k, v in info.items() if k in ("_id", "id") or k in expand}
        self._send_json(info)

    def _tree(self, repo: Repo, revision: str, folder: str, params: dict[str, list[str]]) -> None:
        """GET /api/models/{id}/tree/{rev}[/{path}] -> one page of RepoFile / RepoFolder dicts (no Link header)."""
        repo.check_read(self._token(), files=False)  # gated repos still list their files
        repo.resolve_revision(revision)
        repo.check_fail("@tree")
        recursive = params.get("recursive", ["false"])[-1].lower() in ("true", "1")
        folder = folder.strip("/")
        prefix = folder + "/" if folder else ""
        items: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path in repo.sources():
            if not path.startswith(prefix):
                continue
            rel_parts = path[len(prefix) :].split("/")
            # Every folder between `folder` and the file (only the first level when not recursive).
            for depth in range(1, len(rel_parts) if recursive else min(2, len(rel_parts))):
                folders.add(prefix + "/".join(rel_parts[:depth]))
            if recursive or len(rel_parts) == 1:
                e = repo.entry(path)
                assert e is not None
                item: dict[str, Any] = {"type": "file", "oid": e.blob_id, "size": e.size, "path": e.path}
                if e.lfs:
                    item["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": e.pointer_size}
                items.append(item)
        if folder and not items and not folders:
            raise HubError(404, "EntryNotFound", f"{folder} does not exist on {revision}")
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d} for d in folders
        ]
        self._send_json(sorted(dirs, key=lambda d: d["path"]) + items)

    def _safetensors_metadata(self, repo: Repo, filename: str) -> None:
        """GET /api/models/{id}/safetensors-metadata/{index} -> {"index": ..., "headers": {shard: header}} on main."""
        repo.check_read(self._token(), files=True)
        repo.check_fail("@safetensors-metadata")
        index_entry = repo.entry(filename)
        if index_entry is None:
            raise HubError(404, "EntryNotFound", f"{filename} does not exist on main")
        try:
            index = json.loads(b"".join(index_entry.iter_bytes(0, index_entry.size)))
            shards = sorted(set(index["weight_map"].values()))
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise HubError(400, None, f"Invalid safetensors index {filename}: {exc}") from exc
        folder = filename.rsplit("/", 1)[0] + "/" if "/" in filename else ""
        headers: dict[str, Any] = {}
        for shard in shards:
            entry = repo.entry(folder + shard)
            if entry is None:
                raise HubError(404, "EntryNotFound", f"{folder + shard} does not exist on main")
            try:
                headers[shard] = entry.read_safetensors_header()
            except (ValueError, struct.error) as exc:
                raise HubError(400, None, f"Failed to parse safetensors header of {shard}: {exc}") from exc
        # The Hub leaves the index's weight_map out: it repeats the tensor names of the shard headers.
        self._send_json({"index": {k: v for k, v in index.items() if k != "weight_map"}, "headers": headers})

    def _resolve(self, repo: Repo, revision: str, path: str) -> None:
        """HEAD/GET /{id}/resolve/{rev}/{path}: the file, with the headers hf_hub_download / file_exists rely on."""
        repo.check_read(self._token(), files=True)
        commit = repo.resolve_revision(revision)
        repo.check_fail(path, commit)
        entry = repo.entry(path)
        if entry is None:
            # X-Repo-Commit on the 404 lets the client cache the file's absence (.no_exist/<commit>/<path>).
            raise HubError(404, "EntryNotFound", f"Entry not found: {path}", {"X-Repo-Commit": commit})
        headers = {
            # No X-Xet-* / Link xet-auth headers: the client then never switches to the xet protocol.
            "X-Repo-Commit": commit,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream",
        }
        if entry.lfs:
            # The Hub redirects LFS files to a CDN and puts the real identity in X-Linked-*; the client prefers those.
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        try:
            byte_range = _parse_range(self.headers.get("Range"), entry.size)
        except _Unsatisfiable:
            headers["Content-Range"] = f"bytes */{entry.size}"
            return self._send(416, headers, b"", 0)
        if byte_range is None:
            return self._send(200, headers, entry.iter_bytes(0, entry.size), entry.size)
        start, stop = byte_range
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{entry.size}"
        self._send(206, headers, entry.iter_bytes(start, stop), stop - start)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    replica: HubReplica

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes its connection with a reply unread (a read it gave up) resets it: web servers
        # take that quietly; anything else is the replica's own failure and is printed as socketserver prints it.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------


STAND_INS_FILE = "_stand_ins.json"
HOLD_LIMIT = 120.0  # seconds a request of a held repo waits at most for its Event (a test that forgets to set it)


def _stand_ins(root: Path) -> dict[str, dict[str, str]]:
    """root/_stand_ins.json: {repo id: {"serves": folder under root, "why": ...}} for repos whose own files are
    not in the fixtures; the folder's real files are served under that id (each entry says why it may)."""
    path = root / STAND_INS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclass(eq=False)
class HubReplica:
    """A local Hub over `root`: `with HubReplica(root) as hub: HfApi(endpoint=hub.endpoint)`.

    root/<org>/<name>/ is a model repo (so is root/_derived/<org>/<name>/, served as <org>/<name>, and a stand-in
    declared in root/_stand_ins.json, served under the id it stands in for). Real files
    are served as-is (README.md, SOURCE.md and _replica.json are notes, never served); headers/<file>.json serves
    a virtual safetensors <file> (that header, then zero data); headers/<file>.gz serves <file> as those bytes
    gunzipped (a GGUF head), then zeros up to its size in _replica.json `sizes`; a real file wins over a virtual
    one of the same name. Optional _replica.json settings: sha, gated ("auto"/"manual"), private, authorized_tokens,
    virtual_files {path: size}, sizes {path: size} (of headers/*.gz files), gguf (model_info's `gguf` block),
    revisions {name: sha}, card_data, tags, safetensors_info (false drops
    model_info's computed `safetensors` block), and fail {key: status} where key is a file path or one of
    "@model_info", "@tree", "@safetensors-metadata" (a status fails every request; {"status": 503, "times": 2,
    "retry_after": 1} fails the first two, with that Retry-After header; {"body": "<html>", "content_type":
    "text/html", "cut": 10} answers a reply the Hub never sends, see Repo.check_fail). Other keys (lfs_sizes,
    header_dtypes) are notes for scripts/make_fixture_headers.py.

    `aliases` {id: target id} serves the target's files under another id (a commit of its own: a scan over many
    names); `slow` {id: seconds or threading.Event} delays every request of that repo (one slow repo among many).
    Every answered request is appended to `requests` (see RequestLog) before its response is flushed.
    Routes: /api/models/{id}[/revision/{rev}], /api/models/{id}/tree/{rev}[/{path}],
    /api/models/{id}/safetensors-metadata/{index}, and HEAD/GET /{id}/resolve/{rev}/{path} with Range support.
    """

    root: Path = DEFAULT_ROOT
    host: str = "127.0.0.1"
    port: int = 0
    verbose: bool = False
    latency: float = 0.0  # seconds added before each answer (benchmarks: a realistic round trip)
    requests: list[RequestLog] = field(default_factory=list)
    # {repo id: repo id it serves}: the second repo's files under the first id, with a commit of its own
    aliases: dict[str, str] = field(default_factory=dict)
    # {repo id: seconds, or an Event}: each request for that repo waits that long (or until the Event is set,
    # at most HOLD_LIMIT seconds) before it is answered: one slow repo among many
    slow: dict[str, float | threading.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self._lock = threading.Lock()
        self._cache: dict[tuple, Entry] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._in_flight = 0
        self.max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HubReplica:
        if self._server is None:
            self._server = _Server((self.host, self.port), _Handler)
            self._server.replica = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-replica", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> HubReplica:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Counts the GET/HEAD requests being answered at once: `max_in_flight` shows a client's concurrency."""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def requests_matching(self, fragment: str = "", method: str | None = None) -> list[RequestLog]:
        """Logged requests whose path contains `fragment` (and with that method, if given)."""
        with self._lock:
            return [r for r in self.requests if fragment in r.path and (method is None or r.method == method)]

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return sum(r.body_bytes for r in self.requests)

    def answered(self, repo_id: str) -> list[RequestLog]:
        """Logged requests for one repo: its API routes and its file reads."""
        api, files = f"/api/models/{repo_id}", f"/{repo_id}/"
        with self._lock:
            return [r for r in self.requests if r.path == api or r.path.startswith((api + "/", files))]

    def _wait_if_slow(self, repo_id: str) -> None:
        delay = self.slow.get(repo_id)
        if isinstance(delay, threading.Event):
            delay.wait(HOLD_LIMIT)
        elif delay:
            time.sleep(delay)

    def _count_failure(self, key: tuple[str, str], times: int) -> bool:
        """True while the injected failure `key` has failed fewer than `times` requests (then counts this one)."""
        with self._lock:
            done = self._failures.get(key, 0)
            if done >= times:
                return False
            self._failures[key] = done + 1
            return True

    def _record(self, log: RequestLog) -> None:
        with self._lock:
            self.requests.append(log)

    def _entry(self, repo_id: str, path: str, kind: str, source: Any) -> Entry:
        """Build (and cache, keyed on the fixture file's mtime) the Entry for one served file."""
        if kind == "zeros":
            key: tuple = (repo_id, path, kind, source)
        else:
            stat = source.stat()
            key = (repo_id, path, kind, str(source), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        if kind == "zeros":
            entry = _virtual_entry(repo_id, path, source)
        elif kind == "head":
            # The file's real size comes from _replica.json `sizes` (default: the head's own length).
            prefix = gzip.decompress(source.read_bytes())
            sizes = self._repo_sizes(source)
            entry = _virtual_entry(repo_id, path, max(len(prefix), int(sizes.get(path, 0))), prefix)
        elif kind == "header":
            header = json.loads(source.read_text())
            if not isinstance(header, dict):
                raise ValueError(f"{source}: a safetensors header must be a JSON object")
            prefix = encode_safetensors_header(header)
            entry = _virtual_entry(repo_id, path, len(prefix) + _data_length(header), prefix, header)
        else:
            entry = _real_entry(path, source)
        with self._lock:
            self._cache[key] = entry
        return entry

    @staticmethod
    def _repo_sizes(head: Path) -> dict[str, int]:
        """`sizes` {path: bytes} of the _replica.json of the repo whose headers/ folder holds `head`."""
        for folder in head.parents:
            if folder.name == HEADERS_DIR:
                settings = folder.parent / SETTINGS_FILE
                return json.loads(settings.read_text()).get("sizes", {}) if settings.is_file() else {}
        return {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fixtures folder with the Hugging Face Hub's URL layout.")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="fixtures root (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    replica = HubReplica(args.root, args.host, args.port, verbose=args.verbose).start()
    print(f"Hub replica of {replica.root} at {replica.endpoint}", flush=True)
    print(f"  try: HF_ENDPOINT={replica.endpoint} hfsize meta-llama/Llama-2-13b-hf   (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        replica.stop()


if __name__ == "__main__":
    main()
