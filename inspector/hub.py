"""Where model metadata comes from: the Hub (the only network code) or a local folder.

Only `config.json`, the safetensors index and the safetensors *headers* are read, never weights.
huggingface_hub's exceptions are translated into HfsizeError here, in one place.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cache
from .errors import AccessError, BadFilesError, NetworkError, NotFoundError
from .headers import parse_header, quote, read_local_header
from .results import Listing, RepoFiles, TensorEntry
from .transport import speculative_extensions, timeout_seconds

if TYPE_CHECKING:
    from .gguf import HeaderRead

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"  # a PEFT adapter repo
ADAPTER_WEIGHTS = "adapter_model.safetensors"
DEFAULT_ENDPOINT = "https://huggingface.co"
# Weights stored with pickle: loading them can execute code, and they have no header to read.
PICKLE_PATTERN = re.compile(r"^(pytorch_model.*\.bin|.*\.pt|.*\.pth|.*\.ckpt)$")


MAX_PARALLEL_HEADERS = 8


def looks_local(model: str) -> bool:
    """A path that exists, or one written as a path (./x, /x, ~/x), is a local folder; else a repo id."""
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        return True
    try:
        return bool(model.strip()) and local_path(model).exists()
    except (OSError, ValueError):  # a name too long to be a path (ENAMETOOLONG), a NUL byte: not a folder
        return False


def local_path(model: str) -> Path:
    """The folder `model` names, `~` expanded (left as written when the user is unknown)."""
    try:
        return Path(model).expanduser()
    except RuntimeError:  # `~name` of a user this system does not know
        return Path(model)


def resolve_endpoint(endpoint: str | None) -> str:
    # huggingface_hub reads HF_ENDPOINT once at import time; read it per call so that it is honoured
    # however the library was imported.
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


# ---------------------------------------------------------------- local folders


def read_local(model: str, listing: Listing | None = None) -> RepoFiles:
    """config.json, the index and every safetensors header of a local folder (`listing`: its files, if known)."""
    files = (listing or list_local(model)).files
    root = local_path(model)
    config_path = root / "config.json"
    if ADAPTER_CONFIG in files and "config.json" not in files:
        return _local_adapter(model, root, files)
    if not config_path.is_file():
        raise NotFoundError(
            f"folder '{model}' has no config.json", "Point hfsize at the folder that holds the model's config.json."
        )
    config = check_config(
        _parse_json(read_capped(config_path, f"config.json in '{model}'"), f"config.json in '{model}'"),
        f"config.json in '{model}'",
    )
    index = None
    if (root / INDEX_FILE).is_file():
        what = f"{INDEX_FILE} in '{model}'"
        index = _parse_index(_parse_json(read_capped(root / INDEX_FILE, what), what), model)
    wanted, missing = _safetensors_to_read(files, index)
    headers = {name: read_local_header(root / name) for name in wanted}
    return RepoFiles(
        model=model,
        revision=None,
        commit=None,
        location="local",
        config=config,
        files=files,
        index=index,
        headers=headers,
        missing_shards=missing,
    )


def _local_adapter(model: str, root: Path, files: dict[str, int | None]) -> RepoFiles:
    what = f"{ADAPTER_CONFIG} in '{model}'"
    adapter = _parse_json(read_capped(root / ADAPTER_CONFIG, what), what)
    headers = {ADAPTER_WEIGHTS: read_local_header(root / ADAPTER_WEIGHTS)} if ADAPTER_WEIGHTS in files else {}
    return RepoFiles(
        model=model, revision=None, commit=None, location="local", config={}, files=files, index=None,
        headers=headers, adapter_config=adapter,
    )  # fmt: skip


def list_local(model: str) -> Listing:
    """Every file of a local model folder with its size."""
    root = local_path(model)
    try:
        is_dir, exists = root.is_dir(), root.exists()
    except (OSError, ValueError):
        is_dir = exists = False
    if not exists:  # a path written as one (./x, /x.gguf, ~/x) that is nothing on this machine
        raise NotFoundError(
            f"{quote(model)} does not exist",
            "Check the path: pass a model folder, a .gguf file or a Hub repo id (org/name).",
        )
    if not is_dir:
        raise NotFoundError(
            f"{quote(model)} is not a folder", "Pass a model folder, a .gguf file or a Hub repo id (org/name)."
        )
    files = {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
    return Listing(model=model, revision=None, commit=None, location="local", files=files)


# ---------------------------------------------------------------- the Hub


def list_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> Listing:
    """One model_info request: the commit, every file with its size, gating and card metadata."""
    endpoint = resolve_endpoint(endpoint)
    ahead = _AHEAD.pop((endpoint, repo_id, revision, token), None)
    if ahead is not None:
        listing = ahead.listing.result()  # what this call would have returned, or raises what it would have
        _AHEAD_REPOS[id(listing)] = (listing, ahead)
        return listing
    return _list_hub(repo_id, revision, token, endpoint)


def _list_hub(repo_id: str, revision: str | None, token: str | bool | None, endpoint: str) -> Listing:
    from huggingface_hub.constants import is_offline_mode

    if is_offline_mode():
        cached = cache.load_listing(endpoint, repo_id, revision)
        if cached is None:
            raise NetworkError(
                f"offline mode (HF_HUB_OFFLINE) is on and '{repo_id}' has not been inspected online before"
                + (f" at revision '{revision}'" if revision else ""),
                "Run hfsize once online to cache its metadata, or unset HF_HUB_OFFLINE.",
            )
        return cached
    with _hub_errors(repo_id, revision, endpoint, MODEL_INFO):
        listing = _listing(repo_id, revision, _model_info(repo_id, revision, token, endpoint))
        _check_listing(listing)
    cache.store_listing(endpoint, listing)
    return listing


def _get(url: str, token: str | bool | None, params: dict[str, Any] | None = None, **options: Any) -> Any:
    """One GET through huggingface_hub's client and headers, its errors raised as its own exceptions.

    huggingface_hub's light entry points (its session, headers and status check) rather than `HfApi`, whose
    import (inference endpoints, jobs, ...) cost more than the round trip itself on every run.
    """
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers(token=token)
    response = get_session().get(url, headers=headers, params=params, timeout=timeout_seconds(), **options)
    hf_raise_for_status(response)
    return response


def _model_info(repo_id: str, revision: str | None, token: str | bool | None, endpoint: str) -> dict[str, Any]:
    """The model_info reply with every file's size: what `HfApi.model_info(files_metadata=True)` requests."""
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)  # HFValidationError, as HfApi's argument check raises it
    path = f"{endpoint}/api/models/{repo_id}"
    if revision is not None:
        path += f"/revision/{_quote(revision)}"
    data = _get(path, token, params={"blobs": True}).json()
    data["id"]  # noqa: B018 - a reply without it is not the Hub's (ModelInfo raises KeyError, and so do we)
    return data


