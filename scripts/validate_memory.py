"""Measure the real bytes a model holds after from_pretrained and compare them with hfsize's prediction.

Usage: python scripts/validate_memory.py [--precisions fp32,bf16,int8,nf4,nf4_double_quant] CONFIG.json ...
       python scripts/validate_memory.py --kv [--context N --batch N] CONFIG.json ...
       add --device cuda [--full] on a GPU machine: load there (full size with --full) and also report
       torch.cuda.memory_allocated() after loading (and after the forward pass with --kv)

Each config is shrunk (layers, width, vocab) so random weights fit in CPU memory, saved as safetensors,
and loaded with from_pretrained at each precision (bitsandbytes 0.50+ quantizes on CPU). The bytes held
are parameters, buffers and quantization state (int8 SCB, 4-bit absmax/quant_map/nested state), which
model.get_memory_footprint() leaves out. measure_model_bytes() is from docs/quantization-rules.md.

With --kv, a forward pass over `context` tokens x `batch` fills transformers' own DynamicCache, and the
bytes of its key/value tensors are compared with hfsize's KV-cache figure for the same config.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

_QS = {
    "absmax": "4bit.absmax",
    "code": "4bit.quant_map",
    "offset": "4bit.nested_offset",
    "state2.absmax": "4bit.nested_absmax",
    "state2.code": "4bit.nested_quant_map",
}


def _side_tensors(obj, prefix, depth=0):
    """(label, tensor) pairs inside bnb side objects (QuantState, MatmulLtState); never follows nn.Module refs."""
    if obj is None or depth > 4 or isinstance(obj, torch.nn.Module):
        return
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _side_tensors(v, prefix, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _side_tensors(v, f"{prefix}.{k}", depth + 1)
    elif type(obj).__module__.startswith("bitsandbytes"):
        for k, v in vars(obj).items():
            yield from _side_tensors(v, f"{prefix}.{k}", depth + 1)


def _label(label, where):
    if label.startswith("quant_state."):
        sub = label.removeprefix("quant_state.")
        return _QS.get(sub, "4bit." + sub)
    if label in ("SCB", "CB") or label.startswith("state."):  # Int8Params.SCB/CB, Linear8bitLt.state.*
        return "int8." + label
    return f"side.{where}.{label}"


def measure_model_bytes(model: torch.nn.Module) -> dict:
    seen, by_kind = set(), defaultdict(int)

    def add(kind, t):
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return
        n = t.numel() * t.element_size()
        if (t.data_ptr(), n) not in seen:  # tied weights; CB is weight.data; module.quant_state is weight.quant_state
            seen.add((t.data_ptr(), n))
            by_kind[kind] += n

    for mod in model.modules():
        for _name, p in mod.named_parameters(recurse=False):
            cls = type(p).__name__
            add(
                {"Params4bit": "4bit.packed_weight", "Int8Params": "int8.weight"}.get(cls, f"param.{str(p.dtype)[6:]}"),
                p,
            )
        for bname, b in mod.named_buffers(recurse=False):
            pers = "nonpersistent" if bname in mod._non_persistent_buffers_set else "persistent"
            add(f"buffer.{pers}.{str(b.dtype)[6:]}", b)
    for mod in model.modules():
        for p in mod.parameters(recurse=False):
            for attr, v in vars(p).items():
                if attr != "module":
                    for label, t in _side_tensors(v, attr):
                        add(_label(label, "param"), t)
        for attr, v in vars(mod).items():
            if not attr.startswith("_") and not isinstance(v, (torch.nn.Parameter, torch.nn.Module)):
                for label, t in _side_tensors(v, attr):
                    add(_label(label, "module"), t)
    bd = dict(sorted(by_kind.items()))
    main = ("param.", "buffer.", "int8.weight", "4bit.packed_weight")
    return {
        "total_bytes": sum(bd.values()),
        "params_and_buffers_bytes": sum(v for k, v in bd.items() if k.startswith(main)),
        "quant_state_bytes": sum(v for k, v in bd.items() if not k.startswith(main)),
        "breakdown": bd,
        "get_memory_footprint": model.get_memory_footprint() if hasattr(model, "get_memory_footprint") else None,
    }


def shrink(config: dict) -> dict:
    """A small model of the same family: same structure, small sizes (keeps GQA ratios and MoE)."""
    small = dict(config)
    small.pop("quantization_config", None)
    heads = 4
    kv = 2 if config.get("num_key_value_heads", heads) != config.get("num_attention_heads", heads) else heads
    small.update(
        hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=heads,
        num_key_value_heads=kv, vocab_size=1024, head_dim=64, max_position_embeddings=512,
    )  # fmt: skip
    for key in ("moe_intermediate_size", "shared_expert_intermediate_size"):
        if key in small:
            small[key] = 128
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if key in small:
            small[key] = 4
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        small.pop(key, None)  # real ids fall outside the small vocabulary
    if "layer_types" in small:
        small["layer_types"] = small["layer_types"][:2]
    return small


def _allocated(device: str) -> int | None:
    """Bytes the CUDA caching allocator has handed out on `device`; None on the CPU."""
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


def _release(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def load(folder: Path, precision: str, device: str = "cpu"):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict = {}
    if precision in ("fp32", "bf16", "fp16"):
        kwargs["dtype"] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    elif precision == "int8":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    else:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="fp4" if precision == "fp4" else "nf4",
            bnb_4bit_use_double_quant=precision == "nf4_double_quant",
        )
    return AutoModelForCausalLM.from_pretrained(folder, device_map=device, **kwargs)


def validate(config: dict, precisions: list[str], device: str = "cpu") -> list[dict]:
    """Rows of {precision, predicted, measured, allocated}: hfsize's weights_bytes vs the bytes the loaded
    model holds (and, on CUDA, what the allocator handed out for it)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from inspector.api import report_for
    from inspector.hub import read_local

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text(json.dumps(config))
        cfg = AutoConfig.from_pretrained(folder)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
        report = report_for(read_local(str(folder)))
        for precision in precisions:
            predicted = report.memory[precision].weights_bytes
            before = _allocated(device)
            model = load(folder, precision, device)
            after = _allocated(device)
            measured = measure_model_bytes(model)["total_bytes"]
            allocated = None if before is None or after is None else after - before
            rows.append({"precision": precision, "predicted": predicted, "measured": measured, "allocated": allocated})
            del model
            _release(device)
    return rows


