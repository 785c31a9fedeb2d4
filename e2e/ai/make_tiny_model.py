#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF model with random weights, for tests.

Nothing is downloaded: the model is generated from a seed (same seed, same bytes). It is a real
model for llama.cpp (2 blocks, embedding 64, 4 heads / 2 KV heads, FFN 128, F32, ~0.5 MiB) with a
SentencePiece-style vocabulary (`<unk>`, `<s>`, `</s>`, the 256 byte-fallback tokens
`<0x00>`..`<0xFF>` and some printable pieces) and a chat template, so `llama_cpp.server` serves
it on /v1/chat/completions like any chat model. Its answers are gibberish; the wire format,
streaming, usage and errors are llama.cpp's own, which is what the tests need.

Usage: make_tiny_model.py OUT.gguf [--seed N]
Needs the PyPI packages `gguf` and `numpy` (installed by `e2e/setup.sh ai`).
"""

import argparse
import os

import numpy as np
from gguf import GGUFWriter, TokenType

N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
N_LAYER = 2
N_CTX = 2048

# `{{ ... }}` is Jinja, rendered by llama-cpp-python's Jinja2ChatFormatter.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Printable pieces: the ASCII letters and digits, with and without the SentencePiece word
# marker, and a few common words. Everything else falls back to bytes.
WORDS = ["the", "a", "is", "of", "and", "to", "in", "hello", "world", "fleet", "gate"]


def vocabulary():
    tokens, scores, types = [], [], []

    def add(piece, score, kind):
        tokens.append(piece)
        scores.append(score)
        types.append(kind)

    add("<unk>", 0.0, TokenType.UNKNOWN)
    add("<s>", 0.0, TokenType.CONTROL)
    add("</s>", 0.0, TokenType.CONTROL)
    for b in range(256):
        add(f"<0x{b:02X}>", 0.0, TokenType.BYTE)
    score = -1.0
    pieces = ["\u2581"]
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?":
        pieces += [c, "\u2581" + c]
    pieces += ["\u2581" + w for w in WORDS]
    # Every piece once: llama.cpp refuses a vocabulary with duplicates ("\u2581a" is both a
    # letter and a word above).
    for p in dict.fromkeys(pieces):
        add(p, score, TokenType.NORMAL)
        score -= 0.01
    return tokens, scores, types


def write(path, seed):
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    tmp = f"{path}.{os.getpid()}.tmp"
    w = GGUFWriter(tmp, "llama")
    w.add_name(f"fleetgate-tiny-{seed}")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def t(name, *shape, scale=0.2):
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    # numpy shapes are (out, in); GGUF stores them reversed, as llama.cpp expects.
    t("token_embd.weight", n_vocab, N_EMBD)
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        t(f"blk.{i}.attn_q.weight", N_EMBD, N_EMBD)
        t(f"blk.{i}.attn_k.weight", N_HEAD_KV * head_dim, N_EMBD)
        t(f"blk.{i}.attn_v.weight", N_HEAD_KV * head_dim, N_EMBD)
        t(f"blk.{i}.attn_output.weight", N_EMBD, N_EMBD)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        t(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    t("output.weight", n_vocab, N_EMBD, scale=1.0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    write(args.out, args.seed)


if __name__ == "__main__":
    main()
