"""Command line: parse, call one API function, render. Errors are turned into one line here, once."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import click

from .dtypes import KV_DTYPES, LLAMA_CACHE_TYPES  # plain data: --help imports nothing else of hfsize
from .errors import ExitCode, HfsizeError, capitalized
from .launch import DEBUG_ENV, INTERRUPTED, entry, hf_entry, output_failed, quiet_libraries, read_ahead  # noqa: F401
from .precisions import CHECK_PRECISIONS

# entry, hf_entry: console scripts installed before they moved to launch.py name them here


class _DefaultToInspect(click.Group):
    """`hfsize MODEL` means `hfsize inspect MODEL`; named subcommands, --help and --version win."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["inspect", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # past click's own handler, which writes an empty line first: run() says it once
            raise _Interrupted() from None


class _Interrupted(BaseException):
    """Ctrl-C during a command (a BaseException, like KeyboardInterrupt, so that nothing on the way catches it)."""


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version: hfsize's and the libraries' versions that decide its figures, read without importing them."""
    if not value or ctx.resilient_parsing:
        return
    from . import install

    libraries = ", ".join(
        f"{name} {install.version(name) or 'not installed'}" for name in ("huggingface_hub", *install.BUILD_PACKAGES)
    )
    extra = f"; {install.EXACT_INSTALL} adds the model class" if install.missing() else ""
    click.echo(f"hfsize {install.version('hfsize') or 'unknown'} ({libraries}{extra})")
    ctx.exit()


@click.group(cls=_DefaultToInspect, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
    help="Show hfsize's version and those of huggingface_hub, torch, transformers and accelerate.",
)  # fmt: skip
def main() -> None:
    """How big is a Hugging Face model, and will it fit? Answered from metadata, before the download.

    \b
    hfsize meta-llama/Llama-2-13b-hf          parameters, checkpoint, reconciliation
    hfsize ./my-model-folder --json           the same for a local folder, as JSON
    """


class ModelOptions(NamedTuple):
    """--revision, --token, --trust-remote-code, --set: keyword arguments of every API entry point."""

    revision: str | None
    token: str | None
    trust_remote_code: bool
    overrides: dict[str, Any]  # --set key=value, in order


def _sets(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    from .config import parse_set

    out: dict[str, Any] = {}
    for text in values:
        try:
            key, value = parse_set(text)
        except ValueError as e:
            raise click.BadParameter(
                f"{e}; write it as key=value, e.g. num_hidden_layers=61", param_hint="'--set'"
            ) from None
        out[key] = value
    return out


class MemoryOptions(NamedTuple):
    """--gpu, --context, --batch, --kv-dtype, --cache-type, --overhead; llama.cpp's -ts, -ot, --cpu-moe, --n-cpu-moe."""

    gpu_specs: tuple[str, ...]
    context: int
    batch: int
    kv_dtype: str | None
    cache_type: str | None
    overhead: str
    tensor_split: str | None
    override_tensor: tuple[str, ...]
    cpu_moe: bool
    n_cpu_moe: int | None

    def settings(self) -> Any:
        from .memory import MemorySettings

        llama_cpp = None
        if self.tensor_split or self.override_tensor or self.cpu_moe or self.n_cpu_moe:
            from .engines.llamacpp import options

            llama_cpp = options(self.tensor_split, self.override_tensor, self.cpu_moe, self.n_cpu_moe)
        return MemorySettings(
            context=self.context,
            batch=self.batch,
            kv_dtype=self.kv_dtype,
            overhead_per_gpu=_size(self.overhead),
            cache_type=self.cache_type,
            llama_cpp=llama_cpp,
        )


