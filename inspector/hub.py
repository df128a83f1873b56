"""Where model metadata comes from: the Hub (the only network code) or a local folder.

Only `config.json`, the safetensors index and the safetensors *headers* are read, never weights.
huggingface_hub's exceptions are translated into HfsizeError here, in one place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import cache
from .errors import AccessError, BadFilesError, NetworkError, NotFoundError
from .gguf import HeaderRead, grow_read
from .headers import parse_header, read_local_header
from .results import Listing, RepoFiles, TensorEntry
from .transport import install as install_transport
from .transport import timeout_seconds

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
    return Path(model).expanduser().exists() or model.startswith((".", "/", "~")) or model.count("/") > 1


def resolve_endpoint(endpoint: str | None) -> str:
    # huggingface_hub reads HF_ENDPOINT once at import time; read it per call so that it is honoured
    # however the library was imported.
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


# ---------------------------------------------------------------- local folders


def read_local(model: str, listing: Listing | None = None) -> RepoFiles:
    """config.json, the index and every safetensors header of a local folder (`listing`: its files, if known)."""
    files = (listing or list_local(model)).files
    root = Path(model).expanduser()
    config_path = root / "config.json"
    if ADAPTER_CONFIG in files and "config.json" not in files:
        return _local_adapter(model, root, files)
    if not config_path.is_file():
        raise NotFoundError(
            f"folder '{model}' has no config.json", "Point hfsize at the folder that holds the model's config.json."
        )
    config = check_config(
        _parse_json(config_path.read_bytes(), f"config.json in '{model}'"), f"config.json in '{model}'"
    )
    index = None
    if (root / INDEX_FILE).is_file():
        index = _parse_index(_parse_json((root / INDEX_FILE).read_bytes(), f"{INDEX_FILE} in '{model}'"), model)
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
    adapter = _parse_json((root / ADAPTER_CONFIG).read_bytes(), f"{ADAPTER_CONFIG} in '{model}'")
    headers = {ADAPTER_WEIGHTS: read_local_header(root / ADAPTER_WEIGHTS)} if ADAPTER_WEIGHTS in files else {}
    return RepoFiles(
        model=model, revision=None, commit=None, location="local", config={}, files=files, index=None,
        headers=headers, adapter_config=adapter,
    )  # fmt: skip


def list_local(model: str) -> Listing:
    """Every file of a local model folder with its size."""
    root = Path(model).expanduser()
    if not root.is_dir():
        raise NotFoundError(
            f"'{model}' is not a folder", "Pass a Hub repo id (org/name) or a folder that holds config.json."
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
    from huggingface_hub import HfApi
    from huggingface_hub.constants import is_offline_mode

    endpoint = resolve_endpoint(endpoint)
    if is_offline_mode():
        cached = cache.load_listing(endpoint, repo_id, revision)
        if cached is None:
            raise NetworkError(
                f"offline mode (HF_HUB_OFFLINE) is on and '{repo_id}' has not been inspected online before"
                + (f" at revision '{revision}'" if revision else ""),
                "Run hfsize once online to cache its metadata, or unset HF_HUB_OFFLINE.",
            )
        return cached
    install_transport()
    api = HfApi(endpoint=endpoint, token=token)
    with _hub_errors(repo_id, revision, endpoint, "model info"):
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout_seconds())
    listing = Listing(
        model=repo_id,
        revision=revision,
        commit=info.sha,
        location="hub",
        files={s.rfilename: s.size for s in info.siblings or []},
        gated=info.gated or None,
        card_data=info.card_data.to_dict() if info.card_data else {},
        gguf=getattr(info, "gguf", None) or None,
    )
    cache.store_listing(endpoint, listing)
    return listing


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
    cached = cache.load_repo(endpoint, listing)
    if cached is not None:
        return cached
    repo = _fetch_hub(repo_id, revision, token, endpoint, listing, on_config)
    cache.store_repo(endpoint, repo)
    return repo


def _fetch_hub(
    repo_id: str,
    revision: str | None,
    token: str | bool | None,
    endpoint: str,
    listing: Listing,
    on_config: Callable[[dict[str, Any]], None] | None,
) -> RepoFiles:
    from huggingface_hub import HfApi

    install_transport()
    api = HfApi(endpoint=endpoint, token=token)
    commit, files = listing.commit, listing.files
    if ADAPTER_CONFIG in files and "config.json" not in files:
        return _hub_adapter(api, listing, endpoint)
    if "config.json" not in files:
        raise NotFoundError(
            f"'{repo_id}' has no config.json", "hfsize needs a transformers model repo; check the repo id."
        )
    what = f"config.json of '{repo_id}'"
    config = check_config(_parse_json(_download(api, repo_id, "config.json", commit, endpoint), what), what)
    if on_config is not None:
        on_config(config)
    index = None
    if INDEX_FILE in files:
        raw = _download(api, repo_id, INDEX_FILE, commit, endpoint)
        index = _parse_index(_parse_json(raw, f"{INDEX_FILE} of '{repo_id}'"), repo_id)
    wanted, missing = _safetensors_to_read(files, index)
    headers: dict[str, dict[str, TensorEntry]] = {}
    if index is not None and revision in (None, "main") and len(wanted) > 1:
        headers = _sharded_headers(api, repo_id, endpoint)
    todo = [name for name in wanted if name not in headers]
    if todo:

        def one(name: str) -> tuple[str, dict[str, TensorEntry]]:
            with _hub_errors(repo_id, revision, endpoint, name):
                meta = api.parse_safetensors_file_metadata(repo_id, name, revision=commit, timeout=timeout_seconds())
            return name, _entries_from_hub(meta, name)

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


def _hub_adapter(api: Any, listing: Listing, endpoint: str) -> RepoFiles:
    """A PEFT adapter repo: adapter_config.json and the adapter weights' header (no base model config)."""
    repo_id, commit = listing.model, listing.commit
    raw = _download(api, repo_id, ADAPTER_CONFIG, commit, endpoint)
    adapter = _parse_json(raw, f"{ADAPTER_CONFIG} of '{repo_id}'")
    headers = {}
    if ADAPTER_WEIGHTS in listing.files:
        with _hub_errors(repo_id, listing.revision, endpoint, ADAPTER_WEIGHTS):
            meta = api.parse_safetensors_file_metadata(
                repo_id, ADAPTER_WEIGHTS, revision=commit, timeout=timeout_seconds()
            )
        headers[ADAPTER_WEIGHTS] = _entries_from_hub(meta, ADAPTER_WEIGHTS)
    return RepoFiles(
        model=repo_id, revision=listing.revision, commit=commit, location="hub", config={}, files=listing.files,
        index=None, headers=headers, gated=listing.gated, card_data=listing.card_data, adapter_config=adapter,
    )  # fmt: skip


