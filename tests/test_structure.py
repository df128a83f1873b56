"""Issue 12: the disagreements that now have one answer, the config view's validation, and the seams
(schemes registry, placement, library calls without side effects)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.errors import ExitCode
from tests.helpers import FIXTURES, TINY_LLAMA, cli

# ---------------------------------------------------------------- one dtype answer


@pytest.fixture(scope="module")
def fp16_with_fp32_inv_freq(tmp_path_factory) -> Path:
    """A real checkpoint: a tiny Llama's weights in F16 and an F32 rotary inv_freq, no dtype in config.json."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("fp16_inv_freq")
    config = {k: v for k, v in TINY_LLAMA.items() if k != "torch_dtype"}
    (folder / "config.json").write_text(json.dumps(config))
    model = LlamaForCausalLM(LlamaConfig(**config)).half()
    tensors = {name: t.contiguous() for name, t in model.state_dict().items()}
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8, dtype=torch.float32)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_the_bulk_dtype_is_the_one_answer(capsys, fp16_with_fp32_inv_freq):
    import torch
    from transformers.modeling_utils import get_state_dict_dtype, load_state_dict

    from inspector.checkpoint import stored_float_dtype
    from inspector.hub import read_local
    from inspector.memory import load_dtype

    folder = fp16_with_fp32_inv_freq
    raw = (folder / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    first = next(k for k in header if k != "__metadata__")
    assert header[first]["dtype"] == "F32"  # the premise: safetensors writes the F32 buffer first
    # transformers' own answer for dtype="auto" with no dtype in the config (first float tensor by name)
    assert get_state_dict_dtype(load_state_dict(str(folder / "model.safetensors"), map_location="meta")) is (
        torch.float16
    )
    repo = read_local(str(folder))
    assert load_dtype(repo.config, repo) == stored_float_dtype(repo) == "fp16"  # was fp32 vs F16
    code, out, err = cli(capsys, str(folder), "--json")
    assert code == 0, err
    memory = json.loads(out)["memory"]
    assert memory["load_dtype"] == "fp16"
    # 16-bit KV cache of the load dtype: 2 (K, V) x 2 kv heads x 16 head_dim x 2 layers x 2048 tokens x 2 bytes
    assert memory["int8"]["kv_cache_bytes"] == 2 * 2 * 16 * 2 * 2048 * 2


# ---------------------------------------------------------------- one answer to "which weight files"


def test_shards_without_an_index_are_no_checkpoint_to_every_command(capsys, tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path / "shards"
    folder.mkdir()
    model = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).to(torch.float16)
    model.save_pretrained(folder, max_shard_size="20KB")
    (folder / "model.safetensors.index.json").unlink()
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) > 1
    with pytest.raises(OSError):  # transformers itself reads nothing from shards without their index
        LlamaForCausalLM.from_pretrained(folder)

    code, out, err = cli(capsys, str(folder), "--json")
    assert code == 0, err
    assert json.loads(out)["checkpoint"]["format"] == "none"  # inspect used to read the shards
    code, out, err = cli(capsys, "check", str(folder), "--json")
    assert code == ExitCode.PROBLEMS
    problems = json.loads(out)["problems"]
    assert [p["code"] for p in problems if p["severity"] == "error"] == ["no_weights"]


def test_weight_files_order_of_preference():
    from inspector.download import weight_files

    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    files = ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model.safetensors"]
    chosen = weight_files(files, index)
    assert (chosen.format, chosen.shards, chosen.missing) == (
        "safetensors",
        ("model-00001-of-00002.safetensors",),
        ("model-00002-of-00002.safetensors",),
    )
    assert weight_files(["model.safetensors", "pytorch_model.bin"]).shards == ("model.safetensors",)
    assert weight_files(["pytorch_model.bin", "extra.safetensors"]).format == "pytorch"
    assert weight_files(["model-00001-of-00002.safetensors"]).format == "none"


# ---------------------------------------------------------------- config view: size keys validated (issue 14, 1-2)

BAD_SIZES = [
    ("num_hidden_layers", '"32"', "num_hidden_layers must be a positive integer, got '32'"),
    ("num_hidden_layers", "32.5", "num_hidden_layers must be a positive integer, got 32.5"),
    ("num_hidden_layers", "true", "num_hidden_layers must be a positive integer, got True"),
    ("num_hidden_layers", "-1", "num_hidden_layers must be a positive integer, got -1"),
    ("hidden_size", "[4096]", "hidden_size must be a positive integer, got [4096]"),
    ("hidden_size", "NaN", "hidden_size must be a positive integer, got nan"),
    ("hidden_size", "1" + "0" * 400, "hidden_size is a 401-digit number, beyond any real model"),
    ("num_attention_heads", "0", "num_attention_heads must be a positive integer, got 0"),
    ("vocab_size", str(10**12), "vocab_size = 1,000,000,000,000 is beyond any real model"),
]