def _grouped(f: Callable[..., Any], name: str, group: Any) -> Callable[..., Any]:
    """`f` called with its options `group._fields` gathered into one `name=group(...)` argument."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs[name] = group(*(kwargs.pop(field) for field in group._fields))
        return f(*args, **kwargs)

    return command


def _model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = _grouped(f, "model", ModelOptions)
    f = click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, callback=_verbose, is_eager=True,
        help="Show each Hub request (method, path, status, bytes) and the totals on stderr.",
    )(f)  # fmt: skip
    f = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_sets,
        help="What if: change a config value before anything is built (repeatable; the value is JSON, else a "
        "string): --set num_hidden_layers=61.",
    )(f)  # fmt: skip
    f = click.option("--trust-remote-code", is_flag=True, help="Allow running the repo's own model code.")(f)
    f = click.option(
        "--token",
        default=None,
        help="Hugging Face token (default: HF_TOKEN or the saved login). Never printed.",
    )(f)
    f = click.option("--revision", default=None, help="Branch, tag or commit (default: main).")(f)
    return f


class Output(NamedTuple):
    """--json, --format text|json|markdown: what the command writes to stdout."""

    as_json: bool
    fmt: str | None

    @property
    def kind(self) -> str:
        return "json" if self.as_json else self.fmt or "text"


def _json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def options(f: Callable[..., Any]) -> Callable[..., Any]:
        f = _grouped(f, "output", Output)
        f = click.option(
            "--format", "fmt", type=click.Choice(("text", "json", "markdown")), default=None,
            help="text (default), json (as --json) or markdown (GitHub tables, for a model card).",
        )(f)  # fmt: skip
        return click.option("--json", "as_json", is_flag=True, help=f"JSON: {what}; one per line when several.")(f)

    return options


def _verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--verbose: print every exchange as it happens and the totals when the command ends (stderr only)."""
    if not value:
        return
    import time

    from .transport import TRAFFIC, Exchange
    from .units import plural

    started = time.monotonic()

    def show(e: Exchange) -> None:
        status = "failed" if e.status is None else str(e.status)
        retry = " (retrying)" if e.retry else ""
        click.echo(f"hfsize: {e.method} {e.path} {status} {e.bytes_received:,} B {e.seconds:.2f} s{retry}", err=True)

    def totals() -> None:
        retries = f" ({TRAFFIC.retries} retried)" if TRAFFIC.retries else ""
        click.echo(
            f"hfsize: {plural(TRAFFIC.requests, 'request')}{retries}, {TRAFFIC.bytes_received:,} bytes received, "
            f"{time.monotonic() - started:.2f} s",
            err=True,
        )

    TRAFFIC.listeners.append(show)
    ctx.call_on_close(lambda: (TRAFFIC.listeners.remove(show), totals()))  # run() may be called again in-process


def _size(value: str, option: str = "--overhead", example: str = "512MiB or 1GiB") -> int:
    """A size option ('1GiB', '80GB', '0'): bytes, or a usage error naming the option. The one rule for
    --overhead, --ram and vLLM's measured figures."""
    from .gpus import parse_size

    size = 0 if value.strip() == "0" else parse_size(value)
    if size is None:
        raise click.BadParameter(f"'{value}' is not a size like {example}", param_hint=f"'{option}'")
    return size


