"""`hfsize compare` with a GGUF repo: the same model as its base safetensors repo? What each quant costs in bytes.

Same architecture: the GGUF's general.architecture against the base config's model_type (llama.cpp converts
Mistral/Mixtral-style configs as `llama`). Same parameters: elements of every GGUF tensor against the base's exact
count (a tied output is stored once in both). Cost: each file's tensor bytes against the base's parameters x 2
(bf16), the size people download instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ExitCode, HfsizeError, NotFoundError
from .results import GGUFComparison, GGUFQuantCost, GGUFReport

# GGUF architecture names llama.cpp's converter gives HF model_types that differ (convert_hf_to_gguf.py)
GGUF_ARCH_OF_MODEL_TYPE = {
    "mistral": "llama",
    "mixtral": "llama",
    "gpt_oss": "gpt-oss",
    "granitemoehybrid": "granitehybrid",
}


class CompareUsageError(HfsizeError):
    exit_code = ExitCode.USAGE


def compare_gguf(gguf: GGUFReport, base_report: Any, base_id: str, base_from: str) -> GGUFComparison:
    models = [f for f in gguf.gguf.files if f.kind == "model" and f.error is None]
    arch = next((f.architecture for f in models if f.architecture), None)
    model_type = base_report.architecture.model_type
    same_arch = (
        None if arch is None or model_type is None else GGUF_ARCH_OF_MODEL_TYPE.get(model_type, model_type) == arch
    )
    base_params = base_report.parameters.total
    counts = sorted({f.parameters for f in models})
    bf16 = base_params * 2
    files = [
        GGUFQuantCost(
            name=f.name,
            quant=f.quant,
            bytes=f.bytes,
            tensor_bytes=f.tensor_bytes,
            bits_per_weight=f.bits_per_weight,
            parameters=f.parameters,
            # what the quant keeps of the base's bf16 bytes, only where the file holds the base's parameters
            fraction_of_bf16=f.tensor_bytes / bf16 if bf16 and f.parameters == base_params else None,
            saved_bytes=bf16 - f.tensor_bytes if f.parameters == base_params else None,
        )  # fmt: skip
        for f in models
    ]
    notes = []
    if len(counts) > 1:
        notes.append(f"the GGUF files hold different parameter counts: {', '.join(f'{c:,}' for c in counts)}")
    if same_arch is False:
        notes.append(f"architectures differ: GGUF '{arch}', base model_type '{model_type}'")
    if counts and counts[0] != base_params:
        notes.append(f"parameters differ by {counts[0] - base_params:+,} (GGUF - base)")
    if any(f.parameters != base_params for f in models):
        notes.append("of bf16 and saved are left out for files with other parameters than the base: not its weights")
    if same_arch and GGUF_ARCH_OF_MODEL_TYPE.get(model_type, model_type) != model_type:
        notes.append(f"llama.cpp writes model_type '{model_type}' as architecture '{arch}': same means that")
    return GGUFComparison(
        gguf=gguf.model,
        base=base_id,
        base_from=base_from,
        architecture=arch,
        base_model_type=model_type,
        same_architecture=same_arch,
        gguf_parameters=counts[0] if len(counts) == 1 else None,
        base_parameters=base_params,
        same_parameters=(counts == [base_params]) if counts else None,
        base_bf16_bytes=bf16,
        base_stored_bytes=base_report.checkpoint.bytes or None,
        files=files,
        notes=notes,
    )


def split_gguf_and_base(models: Sequence[str], is_gguf: Sequence[bool], card_data: dict) -> tuple[str, str, str]:
    """(gguf repo, base, where the base came from) for `compare` arguments of which one is a GGUF repo."""
    gguf = [m for m, g in zip(models, is_gguf, strict=True) if g]
    others = [m for m, g in zip(models, is_gguf, strict=True) if not g]
    if len(gguf) != 1 or len(others) > 1:
        raise CompareUsageError(
            "compare takes one GGUF repo and its base", "Write: hfsize compare BASE GGUF_REPO (or GGUF_REPO alone)."
        )
    if others:
        return gguf[0], others[0], "argument"
    declared = card_data.get("base_model")
    declared = declared[0] if isinstance(declared, list) and declared else declared
    if not isinstance(declared, str) or not declared:
        raise NotFoundError(
            f"'{gguf[0]}' does not declare its base model (no base_model in its model card)",
            f"Name the base explicitly: hfsize compare BASE {gguf[0]}",
        )
    return gguf[0], declared, "card base_model"
