"""build_generator follows compute config (a real tiny model)."""

import importlib.util

import pytest

from soar.errors import SoarError


def test_build_generator_follows_compute_config():
    from soar.config import load_config
    from soar.engines.generation import HFGenerator, build_generator
    from soar.engines.tiny import default_tokenizer, tiny_model

    cfg = load_config("tiny", overrides={"compute.generation_batch_size": "12"})
    tokenizer = default_tokenizer()
    generator = build_generator(cfg.compute, tiny_model(tokenizer), tokenizer)
    assert isinstance(generator, HFGenerator) and generator.batch_size == 12
    if importlib.util.find_spec("vllm") is None:
        cfg = load_config("tiny", overrides={"compute.generator": "vllm"})
        with pytest.raises(SoarError, match=r"soar\[vllm\]"):
            build_generator(cfg.compute, None, None, model_path="x")