def _memory_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = _grouped(f, "memory", MemoryOptions)
    f = click.option(
        "--n-cpu-moe", type=click.IntRange(min=0), default=None, metavar="N",
        help="GGUF files: llama.cpp's --n-cpu-moe, the routed experts of the first N layers kept in RAM.",
    )(f)  # fmt: skip
    f = click.option(
        "--cpu-moe", is_flag=True, help="GGUF files: llama.cpp's --cpu-moe, every routed expert kept in RAM."
    )(f)
    f = click.option(
        "--override-tensor", "-ot", "override_tensor", multiple=True, metavar="PATTERN=CPU",
        help="GGUF files: llama.cpp's -ot, tensors whose name the regex finds kept in RAM (repeatable): -ot exps=CPU.",
    )(f)  # fmt: skip
    f = click.option(
        "--tensor-split", "-ts", "tensor_split", default=None, metavar="N0,N1,...",
        help="GGUF files: llama.cpp's -ts, the proportions of the layers per GPU (default: by free memory).",
    )(f)  # fmt: skip
    f = click.option(
        "--overhead", default="1GiB", show_default=True, help="Runtime memory per GPU (CUDA context, slack)."
    )(f)
    f = click.option(
        "--kv-dtype", type=click.Choice(KV_DTYPES), default=None,
        help="KV cache dtype (default: the load dtype, as transformers does).",
    )(f)  # fmt: skip
    f = click.option(
        "--cache-type", type=click.Choice(LLAMA_CACHE_TYPES), default=None,
        help="GGUF files: llama.cpp's --cache-type-k/v (default: --kv-dtype's, else f16).",
    )(f)  # fmt: skip
    f = click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Sequences at once.")(f)
    f = click.option(
        "--context",
        type=click.IntRange(min=1),
        default=2048,
        show_default=True,
        help="Tokens per sequence for the KV cache.",
    )(f)
    f = click.option(
        "--gpu", "gpu_specs", multiple=True, metavar="NAME[xN]|SIZE",
        help="GPU to check against, repeatable: H100, A100-80GBx2, 24GiB; unequal GPUs of one machine joined by +: "
        "RTX-4090+RTX-3060-12GB. Local GPUs are added when present.",
    )(f)  # fmt: skip
    return f


def _jobs_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
        help="Models read at once when there are several (architecture builds take turns).",
    )(f)  # fmt: skip


def _from_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--from", "from_file", type=click.File("r"), default=None, metavar="FILE",
        help="Read models from FILE, one per line ('-': stdin; blank lines and # comments skipped).",
    )(f)  # fmt: skip


# 16 MiB: some 300,000 ids, more than any real list; /dev/zero (or a log file by mistake) is refused, not read.
MAX_FROM_BYTES = 16 * 2**20


