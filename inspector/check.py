"""`hfsize check`: everything wrong with a repo before its download, as a list of Problems. Pure.

Each check reads facts other stages produced (the file listing, the download plan, the headers, the
report and its reconciliation) and says in one sentence what is wrong and what to do about it.
Codes are stable (README lists them); severities: "error" means the download would not give a working
model as is, "warning" that it works but costs something or deserves a look, "info" is context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checkpoint import stored_float_dtype
from .config import config_view
from .download import SAFETENSORS_INDEX, SHARD_PATTERN
from .dtypes import TO_CONFIG
from .errors import ExitCode
from .names import OUTPUT_HEAD_WEIGHT, TOKEN_EMBEDDING_TABLE
from .results import Disk, DownloadPlan, How, Listing, Problem, ProblemCode, ReconKind, RepoFiles, Report, Severity
from .units import gib


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
    if unreadable is None or unreadable.code != ProblemCode.NO_ACCESS:
        problems += _access(listing)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(problems, key=lambda p: order[p.severity])


def _context(report: Report) -> list[Problem]:
    """--context beyond the positions the model was trained (or rope-scaled) for."""
    memory = getattr(report, "memory", None)
    return context_problems(memory.context, getattr(memory, "max_positions", None)) if memory is not None else []


def context_problems(context: int, limit: int | None) -> list[Problem]:
    """The `context_length` warning when --context passes the model's trained positions (safetensors: the resolved
    config; GGUF: the file's `<arch>.context_length`)."""
    from .memory import MemorySettings

    # the default context is no one's request: a model with a shorter window is not a problem of the repo
    if not limit or context <= limit or context == MemorySettings().context:
        return []
    return [
        Problem(
            ProblemCode.CONTEXT_LENGTH,
            Severity.WARNING,
            f"--context {context:,} is beyond the {limit:,} positions the model was trained for: outputs "
            "past that length degrade; lower --context or pick a long-context variant",
        )
    ]


def disk_problem(disk: Disk) -> Problem:
    return Problem(
        ProblemCode.DISK_SPACE,
        Severity.ERROR,
        f"The download needs {disk.needed_bytes:,} bytes but {disk.path} has {disk.free_bytes:,} free: "
        "free some space or pass --dir with a larger disk.",
    )


# ---------------------------------------------------------------- exit codes: the one policy


def exit_code(problems: list[Problem], fits: bool | None, *, strict: bool = False) -> ExitCode:
    """One repo: PROBLEMS when an error (or with --strict a warning) was found, else DOES_NOT_FIT when no
    chosen GPU setup fits, else OK."""
    failing = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    if any(p.severity in failing for p in problems):
        return ExitCode.PROBLEMS
    return ExitCode.DOES_NOT_FIT if fits is False else ExitCode.OK


def batch_exit_code(codes: list[int]) -> int:
    """Several repos: the first that could not be read at all (3-7), else PROBLEMS, else DOES_NOT_FIT, else OK."""
    errors = [c for c in codes if c not in (ExitCode.OK, ExitCode.DOES_NOT_FIT, ExitCode.PROBLEMS)]
    if errors:
        return errors[0]
    return max(codes, key=lambda c: (c == ExitCode.PROBLEMS, c == ExitCode.DOES_NOT_FIT), default=ExitCode.OK)


# ---------------------------------------------------------------- files


def _files(listing: Listing, plan: DownloadPlan, repo: RepoFiles | None) -> list[Problem]:
    out: list[Problem] = []
    if plan.weights_format == "none":
        out.append(
            Problem(
                ProblemCode.NO_WEIGHTS,
                Severity.ERROR,
                "No weight files from_pretrained can load (no safetensors or .bin weights).",
            )
        )
    if plan.missing_shards:
        shown = ", ".join(plan.missing_shards[:3]) + (", ..." if len(plan.missing_shards) > 3 else "")
        out.append(
            Problem(
                ProblemCode.MISSING_SHARDS,
                Severity.ERROR,
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
                    ProblemCode.UNINDEXED_SHARDS,
                    Severity.WARNING,
                    f"{len(stray)} shard file(s) are not named by {SAFETENSORS_INDEX} (e.g. {stray[0]}): "
                    "from_pretrained ignores them, but an unfiltered download fetches them.",
                )
            )
    if plan.weights_format == "pytorch":
        out.append(
            Problem(
                ProblemCode.PICKLE_ONLY,
                Severity.WARNING,
                "The weights exist only as pickle files (.bin): they cannot be checked before the download "
                "(no headers), and unpickling untrusted files can run code. Prefer a safetensors copy of this model.",
            )
        )
    if plan.unused:
        kinds = ", ".join(
            f"{u.format} ({len(u.files)} file{'s' if len(u.files) > 1 else ''}, {gib(u.bytes, 1)})" for u in plan.unused
        )
        out.append(
            Problem(
                ProblemCode.DUPLICATE_WEIGHTS,
                Severity.WARNING,
                f"Besides the {plan.weights_format} weights from_pretrained reads ({gib(plan.bytes, 1)}), "
                f"the repo ships "
                f"{kinds}: an unfiltered download fetches {gib(plan.unused_bytes, 1)} more. "
                "Use the hf download command below to fetch only what is needed.",
            )
        )
    if plan.unknown_sizes:
        out.append(
            Problem(
                ProblemCode.UNKNOWN_SIZES,
                Severity.INFO,
                f"The Hub gave no size for {plan.unknown_sizes} file(s) of the download.",
            )
        )
    return out


