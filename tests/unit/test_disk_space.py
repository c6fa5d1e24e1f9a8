"""A full disk never leaves a traceback, a half-written file or a run that cannot be resumed."""

from collections import namedtuple

import pytest
import torch

from soar.io import DiskSpaceError, payload_bytes, write_atomic
from soar.loops import run_dir as run_dir_module
from soar.loops.run_dir import RunDir, load_part

Usage = namedtuple("Usage", "total used free")


def _run(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create("outer_steps: 3\n")
    run.save_checkpoint(0, {"teacher": {"w": torch.ones(1000)}, "rng": torch.zeros(4)}, {"step": 0})
    run.append("metrics.jsonl", [{"step": 0}])
    return run


def _intact(run, tmp_path):
    assert run.latest_checkpoint().name == "step_0000"
    assert torch.equal(load_part(run.latest_checkpoint(), "teacher")["w"], torch.ones(1000))
    assert run.read("metrics.jsonl") == [{"step": 0}]
    assert not [p for p in (tmp_path / "run").rglob("*") if p.name.endswith(".tmp")]  # nothing half-written


def test_payload_bytes_counts_nested_tensors():
    assert payload_bytes({"a": torch.zeros(10), "b": [torch.zeros(2, 3, dtype=torch.float64), 7], "c": "x"}) == 88


def test_too_little_space_is_refused_before_writing(tmp_path, monkeypatch):
    run = _run(tmp_path)
    monkeypatch.setattr(run_dir_module.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 5000))
    with pytest.raises(DiskSpaceError) as caught:
        run.save_checkpoint(1, {"teacher": {"w": torch.full((1000,), 2.0)}}, {"step": 1})
    message = str(caught.value)
    assert "\n" not in message and str(run.path) in message and "the checkpoint of step 1" in message
    assert "4.9 KiB are free" in message and f"soar train --resume {run.path}" in message and "64.0 MiB" in message
    _intact(run, tmp_path)


def test_a_write_that_fails_midway_cleans_up_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = _run(tmp_path)
    real = torch.save

    def full_disk(value, file, *args, **kwargs):  # what a full disk did: part of a file, then an error
        file.write(b"PK\x03\x04 part of a zip")  # checkpoints are written through a CRC-32 counting file
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 651442816 vs 651442704")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DiskSpaceError) as caught:
        run.save_checkpoint(1, {"teacher": {"w": torch.full((1000,), 2.0)}}, {"step": 1})
    message = str(caught.value)
    assert "\n" not in message and "unexpected pos" in message and "previous copy is intact" in message
    assert f"soar train --resume {run.path}" in message
    _intact(run, tmp_path)
    monkeypatch.setattr(torch, "save", real)  # space freed: the same write goes through
    run.save_checkpoint(1, {"teacher": {"w": torch.full((1000,), 2.0)}}, {"step": 1})
    assert run.completed_step() == 1


def test_failed_small_writes_keep_the_old_file(tmp_path, monkeypatch):
    run = _run(tmp_path)
    target = tmp_path / "run" / "config.yaml"

    def failing(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_dir_module.Path, "write_text", failing)
    with pytest.raises(DiskSpaceError, match="No space left on device"):
        write_atomic(target, "outer_steps: 4\n")
    monkeypatch.undo()
    assert target.read_text() == "outer_steps: 3\n" and not target.with_name("config.yaml.tmp").exists()
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(DiskSpaceError, match=r"metrics.jsonl failed \(\[Errno 28\] No space left on device\)"):
        run.append("metrics.jsonl", [{"step": 1}])
    monkeypatch.undo()
    _intact(run, tmp_path)


def test_a_run_does_not_start_without_room_for_a_checkpoint(tmp_path, monkeypatch):
    from soar.config import load_config
    from soar.loops.train import train

    monkeypatch.setattr(run_dir_module.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 10**8))
    with pytest.raises(DiskSpaceError, match=r"one checkpoint \(as soar plan sizes it\) needs 1\.\d\d GiB free"):
        train(load_config("tiny"), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written
