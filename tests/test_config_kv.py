"""The light install's cache layers from config.json alone (config_kv.py) against the exact path.

The truth here is the exact path, which config_kv does not use: architecture.build resolves each config with the
installed transformers' own config class, asks transformers' DynamicCache for its layer types and reads the
state sizes from the built token mixers (tests/test_cache_kinds.py checks that path against the cache after a
forward pass). Both run in this process; the light install itself runs in tests/test_light_install.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from inspector import config_kv
from inspector.architecture import build
from inspector.results import KvLayer
from inspector.state import context_limit
from tests.helpers import FIXTURES

EXTRA_CONFIGS = Path(__file__).parent / "data" / "config_kv"  # real configs no replica repo serves (its README)
CONFIGS = sorted(FIXTURES.glob("**/config.json")) + sorted(EXTRA_CONFIGS.glob("*.json"))
# Model types whose cache config_kv leaves to the model class (their layers' state needs the modules' sizes)
LEFT_TO_THE_CLASS = {"falcon_h1", "RefinedWebModel"}
# Configs transformers 5.24 itself refuses to build (no exact figure to compare with)
NOT_BUILT: set[str] = set()


def _name(path: Path) -> str:
    return path.name if path.parent == EXTRA_CONFIGS else str(path.parent.relative_to(FIXTURES))


def _exact(config: dict):
    built = build(copy.deepcopy(config))
    assert built.built and not built.kv_not_counted, built.reason
    return built


@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_every_fixture_config_agrees_with_the_exact_path_or_is_left_to_the_class(path: Path):
    config = json.loads(path.read_text())
    light = config_kv.kv_layers(config)
    if config.get("model_type") in LEFT_TO_THE_CLASS:
        assert light.layers == () and f"model_type '{config['model_type']}'" in light.needs_model_class
        return
    assert light.needs_model_class == "" and light.layers
    if _name(path) in NOT_BUILT:
        assert not build(copy.deepcopy(config)).built
        return
    exact = _exact(config)
    assert light.layers == exact.kv_layers  # kind, window, elements per token and constant state, layer by layer
    limit = context_limit(config)
    assert (limit[0] if limit else None) == exact.max_positions


def test_the_fixtures_cover_full_sliding_mla_and_linear_attention():
    kinds = set()
    for path in CONFIGS:
        kinds |= {layer.kind for layer in config_kv.kv_layers(json.loads(path.read_text())).layers}
    assert {"full_attention", "sliding_attention", "mla", "linear_attention", "mamba"} <= kinds


def _one_per_type() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in CONFIGS:
        config = json.loads(path.read_text())
        if config.get("model_type") in config_kv.FAMILIES and _name(path) not in NOT_BUILT:
            out.setdefault(config["model_type"], path)
    return out


DROPPABLE = [
    (model_type, key)
    for model_type, path in _one_per_type().items()
    for key in config_kv.FAMILIES[model_type].defaults
    if key in json.loads(path.read_text())
]


@pytest.mark.parametrize(("model_type", "key"), DROPPABLE, ids=[f"{t}-{k}" for t, k in DROPPABLE])
def test_a_key_the_config_leaves_out_takes_the_config_classs_default(model_type: str, key: str):
    """config_kv's defaults table is what transformers' config class fills in: drop the key, both must agree."""
    config = json.loads(_one_per_type()[model_type].read_text())
    del config[key]
    light = config_kv.kv_layers(config)
    assert light.layers == _exact(config).kv_layers


DROP = object()  # the key left out of the config


# Layouts no fixture has, on the model type's own default config (transformers' config class with its defaults,
# layers cut to 8 so the meta-device build is quick) with the keys that select the layout set.
VARIANTS = {
    "qwen2-sliding-from-3": ("qwen2", {"use_sliding_window": True, "sliding_window": 1024, "max_window_layers": 3}),
    "qwen2-window-off": ("qwen2", {"use_sliding_window": False, "sliding_window": 1024}),
    "qwen3-sliding": ("qwen3", {"use_sliding_window": True, "max_window_layers": 5}),
    "qwen2_moe-sliding": ("qwen2_moe", {"use_sliding_window": True, "max_window_layers": 6}),
    "qwen2_moe-default": ("qwen2_moe", {}),
    "qwen3_moe-sliding": ("qwen3_moe", {"use_sliding_window": True, "sliding_window": 512}),
    "gemma2-default": ("gemma2", {}),
    "gemma3_text-default": ("gemma3_text", {}),
    "gemma3_text-pattern-3": ("gemma3_text", {"sliding_window_pattern": 3}),
    "gemma3_text-bidirectional": ("gemma3_text", {"use_bidirectional_attention": True, "sliding_window": 512}),
    "cohere2-default": ("cohere2", {}),
    "cohere2-no-head-dim": ("cohere2", {"head_dim": DROP}),
    "cohere2-pattern-2-own-head-dim": ("cohere2", {"sliding_window_pattern": 2, "head_dim": 64}),
    "mistral-no-window": ("mistral", {"sliding_window": None}),
    "mistral-layer-types": ("mistral", {"layer_types": ["full_attention", "sliding_attention"] * 4}),
    "llama-explicit-layer-types": ("llama", {"layer_types": ["sliding_attention", "full_attention"] * 4,
                                             "sliding_window": 256}),
    "llama-legacy-attention-type": ("llama", {"layer_types": ["attention"] * 8}),
    "phi3-sliding": ("phi3", {"sliding_window": 2047}),
    "gpt_oss-default": ("gpt_oss", {}),
    "deepseek_v3-default": ("deepseek_v3", {"first_k_dense_replace": 1, "n_routed_experts": 8}),
    "qwen3_next-interval-2": ("qwen3_next", {"full_attention_interval": 2, "num_experts": 4}),
    "granite-default": ("granite", {}),
    "ministral-default": ("ministral", {"head_dim": 128}),  # its default config has none and does not build
    "starcoder2-sliding": ("starcoder2", {"sliding_window": 4096}),
    "starcoder2-default": ("starcoder2", {}),
    "olmo2-default": ("olmo2", {}),
    "deepseek_v2-default": ("deepseek_v2", {"first_k_dense_replace": 1, "n_routed_experts": 8}),
    "deepseek_v2-no-kv-heads": ("deepseek_v2", {"num_key_value_heads": DROP, "first_k_dense_replace": 1,
                                                "n_routed_experts": 8}),
    "jamba-period-4-offset-1": ("jamba", {"attn_layer_period": 4, "attn_layer_offset": 1, "mamba_d_state": 8,
                                          "mamba_expand": 3, "num_experts": 2}),
    "gpt2-default": ("gpt2", {}),
}  # fmt: skip


@pytest.mark.parametrize("name", VARIANTS)
def test_layouts_beyond_the_fixtures_agree_with_the_exact_path(name: str):
    from transformers import CONFIG_MAPPING

    model_type, keys = VARIANTS[name]
    config = CONFIG_MAPPING[model_type]().to_dict()
    layers_key = "n_layer" if model_type == "gpt2" else "num_hidden_layers"
    config.update({layers_key: 8, **keys})
    config.pop("layer_types", None) if "layer_types" not in keys else None
    config = {k: v for k, v in config.items() if v is not DROP}
    light = config_kv.kv_layers(config)
    assert light.needs_model_class == "", light.needs_model_class
    assert light.layers == _exact(config).kv_layers


def test_a_multimodal_config_is_read_at_its_text_config():
    """Gemma 3 (image-text-to-text): the cache is the text model's, as transformers' get_text_config picks it."""
    from transformers import CONFIG_MAPPING

    config = CONFIG_MAPPING["gemma3"]().to_dict()
    config["text_config"].update(num_hidden_layers=8, layer_types=None)
    light = config_kv.kv_layers(config)
    assert light.needs_model_class == "" and len(light.layers) == 8
    assert light.layers == _exact(config).kv_layers
    assert {layer.kind for layer in light.layers} == {"sliding_attention", "full_attention"}


def test_what_the_config_cannot_decide_names_the_reason():
    base = json.loads((FIXTURES / "mistralai/Mistral-7B-v0.1/config.json").read_text())
    assert "model_type 'mamba'" in config_kv.kv_layers({**base, "model_type": "mamba"}).needs_model_class
    remote = {**base, "model_type": "deci", "auto_map": {"AutoModelForCausalLM": "modeling_deci.DeciLMForCausalLM"}}
    assert "repo's own code (auto_map)" in config_kv.kv_layers(remote).needs_model_class
    # a model_type transformers knows is built natively whatever auto_map says: so is its cache read
    assert config_kv.kv_layers({**base, "auto_map": remote["auto_map"]}).layers == config_kv.kv_layers(base).layers
    jamba = json.loads(next(FIXTURES.glob("**/AI21-Jamba-1.5-Mini/config.json")).read_text())
    assert "state sizes of layer 0" in config_kv.kv_layers({**jamba, "mamba_expand": None}).needs_model_class
    assert (
        "model_type ''" in config_kv.kv_layers({k: v for k, v in base.items() if k != "model_type"}).needs_model_class
    )
    assert "per_layer_config" in config_kv.kv_layers({**base, "per_layer_config": {"0": {}}}).needs_model_class
    assert "num_attention_heads" in config_kv.kv_layers({**base, "num_attention_heads": None}).needs_model_class
    short = {**base, "layer_types": ["full_attention"] * 3}
    assert "does not list the 32 layers" in config_kv.kv_layers(short).needs_model_class
    odd = {**base, "model_type": "llama", "layer_types": ["full_attention", "mamba2"] * 16}
    assert "'mamba2' layer" in config_kv.kv_layers(odd).needs_model_class


def test_config_kv_runs_where_torch_cannot_be_imported(tmp_path):
    """The light install's figure in a process that cannot import torch, transformers or accelerate (the blocker
    of tests/test_light_install.py), equal to the exact path's in this one."""
    import os
    import subprocess
    import sys

    from tests.test_light_install import BLOCKER, REPO_ROOT

    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    path = next(FIXTURES.glob("**/Qwen3-Next-80B-A3B-Thinking/config.json"))
    code = (
        "import dataclasses, json, sys; from inspector.config_kv import kv_layers;"
        f"found = kv_layers(json.load(open({str(path)!r})));"
        "print(json.dumps([dataclasses.asdict(layer) for layer in found.layers]));"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in {'torch', 'transformers', 'accelerate'}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    layers, modules = proc.stdout.splitlines()
    assert modules == "[]"
    exact = _exact(json.loads(path.read_text()))
    assert [KvLayer(**layer) for layer in json.loads(layers)] == list(exact.kv_layers)
    assert {layer.kind for layer in exact.kv_layers} == {"linear_attention", "full_attention"}