def _models(models: tuple[str, ...], from_file: Any) -> list[str]:
    listed = list(models)
    if from_file is not None:
        try:
            text = from_file.read(MAX_FROM_BYTES + 1)  # characters: at least as many bytes
        except UnicodeDecodeError:
            raise click.BadParameter(
                f"'{from_file.name}' is not a text file with one model per line", param_hint="'--from'"
            ) from None
        if len(text) > MAX_FROM_BYTES:
            raise click.BadParameter(
                f"'{from_file.name}' holds more than {MAX_FROM_BYTES:,} characters, more than any list of models",
                param_hint="'--from'",
            )
        lines = text.splitlines()
        listed += [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    if not listed:
        raise click.UsageError("No model given: pass MODEL... or --from FILE.")
    return listed


def _each(
    names: list[str], one: Callable[[str], Any], failed: Callable[[str, Any], Any], jobs: int, as_json: bool = False
) -> Iterable[Any]:
    """`one` for every model; a lone model that cannot be read exits like `hfsize MODEL`, several go on.

    Several models come as a stream in input order (api.iter_many), for `_emit_many` to write as they come.
    With --json a lone failure still prints the row a batch would (stdout), before run() writes its line (stderr).
    """
    if len(names) == 1:
        try:
            return [one(names[0])]
        except HfsizeError as e:
            if as_json:
                from .results import to_json

                click.echo(to_json(failed(names[0], e)))
            raise
    return _stream(names, one, failed, jobs, bar=not (as_json and sys.stdout.isatty()))


def _stream(
    names: list[str], one: Callable[[str], Any], failed: Callable[[str, Any], Any], jobs: int, bar: bool
) -> Iterator[Any]:
    """Several models' results in input order, with the progress bar (when `bar`) open while they come."""
    from .api import iter_many

    with _progress(len(names) if bar else 0) as advance:
        yield from iter_many(names, one, failed, jobs=jobs, on_done=advance)


def _hub_client() -> None:
    """The CLI's own huggingface_hub client (retries, timeouts, traffic counts): installed by the command,
    never by a library call, because it replaces the client of the whole process."""
    from .transport import install

    install()


def _light_install_note() -> None:
    """Once per command on a light install: what is left out and the install that adds it (stderr)."""
    from . import install

    absent = install.missing()
    if absent:
        click.echo(
            f"hfsize: {install.light_reason(absent)}. Models whose architecture is not cached are counted from "
            "their safetensors headers: no reconciliation, 8/4-bit or finetuning figures, and a KV cache only where "
            "config.json lays it out.",
            err=True,
        )


@main.command()
@click.argument("models", nargs=-1, metavar="MODEL...")
@_from_option
@_model_options
@_memory_options
@_jobs_option
@_json_option("the report (schema in the README)")
@click.option(
    "--headers-only",
    is_flag=True,
    help="Never import torch or build the model: count from the safetensors headers (fp32/16-bit and stored "
    "weights, the KV cache where config.json lays it out; no 8/4-bit) unless the architecture is already cached.",
)
def inspect(
    models: tuple[str, ...],
    from_file: Any,
    model: ModelOptions,
    memory: MemoryOptions,
    jobs: int,
    output: Output,
    headers_only: bool,
) -> None:
    """Exact parameters, checkpoint facts, reconciliation and memory per precision for MODEL (repo id or folder).

    \b
    Several models (arguments or --from FILE) give one table, or JSON lines; one that fails is reported in
    its row and the others go on; the exit code is then the first failure's.
    """
    from .gpus import choose_gpus

    names = _models(models, from_file)
    settings, gpus = memory.settings(), choose_gpus(memory.gpu_specs)
    _hub_client()
    if len(names) == 1:  # its Hub reads start now, while the rest of hfsize imports (options already valid)
        from .hub import prefetch

        prefetch(names[0], revision=model.revision, token=model.token)
    from .api import inspect_failed, inspect_model

    if not headers_only:
        _light_install_note()

    def one(name: str) -> Any:
        return inspect_model(
            name, **model._asdict(), memory=settings, gpus=gpus, headers_only=headers_only, warm_up=True
        )

    results = _each(names, one, lambda m, e: inspect_failed(m, model.revision, e), jobs, output.kind == "json")
    if len(names) == 1:
        _emit(next(iter(results)), output.kind)
        return
    from . import render

    codes = _emit_many(results, output.kind, render.report_renderable, lambda rs: render.inspect_table(rs, gpus))
    failures = [c for c in codes if c]
    if failures:
        raise click.exceptions.Exit(failures[0])


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr while several models are read, when stderr is a terminal (none for total 0)."""
    if not total or not sys.stderr.isatty():
        yield lambda _result: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("hfsize"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # no redirect: rich would route the JSON lines written meanwhile to its console, stderr
    bar = Progress(*columns, console=Console(file=sys.stderr), transient=True, redirect_stdout=False)
    with bar as progress:
        task = progress.add_task("models", total=total)
        yield lambda _result: progress.advance(task)


@main.command()
@click.argument("models", nargs=-1, metavar="MODEL...")
@_from_option
@_model_options
@_memory_options
@_jobs_option
@click.option(
    "--precision", type=click.Choice(CHECK_PRECISIONS), default="auto", show_default=True,
    help="Precision to judge the fit at (auto: as stored when pre-quantized, else the config's dtype).",
)  # fmt: skip
@click.option(
    "--dir", "download_dir", default=None, metavar="PATH",
    type=click.Path(exists=True, file_okay=False),  # free space "at" a file or a missing path is another disk's
    help="Existing folder the download would go to, for the disk-space check (default: the Hugging Face cache).",
)  # fmt: skip
@click.option("--strict", is_flag=True, help="Fail on warnings too (duplicates, pickle-only, ...).")
@click.option(
    "--min-context",
    type=click.IntRange(min=1),
    default=None,
    help="Fail (exit 11, context_too_short) unless the plan runs this many tokens (see `hfsize plan`).",
)
@click.option(
    "--min-tokens-per-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Fail (exit 11, too_slow) unless the plan's expected decode speed reaches this.",
)
@click.option(
    "--ram", default=None, metavar="SIZE",
    help="CPU RAM the plan may offload to (with the gates above); GGUF repos: fail (exit 11, not_enough_ram) when "
    "what llama.cpp keeps in RAM exceeds it.",
)  # fmt: skip
@click.option(
    "--file", "gguf_file", default=None, metavar="NAME",
    help="GGUF repos: the file (or split set, or quant label like Q4_K_M) to check (default: the recommended one).",
)  # fmt: skip
@_json_option("one object per model")
def check(
    models: tuple[str, ...],
    from_file: Any,
    model: ModelOptions,
    memory: MemoryOptions,
    jobs: int,
    precision: str,
    download_dir: str | None,
    strict: bool,
    min_context: int | None,
    min_tokens_per_s: float | None,
    ram: str | None,
    gguf_file: str | None,
    output: Output,
) -> None:
    """Should you download MODEL? What it fetches, duplicates, integrity, access and fit, without the weights.

    \b
    Exit codes: 0 all good, 10 does not fit the GPUs, 11 problems found (errors; warnings too with --strict;
    a plan short of --min-context / --min-tokens-per-s),
    3-7 the repo could not be read (see the README). Scripts can gate on it:
      hfsize check org/model --gpu A100-80GB && hf download org/model
    GPUs: the --gpu ones, else the local GPUs; with neither, the fit is not judged.
    """
    from .api import check_failed, check_model
    from .gpus import local_gpus, parse_gpu

    names = _models(models, from_file)
    settings, gpus = memory.settings(), [parse_gpu(s) for s in memory.gpu_specs] or local_gpus()
    _hub_client()
    _light_install_note()

    gates = {}
    if min_context or min_tokens_per_s:
        from .plan import PlanSettings

        plan_settings = PlanSettings(
            context=settings.context, batch=settings.batch, kv_dtype=settings.kv_dtype,
            overhead_per_gpu=settings.overhead_per_gpu, ram_bytes=_ram(ram), cache_type=settings.cache_type,
            llama_cpp=settings.llama_cpp, gguf_file=gguf_file,
        )  # fmt: skip
        gates = {"min_context": min_context, "min_tokens_per_s": min_tokens_per_s, "plan_settings": plan_settings}

    def one(name: str) -> Any:
        return check_model(
            name, **model._asdict(), memory=settings, gpus=gpus, precision=precision, download_dir=download_dir,
            strict=strict, gguf_file=gguf_file, ram_bytes=_ram(ram) if ram is not None else None, **gates,
        )  # fmt: skip

    results = _each(names, one, lambda m, e: check_failed(m, model.revision, e), jobs, output.kind == "json")
    from . import render

    codes = _emit_many(results, output.kind, render.check_renderable, render.check_table)
    from .check import batch_exit_code

    worst = batch_exit_code(codes)
    if worst:
        raise click.exceptions.Exit(worst)


def _emit_many(results: Iterable[Any], kind: str, one: Callable[[Any], Any], table: Callable[[list], Any]) -> list[int]:
    """One result in full, several as a table; JSON: one object, or one compact object per line; Markdown:
    each result's tables. Returns every result's exit code (0 when it has none).

    JSON lines and Markdown are written as the results come and then dropped (a scan of 1,000 repos holds
    none of them); a table needs all its rows first."""
    from .results import to_json

    codes: list[int] = []
    if kind in ("json", "markdown") and not isinstance(results, list):
        for n, result in enumerate(results):
            if kind == "json":
                click.echo(to_json(result, indent=None))
            else:
                from .render_markdown import markdown

                click.echo(("\n" if n else "") + markdown(result), nl=False)
            codes.append(getattr(result, "exit_code", 0))
        return codes
    results = list(results)
    codes = [getattr(r, "exit_code", 0) for r in results]
    if kind == "markdown":
        from .render_markdown import markdown

        click.echo("\n".join(markdown(r) for r in results), nl=False)
        return codes
    if kind == "json":
        for result in results:
            click.echo(to_json(result, indent=2 if len(results) == 1 else None))
        return codes
    from .render_table import emit

    emit(one(results[0]) if len(results) == 1 else table(results))
    return codes


@main.command()
@click.argument("models", nargs=-1, metavar="[BASE] FINETUNE...")
@_from_option
@_model_options
@_memory_options
@_jobs_option
@click.option("--base-revision", default=None, help="Branch, tag or commit of the base (--revision is the finetunes').")
@_json_option("one object per finetune")
def compare(
    models: tuple[str, ...],
    from_file: Any,
    model: ModelOptions,
    memory: MemoryOptions,
    jobs: int,
    base_revision: str | None,
    output: Output,
) -> None:
    """How FINETUNE differs from BASE: config, parameters, tensors, bytes, memory, and a one-line verdict.

    \b
    hfsize compare BASE FINETUNE [FINETUNE...]   against the base you name
    hfsize compare FINETUNE                      against the base_model its model card (or adapter) declares
    Adapters (PEFT repos with adapter_config.json) are sized on top of their base. The memory options set
    the context, batch, KV dtype, overhead and GPUs the memory figures (and their differences) are for.
    """
    from .api import compare_models
    from .gpus import choose_gpus

    names = _models(models, from_file)
    _hub_client()
    _light_install_note()
    results = compare_models(
        names, **model._asdict(), base_revision=base_revision, memory=memory.settings(),
        gpus=choose_gpus(memory.gpu_specs), jobs=jobs, warm_up=True,
    )  # fmt: skip
    from . import render

    _emit_many(results, output.kind, render.comparison_renderable, render.comparison_table)


# inspector.engines.ENGINES (kept here: --help imports no engine module); llama.cpp: GGUF repos (gguf_plan.py)
ENGINE_NAMES = ("transformers", "vllm", "llama.cpp")


def _ram(value: str | None) -> int | None:
    """--ram SIZE, 0 for none; default: this machine's RAM available for offload (absent where unknown)."""
    if value is None:
        from .hardware import ram_bytes

        return ram_bytes()
    return _size(value, "--ram", "64GB or 128GiB") or None


@main.command()
@click.argument("models", nargs=-1, metavar="MODEL...")
@_from_option
@_model_options
@_memory_options
@_jobs_option
@click.option(
    "--ram",
    default=None,
    metavar="SIZE",
    help="CPU RAM layers may be offloaded to (default: this machine's available RAM; 0: none); llama.cpp: what it "
    "keeps in RAM is judged against it (pages from disk, or does not fit).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINE_NAMES),
    default=None,
    help="What runs the model: transformers (device_map, the default) or vLLM (paged KV cache); llama.cpp (-ngl "
    "layers) for GGUF repos, their default.",
)
@click.option(
    "--tp", type=click.IntRange(min=1), default=None, help="vLLM tensor parallel size (default: the GPU count)."
)
@click.option(
    "--gpu-memory-utilization",
    type=click.FloatRange(0.01, 1.0),
    default=None,
    help="vLLM's share of each GPU (default 0.9).",
)
@click.option(
    "--max-num-batched-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="vLLM's profiling batch (default: vllm serve's for the GPU).",
)
@click.option(
    "--activation-peak",
    default=None,
    metavar="SIZE",
    help="vLLM: the 'torch peak memory increase' of your log, instead of hfsize's estimate.",
)
@click.option(
    "--non-torch",
    default=None,
    metavar="SIZE",
    help="vLLM: the 'non-torch forward increase memory' of your log (default 0.25 GiB, +0.25 under TP).",
)
@click.option(
    "--cuda-graphs",
    default=None,
    metavar="SIZE",
    help="vLLM: the 'Estimated CUDA graph memory' of your log (default 0.61 GiB).",
)
@click.option("--enforce-eager", is_flag=True, help="vLLM without CUDA graphs.")
@click.option(
    "--file", "gguf_file", default=None, metavar="NAME",
    help="GGUF repos: plan this file only (or split set, or quant label like Q4_K_M); default: every file.",
)  # fmt: skip
@_json_option("{plan, alternatives} per model")
def plan(
    models: tuple[str, ...],
    from_file: Any,
    model: ModelOptions,
    memory: MemoryOptions,
    jobs: int,
    ram: str | None,
    engine: str | None,
    tp: int | None,
    gpu_memory_utilization: float | None,
    max_num_batched_tokens: int | None,
    activation_peak: str | None,
    non_torch: str | None,
    cuda_graphs: str | None,
    enforce_eager: bool,
    gguf_file: str | None,
    output: Output,
) -> None:
    """How MODEL runs here: precision, devices, layers offloaded to CPU RAM, longest context, concurrency, tokens/s.

    \b
    hfsize plan meta-llama/Llama-2-70b-hf --gpu RTX-4090 --ram 64GB
    hfsize plan meta-llama/Llama-2-70b-hf --gpu H100x2 --engine vllm --tp 2
    GPUs: the --gpu ones, else the local GPUs. The recommended way comes first, then the alternatives.
    """
    from .api import inspect_failed, plan_model
    from .gpus import local_gpus, parse_gpu
    from .plan import PlanSettings

    names = _models(models, from_file)
    gpus = [parse_gpu(s) for s in memory.gpu_specs] or local_gpus()
    base = memory.settings()
    settings = PlanSettings(
        engine=engine, context=base.context, batch=base.batch, kv_dtype=base.kv_dtype,
        overhead_per_gpu=base.overhead_per_gpu, ram_bytes=_ram(ram), ram_given=ram is not None, tensor_parallel=tp,
        gpu_memory_utilization=0.9 if gpu_memory_utilization is None else gpu_memory_utilization,
        max_num_batched_tokens=max_num_batched_tokens, vllm_given=_given(
            gpu_memory_utilization=gpu_memory_utilization, max_num_batched_tokens=max_num_batched_tokens,
            activation_peak=activation_peak, non_torch=non_torch, cuda_graphs=cuda_graphs, enforce_eager=enforce_eager,
        ),
        activation_peak_bytes=_size_option(activation_peak, "--activation-peak"),
        non_torch_bytes=_size_option(non_torch, "--non-torch"),
        cuda_graph_bytes=_size_option(cuda_graphs, "--cuda-graphs"), enforce_eager=enforce_eager,
        cache_type=base.cache_type, llama_cpp=base.llama_cpp, gguf_file=gguf_file,
    )  # fmt: skip
    _hub_client()

    def one(name: str) -> Any:
        return plan_model(name, **model._asdict(), gpus=gpus, settings=settings, warm_up=True)

    results = _each(names, one, lambda m, e: inspect_failed(m, model.revision, e), jobs, output.kind == "json")
    from . import render

    codes = _emit_many(results, output.kind, render.plan_renderable, render.plan_table)
    failures = [c for c in codes if c]
    if failures:
        raise click.exceptions.Exit(failures[0])