def measure_kv(config: dict, context: int, batch: int, device: str = "cpu") -> dict:
    """hfsize's fp32 KV-cache bytes vs what a forward pass leaves in transformers' DynamicCache.

    `config` must be small enough to run; its dtype is set to float32 so both sides use 4-byte elements.
    """
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    from inspector.api import report_for
    from inspector.hub import read_local
    from inspector.memory import MemorySettings

    config = {**config, "dtype": "float32", "torch_dtype": "float32"}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        report = report_for(read_local(tmp), memory=MemorySettings(context=context, batch=batch))
    model_type = config["model_type"]
    native = {k: v for k, v in config.items() if k != "auto_map"}
    if model_type in ("RefinedWebModel", "RefinedWeb"):  # the repo code's key names, as tiiuae renamed them
        model_type = "falcon"
        renames = {"n_head": "num_attention_heads", "n_layer": "num_hidden_layers", "n_head_kv": "num_kv_heads"}
        native = {renames.get(k, k): v for k, v in native.items()}
    cfg = CONFIG_MAPPING[model_type].from_dict({**native, "model_type": model_type})
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    ids = torch.randint(0, cfg.get_text_config().vocab_size, (batch, context), device=device)
    before = _allocated(device)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = out.past_key_values
    del out  # the logits: only the cache stays allocated
    after = _allocated(device)
    measured = sum(
        t.numel() * t.element_size()
        for layer in cache.layers
        for t in (layer.keys, layer.values)
        if isinstance(t, torch.Tensor)
    )
    allocated = None if before is None or after is None else after - before
    predicted = report.memory["fp32"].kv_cache_bytes
    return {"predicted": predicted, "measured": measured, "allocated": allocated, "layers": len(cache.layers)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--precisions", default="fp32,bf16,fp16,int8,nf4,nf4_double_quant,fp4")
    parser.add_argument("--kv", action="store_true", help="validate the KV cache instead of the weights")
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where to load: cpu (default) or cuda[:N]")
    parser.add_argument("--full", action="store_true", help="the config at full size (not shrunk): for a GPU")
    args = parser.parse_args(argv)

    def sized(path: Path) -> dict:
        config = json.loads(path.read_text())
        return config if args.full else shrink(config)

    def cell(n: int | None) -> str:
        return f"{n:>14,}" if n is not None else f"{'-':>14}"

    if args.kv:
        print(f"{'model':40} {'predicted KV':>14} {'measured KV':>14} {'allocated':>14}")
        for path in args.configs:
            row = measure_kv(sized(path), args.context, args.batch, args.device)
            print(f"{path.parent.name:40} {row['predicted']:>14,} {row['measured']:>14,} {cell(row['allocated'])}")
        return 0
    worst = 0.0
    print(f"{'model':40} {'precision':18} {'predicted':>14} {'measured':>14} {'error':>8} {'allocated':>14}")
    for path in args.configs:
        for row in validate(sized(path), args.precisions.split(","), args.device):
            error = (row["predicted"] - row["measured"]) / row["measured"]
            worst = max(worst, abs(error))
            name, precision = path.parent.name, row["precision"]
            print(
                f"{name:40} {precision:18} {row['predicted']:>14,} {row['measured']:>14,} {error:>8.3%} "
                f"{cell(row['allocated'])}"
            )
    print(f"worst relative error: {worst:.4%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
