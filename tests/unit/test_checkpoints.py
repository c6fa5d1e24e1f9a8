"""Checkpoint retention and damage: sizes and CRC-32 in state.json, one line naming a damaged file, and the
fall-back to the newest older checkpoint that checks out (real files, real torch.save)."""

import json

import pytest
import torch

from soar.errors import SoarError
from soar.loops.run_dir import RunDir, checkpoint_problem, load_part


def _run(tmp_path, steps, keep=2, checksums=True):
    run = RunDir(tmp_path / "run")
    run.create("outer_steps: 9\n")
    for step in range(steps):
        tensors = {"teacher": {"w": torch.full((64, 64), float(step))}, "rng": torch.arange(4)}
        run.save_checkpoint(step, tensors, {"step": step}, keep=keep, checksums=checksums)
    return run


def _names(run):
    return sorted(p.name for p in run.checkpoints.iterdir())


def test_the_newest_checkpoints_are_kept_with_their_sizes_and_checksums(tmp_path):
    run = _run(tmp_path, 4, keep=2)
    assert _names(run) == ["latest", "step_0002", "step_0003"]
    state = json.loads((run.checkpoints / "step_0003" / "state.json").read_text())
    assert set(state["parts"]) == {"teacher", "rng"} and state["step"] == 3
    assert state["parts"]["teacher"]["bytes"] == (run.checkpoints / "step_0003" / "teacher.pt").stat().st_size
    assert isinstance(state["parts"]["teacher"]["crc32"], int)
    assert run.latest_checkpoint().name == "step_0003" and run.completed_step() == 3
    assert _names(_run(tmp_path / "one", 3, keep=1)) == ["latest", "step_0002"]


@pytest.mark.parametrize("damage, words", [
    (lambda f: f.write_bytes(f.read_bytes()[:-100]), "bytes where"),  # cut short (a copy or a disk that filled)
    (lambda f: f.write_bytes(f.read_bytes()[:200] + bytes([f.read_bytes()[200] ^ 1]) + f.read_bytes()[201:]),
     "CRC-32 differs"),  # one bit flipped, same size
    (lambda f: f.unlink(), "is missing"),
])
def test_a_damaged_newest_checkpoint_is_named_and_the_older_one_used(tmp_path, damage, words):
    run = _run(tmp_path, 3, keep=2)
    damage(run.checkpoints / "step_0002" / "teacher.pt")
    problem = checkpoint_problem(run.checkpoints / "step_0002")
    assert "step_0002/teacher.pt" in problem and words in problem
    said = []
    assert run.latest_checkpoint(warn=said.append).name == "step_0001"
    assert len(said) == 1 and "teacher.pt" in said[0] and "trying the older checkpoint step_0001" in said[0]
    assert run.completed_step() == 1  # what resume truncates records to
    # the next save of step 2 replaces the damaged folder; retention keeps steps 1 and 2
    run.save_checkpoint(2, {"teacher": {"w": torch.zeros(2)}}, {"step": 2}, keep=2)
    assert _names(run) == ["latest", "step_0001", "step_0002"] and checkpoint_problem(run.checkpoints / "step_0002") is None


def test_with_no_usable_checkpoint_the_error_is_one_line_naming_the_file(tmp_path):
    run = _run(tmp_path, 2, keep=1)
    target = run.checkpoints / "step_0001" / "teacher.pt"
    target.write_bytes(target.read_bytes()[:50])
    with pytest.raises(SoarError) as caught:
        run.latest_checkpoint()
    message = str(caught.value)
    assert "step_0001/teacher.pt is damaged" in message and "checkpoint.keep" in message and "\n" not in message


def test_a_later_checkpoint_left_from_before_a_fallback_is_removed_and_never_used(tmp_path):
    run = _run(tmp_path, 4, keep=3)  # steps 1, 2, 3 kept
    for step in (2, 3):
        (run.checkpoints / f"step_{step:04d}" / "rng.pt").write_bytes(b"junk")
    assert run.latest_checkpoint(warn=lambda line: None).name == "step_0001"
    run.save_checkpoint(2, {"teacher": {"w": torch.ones(2)}}, {"step": 2}, keep=3)  # the resumed run's step 2
    assert _names(run) == ["latest", "step_0001", "step_0002"]  # the damaged step 3 is gone with its records
    assert run.latest_checkpoint().name == "step_0002"


def test_an_unreadable_part_is_one_line_and_sizes_alone_still_catch_truncation(tmp_path):
    run = _run(tmp_path, 1, keep=1, checksums=False)
    folder = run.checkpoints / "step_0000"
    assert "crc32" not in json.loads((folder / "state.json").read_text())["parts"]["teacher"]
    (folder / "teacher.pt").write_bytes((folder / "teacher.pt").read_bytes()[:-10])
    assert "bytes where" in checkpoint_problem(folder)
    with pytest.raises(SoarError, match=r"teacher.pt is damaged and cannot be read") as caught:
        load_part(folder, "teacher")
    assert "\n" not in str(caught.value)
