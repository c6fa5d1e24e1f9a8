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


def test_checksums_are_taken_as_the_bytes_are_written_not_read_back(tmp_path, monkeypatch):
    import soar.loops.run_dir as run_dir_module

    real_crc = run_dir_module._crc32
    monkeypatch.setattr(run_dir_module, "_crc32", lambda path: pytest.fail(f"{path} was read back"))
    run = _run(tmp_path, 2, keep=2)
    monkeypatch.setattr(run_dir_module, "_crc32", real_crc)
    folder = run.checkpoints / "step_0001"
    parts = json.loads((folder / "state.json").read_text())["parts"]
    assert {name: (part["bytes"], part["crc32"]) for name, part in parts.items()} == {
        name: ((folder / f"{name}.pt").stat().st_size, real_crc(folder / f"{name}.pt")) for name in parts}
    assert checkpoint_problem(folder) is None


def test_a_part_whose_tag_is_unchanged_is_linked_not_fetched_or_written(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create("outer_steps: 9\n")
    fetched = []

    def students(value):
        return lambda: fetched.append(value) or {"w": torch.full((256,), value)}

    def save(step, tag, value):
        run.save_checkpoint(step, {"teacher": {"w": torch.full((8,), float(step))}, "students": students(value)},
                            {"step": step}, keep=2, tags={"students": tag})
        return run.checkpoints / f"step_{step:04d}" / "students.pt"

    first = save(0, "baseline 0", 0.0)
    second = save(1, "baseline 0", 0.0)  # no promotion since: the same bytes, linked
    assert fetched == [0.0] and second.stat().st_ino == first.stat().st_ino and second.stat().st_nlink == 2
    third = save(2, "baseline 0", 0.0)  # step 0 pruned (keep 2): the link outlives it
    assert fetched == [0.0] and third.stat().st_ino == second.stat().st_ino and not first.exists()
    fourth = save(3, "baseline 1", 1.0)  # a promotion: fetched and written
    assert fetched == [0.0, 1.0] and fourth.stat().st_ino != third.stat().st_ino
    assert torch.equal(load_part(fourth.parent, "students")["w"], torch.full((256,), 1.0))
    fourth.write_bytes(fourth.read_bytes()[:-10])  # damaged: not linked into the next one
    fifth = save(4, "baseline 1", 1.0)
    assert fetched == [0.0, 1.0, 1.0] and fifth.stat().st_ino != fourth.stat().st_ino
    assert checkpoint_problem(fifth.parent) is None
    state = json.loads((fifth.parent / "state.json").read_text())
    assert state["parts"]["students"]["tag"] == "baseline 1" and "tag" not in state["parts"]["teacher"]
