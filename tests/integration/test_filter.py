"""``soar filter`` on CPU with a tiny model taught the answer format: real sampling, Math-Verify, files.

Problems are one-digit additions, which the tiny model sometimes gets right,
plus the same questions with impossible gold answers, which it never can; so
the fail@k set must keep every impossible one and drop exactly the problems
with a success.
"""

import json
import subprocess
import sys

import pytest

from soar.config import ModelConfig, load_config
from soar.errors import SoarError
from soar.loops.filter import run_filter
from tests.helpers.formatted import formatted_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return formatted_tiny_model_dir(tmp_path_factory.mktemp("formatted-tiny"))


@pytest.fixture(scope="module")
def pool_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    rows = []
    for i, (a, b) in enumerate([(1, 2), (3, 4), (2, 2), (5, 3), (1, 1), (4, 4), (6, 1), (2, 7), (3, 3)]):
        rows.append({"id": f"add-{i}", "question": f"What is {a} + {b}?", "answer": str(a + b)})
        rows.append({"id": f"impossible-{i}", "question": f"What is {a} + {b}?", "answer": "987654"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(model_dir, pool_file, tmp_path, **extra):
    overrides = {"model.name": str(model_dir), "data.source": str(pool_file), "data.fail_at_k": "4",
                 "data.filter_max_new_tokens": "12", "compute.generation_batch_size": "16",
                 "reward.verify_workers": "1", "data.splits_dir": str(tmp_path / "splits")}
    overrides.update({k: str(v) for k, v in extra.items()})
    return load_config("tiny", overrides=overrides)


@pytest.fixture(scope="module")
def uninterrupted(model_dir, pool_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("filter-a")
    summary = run_filter(_cfg(model_dir, pool_file, out), out)
    return summary


def _records(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()[1:]]


def test_filter_keeps_exactly_the_problems_with_no_success(uninterrupted):
    out = uninterrupted.out_dir
    results = _records(out)
    assert [r["index"] for r in results] == list(range(18)) and all(r["k"] == 4 for r in results)
    assert all(r["successes"] == 0 for r in results if r["id"].startswith("impossible"))
    hard = [json.loads(line) for line in (out / "hard.jsonl").read_text().splitlines()]
    assert [h["id"] for h in hard] == [r["id"] for r in results if r["successes"] == 0]
    assert uninterrupted.kept == len(hard) >= 9
    train = [json.loads(line)["id"] for line in (out / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line)["id"] for line in (out / "test.jsonl").read_text().splitlines()]
    assert sorted(train + test) == sorted(h["id"] for h in hard) and abs(len(train) - len(test)) <= 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pool"] == 18 and stats["kept"] == len(hard) and stats["complete"]
    assert stats["successes"] == {r["id"]: r["successes"] for r in results}
    assert stats["settings"]["k"] == 4 and stats["problems_per_second"] > 0
    assert uninterrupted.problems_per_second > 0


def test_the_filtered_set_trains_with_the_same_split(uninterrupted, model_dir, tmp_path):
    from soar.data.load import load_hard_set

    out = uninterrupted.out_dir
    cfg = load_config("tiny", overrides={"data.source": str(out / "hard.jsonl"), "data.splits_dir": str(tmp_path)})
    split = load_hard_set(cfg.data)
    assert [p.id for p in split.train] == [json.loads(x)["id"] for x in (out / "train.jsonl").read_text().splitlines()]


def test_the_filter_writes_the_provenance_train_checks(uninterrupted, model_dir):
    from soar.data.provenance import require_provenance
    from soar.errors import ConfigError

    hard = uninterrupted.out_dir / "hard.jsonl"
    data = load_config("tiny", overrides={"data.source": str(hard), "data.fail_at_k": "4"}).data
    stats = require_provenance(data, ModelConfig(name=str(model_dir)))
    assert stats["settings"]["model"] == str(model_dir) and stats["prompt_sha"] and stats["hard_key"]
    with pytest.raises(ConfigError, match="filtered for model"):  # the set is hard for the model that failed it
        require_provenance(data, ModelConfig())
    stricter = load_config("tiny", overrides={"data.source": str(hard), "data.fail_at_k": "8"}).data
    with pytest.raises(ConfigError, match="fail@4 set"):
        require_provenance(stricter, ModelConfig(name=str(model_dir)))


def test_an_interrupted_filter_continues_to_the_same_result(model_dir, pool_file, uninterrupted, tmp_path):
    cfg = _cfg(model_dir, pool_file, tmp_path)
    first = run_filter(cfg, tmp_path, max_problems=5)  # blocks of 16 // 4 = 4 problems: stops after 8
    assert first.sampled == 8 and not json.loads((tmp_path / "stats.json").read_text())["complete"]
    # a kill in the middle of writing the next block: two of its records and a torn line
    lines = (uninterrupted.out_dir / "results.jsonl").read_text().splitlines()
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write(lines[9] + "\n" + lines[10] + "\n" + lines[11][:20])
    second = run_filter(cfg, tmp_path)
    assert second.sampled == 10  # the cut block is redone, then the rest
    assert _records(tmp_path) == _records(uninterrupted.out_dir)
    assert (tmp_path / "hard.jsonl").read_text() == (uninterrupted.out_dir / "hard.jsonl").read_text()
    again = run_filter(cfg, tmp_path)  # nothing left to do: loads no model
    assert again.sampled == 0 and again.kept == uninterrupted.kept


def test_a_results_file_with_other_settings_is_refused(model_dir, pool_file, uninterrupted, tmp_path):
    (tmp_path / "results.jsonl").write_text((uninterrupted.out_dir / "results.jsonl").read_text())
    with pytest.raises(SoarError, match="other settings"):
        run_filter(_cfg(model_dir, pool_file, tmp_path, **{"data.fail_at_k": 8}), tmp_path)


def test_soar_filter_cli_reports_the_rate(model_dir, pool_file, tmp_path):
    cmd = [sys.executable, "-m", "soar", "filter", "--out", str(tmp_path / "f"), "--max-problems", "4",
           "--model.name", str(model_dir), "--data.source", str(pool_file), "--data.fail_at_k", "4",
           "--data.filter_max_new_tokens", "8", "--compute.generation_batch_size", "16", "--reward.verify_workers", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "problems/s" in done.stdout and "partial: 4/18" in done.stdout
    bad = subprocess.run(cmd[:4] + ["--data.fail_at_k", "four"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "data.fail_at_k" in bad.stderr and "Traceback" not in bad.stderr
