"""`hfsize compare` on real pairs from the fixtures, through the Hub replica and the real CLI.

Expected deltas are arithmetic on the two real configs (shown in comments) or the real indexes'
total_size, never hfsize's own output.
"""

from __future__ import annotations

import json
import shutil

from inspector.cli import run
from tests.helpers import FIXTURES


def compare_json(capsys, *args: str) -> dict:
    code = run(["compare", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def changes(result: dict) -> dict[str, tuple]:
    return {c["key"]: (c["base"], c["finetune"], c["kind"]) for c in result["config_changes"]}


def test_instruct_finetune_that_grew_the_vocabulary(capsys, on_replica):
    r = compare_json(capsys, "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.3")
    assert changes(r)["vocab_size"] == (32000, 32768, "shape")
    assert changes(r)["transformers_version"][2] == "cosmetic"
    # 768 new rows in the embeddings and in the untied head, 4,096 wide
    assert r["parameters_delta"] == 768 * 4096 * 2
    assert r["parameters_delta_by_component"]["embeddings"] == 768 * 4096
    assert r["parameters_delta_by_component"]["output_head"] == 768 * 4096
    assert "vocabulary resized by +768 tokens" in r["verdict"]
    assert r["memory_delta"]["bf16"] >= 768 * 4096 * 2 * 2  # at least the new bf16 rows


def test_same_shape_instruct_finetune_with_longer_rope(capsys, on_replica):
    r = compare_json(capsys, "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2")
    assert r["parameters_delta"] == 0
    assert changes(r)["rope_theta"][:2] == (10000.0, 1000000.0)
    assert changes(r)["rope_theta"][2] == "behaviour"
    assert "context extended" in r["verdict"]
    assert not any(c["kind"] == "shape" for c in r["config_changes"])


def test_tensor_diff_from_headers_groups_and_totals(capsys, on_replica):
    """Two Qwen2.5-14B-shaped checkpoints: sakura keeps vocab 152,064, cogito trimmed it to 151,665."""
    base = "1235357-Backup_hf_sakura-14b-qwen2.5-v1.0-q6k/sakura-14b-qwen2.5-v1.0"
    r = compare_json(capsys, base, "deepcogito/cogito-v1-preview-qwen-14B")
    assert r["parameters_delta"] == -(152064 - 151665) * 5120 * 2  # embeddings and untied head
    assert "vocabulary resized by -399 tokens" in r["verdict"]
    reshaped = {g["pattern"]: (g["base"], g["finetune"]) for g in r["tensors"]["reshaped"]}
    # sakura was re-saved in fp16, cogito keeps Qwen's bf16: every other tensor is re-typed, 48 layers' worth
    assert reshaped["model.embed_tokens.weight"] == ("F16[152064, 5120]", "BF16[151665, 5120]")
    assert reshaped["lm_head.weight"] == ("F16[152064, 5120]", "BF16[151665, 5120]")
    assert r["tensors"]["added"] == r["tensors"]["removed"] == []
    retyped = {g["pattern"]: g["count"] for g in r["tensors"]["retyped"]}
    assert retyped["model.layers.*.self_attn.q_proj.weight"] == 48
    assert "saved in another dtype (fp16 -> bf16)" in r["verdict"]

    def total(folder: str) -> int:
        return json.loads((FIXTURES / folder / "model.safetensors.index.json").read_text())["metadata"]["total_size"]

    expected = total("deepcogito/cogito-v1-preview-qwen-14B") - total(f"_derived/{base}")
    assert r["stored_bytes_delta"] == expected == -8_171_520


def test_finetune_that_added_chatml_tokens_to_mixtral(capsys, on_replica):
    r = compare_json(
        capsys, "mistralai/Mixtral-8x7B-v0.1", "JakobJohannesson-mixtral_dolphin_v2.5/dolphin-2.5-mixtral-8x7b"
    )
    assert r["parameters_delta"] == 2 * 4096 * 2  # two tokens, embeddings + head
    assert "vocabulary resized by +2 tokens" in r["verdict"]
    assert r["tensors"]["available"] is False  # dolphin ships pickle shards only


def test_quantized_derivative(capsys, on_replica):
    r = compare_json(capsys, "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian", "TheBloke/Llama-2-13B-chat-GPTQ")
    assert "quantized derivative (gptq 4-bit)" in r["verdict"]
    assert changes(r)["quantization_config"][2] == "behaviour"


def test_finetune_saved_in_another_dtype(capsys, on_replica):
    r = compare_json(
        capsys, "bjornerikkorum-RUTERGPT13B/Llama-2-13b-chat-norwegian", "HPMLL-llm-benchmark/Llama-2-13b-hf-fp32-dummy"
    )
    assert r["parameters_delta"] == 0
    assert "saved in another dtype (fp16 -> fp32)" in r["verdict"]
    assert changes(r)["dtype"][:2] == ("float16", "float32")


def test_lora_adapter_on_its_base(capsys, on_replica):
    r = compare_json(capsys, "mistralai/Mistral-7B-v0.1", "devadigapratham-MistralXGo-7B/MistralXGo-7B")
    a = r["adapter"]
    # r=16 on 7 projections x 32 layers: per layer q,o 16x(4096+4096), k,v 16x(4096+1024), gate,up,down 16x(4096+14336)
    per_layer = 2 * 16 * 8192 + 2 * 16 * 5120 + 3 * 16 * 18432
    assert a["parameters_from_config"] == 32 * per_layer == 41_943_040
    assert a["parameters_stored"] == 41_943_040 and a["stored_bytes"] == 4 * 41_943_040
    assert a["modules"] == 7 * 32 and a["rank"] == 16
    assert a["serve_bytes"]["bf16"] - a["merged_bytes"]["bf16"] == 4 * 41_943_040
    assert r["verdict"].startswith("adapter: LORA r=16")


def test_adapter_alone_follows_its_declared_base(capsys, on_replica):
    # the adapter's base, unsloth/mistral-7b-bnb-4bit, is not on the replica: one line saying what to do
    assert run(["compare", "devadigapratham-MistralXGo-7B/MistralXGo-7B"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "unsloth/mistral-7b-bnb-4bit" in err


def test_finetune_alone_follows_card_base_model(capsys, monkeypatch, hf_home, make_repo):
    base = FIXTURES / "mistralai" / "Mistral-7B-v0.1" / "config.json"
    fine = FIXTURES / "mistralai" / "Mistral-7B-Instruct-v0.3" / "config.json"
    make_repo("mistralai/Mistral-7B-v0.1", files={"config.json": base.read_bytes()})
    hub = make_repo(
        "someone/instruct",
        files={"config.json": fine.read_bytes()},
        settings={"card_data": {"base_model": "mistralai/Mistral-7B-v0.1"}},
    )
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    r = compare_json(capsys, "someone/instruct")
    assert r["base"] == "mistralai/Mistral-7B-v0.1" and r["base_from"] == "card base_model"
    assert r["parameters_delta"] == 768 * 4096 * 2


def test_no_declared_base_is_one_line(capsys, on_replica):
    assert run(["compare", "mistralai/Mistral-7B-v0.1"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "hfsize compare BASE" in err


def test_several_finetunes_one_table_and_json_lines(capsys, on_replica):
    fines = ["mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-Instruct-v0.3"]
    assert run(["compare", "mistralai/Mistral-7B-v0.1", *fines, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["finetune"] for r in rows] == fines
    assert run(["compare", "mistralai/Mistral-7B-v0.1", *fines]) == 0
    out = capsys.readouterr().out
    assert "Instruct-v0.2" in out and "Instruct-v0.3" in out and "+768" in out


def test_local_folders(capsys, tmp_path):
    for name in ("Mistral-7B-v0.1", "Mistral-7B-Instruct-v0.3"):
        shutil.copytree(FIXTURES / "mistralai" / name, tmp_path / name)
    r = compare_json(capsys, str(tmp_path / "Mistral-7B-v0.1"), str(tmp_path / "Mistral-7B-Instruct-v0.3"))
    assert r["parameters_delta"] == 768 * 4096 * 2


def _folder(tmp_path, name: str, config: dict) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_an_omitted_default_is_no_config_change(capsys, tmp_path):
    """Meta's Llama-2-7b-chat-hf config (real, fixtures/hub/_derived) declares num_key_value_heads 32; configs
    written before transformers 4.31 (huggyllama/llama-7b's) omit it, and LlamaConfig resolves a missing
    num_key_value_heads to num_attention_heads (32): the same model, no change to report."""
    real = json.loads(
        (FIXTURES / "_derived/metacarbon-attentionReasoning-llm/Llama-2-7b-chat-hf/config.json").read_text()
    )
    assert real["num_key_value_heads"] == real["num_attention_heads"] == 32
    older = {k: v for k, v in real.items() if k != "num_key_value_heads"}
    r = compare_json(capsys, _folder(tmp_path, "declared", real), _folder(tmp_path, "omitted", older))
    assert "num_key_value_heads" not in changes(r)
    assert r["parameters_delta"] == 0
    assert not any(c["kind"] == "shape" for c in r["config_changes"])


def test_an_omitted_key_is_the_class_default_not_none(capsys, tmp_path):
    """Mistral-7B-v0.1's config says sliding_window null (full attention); without the key MistralConfig's
    default applies, 4096 (transformers' MistralConfig docstring: 'defaults to 4096'): a real change, None -> 4096,
    where comparing the raw JSON would say nothing (both None)."""
    real = json.loads((FIXTURES / "mistralai/Mistral-7B-v0.1/config.json").read_text())
    assert real["sliding_window"] is None
    omitted = {k: v for k, v in real.items() if k != "sliding_window"}
    r = compare_json(capsys, _folder(tmp_path, "null", real), _folder(tmp_path, "omitted", omitted))
    assert changes(r)["sliding_window"][:2] == (None, 4096)
