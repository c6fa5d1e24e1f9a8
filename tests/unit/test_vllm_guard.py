"""Without vLLM, the module imports and constructing the generator says how to install it."""

import importlib.util

import pytest

from soar.errors import SoarError


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_constructing_without_vllm_names_the_extra():
    from soar.engines.vllm_generator import VLLMGenerator

    with pytest.raises(SoarError, match=r"soar\[vllm\]"):
        VLLMGenerator("x")