def _folder_with(tmp_path: Path, key: str, raw_value: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    text = json.dumps({k: v for k, v in TINY_LLAMA.items() if k != key})
    (folder / "config.json").write_text(text[:-1] + f', "{key}": {raw_value}}}')
    return folder


@pytest.mark.parametrize(("key", "raw", "message"), BAD_SIZES, ids=[f"{k}={r[:8]}" for k, r, _ in BAD_SIZES])
def test_a_bad_size_key_is_a_malformed_config(capsys, tmp_path, key, raw, message):
    folder = _folder_with(tmp_path, key, raw)
    code, out, err = cli(capsys, str(folder))
    assert code == ExitCode.BAD_FILES, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"Error: config.json in '{folder}': {message}"), err
    assert "Exception raised from" not in err


def test_check_reports_a_bad_size_key_as_bad_files(capsys, tmp_path):
    folder = _folder_with(tmp_path, "num_attention_heads", "0")
    code, out, err = cli(capsys, "check", str(folder), "--json")
    assert code == ExitCode.PROBLEMS
    problems = json.loads(out)["problems"]
    assert (
        problems[0]["code"] == "bad_files"
        and "num_attention_heads must be a positive integer" in problems[0]["message"]
    )


def test_every_real_config_passes_validation():
    from inspector.config import config_view, validate

    configs = sorted(FIXTURES.rglob("config.json"))
    assert len(configs) > 30
    for path in configs:
        config = json.loads(path.read_text())
        assert validate(config, str(path)) == config_view(config)


def test_aliases_resolve_as_transformers_resolves_them():
    from transformers import FalconConfig, GPT2Config, MixtralConfig

    from inspector.config import config_view

    classes = {"tiiuae/falcon-7b": FalconConfig, "openai-community/gpt2-large": GPT2Config,
               "mistralai/Mixtral-8x7B-v0.1": MixtralConfig}  # fmt: skip
    for folder, cls in classes.items():
        raw = json.loads((FIXTURES / folder / "config.json").read_text())
        resolved = cls(**raw)  # transformers' own attribute_map (n_layer, n_embd, n_head) and defaults
        view = config_view(raw)
        assert view.layers == resolved.num_hidden_layers, folder
        assert view.hidden == resolved.hidden_size, folder
        assert view.heads == resolved.num_attention_heads, folder
    falcon = config_view(json.loads((FIXTURES / "tiiuae/falcon-7b/config.json").read_text()))
    assert falcon.kv_heads == 1  # multi_query: one shared key/value head (FalconConfig)
    mixtral = config_view(json.loads((FIXTURES / "mistralai/Mixtral-8x7B-v0.1/config.json").read_text()))
    assert (mixtral.experts, mixtral.top_k, mixtral.kv_heads) == (8, 2, 8)  # Mixtral's model card: 8 experts, top 2


# ---------------------------------------------------------------- schemes registry


def test_every_scheme_name_has_one_object_and_one_json_key(capsys, on_replica):
    from inspector.precisions import AS_STORED, LABELS
    from inspector.schemes import LOAD_SCHEMES, PREQUANTIZED

    assert [*LOAD_SCHEMES, AS_STORED] == list(LABELS)
    assert all(s.needs_architecture == (s.dtype is None) for s in LOAD_SCHEMES.values())
    methods = set()
    for path in FIXTURES.rglob("config.json"):
        quant = json.loads(path.read_text()).get("quantization_config")
        if isinstance(quant, dict):
            methods.add(quant.get("quant_method"))
    assert methods and methods <= set(PREQUANTIZED)  # every real pre-quantized fixture has its scheme
    code, out, err = cli(capsys, "mistralai/Mistral-7B-v0.1", "--json")
    memory = json.loads(out)["memory"]
    assert [k for k in memory if k in LABELS] == list(LABELS)  # schema v1: memory.<scheme>, in order


# ---------------------------------------------------------------- placement


def test_placement_fills_devices_in_order_with_whole_blocks():
    from inspector.placement import Block, Device, place

    blocks = [Block("embeddings", 3), Block("layer 0", 4), Block("layer 1", 4), Block("head", 3)]
    # 3 + 4 = 7 <= 8 on the first; 4 + 3 = 7 on the second
    two = place(blocks, [Device("gpu:0", 8), Device("gpu:1", 8)])
    assert [(d.device, d.bytes, d.blocks) for d in two.loads] == [
        ("gpu:0", 7, ("embeddings", "layer 0")),
        ("gpu:1", 7, ("layer 1", "head")),
    ]
    assert two.complete
    # a small GPU, then host RAM (CPU offload): the GPU takes what fits, a device once left is not returned to
    offload = place(blocks, [Device("gpu:0", 5), Device("cpu", 100)])
    assert [(d.device, d.blocks) for d in offload.loads] == [
        ("gpu:0", ("embeddings",)),
        ("cpu", ("layer 0", "layer 1", "head")),
    ]
    short = place(blocks, [Device("gpu:0", 8)])
    assert short.unplaced == ("layer 1", "head") and not short.complete


