"""Inference engines hfsize plans for: one object per engine, the rest of the code iterates over `ENGINES`.

An engine names how it budgets GPU memory and where its rules live. `transformers` is today's default (the
memory stage: weights + DynamicCache + a per-GPU overhead, `device_map="auto"` placement); `vllm` reserves a
share of each GPU and fills what its profiling leaves with paged KV blocks (`inspector.engines.vllm`);
`llama.cpp` places GGUF files layer by layer (`inspector.engines.llamacpp`: plan_gguf).
Pure data: importing this imports no engine module and no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    name: str  # the `--engine` value
    module: str  # where its rules live ("" : the memory stage itself)
    description: str
    tensor_parallel: bool  # whether `--tp N` applies
    paged_kv: bool  # KV cache in fixed-size blocks from a pre-reserved pool (else grown per sequence)
    checkpoint: str = "safetensors"  # what it loads: `hfsize plan --engine` offers the safetensors ones; llama.cpp's
    # GGUF files are planned by the GGUF report (gguf_repo.py -> llamacpp.plan_gguf)


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine(
            name="transformers",
            module="",
            description="transformers from_pretrained with device_map: weights, DynamicCache, per-GPU overhead",
            tensor_parallel=False,
            paged_kv=False,
        ),
        Engine(
            name="vllm",
            module="inspector.engines.vllm",
            description="vLLM: total x gpu_memory_utilization - weights - profiled peaks, the rest as paged KV blocks",
            tensor_parallel=True,
            paged_kv=True,
        ),
        Engine(
            name="llama.cpp",
            module="inspector.engines.llamacpp",
            description="llama.cpp on GGUF files: -ngl layers on the GPU (output first), the rest memory-mapped in "
            "RAM, KV cache per layer's device (padded to 256, sliding windows), compute buffer",
            tensor_parallel=False,
            paged_kv=False,
            checkpoint="gguf",
        ),
    )
}

DEFAULT_ENGINE = "transformers"


def engine(name: str) -> Engine:
    """The engine called `name` (case-insensitive); KeyError names the choices."""
    try:
        return ENGINES[name.lower()]
    except KeyError:
        raise KeyError(f"unknown engine '{name}'; choose one of: {', '.join(ENGINES)}") from None