def _given(**values: Any) -> tuple[str, ...]:
    """The options given (not None, not False), spelled as on the command line."""
    return tuple(f"--{k.replace('_', '-')}" for k, v in values.items() if v is not None and v is not False)


def _size_option(value: str | None, name: str) -> int | None:
    return None if value is None else _size(value, name)


@main.command()
@click.argument("models", nargs=-1, metavar="MODEL...")
@_from_option
@_model_options
@_memory_options
@_jobs_option
@click.option("--chart", is_flag=True, help="Draw total memory against context length in the terminal.")
@click.option(
    "--plot", "plot_file", default=None, metavar="FILE.svg|FILE.png",
    help="Write that chart as an image (needs the plot extra: pip install 'hfsize[plot]').",
)  # fmt: skip
@_json_option("the arithmetic (schema in the README)")
def explain(
    models: tuple[str, ...],
    from_file: Any,
    model: ModelOptions,
    memory: MemoryOptions,
    jobs: int,
    chart: bool,
    plot_file: str | None,
    output: Output,
) -> None:
    """Where MODEL's size comes from: its parameter count, KV cache per token and weight bytes as arithmetic.

    \b
    hfsize explain meta-llama/Llama-2-13b-hf                        the arithmetic, adding up to the count
    hfsize explain A B C                                            a family side by side, and what changed
    hfsize explain MODEL --set num_key_value_heads=8                what if, against the unmodified config
    Without --gpu the verdicts are for cards people own: T4 (16 GB), RTX-4090 (24 GB), A100-80GB, 1 and 2 of each.
    """
    from .api import explain_model
    from .gpus import OWNED_GPUS, local_gpus, parse_gpu

    names = _models(models, from_file)
    if plot_file is not None and not plot_file.lower().endswith((".svg", ".png")):
        raise click.BadParameter(f"'{plot_file}' must end in .svg or .png", param_hint="'--plot'")
    if (chart or plot_file) and len(names) > 1:
        raise click.UsageError("--chart and --plot draw one model; pass one MODEL.")
    gpus = [parse_gpu(s) for s in memory.gpu_specs or OWNED_GPUS] + local_gpus()
    _hub_client()
    result = explain_model(
        names, **model._asdict(), memory=memory.settings(), gpus=gpus, chart=chart or plot_file is not None,
        jobs=jobs, warm_up=True,
    )  # fmt: skip
    if plot_file is not None:
        from .plot import save

        result = save(result, plot_file)
    _emit(result, output.kind)


