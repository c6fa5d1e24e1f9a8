"""A generator takes new weights through update_weights (a real tiny model)."""

import pytest


def test_a_generator_takes_new_weights_through_update_weights():
    """A generator over its own copy of the model samples like the trained model once given its weights."""
    pytest.importorskip("torch")
    from soar.engines.base import WeightUpdate
    from soar.engines.generation import HFGenerator, SamplingParams
    from soar.engines.tiny import default_tokenizer, tiny_model
    from soar.errors import SoarError

    tokenizer = default_tokenizer()
    trained, stale = tiny_model(tokenizer, seed=1, init_std=0.5), tiny_model(tokenizer, seed=2, init_std=0.5)
    greedy = SamplingParams(max_new_tokens=6, greedy=True)
    generator = HFGenerator(stale, tokenizer)
    target = HFGenerator(trained, tokenizer).generate(["Say a number:"], 1, greedy)[0][0].token_ids
    assert generator.generate(["Say a number:"], 1, greedy)[0][0].token_ids != target
    generator.update_weights(WeightUpdate("full", dict(trained.named_parameters()), version=1))
    assert generator.generate(["Say a number:"], 1, greedy)[0][0].token_ids == target
    with pytest.raises(SoarError, match="does not fit"):
        generator.update_weights(WeightUpdate("full", {"model.nothing.weight": next(trained.parameters())}))