def test_blocks_add_up_each_layers_tensors_and_its_kv_cache():
    """Found by mutation testing (docs/mutation.md): a layer's bytes summed with '-' went unnoticed."""
    from inspector.placement import blocks

    # Llama-2-7B's fp16 bytes per tensor (hidden 4,096, MLP 11,008, vocab 32,000), two of its layers
    hidden, mlp, vocab = 4096, 11008, 32000
    sizes = {"model.embed_tokens.weight": 2 * vocab * hidden}
    for i in range(2):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sizes[f"model.layers.{i}.self_attn.{proj}.weight"] = 2 * hidden * hidden
        for proj in ("gate_proj", "up_proj", "down_proj"):
            sizes[f"model.layers.{i}.mlp.{proj}.weight"] = 2 * hidden * mlp
        for norm in ("input_layernorm", "post_attention_layernorm"):
            sizes[f"model.layers.{i}.{norm}.weight"] = 2 * hidden
    sizes |= {"model.norm.weight": 2 * hidden, "lm_head.weight": 2 * vocab * hidden}
    kv = 2 * hidden * 2048 * 2  # keys and values, 2,048 tokens, fp16
    got = blocks(sizes, list(sizes), [kv, kv], extra_first=128)
    layer = 2 * (4 * hidden * hidden + 3 * hidden * mlp + 2 * hidden)  # 404,766,720 B, Meta's 202,383,360 x 2
    assert [(b.name, b.bytes) for b in got] == [
        ("embeddings", 2 * vocab * hidden + 128),
        ("layer 0", layer + kv),
        ("layer 1", layer + kv),
        ("head", 2 * hidden + 2 * vocab * hidden),
    ]


def test_fit_counts_the_devices_the_blocks_need():
    from inspector.gpus import parse_gpu
    from inspector.placement import Block, fit

    gib = 2**30
    blocks = [Block(f"layer {i}", 10 * gib) for i in range(5)]  # 50 GiB in 10 GiB blocks
    # 24 GiB less 1 GiB overhead = 23 GiB: two blocks each, so 3 devices for 5 blocks
    two = fit(blocks, parse_gpu("24GiBx2"), gib)
    assert (two.verdict, two.gpus_needed, two.headroom_bytes) == ("needs_more", 3, 2 * 23 * gib - 50 * gib)
    assert fit(blocks, parse_gpu("24GiBx3"), gib).verdict == "fits"
    assert fit(blocks, parse_gpu("8GiB"), gib).verdict == "does_not_fit"  # a block over 7 GiB never splits


def test_the_device_count_fit_uses_is_the_one_place_fills():
    """devices_used (fit's count, no Device objects built) against place() itself on equal devices, enough of
    them: blocks of random sizes up to the capacity, exactly full devices and single blocks included."""
    import random

    from inspector.placement import Block, Device, devices_used, place

    rng = random.Random(19)
    cases = [([], 10), ([Block("a", 10)], 10), ([Block("a", 5), Block("b", 5), Block("c", 5)], 10)]
    for _ in range(300):
        capacity = rng.randint(1, 50)
        cases.append(([Block(f"layer {i}", rng.randint(1, capacity)) for i in range(rng.randint(1, 30))], capacity))
    for pieces, capacity in cases:
        placed = place(pieces, [Device(f"d:{i}", capacity) for i in range(max(1, len(pieces)))])
        assert placed.complete and devices_used([b.bytes for b in pieces], capacity) == len(placed.loads), pieces


# ---------------------------------------------------------------- library calls


def test_a_library_call_leaves_the_process_as_it_found_it(hub, tmp_path):
    code = (
        "import sys, threading\n"
        "import huggingface_hub.utils._http as http\n"
        "before = http._GLOBAL_CLIENT_FACTORY\n"
        "from inspector.api import fetch\n"
        "repo = fetch('mistralai/Mistral-7B-v0.1', endpoint=sys.argv[1])\n"
        "assert repo.config['model_type'] == 'mistral'\n"
        "print('CLIENT', http._GLOBAL_CLIENT_FACTORY is before)\n"
        "print('THREADS', sorted(t.name for t in threading.enumerate() if not t.daemon))\n"
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HFSIZE_CACHE=str(tmp_path / "cache"))
    env.pop("HF_ENDPOINT", None)
    run = subprocess.run([sys.executable, "-c", code, hub.endpoint], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "CLIENT True" in run.stdout  # huggingface_hub's own client, not hfsize's
    assert "THREADS ['MainThread']" in run.stdout  # no warm-up thread left running


# ---------------------------------------------------------------- compare takes the memory options


def test_compare_sizes_an_adapter_at_the_given_context_and_batch(capsys, on_replica):
    def serve(*options: str) -> int:
        code, out, err = cli(
            capsys, "compare", "mistralai/Mistral-7B-v0.1", "devadigapratham-MistralXGo-7B/MistralXGo-7B",
            *options, "--json",
        )  # fmt: skip
        assert code == 0, err
        return json.loads(out)["adapter"]["serve_bytes"]["bf16"]

    # Mistral-7B (config.json): 32 layers x 8 KV heads x head_dim 128, K and V, 2 bytes in bf16, per token;
    # both contexts are under the 4,096-token sliding window
    per_token = 32 * 8 * 128 * 2 * 2
    assert serve("--context", "2048") - serve("--context", "1024") == 1024 * per_token
    assert serve("--context", "1024", "--batch", "2") - serve("--context", "1024") == 1024 * per_token
