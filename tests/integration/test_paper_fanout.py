"""The paper's fan-out on CPU (issue 26): ``paper-math``'s loop shape, B = 2 groups x g = 4 datasets x r = 4
students = 32 full fine-tuned students, one outer step through the Ray pool (a real local Ray instance, 2 workers),
on the formatted tiny model with lengths and counts cut as ``gpu_check``'s outer section cuts them
(``tests.helpers.formatted.PAPER_MATH_CUTS``), and each student's inner batch cut further for 2 CPU cores (2
questions x 4 samples of 16 tokens instead of 8 x 32 of 48: those alone took 8 minutes here).  It prints the driver's peak resident memory and each worker's, as
the run writes them to ``memory.jsonl``, and counts the full weight copies that reach the driver (one: the
promoted student).
"""

import json

import pytest

from soar.config import load_config
from soar.loops.train import train
from tests.helpers.formatted import PAPER_MATH_CUTS, formatted_tiny_model_dir
from tests.integration.test_student_pools import _full_copies

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_paper_math_fan_out_runs_an_outer_step_through_ray(tmp_path, monkeypatch):
    from rich.console import Console

    from soar.engines.models import load_model

    model_dir = formatted_tiny_model_dir(tmp_path / "model")
    cfg = load_config("paper-math", overrides=dict(PAPER_MATH_CUTS, **{
        "model.name": str(model_dir), "model.device": "cpu", "model.compute_dtype": "float32",
        "data.splits_dir": str(tmp_path / "splits"), "outer_steps": "1", "promotion.tau": "-1.0",
        "compute.pool": "ray", "compute.workers": "2", "compute.threads": "1", "reward.verify_workers": "1",
        "student.batch_size": "2", "student.group_size": "4", "student.max_new_tokens": "16"}))
    t, i = cfg.teacher, cfg.inner
    assert (t.batch_size, t.group_size, i.repeats, cfg.student.finetune) == (2, 4, 4, "full")  # the paper's shape
    parameters = sum(p.numel() for p in load_model(cfg.model)[0].parameters())
    received = []
    real_get = ray.get
    monkeypatch.setattr(ray, "get", lambda *a, **k: (lambda out: received.append(_full_copies(out, parameters))
                                                          or out)(real_get(*a, **k)))
    try:
        summary = train(cfg, out=tmp_path / "run", console=Console(quiet=True))
    finally:
        ray.shutdown()
    record = json.loads((summary.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert record["pool"] == "ray" and len(record["student_accuracies"]) == 32 and record["promoted"]
    assert sum(received) == 1, received  # the promoted student, once: checkpoint and promoted/ reuse it
    memory = json.loads((summary.run_dir / "memory.jsonl").read_text())
    print(f"\npaper-math fan-out, 32 students on 2 Ray workers, model of {parameters:,} parameters "
          f"({parameters * 4 / 2**20:.1f} MiB in fp32)")
    print(f"driver peak RSS {memory['driver_peak_rss_bytes'] / 2**20:.0f} MiB; workers "
          + ", ".join(f"{b / 2**20:.0f} MiB" for b in memory["workers_peak_rss_bytes"])
          + f"; most student weights held by a worker at once: {memory['workers_peak_kept']}")
    assert len(memory["workers_peak_rss_bytes"]) == 2 and all(b > 0 for b in memory["workers_peak_rss_bytes"])
    assert memory["driver_peak_rss_bytes"] > 0
    assert max(memory["workers_peak_kept"]) <= 2 * i.repeats + 1  # open datasets' students and the best
