"""The sampling step and the lean decoding loop behind HFGenerator."""

import math

import pytest
import torch

from soar.engines.batch import sample_next
from soar.engines.decoding import decode
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.tiny import default_tokenizer, tiny_model


def test_inverse_cdf_sampling_matches_the_softmax_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(20_000, 1)
    rng = torch.Generator().manual_seed(0)
    tokens, logprobs = sample_next(logits, temperature=1.0, top_p=1.0, greedy=False, rng=rng)
    expected = torch.softmax(logits[0], -1)
    observed = torch.bincount(tokens, minlength=5).float() / len(tokens)
    assert torch.allclose(observed, expected, atol=0.01), (observed, expected)
    assert torch.allclose(logprobs, torch.log_softmax(logits, -1).gather(1, tokens[:, None]).squeeze(1))


def test_temperature_changes_sampling_but_not_the_reported_logprob():
    logits = torch.tensor([[2.0, 0.0]]).repeat(20_000, 1)
    tokens, logprobs = sample_next(logits, temperature=2.0, top_p=1.0, greedy=False, rng=torch.Generator().manual_seed(1))
    share = (tokens == 0).float().mean().item()
    assert abs(share - 1 / (1 + math.exp(-1.0))) < 0.01  # softmax of logits / 2
    assert torch.allclose(logprobs[tokens == 0], torch.tensor(-math.log1p(math.exp(-2.0))))  # temperature-1 log-prob


def test_top_p_keeps_the_smallest_nucleus_and_greedy_takes_the_argmax():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(5_000, 1)
    tokens, _ = sample_next(logits, temperature=1.0, top_p=0.7, greedy=False, rng=torch.Generator().manual_seed(2))
    assert set(tokens.tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3
    share = (tokens == 0).float().mean().item()
    assert abs(share - 0.5 / 0.8) < 0.02
    greedy, _ = sample_next(logits[:3], 1.0, 1.0, greedy=True, rng=None)
    assert greedy.tolist() == [0, 0, 0]


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def test_batched_decoding_equals_one_prompt_at_a_time(tokenizer):
    """Left padding, shared prefill, early-stopping rows dropped mid-batch: same greedy tokens as alone."""
    model = tiny_model(tokenizer, seed=5, init_std=0.5)
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in
               ["hi", "a much longer prompt than the first one", "x y z", "Hello there, friend"]]
    kwargs = dict(max_new_tokens=12, temperature=1.0, top_p=1.0, greedy=True, eos_ids=set(),
                  pad_id=tokenizer.pad_token_id, rng=None)
    stops = ("q", "Ave")  # measured: rows 3-5 stop within 5 tokens, rows 0-2 run to 12
    together = decode(model, tokenizer, prompts, [0, 1, 1, 2, 3, 3], stop=stops, **kwargs)
    alone = [decode(model, tokenizer, [p], [0], stop=stops, **kwargs)[0] for p in prompts]
    assert any(d.stopped for d in together) and any(not d.stopped for d in together)  # rows left early
    for got, index in zip(together, [0, 1, 1, 2, 3, 3]):
        assert got.token_ids == alone[index].token_ids
        assert got.logprobs == pytest.approx(alone[index].logprobs, abs=1e-4)


def test_generator_seed_reproduces_samples_and_n_copies_under_greedy(tokenizer):
    model = tiny_model(tokenizer, seed=6)
    generator = HFGenerator(model, tokenizer, batch_size=3)
    params = SamplingParams(max_new_tokens=6, seed=11)
    first = generator.generate(["one", "two two"], 4, params)
    second = generator.generate(["one", "two two"], 4, params)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in second]
    assert len({tuple(c.token_ids) for c in first[0]}) > 1  # samples differ from each other
    ignore = generator.generate(["one"], 2, SamplingParams(max_new_tokens=5, seed=0, ignore_eos=True))
    assert all(len(c.token_ids) == 5 and c.finish_reason == "length" for c in ignore[0])


def test_a_shared_prefix_is_prefilled_once_with_the_same_result(tokenizer):
    """Prompts with a long common prefix (as every student prompt has): the prefix runs once, the
    suffixes of different lengths on top of it (padding between), tokens and log-probs as if alone."""
    from soar.engines import batch

    model = tiny_model(tokenizer, seed=7, init_std=0.5)
    head = "A conversation between User and Assistant. The user asks a question and the assistant answers. User: "
    prompts = [tokenizer(head + q, add_special_tokens=False)["input_ids"] for q in ["1+1?", "what is 12 times 31?", "hi"]]
    shared = len(__import__("os").path.commonprefix(prompts))
    assert shared >= batch.SHARED_PREFIX_MIN
    calls = []
    original = model.forward
    model.forward = lambda *a, **kw: calls.append(kw["input_ids"].shape) or original(*a, **kw)
    kwargs = dict(max_new_tokens=10, temperature=1.0, top_p=1.0, greedy=True, eos_ids=set(), stop=(),
                  pad_id=tokenizer.pad_token_id, rng=None)
    together = decode(model, tokenizer, prompts, [0, 1, 1, 2], **kwargs)
    assert calls[0] == (1, shared) and calls[1][0] == 3 and calls[1][1] < max(map(len, prompts)) - shared + 1
    model.forward = original
    alone = [decode(model, tokenizer, [p], [0], **kwargs)[0] for p in prompts]
    for got, index in zip(together, [0, 1, 1, 2]):
        assert got.token_ids == alone[index].token_ids
        assert got.logprobs == pytest.approx(alone[index].logprobs, abs=1e-4)


def test_cpu_decode_attention_equals_sdpa(tokenizer):
    """soar's single-token attention (grouped-query, padded prompts, a shared prefix) decodes as sdpa does in
    float32; in bfloat16 it is as close to the float32 result as sdpa's own bfloat16 kernel is."""
    import copy

    from soar.engines.fast_paths import ATTENTION

    ours = tiny_model(tokenizer, seed=9, init_std=0.5, heads=4, kv_heads=2)
    sdpa = copy.deepcopy(ours)
    sdpa.set_attn_implementation("sdpa")
    assert ours.config._attn_implementation == ATTENTION
    head = "A preamble shared by every prompt of this batch, long enough to be prefilled once: "
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in [head + "hi", head + "a longer question here", "x"]]
    kwargs = dict(max_new_tokens=10, temperature=1.0, top_p=1.0, greedy=True, eos_ids=set(), stop=(),
                  pad_id=tokenizer.pad_token_id, rng=None)

    def run(model):
        return decode(model, tokenizer, prompts[:2], [0, 1, 1], **kwargs) + decode(model, tokenizer, prompts, [0, 1, 2], **kwargs)

    truth = run(sdpa)
    for a, b in zip(run(ours), truth):
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)

    def error(model):  # mean |log-prob - float32's| over the tokens decoded before any difference
        diffs = []
        for a, b in zip(run(model), truth):
            for i, (x, y) in enumerate(zip(a.logprobs, b.logprobs)):
                if a.token_ids[i] != b.token_ids[i]:
                    break
                diffs.append(abs(x - y))
        return sum(diffs) / len(diffs)

    ours_bf16, sdpa_bf16 = error(copy.deepcopy(ours).to(torch.bfloat16)), error(copy.deepcopy(sdpa).to(torch.bfloat16))
    assert 0 < ours_bf16 < 1.5 * sdpa_bf16, (ours_bf16, sdpa_bf16)
