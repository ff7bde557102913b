"""Tiny random Llama/Qwen2 models for the pruner tests (built in-process; nothing downloads)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

VOCAB = 96


def tiny_model(family="llama", tied=True, hidden=64, layers=4, heads=4, kv_heads=2, intermediate=96, seed=0):
    torch.manual_seed(seed)
    common = dict(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        tie_word_embeddings=tied,
        max_position_embeddings=64,
    )
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(**common)).eval()
    return Qwen2ForCausalLM(Qwen2Config(**common)).eval()


def calibration(n_batches=2, batch=4, tokens=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (batch, tokens), generator=g) for _ in range(n_batches)]


def probe(seed=2):
    return torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(seed))


def state_snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model, snapshot):
    state = model.state_dict()
    return state.keys() == snapshot.keys() and all(torch.equal(state[k], snapshot[k]) for k in snapshot)