def _sharded_headers(api: Any, repo_id: str, endpoint: str) -> dict[str, dict[str, TensorEntry]]:
    """Every shard header in one request (the Hub's sharded-metadata route, `main` only).

    The route is an optimisation: when an endpoint lacks it, fall back to reading each header.
    """
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    from huggingface_hub.utils import HfHubHTTPError

    try:
        meta = api.get_sharded_safetensors_metadata(repo_id, timeout=timeout_seconds())
    except (GatedRepoError, RepositoryNotFoundError):
        raise
    except HfHubHTTPError:
        return {}
    return {name: _entries_from_hub(file_meta, name) for name, file_meta in meta.files_metadata.items()}


def _entries_from_hub(meta: Any, filename: str) -> dict[str, TensorEntry]:
    # Re-validate what huggingface_hub parsed: it checks JSON and size, not offsets or dtypes.
    header = {
        name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)}
        for name, t in meta.tensors.items()
    }
    return parse_header(header, filename)


def _download(api: Any, repo_id: str, filename: str, commit: str | None, endpoint: str) -> bytes:
    with _hub_errors(repo_id, commit, endpoint, filename):
        path = api.hf_hub_download(repo_id, filename, revision=commit, etag_timeout=timeout_seconds())
    return Path(path).read_bytes()


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
        raise NotFoundError(
            f"model '{repo_id}' was not found on {endpoint}",
            f"Check the repo id; if the repo is private, {login}.",
        ) from None
    except LocalEntryNotFoundError:
        # raised by hf_hub_download when the Hub cannot be reached and the cache lacks the file
        raise NetworkError(
            f"could not reach {endpoint} to read {what} of '{repo_id}'",
            "Check your connection or HF_ENDPOINT, then retry.",
        ) from None
    except EntryNotFoundError:
        raise NotFoundError(
            f"'{what}' is missing from '{repo_id}'", "The repo looks incomplete; check it on the Hub."
        ) from None
    except HFValidationError:
        raise NotFoundError(
            f"'{repo_id}' is neither a local folder nor a valid Hub repo id",
            "Pass a repo id like meta-llama/Llama-2-7b-hf or the path of a model folder.",
        ) from None
    except SafetensorsParsingError:
        raise BadFilesError(
            f"'{what}' in '{repo_id}' does not have a valid safetensors header",
            "The file may be truncated or not safetensors; report it to the repo's owner.",
        ) from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status in (401, 403):
            raise AccessError(
                f"the Hub refused access to {what} of '{repo_id}' (HTTP {status})", f"Check the token: {login}."
            ) from None
        raise NetworkError(
            f"the Hub answered HTTP {status} for {what} of '{repo_id}'", "The Hub may be busy; retry in a minute."
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


# ---------------------------------------------------------------- shared by both sources


def _safetensors_to_read(
    files: dict[str, int | None], index: dict[str, Any] | None
) -> tuple[list[str], tuple[str, ...]]:
    """Which safetensors files hold the checkpoint, and which ones the index names but the repo lacks."""
    if index is not None:
        shards = sorted(set(index["weight_map"].values()))
        return [s for s in shards if s in files], tuple(s for s in shards if s not in files)
    if SINGLE_FILE in files:
        return [SINGLE_FILE], ()
    # No index and no model.safetensors: root-level safetensors files (e.g. a lone shard set).
    return sorted(f for f in files if f.endswith(".safetensors") and "/" not in f), ()


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

    endpoint = resolve_endpoint(endpoint)
    install_transport()
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

    return grow_read(read, size, filename)