# ---------------------------------------------------------------- config


def _config(config: Mapping[str, Any], repo: RepoFiles) -> list[Problem]:
    out: list[Problem] = []
    view = config_view(config)
    hidden, heads, kv_heads, vocab = view.hidden, view.heads, view.kv_heads, view.vocab
    if hidden and heads and not view.head_dim_declared and hidden % heads:
        out.append(
            Problem(
                ProblemCode.HEAD_DIM,
                Severity.ERROR,
                f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and the config has no "
                "head_dim: the attention shapes are undefined. The config.json is inconsistent.",
            )
        )
    if heads and kv_heads and heads % kv_heads:
        out.append(
            Problem(
                ProblemCode.KV_HEADS,
                Severity.ERROR,
                f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}: "
                "grouped-query attention cannot split the heads. The config.json is inconsistent.",
            )
        )
    tensors = {name: e for t in repo.headers.values() for name, e in t.items()}
    for name, entry in tensors.items():
        if vocab and TOKEN_EMBEDDING_TABLE.search(name) and len(entry.shape) == 2 and entry.shape[0] != vocab:
            out.append(
                Problem(
                    ProblemCode.VOCAB_SIZE,
                    Severity.ERROR,
                    f"config.json says vocab_size {vocab:,} but '{name}' stores {entry.shape[0]:,} rows: "
                    "loading fails with a size mismatch. The config and the weights disagree.",
                )
            )
            break
    declared, stored = TO_CONFIG.get(view.dtype or ""), TO_CONFIG.get(stored_float_dtype(repo) or "")
    if declared and stored and declared != stored:
        out.append(
            Problem(
                ProblemCode.DTYPE_MISMATCH,
                Severity.WARNING,
                f"config.json declares dtype {declared} but the weights are stored as {stored}: "
                f"from_pretrained loads them as {declared} (dtype='auto'), so memory differs from the file sizes.",
            )
        )
    return out


def _code(config: Mapping[str, Any], report: Report | None, trust_remote_code: bool) -> list[Problem]:
    how = report.architecture.how if report is not None else None
    if how == How.REMOTE_CODE:
        return [
            Problem(
                ProblemCode.REMOTE_CODE,
                Severity.WARNING,
                "The model class comes from the repo's own Python code, which runs on your machine when loaded "
                "(trust_remote_code=True). Read it before you use it.",
            )
        ]
    if how == How.NOT_BUILT and config.get("auto_map") and not trust_remote_code:
        return [
            Problem(
                ProblemCode.REMOTE_CODE,
                Severity.ERROR,
                f"model_type '{config.get('model_type')}' is not in the installed transformers; the model needs the "
                "repo's own code (trust_remote_code=True). Review the code, then rerun with --trust-remote-code.",
            )
        ]
    if how == How.NOT_BUILT:
        version = report.architecture.transformers_version if report is not None else None
        return [
            Problem(
                ProblemCode.UNSUPPORTED,
                Severity.ERROR,
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
        heads = [n for n in recon.missing if OUTPUT_HEAD_WEIGHT.search(n)]
        if heads and report.parameters.tied == {}:
            out.append(
                Problem(
                    ProblemCode.HEAD_MISSING,
                    Severity.ERROR,
                    f"The output head is untied (tie_word_embeddings is false) but '{heads[0]}' is not stored: "
                    "from_pretrained would initialise it randomly. The config or the upload is wrong.",
                )
            )
        others = [n for n in recon.missing if n not in heads]
        if others:
            out.append(
                Problem(
                    ProblemCode.MISSING_TENSORS,
                    Severity.ERROR,
                    f"{len(others):,} tensor{'' if len(others) == 1 else 's'} the architecture needs "
                    f"{'is' if len(others) == 1 else 'are'} not in the checkpoint "
                    f"(e.g. {others[0]}): from_pretrained would initialise them randomly. "
                    "The upload looks incomplete or the config does not match the weights.",
                )
            )
    if recon.reshaped:
        out.append(
            Problem(
                ProblemCode.RESHAPED_TENSORS,
                Severity.ERROR,
                f"{len(recon.reshaped)} tensor(s) are stored with another shape than the config implies "
                f"({recon.reshaped[0]}): loading fails with a size mismatch.",
            )
        )
    if recon.unexpected:
        out.append(
            Problem(
                ProblemCode.UNEXPECTED_TENSORS,
                Severity.WARNING,
                f"{len(recon.unexpected):,} stored tensor{'' if len(recon.unexpected) == 1 else 's'} "
                f"{'is' if len(recon.unexpected) == 1 else 'are'} not part of "
                f"the architecture (e.g. {recon.unexpected[0]}): from_pretrained skips them.",
            )
        )
    for item in recon.items:
        if item.kind == ReconKind.TIED_HEAD_STORED:
            out.append(
                Problem(
                    ProblemCode.TIED_HEAD_STORED,
                    Severity.WARNING,
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
                    ProblemCode.INDEX_TOTAL_SIZE,
                    Severity.WARNING,
                    f"{SAFETENSORS_INDEX} declares total_size {declared:,} bytes but the headers add up to "
                    f"{stored:,}: the index and the shards come from different saves.",
                )
            )
    return out


# ---------------------------------------------------------------- access


def _access(listing: Listing) -> list[Problem]:
    if listing.gated:
        return [
            Problem(
                ProblemCode.GATED,
                Severity.INFO,
                f"The repo is gated ({listing.gated} approval); your token has access.",
            )
        ]
    return []
