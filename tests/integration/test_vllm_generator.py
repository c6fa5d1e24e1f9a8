"""VLLMGenerator on a tiny random Llama (needs vLLM and a CUDA device; skipped otherwise).

One engine (fp16, eager) serves every test; the weight-refresh
test puts the original weights back when it ends.  vLLM's log-probs are
compared with teacher-forced log-probs from the transformers model on the same
GPU, not with HFGenerator's own samples: greedy decoding of a near-uniform
random model is tie-prone across kernels, scoring the same tokens is not.
"""

import gc

import pytest

pytest.importorskip("vllm")
torch = pytest.importorskip("torch")

from soar.engines.generation import SamplingParams  # noqa: E402
from soar.engines.tiny import default_tokenizer, tiny_model  # noqa: E402
from soar.engines.vllm_generator import VLLMGenerator  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

PROMPTS = ["Hello there", "Write a number:", "Go."]
TINY = dict(layers=2, hidden=128, heads=2)  # head size 64: every vLLM attention backend takes it


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_model(tokenizer, seed=0, **TINY).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(model_dir):
    generator = VLLMGenerator(model_dir, dtype="float16", gpu_memory_utilization=0.3, max_model_len=512,
                              seed=0, enforce_eager=True)
    yield generator
    del generator.llm
    gc.collect()
    torch.cuda.empty_cache()


def _hf_logprobs(model, tokenizer, prompt, token_ids):
    """Teacher-forced log-probs of ``token_ids`` after ``prompt`` under a transformers model."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + token_ids], device="cuda")
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    logprobs = logits[0, len(prompt_ids) - 1:-1].log_softmax(-1)
    return logprobs.gather(-1, ids[0, len(prompt_ids):, None])[:, 0].tolist()


def _max_gap(engine, model, tokenizer):
    """(max, mean) |vLLM log-prob - transformers log-prob| over greedy completions of PROMPTS."""
    groups = engine.generate(PROMPTS, 1, SamplingParams(greedy=True, max_new_tokens=12))
    gaps = []
    for prompt, (completion,) in zip(PROMPTS, groups):
        reference = _hf_logprobs(model, tokenizer, prompt, completion.token_ids)
        gaps += [abs(a - b) for a, b in zip(completion.logprobs, reference)]
    return max(gaps), sum(gaps) / len(gaps)


def test_n_samples_per_prompt_with_one_logprob_per_token(engine):
    groups = engine.generate(PROMPTS, 4, SamplingParams(max_new_tokens=8, seed=1))
    assert len(groups) == len(PROMPTS)
    for index, group in enumerate(groups):
        assert len(group) == 4
        for completion in group:
            assert completion.prompt_index == index
            assert 0 < len(completion.token_ids) <= 8
            assert len(completion.logprobs) == len(completion.token_ids)
            assert all(lp <= 0 for lp in completion.logprobs)
            assert completion.finish_reason in ("stop", "length")


def test_greedy_is_repeatable_and_seed_is_honoured(engine):
    greedy = SamplingParams(greedy=True, max_new_tokens=16)
    first, second = engine.generate(PROMPTS, 2, greedy), engine.generate(PROMPTS, 2, greedy)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in second]
    assert all(g[0].token_ids == g[1].token_ids for g in first)
    seeded = SamplingParams(max_new_tokens=16, seed=7)
    a, b = engine.generate(PROMPTS, 3, seeded), engine.generate(PROMPTS, 3, seeded)
    assert [[c.token_ids for c in g] for g in a] == [[c.token_ids for c in g] for g in b]
    assert len({tuple(c.token_ids) for c in a[0]}) > 1  # the n samples are not copies


def test_stop_strings_end_the_text(engine):
    groups = engine.generate(PROMPTS, 4, SamplingParams(max_new_tokens=64, stop=(" ",), seed=3))
    completions = [c for g in groups for c in g]
    stopped = [c for c in completions if c.finish_reason == "stop" and " " in c.text]
    assert stopped  # random tokens with a leading space are about half the vocabulary
    for completion in stopped:
        assert completion.text.endswith(" ") and completion.text.count(" ") == 1


def test_load_weights_matches_transformers_on_the_new_weights(engine, tokenizer):
    original = tiny_model(tokenizer, seed=0, **TINY).half().cuda()
    perturbed = tiny_model(tokenizer, seed=0, **TINY).half().cuda()
    generator = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for param in perturbed.parameters():
            param.add_(torch.randn(param.shape, generator=generator, device="cuda", dtype=param.dtype) * 0.05)
    try:
        assert _max_gap(engine, original, tokenizer)[0] < 0.05  # the engine starts on the saved weights
        assert _max_gap(engine, perturbed, tokenizer)[1] > 0.2  # which the perturbation changes
        engine.load_weights(perturbed.named_parameters())
        assert _max_gap(engine, perturbed, tokenizer)[0] < 0.05
    finally:
        engine.load_weights(original.state_dict())
    assert _max_gap(engine, original, tokenizer)[0] < 0.05
