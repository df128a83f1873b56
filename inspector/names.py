"""The name rules: which tensor names are a layer, the embeddings, the output head, each component. One set.

Each rule says what it is for; they differ on purpose (the vocabulary check wants the token table's
`.weight` only, the component count also wants position embeddings).
"""

from __future__ import annotations

import functools
import re

COMPONENTS = ("embeddings", "attention", "mlp", "experts", "shared_experts", "router", "norms", "output_head", "other")

LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")  # the layer index of a name
# What precedes the layers when a device map places the model (the input side: token and position tables).
INPUT_EMBEDDINGS = re.compile(r"(embed|\bwte\b|\bwpe\b|word_embeddings)")
# The token embedding table, whose rows must be the config's vocab_size.
TOKEN_EMBEDDING_TABLE = re.compile(
    r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|embeddings\.word_embeddings)\.weight$"
)
OUTPUT_HEAD_WEIGHT = re.compile(r"(^|\.)(lm_head|output|embed_out)\.weight$")  # the head's weight tensor
# Components, first match wins.
COMPONENT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("output_head", re.compile(r"^(lm_head|embed_out|output)\.")),
    ("embeddings", re.compile(r"(embed|(^|\.)wte\.|(^|\.)wpe\.|word_embeddings|position_embeddings)")),
    ("norms", re.compile(r"(norm|(^|\.)ln_?\w*\.|layer_?norm)")),
    ("router", re.compile(r"(\.(gate|router)\.(weight|bias|e_score_correction_bias)$|shared_expert_gate\.)")),
    ("shared_experts", re.compile(r"shared_expert")),
    ("experts", re.compile(r"(^|\.)experts[._]")),
    ("attention", re.compile(r"(attn|attention)")),
    ("mlp", re.compile(r"(mlp|feed_forward|ffn|dense_h_to_4h|dense_4h_to_h)")),
)


@functools.lru_cache(maxsize=1 << 18)
def component_of(name: str) -> str:
    for component, pattern in COMPONENT_RULES:
        if pattern.search(name):
            return component
    return "other"


@functools.lru_cache(maxsize=1 << 18)  # every stage asks of the same names (100k+ for big MoE checkpoints)
def layer_of(name: str) -> int | None:
    match = LAYER.search(name)
    return int(match.group(1)) if match else None