def _listing(repo_id: str, revision: str | None, info: dict[str, Any]) -> Listing:
    """The reply read as `huggingface_hub.ModelInfo` reads it (siblings' rfilename and size, cardData through
    ModelCardData), without importing hf_api."""
    siblings = info.get("siblings")
    card = info.get("cardData") or info.get("card_data")
    if isinstance(card, dict) and card:
        from huggingface_hub.repocard_data import ModelCardData

        card_data = ModelCardData(**card, ignore_metadata_errors=True).to_dict()
    else:
        card_data = card.to_dict() if card else {}  # a non-dict card: as ModelInfo keeps it (AttributeError)
    return Listing(
        model=repo_id,
        revision=revision,
        commit=info.get("sha"),
        location="hub",
        files={s["rfilename"]: s.get("size") for s in siblings or []},
        gated=info.get("gated") or None,
        card_data=card_data,
        gguf=info.get("gguf") or None,
    )


def _quote(text: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(text, safe="")


def _quote_path(path: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(path)  # `/` kept, as hf_hub_url quotes a filename


COMMIT = re.compile(r"^[0-9a-f]{40}$")


class _NotTheHubs(ValueError):
    """A model_info reply that parsed but is not of the Hub's shape."""


def _check_listing(listing: Listing) -> None:
    # The commit becomes a folder name in the Hugging Face cache and file names become paths: check both.
    if not isinstance(listing.commit, str) or not COMMIT.match(listing.commit):
        raise _NotTheHubs(f"sha {reprlib.repr(listing.commit)} is not a commit")
    for name, size in listing.files.items():
        if not isinstance(name, str) or not (size is None or (isinstance(size, int) and size >= 0)):
            raise _NotTheHubs(f"file {reprlib.repr(name)} of size {reprlib.repr(size)}")


def fetch_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    listing: Listing | None = None,
    on_config: Callable[[dict[str, Any]], None] | None = None,
) -> RepoFiles:
    """Model info, config.json, the index and every safetensors header of one Hub repo.

    `on_config` is called with the config as soon as it is read, before the headers are.
    """

    endpoint = resolve_endpoint(endpoint)
    if listing is None:
        listing = list_hub(repo_id, revision=revision, token=token, endpoint=endpoint)
    taken = _AHEAD_REPOS.pop(id(listing), None)
    if taken is not None and taken[0] is listing:  # read ahead (`prefetch`) from this very listing
        repo, fetched = taken[1].repo.result()
        if fetched and on_config is not None:
            on_config(repo.config)
        return repo
    return _cached_or_fetched(repo_id, revision, token, endpoint, listing, on_config)[0]


def _cached_or_fetched(
    repo_id: str,
    revision: str | None,
    token: str | bool | None,
    endpoint: str,
    listing: Listing,
    on_config: Callable[[dict[str, Any]], None] | None,
    early: _EarlyReads | None = None,
) -> tuple[RepoFiles, bool]:
    """The repo from hfsize's cache (False), else read from the Hub and cached (True)."""
    cached = cache.load_repo(endpoint, listing)
    if cached is not None:
        return cached, False
    repo = _fetch_hub(repo_id, revision, token, endpoint, listing, on_config, early)
    cache.store_repo(endpoint, repo)
    return repo, True


class _Ahead:
    """One repo read ahead: its listing, then its files (each a Future holding the result or the exception)."""

    def __init__(self) -> None:
        self.listing: Future[Listing] = Future()
        self.repo: Future[tuple[RepoFiles, bool]] = Future()


_AHEAD: dict[tuple[str, str, str | None, str | bool | None], _Ahead] = {}
_AHEAD_REPOS: dict[int, tuple[Listing, _Ahead]] = {}  # by the listing list_hub handed out


def prefetch(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    setup: Callable[[], None] | None = None,
    head_start: bool = False,
) -> None:
    """The CLI's read-ahead: one Hub repo's model info, config, index and headers are read in a background
    thread while the rest of hfsize is still importing, so that the round trips overlap the imports; the
    next `list_hub` (and `fetch_hub` of the listing it returns) for the same repo, revision, token and endpoint
    takes the answers (a second prefetch of the same ones changes nothing). `setup` runs first in the thread
    (the CLI's client, installed before any request). `head_start`: return once the thread has made what its
    first request needs, the client and the headers (at most HEAD_START_S): that work is on the critical path
    anyway, and with the GIL to itself the thread gets there sooner; the caller's own work (importing click and
    the rest of hfsize, parsing) then runs during the round trips instead of delaying them.
    Not for a library call: it starts a thread and keeps state for the process."""
    if looks_local(model):
        return
    endpoint = resolve_endpoint(None)
    key = (endpoint, model, revision, token)
    if key in _AHEAD:
        return
    ahead = _Ahead()
    _AHEAD[key] = ahead

    ready = threading.Event()

    def read() -> None:
        try:
            if setup is not None:
                setup()
            from huggingface_hub.utils import build_hf_headers, get_session

            get_session()  # the client: httpx2's transport (httpcore2) and the TLS context's certificates
            build_hf_headers(token=token)
        except Exception:  # noqa: BLE001 - raised again by the read below, and handed over from there
            pass
        finally:
            ready.set()  # the first request goes out next: the caller's own work now runs beside the round trips
        early = _EarlyReads.start(model, revision, token, endpoint)
        try:
            listing = _list_hub(model, revision, token, endpoint)
        except BaseException as e:  # noqa: BLE001 - handed to the caller, raised there as list_hub raises it
            ahead.listing.set_exception(e)
            return
        ahead.listing.set_result(listing)
        try:
            ahead.repo.set_result(_cached_or_fetched(model, revision, token, endpoint, listing, None, early))
        except BaseException as e:  # noqa: BLE001 - raised by fetch_hub when it is asked for
            ahead.repo.set_exception(e)

    threading.Thread(target=read, name="hfsize-prefetch", daemon=True).start()
    if head_start:
        ready.wait(HEAD_START_S)


HEAD_START_S = 2.0  # longer than any start-up; past it the caller goes on as if it had not waited


class _EarlyReads:
    """A repo's first cold read: config.json, the index and (on `main`) every shard header sent beside model_info
    instead of after it, at the revision as named (model_info's commit is not known yet): one round trip instead
    of two. Only for a repo hfsize has not listed before at this revision and the Hugging Face cache does not
    hold (a repeated run is answered from hfsize's cache after model_info: these would be requests for nothing),
    online, and not for a repo named as a GGUF one (no config.json there). An answer is used only where it is
    the one the read after model_info would get: a file whose X-Repo-Commit is model_info's commit and whose size
    is the listing's, the shard headers when a file read beside them was at that commit (the route has no
    revision) and the index says they are needed. Anything else (a 404, an error, a commit pushed in between, a
    read still under way a while after model_info answered) is dropped, and the file is read again after
    model_info, as without this, raising what that read raises."""

    def __init__(
        self, files: dict[str, Future[Any]], sharded: Future[dict[str, dict[str, TensorEntry]]] | None
    ) -> None:
        self.files = files
        self.sharded = sharded
        self.started = time.monotonic()
        self.deadline: float | None = None

    @classmethod
    def start(cls, repo_id: str, revision: str | None, token: str | bool | None, endpoint: str) -> _EarlyReads | None:
        """The reads, sent; None where they would be for nothing, or where anything about them fails (they are
        an optimisation: the reads after model_info are the ones whose errors count)."""
        try:
            return cls._start(repo_id, revision, token, endpoint)
        except Exception:  # noqa: BLE001 - e.g. no home folder for the cache: the normal reads say what is wrong
            return None

    @classmethod
    def _start(cls, repo_id: str, revision: str | None, token: str | bool | None, endpoint: str) -> _EarlyReads | None:
        from huggingface_hub.constants import is_offline_mode
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(repo_id)  # an id model_info refuses is sent nowhere
        except ValueError:
            return None
        if repo_id.lower().endswith("-gguf") or is_offline_mode():
            return None
        if cache.load_listing(endpoint, repo_id, revision) is not None:
            return None
        if _in_hf_cache_at(repo_id, revision or "main"):  # `hf download` was here: read from disk
            return None
        at = _quote(revision or "main")
        files = {
            name: _in_background(_early_file, f"{endpoint}/{repo_id}/resolve/{at}/{_quote_path(name)}", token)
            for name in ("config.json", INDEX_FILE)
        }
        on_main = revision in (None, "main")  # the route reads `main`
        sharded = _in_background(_sharded_headers, repo_id, token, endpoint, True) if on_main else None
        return cls(files, sharded)

    def commit_ok(self, commit: str | None) -> bool:
        """Whether the reads were made at `commit` (model_info's): the X-Repo-Commit of a file read beside them."""
        answers = [self._response(name) for name in self.files]
        return commit is not None and any(got is not None and got[1] == commit for got in answers)

    def file(self, name: str, commit: str | None, size: int | None) -> Future[bytes] | None:
        """The early answer for `name`, when it is model_info's commit's file and of its listed size."""
        got = self._response(name)
        if got is None or got[1] != commit or (size is not None and len(got[0]) != size):
            return None
        done: Future[bytes] = Future()
        done.set_result(got[0])
        return done

    def shard_headers(self) -> Future[dict[str, dict[str, TensorEntry]]] | None:
        """The sharded route's answer, when it came (an HTTP error is for the read after model_info to meet)."""
        return self.sharded if self.sharded is not None and self._arrived(self.sharded) else None

    def _response(self, name: str) -> tuple[bytes, str | None] | None:
        read = self.files.get(name)
        return read.result() if read is not None and self._arrived(read) else None

    def _arrived(self, read: Future[Any]) -> bool:
        """Done without an exception, waiting at most as long again as model_info took (sent together, they
        come together: a read still under way then is stalled, and the read after model_info takes over)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + max(EARLY_GRACE_S, time.monotonic() - self.started)
        wait([read], timeout=max(0.0, self.deadline - time.monotonic()))
        return read.done() and read.exception() is None


EARLY_GRACE_S = 0.1  # the least an early read is waited for after model_info answered


def _in_background(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """`function(*args)` in a daemon thread (a stalled speculative read never holds the interpreter's exit)."""
    result: Future[Any] = Future()

    def run() -> None:
        try:
            result.set_result(function(*args))
        except BaseException as e:  # noqa: BLE001 - kept in the Future, for whoever asks
            result.set_exception(e)

    threading.Thread(target=run, name="hfsize-early", daemon=True).start()
    return result


def _early_file(url: str, token: str | bool | None) -> tuple[bytes, str | None] | None:
    """One small file read before model_info answers: (its bytes, its X-Repo-Commit), None unless it came whole
    within EARLY_BYTES. Sent once (transport.speculative_extensions: never retried; a failure costs nothing but
    the read after model_info) and as a Range read: a file larger than that (a 1 MB config, a 300 MB one that is refused
    unread) is read after model_info, as without the early read; a server that ignores the Range is read no
    further than EARLY_BYTES either."""
    from huggingface_hub.utils import build_hf_headers, get_session

    headers = {**build_hf_headers(token=token), "Range": f"bytes=0-{EARLY_BYTES - 1}"}
    options = {"timeout": timeout_seconds(), "follow_redirects": True, "extensions": speculative_extensions()}
    with get_session().stream("GET", url, headers=headers, **options) as response:
        raw = bytearray()
        for chunk in response.iter_bytes():  # an error's body too: read, the connection stays usable
            raw += chunk
            if len(raw) > EARLY_BYTES:
                return None
        if response.status_code not in (200, 206):
            return None
        whole = response.status_code == 200 or response.headers.get("Content-Range", "").endswith(f"/{len(raw)}")
        return (bytes(raw), response.headers.get("X-Repo-Commit")) if whole else None


# More than config.json and the index of most models hold (Llama-2-70B's index: 56,678 bytes; the largest real
# config fixture's, an id2label map aside, a few KB); the largest (DeepSeek-V3's 9 MB index) are read after.
EARLY_BYTES = 2**18


def _fetch_hub(
    repo_id: str,
    revision: str | None,
    token: str | bool | None,
    endpoint: str,
    listing: Listing,
    on_config: Callable[[dict[str, Any]], None] | None,
    early: _EarlyReads | None = None,
) -> RepoFiles:
    commit, files = listing.commit, listing.files
    if ADAPTER_CONFIG in files and "config.json" not in files:
        return _hub_adapter(listing, token, endpoint)
    if "config.json" not in files:
        raise NotFoundError(
            f"'{repo_id}' has no config.json", "hfsize needs a transformers model repo; check the repo id."
        )
    # config.json, the index and (on `main`) every shard header at once: one round trip after model_info
    # instead of three in a row. The sharded read is asked for when the listing has an index and several
    # safetensors files; the index then says whether its answer is used.
    sharded = INDEX_FILE in files and revision in (None, "main") and _count_safetensors(files) > 1
    early = early if early is not None and early.commit_ok(commit) else None
    with ThreadPoolExecutor(max_workers=3) as pool:

        def small(name: str) -> Future[bytes]:
            taken = early.file(name, commit, files.get(name)) if early is not None else None
            return taken or pool.submit(_download, repo_id, name, commit, token, endpoint, files.get(name))

        config_read = small("config.json")
        index_read = small(INDEX_FILE) if INDEX_FILE in files else None
        sharded_read = None
        if sharded:
            taken = early.shard_headers() if early is not None else None
            sharded_read = taken or pool.submit(_sharded_headers, repo_id, token, endpoint)
        what = f"config.json of '{repo_id}'"
        config = check_config(_parse_json(config_read.result(), what), what)
        if on_config is not None:
            on_config(config)
        index = None
        if index_read is not None:
            index = _parse_index(_parse_json(index_read.result(), f"{INDEX_FILE} of '{repo_id}'"), repo_id)
        wanted, missing = _safetensors_to_read(files, index)
        headers: dict[str, dict[str, TensorEntry]] = {}
        if sharded_read is not None and index is not None and len(wanted) > 1:
            headers = sharded_read.result()
    todo = [name for name in wanted if name not in headers]
    if todo:

        def one(name: str) -> tuple[str, dict[str, TensorEntry]]:
            return name, _file_header(repo_id, name, revision, commit, token, endpoint)

        with ThreadPoolExecutor(max_workers=MAX_PARALLEL_HEADERS) as pool:
            headers.update(pool.map(one, todo))
    headers = {name: headers[name] for name in wanted if name in headers}
    return RepoFiles(
        model=repo_id,
        revision=revision,
        commit=commit,
        location="hub",
        config=config,
        files=files,
        index=index,
        headers=headers,
        missing_shards=missing,
        gated=listing.gated,
        card_data=listing.card_data,
    )


def _hub_adapter(listing: Listing, token: str | bool | None, endpoint: str) -> RepoFiles:
    """A PEFT adapter repo: adapter_config.json and the adapter weights' header (no base model config)."""
    repo_id, commit = listing.model, listing.commit
    raw = _download(repo_id, ADAPTER_CONFIG, commit, token, endpoint, listing.files.get(ADAPTER_CONFIG))
    adapter = _parse_json(raw, f"{ADAPTER_CONFIG} of '{repo_id}'")
    headers = {}
    if ADAPTER_WEIGHTS in listing.files:
        headers[ADAPTER_WEIGHTS] = _file_header(repo_id, ADAPTER_WEIGHTS, listing.revision, commit, token, endpoint)
    return RepoFiles(
        model=repo_id, revision=listing.revision, commit=commit, location="hub", config={}, files=listing.files,
        index=None, headers=headers, gated=listing.gated, card_data=listing.card_data, adapter_config=adapter,
    )  # fmt: skip


def _count_safetensors(files: dict[str, int | None]) -> int:
    return sum(name.endswith(".safetensors") for name in files)


def _file_header(
    repo_id: str, name: str, revision: str | None, commit: str | None, token: str | bool | None, endpoint: str
) -> dict[str, TensorEntry]:
    """One safetensors header by Range reads (huggingface_hub's parser: its limits and its errors)."""
    from huggingface_hub import HfApi  # only here: repos without the sharded route's answer

    api = HfApi(endpoint=endpoint, token=token)
    with _hub_errors(repo_id, revision, endpoint, name):
        meta = api.parse_safetensors_file_metadata(repo_id, name, revision=commit, timeout=timeout_seconds())
    return _entries_from_hub(meta, name)


def _sharded_headers(
    repo_id: str, token: str | bool | None, endpoint: str, speculative: bool = False
) -> dict[str, dict[str, TensorEntry]]:
    """Every shard header in one request (the Hub's sharded-metadata route, `main` only), read as
    `HfApi.get_sharded_safetensors_metadata` reads it.

    The route is an optimisation: when an endpoint lacks it, fall back to reading each header. `speculative`:
    sent before model_info (_EarlyReads), once; an HTTP error is raised, for the read after model_info to decide.
    """
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    from huggingface_hub.utils import HfHubHTTPError

    url = f"{endpoint}/api/models/{repo_id}/safetensors-metadata/{INDEX_FILE}"
    try:
        options = {"extensions": speculative_extensions()} if speculative else {}
        content = _get(url, token, **options).json()
        content["index"].get("metadata")  # noqa: B018 - the route's body has the index (HfApi reads it)
        shards = {shard: _tensors(header) for shard, header in content["headers"].items()}
    except (GatedRepoError, RepositoryNotFoundError):
        raise
    except HfHubHTTPError:
        if speculative:  # sent once, before model_info: the read after it answers instead
            raise
        return {}
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):  # not the route's body: not JSON, no headers
        return {}
    return {name: parse_header(header, name) for name, header in shards.items()}


def _tensors(header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A header's tensors as huggingface_hub's TensorInfo keeps them (KeyError or IndexError when malformed)."""
    tensors = {
        name: {"dtype": t["dtype"], "shape": list(t["shape"]), "data_offsets": list(tuple(t["data_offsets"]))}
        for name, t in header.items()
        if name != "__metadata__"
    }
    for t in tensors.values():
        math.prod(t["shape"])  # TensorInfo computes the parameter count: a shape that is not numbers is TypeError
    return tensors


def _entries_from_hub(meta: Any, filename: str) -> dict[str, TensorEntry]:
    # Re-validate what huggingface_hub parsed: it checks JSON and size, not offsets or dtypes.
    header = {
        name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)}
        for name, t in meta.tensors.items()
    }
    return parse_header(header, filename)


def _download(
    repo_id: str, filename: str, commit: str | None, token: str | bool | None, endpoint: str, size: int | None = None
) -> bytes:
    """One small file (config.json, the index): from the Hugging Face cache when it holds the file at this commit,
    as hf_hub_download would take it, else one GET through huggingface_hub's client and headers.

    Not hf_hub_download itself: its HEAD before the GET was a round trip more on every cold run, and its import
    (tqdm, asyncio, the local-folder and Xet code) more CPU than the rest of a --headers-only run's reads.
    Offline (HF_HUB_OFFLINE), hf_hub_download is the one that knows the cache, and raises what it raises.
    """
    what = f"{filename} of '{repo_id}'"
    limit = MAX_JSON_BYTES[filename]
    if size is not None and size > limit:  # the listing says so: not even downloaded
        raise _too_large(what, size, limit)
    cached = _in_hf_cache(repo_id, filename, commit)
    if cached is not None:
        return read_capped(cached, what)
    from huggingface_hub.constants import is_offline_mode

    with _hub_errors(repo_id, commit, endpoint, filename):
        if is_offline_mode():
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(
                repo_id, filename, revision=commit, endpoint=endpoint, token=token, etag_timeout=timeout_seconds()
            )
            return read_capped(Path(path), what)
        # hf_hub_url's address; redirects followed (a renamed repo, a file in LFS storage), as hf_hub_download does
        url = f"{endpoint}/{repo_id}/resolve/{_quote(commit or 'main')}/{_quote_path(filename)}"
        raw = _get(url, token, follow_redirects=True).content
    if len(raw) > limit:  # a listing without sizes, or a server sending more than it listed
        raise _too_large(what, len(raw), limit)
    return raw


def _in_hf_cache_at(repo_id: str, revision: str) -> bool:
    """Whether the Hugging Face cache holds the repo at `revision` (`hf download` fetched it): its record of the
    commit a branch or tag resolved to (HF_HUB_CACHE/models--ORG--NAME/refs/REVISION), or a commit's snapshot."""
    folder = _hf_cache_folder(repo_id)
    try:
        return (folder / "refs" / revision).is_file() or (
            COMMIT.match(revision) is not None and (folder / "snapshots" / revision).is_dir()
        )
    except (OSError, ValueError):  # a revision that is no file name
        return False


def _in_hf_cache(repo_id: str, filename: str, commit: str | None) -> Path | None:
    """The file in the Hugging Face cache at this commit (`hf download` put it there), where hf_hub_download's
    own shortcut looks: HF_HUB_CACHE/models--ORG--NAME/snapshots/COMMIT/FILE."""
    if commit is None or not COMMIT.match(commit):
        return None
    path = _hf_cache_folder(repo_id) / "snapshots" / commit / filename
    return path if path.exists() else None


def _hf_cache_folder(repo_id: str) -> Path:
    """A model repo's folder in the Hugging Face cache: HF_HUB_CACHE/models--ORG--NAME."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE, "--".join(["models", *repo_id.split("/")]))


# Larger than any real one: the biggest configs (21k-class id2label maps) are about 1 MB, the biggest index
# (DeepSeek-V3, 91,991 tensors) about 9 MB. A larger file is refused before it is read (a 300 MB config took
# 19 s to parse, and was accepted).
MAX_JSON_BYTES = {"config.json": 16 * 2**20, ADAPTER_CONFIG: 16 * 2**20, INDEX_FILE: 64 * 2**20}


def read_capped(path: Path, what: str) -> bytes:
    """The bytes of a local JSON file, refused (BadFilesError) past its cap without reading past it."""
    limit = MAX_JSON_BYTES[path.name]
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise BadFilesError(f"{what} cannot be read ({e.strerror})", "Check the file and its permissions.") from None
    if len(raw) > limit:
        raise _too_large(what, path.stat().st_size, limit)
    return raw


def _too_large(what: str, size: int, limit: int) -> BadFilesError:
    return BadFilesError(
        f"{what} is {size:,} bytes, larger than any real one (hfsize reads at most {limit:,} bytes)",
        "Fix or re-upload the file.",
    )


@contextmanager
def _hub_errors(repo_id: str, revision: str | None, endpoint: str, what: str) -> Iterator[None]:
    """Translate huggingface_hub / HTTP failures into one-line HfsizeErrors (never with the token)."""
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        SafetensorsParsingError,
    )

    login = "log in with `hf auth login` or pass --token"
    try:
        yield
    except GatedRepoError:
        raise AccessError(
            f"'{repo_id}' is gated and the current token has no access to it",
            f"Request access at {endpoint}/{repo_id}, then {login}.",
        ) from None
    except RevisionNotFoundError:
        raise NotFoundError(
            f"revision '{revision}' does not exist in '{repo_id}'",
            "Check the branch, tag or commit; the repo's 'Files and versions' tab lists them.",
        ) from None
    except RepositoryNotFoundError:
        raise _model_not_found(repo_id, endpoint, login) from None
    except LocalEntryNotFoundError:
        # raised by hf_hub_download when the Hub cannot be reached and the cache lacks the file
        raise NetworkError(
            f"could not reach {endpoint} to read {what} of '{repo_id}'",
            "Check your connection or HF_ENDPOINT, then retry.",
        ) from None
    except EntryNotFoundError:
        if what == MODEL_INFO:  # the repo itself, not a file of it
            raise _model_not_found(repo_id, endpoint, login) from None
        raise NotFoundError(
            f"'{what}' is missing from '{repo_id}'", "The repo looks incomplete; check it on the Hub."
        ) from None
    except HFValidationError:
        raise NotFoundError(
            f"{_shown(repo_id)} is neither a local folder nor a valid Hub repo id",
            "Pass a repo id like meta-llama/Llama-2-7b-hf or the path of a model folder.",
        ) from None
    except SafetensorsParsingError:
        raise BadFilesError(
            f"'{what}' in '{repo_id}' does not have a valid safetensors header",
            "The file may be truncated or not safetensors; report it to the repo's owner.",
        ) from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 404 and what == MODEL_INFO:  # a bare 404 (no X-Error-Code), as some mirrors answer
            raise _model_not_found(repo_id, endpoint, login) from None
        if status in (401, 403):
            raise AccessError(
                f"the Hub refused access to {what} of '{repo_id}' (HTTP {status})", f"Check the token: {login}."
            ) from None
        raise NetworkError(
            f"the Hub answered HTTP {status} for {what} of '{repo_id}'", _retry_hint(e.response)
        ) from None
    except (httpx2.TimeoutException, TimeoutError):
        raise NetworkError(
            f"timed out reading {what} of '{repo_id}' from {endpoint}", "Check your connection, then retry."
        ) from None
    except OfflineModeIsEnabled:
        raise NetworkError(
            f"offline mode (HF_HUB_OFFLINE) is on and {what} of '{repo_id}' is not cached",
            "Unset HF_HUB_OFFLINE to go online.",
        ) from None
    except (httpx2.TransportError, ConnectionError):
        raise NetworkError(
            f"could not reach {endpoint} to read {what} of '{repo_id}'",
            "Check your connection or HF_ENDPOINT, then retry.",
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # after HFValidationError, a ValueError
        # huggingface_hub parsed a 200 that is not the Hub's reply: a captive portal's page, broken bytes, JSON
        # of another shape. Not transient: say what came back instead of a traceback.
        raise NetworkError(
            f"the reply of {endpoint} to {what} of '{repo_id}' is {_what_came_back(e)}, not what the Hub sends",
            "A proxy or captive portal may be answering for the Hub: check your connection and HF_ENDPOINT.",
        ) from None


MODEL_INFO = "model info"


def _model_not_found(repo_id: str, endpoint: str, login: str) -> NotFoundError:
    if "/" not in repo_id:  # `hfsize gpt2`: neither a folder here nor a repo there
        return NotFoundError(
            f"{_shown(repo_id)} is neither a local folder nor a model on {endpoint}",
            "Hub ids look like org/name (e.g. openai-community/gpt2); a folder must exist and hold config.json.",
        )
    return NotFoundError(
        f"model {_shown(repo_id)} was not found on {endpoint}", f"Check the repo id; if the repo is private, {login}."
    )


def _shown(model: str) -> str:
    """The id as the message quotes it: whole up to the Hub's 96 characters, else its start and its length."""
    return quote(model) if len(model) <= 96 else f"{quote(model[:40])}... ({len(model):,} characters)"


def _retry_hint(response: Any) -> str:
    """When to retry: the wait the server asked for (Retry-After, seconds or a date), else a minute."""
    from .transport import retry_after

    asked = response.headers.get("retry-after") if response is not None else None
    if not asked:
        return "The Hub may be busy; retry in a minute."
    seconds = retry_after(response.headers)
    if seconds is None:  # the HTTP-date form
        return f"The Hub asked to wait until {asked} before retrying (Retry-After: {asked})."
    return f"The Hub asked to wait {_duration(seconds)} before retrying (Retry-After: {asked})."


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} minutes"
    hours = round(seconds / 3600, 1)
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def _what_came_back(error: Exception) -> str:
    from .transport import last_reply

    reply = last_reply()
    served = f"HTTP {reply.status}, {reply.content_type.split(';')[0].strip() or 'no Content-Type'}" if reply else ""
    if isinstance(error, UnicodeDecodeError):
        what = "bytes that are not UTF-8"
    elif isinstance(error, json.JSONDecodeError):
        what = "a body that is not JSON"
    else:
        what = f"JSON of an unexpected shape ({error if isinstance(error, _NotTheHubs) else type(error).__name__})"
    return f"{what} ({served})" if served else what


# ---------------------------------------------------------------- shared by both sources


def _safetensors_to_read(
    files: dict[str, int | None], index: dict[str, Any] | None
) -> tuple[list[str], tuple[str, ...]]:
    """Which safetensors files hold the checkpoint (download.weight_files decides), and which ones the index
    names but the repo lacks."""
    from .download import weight_files

    chosen = weight_files(files, index)
    return (list(chosen.shards), chosen.missing) if chosen.format == "safetensors" else ([], ())


def _parse_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadFilesError(f"{what} is not UTF-8 text", "Fix or re-upload the file.") from None
    except json.JSONDecodeError as e:
        raise BadFilesError(
            f"{what} is not valid JSON ({e.msg} at line {e.lineno})", "Fix or re-upload the file."
        ) from None
    except ValueError:  # e.g. an integer longer than Python's 4,300-digit conversion limit
        raise BadFilesError(f"{what} holds a number too long to read", "Fix or re-upload the file.") from None
    except RecursionError:
        raise BadFilesError(f"{what} is nested too deeply to be a config", "Fix or re-upload the file.") from None
    if not isinstance(value, dict):
        raise BadFilesError(f"{what} is not a JSON object", "Fix or re-upload the file.")
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadFilesError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep", "Fix or re-upload the file.")
    return value


MAX_JSON_DEPTH = 64  # real configs nest 3-4 levels; deeper ones would only exhaust recursion later


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_config(config: dict[str, Any], what: str) -> dict[str, Any]:
    """The keys every later stage relies on have the types transformers writes."""
    model_type, archs = config.get("model_type"), config.get("architectures")
    if model_type is not None and not isinstance(model_type, str):
        raise BadFilesError(f"{what}: model_type must be a string, not {type(model_type).__name__}", "Fix the config.")
    if archs is not None and not (isinstance(archs, list) and all(isinstance(a, str) for a in archs)):
        raise BadFilesError(f"{what}: architectures must be a list of class names", "Fix the config.")
    _check_counts(config, what)
    return config


# Each layer and expert is a Python module when the architecture is built, empty weights or not: a config
# asking for millions would hang the build. The largest real models have 126 layers (Llama-3.1-405B) and
# 2,048 experts per layer (google/switch-c-2048); these limits leave ample room above them.
COUNT_LIMITS = {
    "num_hidden_layers": 1024, "n_layer": 1024, "num_layers": 1024, "num_decoder_layers": 1024,
    "num_experts": 16384, "num_local_experts": 16384, "n_routed_experts": 16384,
}  # fmt: skip


def _check_counts(config: dict[str, Any], what: str) -> None:
    for scope in (config, *(v for v in config.values() if isinstance(v, dict))):  # text_config and the like
        for key, limit in COUNT_LIMITS.items():
            value = scope.get(key)
            if isinstance(value, int) and value > limit:
                raise BadFilesError(
                    f"{what}: {key} = {value:,} is beyond any real model (hfsize builds at most {limit:,})",
                    "Fix the config.",
                )


def _parse_index(index: dict[str, Any], model: str) -> dict[str, Any]:
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise BadFilesError(f"{INDEX_FILE} of '{model}' has no valid weight_map", "Fix or re-upload the index file.")
    if not isinstance(index.get("metadata", {}), dict):  # mergekit and others write odd metadata; it is optional
        index = {**index, "metadata": {}}
    return index


# ---------------------------------------------------------------- GGUF headers (issue 16)


def read_gguf_header(
    repo_id: str,
    filename: str,
    *,
    commit: str | None,
    size: int | None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> HeaderRead:
    """The header of one GGUF file on the Hub, with HTTP Range reads through huggingface_hub's client.

    The same client, endpoint, token and revision as every other read; the read grows as gguf.grow_read
    asks (1 MiB first, then the estimated rest): a Llama-3 header (~7.9 MB) takes at most 3 requests.
    A server that ignores Range is read only as far as asked, never to the end of a multi-GB file.
    """
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

    from .gguf import HeaderRead, grow_read

    endpoint = resolve_endpoint(endpoint)
    cached = cache.load_gguf_header(endpoint, repo_id, commit, filename)
    if cached is not None:  # read at this commit before: no request (and none needed offline)
        return HeaderRead(cached, 0, 0)
    url = hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint)
    headers = build_hf_headers(token=token)

    def read(start: int, stop: int) -> bytes:
        with _hub_errors(repo_id, commit, endpoint, filename):
            with get_session().stream(
                "GET", url, headers={**headers, "range": f"bytes={start}-{stop - 1}"}, timeout=timeout_seconds()
            ) as response:
                hf_raise_for_status(response)
                skip = start if response.status_code == 200 else 0  # Range ignored: the body starts at byte 0
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= skip + stop - start:
                        break
        return bytes(body[skip : skip + stop - start])

    result = grow_read(read, size, filename)
    cache.store_gguf_header(endpoint, repo_id, commit, result.header)
    return result
