"""The static-cache decoding step behind CUDA graphs (soar.engines.graphs), run eagerly on CPU against the eager loop.

The graph capture itself needs CUDA (benchmarks/gpu_check.py checks it there, against this same loop); what is
checked here is everything the graph replays: the hand-written attention over the static cache, the write column,
length buckets, the mask of a shared prefix, dropping finished rows in place, and the overlap of sampling with the
next step.
"""

import pytest
import torch

from soar.engines import graphs
from soar.engines.decoding import decode
from soar.engines.tiny import default_tokenizer, tiny_model


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _prompts(tokenizer):
    shared = "You are a careful assistant. Solve the problem and put the final answer in a box. Problem: "
    texts = [shared + "what is 2+2?", shared + "a much longer question about seven apples and three pears?",
             shared + "x", "hi there"]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def _both(model, tokenizer, prompts, rows, **kwargs):
    eager = decode(model, tokenizer, prompts, rows, pad_id=tokenizer.pad_token_id, **kwargs)
    rng = kwargs.pop("rng", None)
    if rng is not None:
        kwargs["rng"] = torch.Generator().manual_seed(rng.initial_seed())
    static = graphs.decode_static(model, tokenizer, prompts, rows, pad_id=tokenizer.pad_token_id, graphs=False,
                                  rng=kwargs.pop("rng", None), **kwargs)
    return eager, static


@pytest.mark.parametrize("kv_heads", [4, 2])  # multi-head and grouped-query attention
def test_static_step_decodes_what_the_eager_loop_decodes(tokenizer, monkeypatch, kv_heads):
    monkeypatch.setattr(graphs, "LENGTH_BUCKET", 8)  # cross several length buckets within 24 tokens
    model = tiny_model(tokenizer, seed=3, init_std=0.5, kv_heads=kv_heads)
    prompts = _prompts(tokenizer)
    rows = [0, 1, 1, 2, 3, 3, 0]
    eager, static = _both(model, tokenizer, prompts, rows, max_new_tokens=24, temperature=1.0, top_p=1.0,
                          greedy=True, stop=("q", "Ave"), eos_ids=set(), rng=None)
    assert any(d.stopped for d in eager) and any(not d.stopped for d in eager)  # rows were dropped mid-batch
    for e, s in zip(eager, static):
        assert s.token_ids == e.token_ids
        assert s.stopped == e.stopped
        assert s.logprobs == pytest.approx(e.logprobs, abs=1e-4)


def test_static_step_samples_the_same_draws_from_the_same_seed(tokenizer):
    """Same logits up to rounding and the same uniforms per step: in float32 the draws coincide."""
    model = tiny_model(tokenizer, seed=4, init_std=0.3, kv_heads=2)
    prompts = _prompts(tokenizer)
    eos = {tokenizer.eos_token_id, *tokenizer("e", add_special_tokens=False)["input_ids"]}
    eager, static = _both(model, tokenizer, prompts, [0, 0, 1, 1, 2, 2, 3, 3], max_new_tokens=20, temperature=0.9,
                          top_p=0.95, greedy=False, stop=(), eos_ids=eos, rng=torch.Generator().manual_seed(11))
    assert len({tuple(d.token_ids) for d in eager}) > 1
    assert [d.token_ids for d in static] == [d.token_ids for d in eager]
    for e, s in zip(eager, static):
        assert s.logprobs == pytest.approx(e.logprobs, abs=1e-4)


def test_llama3_rope_scaling_is_kept(tokenizer):
    model = tiny_model(tokenizer, seed=5, init_std=0.5, kv_heads=2)
    model.config.rope_parameters = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
                                    "rope_theta": 10000.0}
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    model.model.rotary_emb = LlamaRotaryEmbedding(model.config)
    assert graphs.supports(model)
    prompts = _prompts(tokenizer)  # ~40 tokens + 40 new: past the 64 positions where llama3 scaling bends
    eager, static = _both(model, tokenizer, prompts, [0, 1, 2, 3], max_new_tokens=40, temperature=1.0, top_p=1.0,
                          greedy=True, stop=(), eos_ids=set(), rng=None)
    assert [d.token_ids for d in static] == [d.token_ids for d in eager]


def test_only_plain_llama_models_with_static_rope_take_the_graph_path(tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model = tiny_model(tokenizer, kv_heads=2)
    assert graphs.supports(model)
    dynamic = tiny_model(tokenizer, kv_heads=2)
    dynamic.config.rope_parameters = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}
    assert not graphs.supports(dynamic)  # frequencies change with the sequence length: not one static graph
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    assert not graphs.supports(gpt2)
    wrapped = get_peft_model(tiny_model(tokenizer, kv_heads=2), LoraConfig(r=2, target_modules=["q_proj"]))
    assert not graphs.supports(wrapped)