def _emit(report: Any, kind: str) -> None:
    if kind == "markdown":
        from .render_markdown import markdown

        click.echo(markdown(report), nl=False)
    elif kind == "json":
        from .results import to_json  # JSON imports no rich

        click.echo(to_json(report))
    else:
        from . import render
        from .render_explain import renderable
        from .render_table import emit

        explained = renderable(report)
        emit(render.report_renderable(report) if explained is None else explained)


def run(argv: list[str] | None = None, prog_name: str = "hfsize") -> int:
    """Console-script entry point: one line on stderr and a documented exit code for every failure."""
    quiet_libraries()
    read_ahead(sys.argv[1:] if argv is None else argv)
    try:
        code = main.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except HfsizeError as e:
        if os.environ.get(DEBUG_ENV):
            raise
        hint = f" {' '.join(e.hint.split())}" if e.hint else ""
        click.echo(f"Error: {_sentence(e.message)}{hint}", err=True)
        return int(e.exit_code)
    except (click.exceptions.Abort, _Interrupted):
        click.echo("Error: interrupted.", err=True)
        return INTERRUPTED
    except click.exceptions.NoArgsIsHelpError as e:  # bare `hfsize`: the help, on stderr, exit 2, as click does
        e.show()
        return int(ExitCode.USAGE)
    except click.UsageError as e:
        # One line like every other failure, not click's three-line usage block.
        command = e.ctx.command_path if e.ctx is not None else "hfsize"
        click.echo(f"Error: {_sentence(e.format_message())} Run '{command} --help' for usage.", err=True)
        return int(ExitCode.USAGE)
    except click.ClickException as e:
        click.echo(f"Error: {_sentence(e.format_message())}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("Error: interrupted.", err=True)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`hfsize ... | head`): it had what it wanted
        return int(ExitCode.OK)
    except Exception as e:  # noqa: BLE001 - the last line of defence: no traceback unless asked
        if os.environ.get(DEBUG_ENV):
            raise
        if isinstance(e, OSError) and e.errno in OUTPUT_ERRORS:  # stdout on a full disk (hfsize's caches never raise)
            click.echo(output_failed(e), err=True)
            return int(ExitCode.INTERNAL)
        click.echo(
            f"Error: internal error ({type(e).__name__}). Please report it; rerun with {DEBUG_ENV}=1 for details.",
            err=True,
        )
        return int(ExitCode.INTERNAL)
    # standalone_mode=False: click returns an Exit's code instead of exiting (`check` uses that)
    return code if isinstance(code, int) else int(ExitCode.OK)


# A write to stdout that fails like this is the output's destination, not a bug (the README's exit code 1).
OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})

MAX_MESSAGE = 400


def _sentence(message: str) -> str:
    # one line, whatever a library put in its exception text (newlines, pages of validation detail)
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3].rstrip() + "..."
    message = capitalized(message)
    return message if message.endswith((".", "!", "?")) else message + "."
