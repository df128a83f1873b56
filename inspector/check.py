"""`hfsize check`: everything wrong with a repo before its download, as a list of Problems. Pure.

Each check reads facts other stages produced (the file listing, the download plan, the headers, the
report and its reconciliation) and says in one sentence what is wrong and what to do about it.
Codes are stable (README lists them); severities: "error" means the download would not give a working
model as is, "warning" that it works but costs something or deserves a look, "info" is context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .checkpoint import stored_float_dtype
from .download import SAFETENSORS_INDEX, SHARD_PATTERN
from .results import DownloadPlan, Listing, Problem, RepoFiles, Report

GB = 10**9
_EMBEDDING = re.compile(r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|embeddings\.word_embeddings)\.weight$")
_HEAD = re.compile(r"(^|\.)(lm_head|output|embed_out)\.weight$")
_HEADER_FLOATS = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def gb(n: int) -> str:
    return f"{n / GB:,.1f} GB"


def find_problems(
    listing: Listing,
    plan: DownloadPlan,
    repo: RepoFiles | None,
    report: Report | None,
    *,
    trust_remote_code: bool = False,
    unreadable: Problem | None = None,
) -> list[Problem]:
    """Every problem the metadata shows; `repo`/`report` are None when they could not be read or built.

    `unreadable` is the problem that stopped reading or building (no access, broken config, ...).
    """
    problems: list[Problem] = [unreadable] if unreadable is not None else []
    problems += _files(listing, plan, repo)
    if repo is not None:
        problems += _config(repo.config, repo)
        problems += _code(repo.config, report, trust_remote_code)
    if report is not None:
        problems += _reconciliation(report, repo)
        problems += _context(report)
    if unreadable is None or unreadable.code != "no_access":
        problems += _access(listing)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(problems, key=lambda p: order[p.severity])


def _context(report: Report) -> list[Problem]:
    """--context beyond the positions the model was trained (or rope-scaled) for."""
    from .memory import MemorySettings

    memory = getattr(report, "memory", None)
    limit = getattr(memory, "max_positions", None)
    # the default context is no one's request: a model with a shorter window is not a problem of the repo
    if memory is None or not limit or memory.context <= limit or memory.context == MemorySettings().context:
        return []
    return [
        Problem(
            "context_length",
            "warning",
            f"--context {memory.context:,} is beyond the {limit:,} positions the model was trained for: outputs "
            "past that length degrade; lower --context or pick a long-context variant",
        )
    ]


# ---------------------------------------------------------------- files


def _files(listing: Listing, plan: DownloadPlan, repo: RepoFiles | None) -> list[Problem]:
    out: list[Problem] = []
    if plan.weights_format == "none":
        out.append(
            Problem("no_weights", "error", "No weight files from_pretrained can load (no safetensors or .bin weights).")
        )
    if plan.missing_shards:
        shown = ", ".join(plan.missing_shards[:3]) + (", ..." if len(plan.missing_shards) > 3 else "")
        out.append(
            Problem(
                "missing_shards",
                "error",
                f"The index names {len(plan.missing_shards)} shard(s) the repo does not have ({shown}): "
                "from_pretrained would fail. The upload is incomplete; ask the repo's owner or pick another revision.",
            )
        )
    if repo is not None and repo.index is not None:
        named = set(repo.index["weight_map"].values())
        stray = sorted(
            p for p in listing.files if SHARD_PATTERN.match(p) and p.startswith("model-") and p not in named
            and p.endswith(".safetensors")
        )  # fmt: skip
        if stray:
            out.append(
                Problem(
                    "unindexed_shards",
                    "warning",
                    f"{len(stray)} shard file(s) are not named by {SAFETENSORS_INDEX} (e.g. {stray[0]}): "
                    "from_pretrained ignores them, but an unfiltered download fetches them.",
                )
            )
    if plan.weights_format == "pytorch":
        out.append(
            Problem(
                "pickle_only",
                "warning",
                "The weights exist only as pickle files (.bin): they cannot be checked before the download "
                "(no headers), and unpickling untrusted files can run code. Prefer a safetensors copy of this model.",
            )
        )
    if plan.unused:
        kinds = ", ".join(
            f"{u.format} ({len(u.files)} file{'s' if len(u.files) > 1 else ''}, {gb(u.bytes)})" for u in plan.unused
        )
        out.append(
            Problem(
                "duplicate_weights",
                "warning",
                f"Besides the {plan.weights_format} weights from_pretrained reads ({gb(plan.bytes)}), the repo ships "
                f"{kinds}: an unfiltered download fetches {gb(plan.unused_bytes)} more. "
                "Use the hf download command below to fetch only what is needed.",
            )
        )
    if plan.unknown_sizes:
        out.append(
            Problem("unknown_sizes", "info", f"The Hub gave no size for {plan.unknown_sizes} file(s) of the download.")
        )
    return out


# ---------------------------------------------------------------- config


def _config(config: Mapping[str, Any], repo: RepoFiles) -> list[Problem]:
    out: list[Problem] = []
    hidden = _int(config, "hidden_size", "n_embd", "d_model")
    heads = _int(config, "num_attention_heads", "n_head", "num_heads")
    kv_heads = _int(config, "num_key_value_heads", "num_kv_heads")
    if hidden and heads and not config.get("head_dim") and hidden % heads:
        out.append(
            Problem(
                "head_dim",
                "error",
                f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and the config has no "
                "head_dim: the attention shapes are undefined. The config.json is inconsistent.",
            )
        )
    if heads and kv_heads and heads % kv_heads:
        out.append(
            Problem(
                "kv_heads",
                "error",
                f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}: "
                "grouped-query attention cannot split the heads. The config.json is inconsistent.",
            )
        )
    vocab = _int(config, "vocab_size")
    tensors = {name: e for t in repo.headers.values() for name, e in t.items()}
    for name, entry in tensors.items():
        if vocab and _EMBEDDING.search(name) and len(entry.shape) == 2 and entry.shape[0] != vocab:
            out.append(
                Problem(
                    "vocab_size",
                    "error",
                    f"config.json says vocab_size {vocab:,} but '{name}' stores {entry.shape[0]:,} rows: "
                    "loading fails with a size mismatch. The config and the weights disagree.",
                )
            )
            break
    declared = config.get("dtype") or config.get("torch_dtype")
    stored = _HEADER_FLOATS.get(stored_float_dtype(repo) or "")
    if isinstance(declared, str) and stored and declared in _HEADER_FLOATS.values() and declared != stored:
        out.append(
            Problem(
                "dtype_mismatch",
                "warning",
                f"config.json declares dtype {declared} but the weights are stored as {stored}: "
                f"from_pretrained loads them as {declared} (dtype='auto'), so memory differs from the file sizes.",
            )
        )
    return out


def _int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _code(config: Mapping[str, Any], report: Report | None, trust_remote_code: bool) -> list[Problem]:
    how = report.architecture.how if report is not None else None
    if how == "remote code":
        return [
            Problem(
                "remote_code",
                "warning",
                "The model class comes from the repo's own Python code, which runs on your machine when loaded "
                "(trust_remote_code=True). Read it before you use it.",
            )
        ]
    if how == "not built" and config.get("auto_map") and not trust_remote_code:
        return [
            Problem(
                "remote_code",
                "error",
                f"model_type '{config.get('model_type')}' is not in the installed transformers; the model needs the "
                "repo's own code (trust_remote_code=True). Review the code, then rerun with --trust-remote-code.",
            )
        ]
    if how == "not built":
        version = report.architecture.transformers_version if report is not None else None
        return [
            Problem(
                "unsupported",
                "error",
                f"The installed transformers ({version}) cannot build model_type '{config.get('model_type')}' "
                "and the repo ships no code for it: from_pretrained would fail. Upgrade transformers.",
            )
        ]
    return []


# ---------------------------------------------------------------- architecture vs checkpoint


def _reconciliation(report: Report, repo: RepoFiles | None) -> list[Problem]:
    out: list[Problem] = []
    recon = report.reconciliation
    missing_shards = bool(repo is not None and repo.missing_shards)
    if recon.missing and not missing_shards:
        heads = [n for n in recon.missing if _HEAD.search(n)]
        if heads and report.parameters.tied == {}:
            out.append(
                Problem(
                    "head_missing",
                    "error",
                    f"The output head is untied (tie_word_embeddings is false) but '{heads[0]}' is not stored: "
                    "from_pretrained would initialise it randomly. The config or the upload is wrong.",
                )
            )
        others = [n for n in recon.missing if n not in heads]
        if others:
            more = "+" if len(recon.missing) >= 20 else ""
            out.append(
                Problem(
                    "missing_tensors",
                    "error",
                    f"{len(others)}{more} tensor(s) the architecture needs are not in the checkpoint "
                    f"(e.g. {others[0]}): from_pretrained would initialise them randomly. "
                    "The upload looks incomplete or the config does not match the weights.",
                )
            )
    if recon.reshaped:
        out.append(
            Problem(
                "reshaped_tensors",
                "error",
                f"{len(recon.reshaped)} tensor(s) are stored with another shape than the config implies "
                f"({recon.reshaped[0]}): loading fails with a size mismatch.",
            )
        )
    if recon.unexpected:
        out.append(
            Problem(
                "unexpected_tensors",
                "warning",
                f"{len(recon.unexpected)}{'+' if len(recon.unexpected) >= 20 else ''} stored tensor(s) are not part of "
                f"the architecture (e.g. {recon.unexpected[0]}): from_pretrained skips them.",
            )
        )
    for item in recon.items:
        if item.kind == "tied_head_stored":
            out.append(
                Problem(
                    "tied_head_stored",
                    "warning",
                    "The config ties the output head to the embeddings, yet the checkpoint stores a separate head: "
                    "transformers ignores it, so if it differs from the embeddings the loaded model is not the "
                    "trained one. Check tie_word_embeddings.",
                )
            )
    if report.checkpoint.index_total_size is not None and not missing_shards:
        declared, stored = report.checkpoint.index_total_size, report.checkpoint.bytes
        if report.checkpoint.headers_read and declared != stored:
            out.append(
                Problem(
                    "index_total_size",
                    "warning",
                    f"{SAFETENSORS_INDEX} declares total_size {declared:,} bytes but the headers add up to "
                    f"{stored:,}: the index and the shards come from different saves.",
                )
            )
    return out


# ---------------------------------------------------------------- access


def _access(listing: Listing) -> list[Problem]:
    if listing.gated:
        return [Problem("gated", "info", f"The repo is gated ({listing.gated} approval); your token has access.")]
    return []
