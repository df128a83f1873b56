"""Generate safetensors headers for fixture repos from their REAL index files.

Usage: python scripts/make_fixture_headers.py fixtures/hub/<org>/<name> [...]
       python scripts/make_fixture_headers.py --adapter fixtures/hub/<adapter repo> --base fixtures/hub/<base repo>

Tensor names and their shard come from the real `model.safetensors.index.json` (for single-file repos,
from `tensor_names.json` beside the config, with its source noted in SOURCE.md; its `total_bytes` plays the role of
total_size, and `total_elements`, when the source gives the stored element count instead, is checked the same way).
Shapes come from transformers' own save format (the model built on the meta device, reverted to checkpoint names the
way save_pretrained does), plus documented rules for tensors the class does not hold:
  - rotary `inv_freq` buffers: [head_dim / 2]
  - FP8 block scales `weight_scale_inv`: [ceil(out / 128), ceil(in / 128)], F32 (DeepSeek-V3) or BF16 (Qwen3 FP8;
    the config does not say which, so total_size decides), and the weight they scale is F8_E4M3 (both checked on
    real header listings of DeepSeek-V3 and Qwen3-30B-A3B-Thinking-2507-FP8, see fixtures/hub/_derived/gogongxt-python/)
  - MXFP4 (gpt-oss) `*_blocks` U8 [experts, out, in / 32, 16] and `*_scales` U8 [experts, out, in / 32]
  - the multi-token-prediction layer (index = num_hidden_layers) copies the last layer's shapes plus
    enorm/hnorm [hidden], eh_proj [hidden, 2*hidden], embed_tokens and shared_head.head [vocab, hidden]
  - bitsandbytes int8 (`load_in_8bit`): the weight is I8 with the module's shape, `SCB` is F32 [out],
    `weight_format` is U8 [] (a scalar)
  - bitsandbytes 4-bit serialized (`load_in_4bit`, bnb_4bit_quant_storage uint8), as bitsandbytes 0.50's
    Linear4bit._save_to_state_dict / QuantState.as_dict(packed=True) write it for a module of n = out x in
    weights (checked on CPU with a real Linear4bit, with and without double quant):
      `weight` U8 [ceil(n / 2), 1] (two 4-bit codes per byte), `weight.quant_map` F32 [16] (the NF4/FP4 code),
      `weight.absmax` [ceil(n / 64)]: F32, or U8 with double quant (`nested_absmax` present), then
      `weight.nested_absmax` F32 [ceil(ceil(n / 64) / 256)] and `weight.nested_quant_map` F32 [256],
      `weight.quant_state.bitsandbytes__<nf4|fp4>` U8 [len(json.dumps(d))] with
      d = {quant_type, blocksize: 64, dtype (the weights' dtype: the config's), shape: [out, in]} and, with
      double quant, nested_blocksize: 256, nested_dtype: "float32", nested_offset: absmax.mean().item().
    The repr of that float (e.g. 0.052178286015987396) has a length the config cannot tell, so each double-quant
    quant_state tensor's length is OPEN within BNB_OFFSET_REPR chars (see below).
  - GPTQ / AWQ packed modules (quant_method "gptq" / "awq"), for a Linear of `in` x `out` with b = bits,
    p = 32 / b values per int32 and g = ceil(in / group_size) groups (group_size -1: one group):
      GPTQ (AutoGPTQ / GPTQModel `gptq` format): `qweight` I32 [in / p, out], `qzeros` I32 [g, out / p],
        `scales` F16 [g, out], `g_idx` I32 [in];
      AWQ GEMM (AutoAWQ `version: gemm`): `qweight` I32 [in, out / p], `qzeros` I32 [g, out / p], `scales` F16 [g, out]
        (the AWQ layout is confirmed by a real header listing of Llama-2-7B-AWQ, see its SOURCE.md; the GPTQ one
        is AutoGPTQ's QuantLinear and is not yet exercised by a fixture).
Dtypes that a rule leaves open are chosen so the header bytes add up to the index's total_size; the
script FAILS unless they add up exactly, which is the independent check that the shapes are real.
Lengths that a rule leaves open (only the bitsandbytes nested_offset repr) are the one exception: they must
together take up exactly what total_size leaves after every other tensor, and the script FAILS unless that
remainder lies within n x BNB_OFFSET_REPR for the n open tensors. The split of the remainder among them is
NOT known (each gets the mean, the first `remainder % n` in name order one more char): per-file sizes of such
a repo are then exact only in total, and SOURCE.md must say so.
`header_dtypes` in the folder's `_replica.json` pins a tensor's dtype where the Hub's file sizes show it
(SOURCE.md shows that arithmetic); `default_dtype` (e.g. "BF16") replaces the F16 fallback for a config that
names no torch_dtype (gpt-oss), where total_size cannot tell F16 from BF16 and a published count per dtype can;
`header_metadata` replaces the `{"format": "pt"}` metadata (null: none, as OpenAI's gpt-oss shards have).
Tensors are laid out as the safetensors library writes them (by dtype, largest first, then by name) and the
header is its compact JSON padded to 8 bytes; when `_replica.json` has the Hub's `lfs_sizes`, each generated
file's size is compared with the real one and printed.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from pathlib import Path

DTYPES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}
BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1, "I8": 1, "I32": 4, "I64": 8}
# safetensors' Dtype enum order; files list tensors by dtype in reverse enum order, then by name
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64"]
LAYER = re.compile(r"\.layers\.(\d+)\.")
BNB_STATE = re.compile(
    r"\.weight\.(absmax|quant_map|nested_absmax|nested_quant_map|quant_state\.bitsandbytes__(nf4|fp4))$"
)
GPTQ_AWQ = re.compile(r"\.(qweight|qzeros|scales|g_idx)$")
BNB_BLOCK, BNB_NESTED_BLOCK = 64, 256  # bitsandbytes' 4-bit blocksize (transformers' default) and double-quant's
# Chars of repr(nested_offset), a float32 mean of per-block absmax values converted to a Python float: for random
# float32 values in [0.001, 1) repr takes 16-21 chars in over 99.9% of cases (mean 19.2 for [0.01, 0.1)).
BNB_OFFSET_REPR = (16, 21)


def bnb_state_length(config: dict, shape: tuple[int, ...], quant_type: str, nested: bool) -> int:
    """Length of a 4-bit weight's packed quant_state JSON, less the nested_offset float's repr (open)."""
    named = config.get("torch_dtype") or config.get("dtype") or "float32"
    state: dict = {"quant_type": quant_type, "blocksize": BNB_BLOCK, "dtype": named, "shape": list(shape)}
    if nested:
        state.update({"nested_blocksize": BNB_NESTED_BLOCK, "nested_dtype": "float32", "nested_offset": 0})
    return len(json.dumps(state)) - (1 if nested else 0)  # the placeholder 0 is not part of the fixed text


def open_length(name: str, names: set[str]) -> tuple[int, int]:
    """(min, max) extra bytes a rule leaves open for this tensor (a U8 tensor's length)."""
    match = BNB_STATE.search(name)
    if match and match.group(1).startswith("quant_state") and name[: match.start()] + ".weight.nested_absmax" in names:
        return BNB_OFFSET_REPR
    return 0, 0


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    import torch
    import transformers
    from transformers import CONFIG_MAPPING
    from transformers.core_model_loading import revert_weight_conversion

    clean = {k: v for k, v in config.items() if k not in ("auto_map", "quantization_config")}
    legacy = {"RefinedWebModel": "falcon", "RefinedWeb": "falcon"}
    clean["model_type"] = legacy.get(clean["model_type"], clean["model_type"])
    cfg = CONFIG_MAPPING[clean["model_type"]].from_dict(clean)
    arch = config["architectures"][0]
    cls = getattr(transformers, arch, None) or transformers.AutoModelForCausalLM._model_mapping[type(cfg)]
    with torch.device("meta"):
        model = cls(cfg)
    model.tie_weights()
    seen: dict[int, str] = {}
    tied = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if seen.setdefault(id(p), name) != name:
            tied.add(name)
    state = {k: v for k, v in model.state_dict().items() if k not in tied}
    shapes = {k: tuple(v.shape) for k, v in revert_weight_conversion(model, state).items()}
    # a tied head some checkpoints store anyway (e.g. gemma's pre-release lm_head) has its twin's shape
    params = dict(model.named_parameters(remove_duplicate=False))
    shapes.update({name: tuple(params[name].shape) for name in tied if name not in shapes})
    return shapes


def rule_shape(
    name: str, config: dict, expected: dict, names: set[str], fallback: str = "F16"
) -> tuple[tuple[int, ...], list[str]]:
    """(shape, candidate dtypes) of one stored tensor; `fallback` is the dtype when the config names none."""
    named = config.get("torch_dtype") or config.get("dtype")
    default = DTYPES[named] if named else fallback
    hidden = config.get("hidden_size")
    if name.endswith("weight_scale_inv"):
        base = rule_shape(name.replace("weight_scale_inv", "weight"), config, expected, names, fallback)[0]
        b0, b1 = config["quantization_config"]["weight_block_size"]
        return (math.ceil(base[0] / b0), math.ceil(base[1] / b1)), ["F32", "BF16"]
    if name.endswith("_blocks") or name.endswith("_scales"):
        base = expected[re.sub(r"_(blocks|scales)$", "", name)]
        experts, inner, outer = base
        shape = (experts, outer, inner // 32)
        return (shape + (16,) if name.endswith("_blocks") else shape), ["U8"]
    bnb = BNB_STATE.search(name)
    if bnb:  # bitsandbytes 4-bit quantization state of `<module>.weight`
        module = name[: bnb.start()]
        n = math.prod(expected[module + ".weight"])
        blocks = math.ceil(n / BNB_BLOCK)
        nested = module + ".weight.nested_absmax" in names
        kind = bnb.group(1)
        if kind == "absmax":
            return (blocks,), ["U8" if nested else "F32"]
        if kind == "nested_absmax":
            return (math.ceil(blocks / BNB_NESTED_BLOCK),), ["F32"]
        if kind == "nested_quant_map":
            return (256,), ["F32"]
        if kind == "quant_map":
            return (16,), ["F32"]
        quant_type = bnb.group(2)
        return (bnb_state_length(config, expected[module + ".weight"], quant_type, nested),), ["U8"]
    if (
        name in expected
        and name.endswith(".weight")
        and any(name + ".quant_state.bitsandbytes__" + q in names for q in ("nf4", "fp4"))
    ):
        return (math.ceil(math.prod(expected[name]) / 2), 1), ["U8"]  # two 4-bit codes per byte
    quant = config.get("quantization_config") or {}
    packed = GPTQ_AWQ.search(name)
    if packed and quant.get("quant_method") in ("gptq", "awq"):
        out, inp = expected[name[: packed.start()] + ".weight"]
        bits = quant.get("bits") or quant.get("w_bit")
        group = quant.get("group_size") or quant.get("q_group_size")
        per_int = 32 // bits
        groups = 1 if group in (None, -1) else math.ceil(inp / group)
        kind = packed.group(1)
        if quant["quant_method"] == "awq" and str(quant.get("version", "gemm")).lower() != "gemm":
            raise KeyError(f"no shape rule for AWQ version {quant.get('version')} ({name})")
        awq = quant["quant_method"] == "awq"
        shapes = {
            "qweight": (inp, out // per_int) if awq else (inp // per_int, out),
            "qzeros": (groups, out // per_int),
            "scales": (groups, out),
            "g_idx": (inp,),
        }
        return shapes[kind], (["F16"] if kind == "scales" else ["I32"])
    if name.endswith(".SCB"):
        return (expected[name[: -len("SCB")] + "weight"][0],), ["F32"]
    if name.endswith(".weight_format"):
        return (), ["U8"]
    if name in expected and name.endswith(".weight") and name[: -len("weight")] + "SCB" in names:
        return expected[name], ["I8"]
    if name in expected:
        fp8 = name.endswith(".weight") and name[: -len("weight")] + "weight_scale_inv" in names
        candidates = ["F8_E4M3"] if fp8 else [default]
        if name.endswith("e_score_correction_bias"):
            candidates = ["F32", default]
        return expected[name], candidates
    if name.endswith("inv_freq"):
        heads = config.get("num_attention_heads") or config.get("n_head")
        head_dim = config.get("head_dim") or hidden // heads
        return (head_dim // 2,), ["F32", default]
    match = LAYER.search(name)
    layers = config.get("num_hidden_layers")
    if match and int(match.group(1)) >= layers:  # multi-token-prediction layer
        tail = name[match.end() :]
        vocab = config["vocab_size"]
        special = {
            "enorm.weight": (hidden,),
            "hnorm.weight": (hidden,),
            "eh_proj.weight": (hidden, 2 * hidden),
            "embed_tokens.weight": (vocab, hidden),
            "shared_head.norm.weight": (hidden,),
            "shared_head.head.weight": (vocab, hidden),
        }
        if tail in special:
            return special[tail], [default]
        twin = name.replace(f".layers.{match.group(1)}.", f".layers.{layers - 1}.")
        return rule_shape(twin, config, expected, names, fallback)
    raise KeyError(f"no shape rule for {name}")


def generate(repo: Path) -> None:
    config = json.loads((repo / "config.json").read_text())
    index_path = repo / "model.safetensors.index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
        weight_map = index["weight_map"]
        total_size = index.get("metadata", {}).get("total_size")  # mergekit writes "metadata": {}
        total_elements = None
    else:
        spec = json.loads((repo / "tensor_names.json").read_text())
        weight_map = {n: "model.safetensors" for n in spec["names"]}
        total_size = spec.get("total_bytes")
        total_elements = spec.get("total_elements")
    expected = expected_shapes(config)
    names = set(weight_map)
    settings_path = repo / "_replica.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    fallback = settings.get("default_dtype", "F16")
    plan = {name: rule_shape(name, config, expected, names, fallback) for name in weight_map}
    for name, dtype in settings.get("header_dtypes", {}).items():
        plan[name] = (plan[name][0], [dtype])
    # Open lengths (U8 tensors whose length a rule leaves within a range): they take what total_size leaves.
    open_names = sorted(n for n in weight_map if open_length(n, names) != (0, 0))
    low = sum(open_length(n, names)[0] for n in open_names)
    high = sum(open_length(n, names)[1] for n in open_names)

    # Resolve open dtype choices by the one combination (per rule group) that matches total_size. FP8 block scales
    # are a group of their own: their candidates can equal another rule's (e_score_correction_bias: F32 or BF16).
    def group(name: str, candidates: list[str]) -> tuple[bool, tuple[str, ...]]:
        return name.endswith("weight_scale_inv"), tuple(candidates)

    open_groups = sorted({group(n, c) for n, (_, c) in plan.items() if len(c) > 1})
    for choice in itertools.product(*[g[1] for g in open_groups]):
        pick = dict(zip(open_groups, choice, strict=True))
        dtypes = {n: (pick[group(n, c)] if len(c) > 1 else c[0]) for n, (_, c) in plan.items()}
        total = sum(math.prod(plan[n][0]) * BYTES[dtypes[n]] for n in plan)
        if total_size is None or low <= total_size - total <= high:
            break
    else:
        raise SystemExit(
            f"{repo}: no dtype choice adds up to total_size {total_size}; last try {total} + [{low}, {high}]"
        )
    if open_names:
        remainder = (
            (total_size - total)
            if total_size is not None
            else sum((a + b) // 2 for a, b in (open_length(n, names) for n in open_names))
        )
        each, extra = divmod(remainder, len(open_names))
        for i, name in enumerate(open_names):
            plan[name] = ((plan[name][0][0] + each + (i < extra),), plan[name][1])
        total += remainder
        print(
            f"  {len(open_names)} open-length tensors share {remainder:,} bytes (mean {remainder / len(open_names):.2f}"
            f" each, allowed {open_length(open_names[0], names)}): the total is exact, their split is not known"
        )
    elements = sum(math.prod(shape) for shape, _ in plan.values())
    if total_elements is not None and elements != total_elements:
        raise SystemExit(f"{repo}: the shapes hold {elements:,} elements, the source lists {total_elements:,}")
    by_shard: dict[str, dict] = {}
    for name in sorted(weight_map, key=lambda n: (-DTYPE_ORDER.index(dtypes[n]), n)):
        by_shard.setdefault(weight_map[name], {})[name] = (plan[name][0], dtypes[name])
    out = repo / "headers"
    out.mkdir(exist_ok=True)
    metadata = settings.get("header_metadata", {"format": "pt"})  # null: the writer stored no __metadata__
    for shard, tensors in by_shard.items():
        header: dict = {} if metadata is None else {"__metadata__": metadata}
        offset = 0
        for name, (shape, dtype) in tensors.items():
            size = math.prod(shape) * BYTES[dtype]
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header, separators=(",", ":"))
        (out / f"{shard}.json").write_text(text)
        size = 8 + len(text) + (-len(text) % 8) + offset
        real = settings.get("lfs_sizes", {}).get(shard)
        if real is not None:
            verdict = "exact" if real == size else f"differs by {real - size:+,} bytes"
            print(f"  {shard}: generated {size:,} bytes, Hub {real:,}: {verdict}")
    checked = f"total_size {total_size}" if total_elements is None else f"{elements:,} elements = the source's count"
    print(f"{repo}: {len(weight_map)} tensors in {len(by_shard)} file(s), {total:,} bytes; {checked}")


def generate_adapter(repo: Path, base: Path) -> None:
    """adapter_model.safetensors header of a PEFT LoRA adapter, from its adapter_config.json and the base config.

    PEFT saves `base_model.model.<module>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r] for every
    targeted Linear (names without the adapter name), in the adapter's dtype (F32 unless cast).
    """
    adapter = json.loads((repo / "adapter_config.json").read_text())
    expected = expected_shapes(json.loads((base / "config.json").read_text()))
    r, targets = adapter["r"], adapter["target_modules"]
    tensors = {}
    for name, shape in expected.items():
        module = name[: -len(".weight")]
        if name.endswith(".weight") and len(shape) == 2 and module.rsplit(".", 1)[-1] in targets:
            tensors[f"base_model.model.{module}.lora_A.weight"] = (r, shape[1])
            tensors[f"base_model.model.{module}.lora_B.weight"] = (shape[0], r)
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(tensors):
        size = math.prod(tensors[name]) * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name]), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":"))
    (repo / "headers").mkdir(exist_ok=True)
    (repo / "headers" / "adapter_model.safetensors.json").write_text(text)
    size = 8 + len(text) + (-len(text) % 8) + offset
    settings = json.loads((repo / "_replica.json").read_text()) if (repo / "_replica.json").exists() else {}
    real = settings.get("lfs_sizes", {}).get("adapter_model.safetensors")
    verdict = "" if real is None else ("exact" if real == size else f"differs by {real - size:+,} bytes")
    print(f"{repo}: {len(tensors)} tensors, {offset:,} data bytes, file {size:,} bytes; Hub {real}: {verdict}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--adapter"]:
        generate_adapter(Path(sys.argv[2]), Path(sys.argv[4]))
    else:
        for arg in sys.argv[1:]:
            generate(Path(arg))
