"""A SOAR run directory: config, metrics, questions, promotion questions, checkpoints.

Layout::

    RUN/config.yaml                  resolved config of the run
    RUN/metrics.jsonl                one record per completed outer step
    RUN/questions/step_NNNN.jsonl    every accepted QA pair of the step, with dataset index and reward
    RUN/promotion_questions.jsonl    PQ: the datasets that led to promotions, with step and stage
    RUN/tensorboard/                 event files (when tensorboard is installed)
    RUN/status.json                  what the run is doing now: step, phase, since (unix seconds), pid
    RUN/workers.log                  what Ray workers printed, after each step's students (``compute.pool: ray``)
    RUN/checkpoints/step_NNNN/       teacher.pt, students.pt, rng.pt, state.json (the only optimiser state kept;
                                     the newest ``checkpoint.keep``, state.json with each part's size and CRC-32;
                                     a part unchanged since the previous one, a hard link to it)
    RUN/checkpoints/latest           name of the last complete checkpoint
    RUN/promoted/stage_N/            every promoted student: student.pt (trainable weights) and info.json
                                     (step, dataset, Q_R accuracy measured and re-checked, hard-train accuracy)
    RUN/teachers/step_NNNN.pt        the teacher's weights every ``checkpoint.teacher_every`` steps
                                     (``checkpoint.teacher_keep`` newest, 0: all), for Grounded-T at a chosen step

Disk space: before a checkpoint, a promoted student or a kept teacher is
written, the free space of the run's disk is compared with the bytes its
tensors take (plus :data:`SPACE_MARGIN`); too little is a
:class:`DiskSpaceError` naming the run, the bytes needed and free, and how to
go on.  A write that fails anyway (a full disk, a quota) removes its temporary
files and says so in one line; the previous checkpoint and every record of a
completed step are untouched, so ``soar train --resume`` continues once there
is room.

Damaged checkpoints: ``state.json`` records each part's size and CRC-32 as
written; a part that is missing, shorter or longer, or whose bytes changed (a
disk error, a copy cut short) is named in one line, and the newest older
checkpoint that checks out is used instead (``checkpoint.keep`` >= 2 keeps
one), its later records dropped as after a kill.  With none left the error
names the damaged file.

Crash safety: a checkpoint is written to a temporary folder and renamed into
place, then ``latest`` is replaced atomically (``os.replace``); older
checkpoints are removed only after that.  A step's records (questions,
metrics, PQ) are written just before its checkpoint; on resume every record of
a step later than the last complete checkpoint is dropped (and a line torn by
a kill is skipped), so a kill at any moment leaves records and checkpoint in
agreement and no promoted question that the checkpoint knows of is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from soar.errors import SoarError
from soar.io import (
    append_jsonl,
    fsync,
    payload_bytes,
    read_jsonl,
    require_space,
    save_atomic,
    write_atomic,
    write_failed,
)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.questions = self.path / "questions"
        self.checkpoints = self.path / "checkpoints"
        self.promoted = self.path / "promoted"
        self.teachers = self.path / "teachers"
        self._checked: tuple[str, Path] | None = None  # (latest's text, the checkpoint it resolved to): checked once

    def create(self, config_yaml: str) -> None:
        if (self.checkpoints / "latest").exists() or (self.path / "metrics.jsonl").exists():
            raise SoarError(f"{self.path} already holds a run; continue it with --resume {self.path} or pick another --out")
        self.questions.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        write_atomic(self.path / "config.yaml", config_yaml)
        write_atomic(self.path / "promotion_questions.jsonl", "")  # the summary names it even before a promotion

    def update_config(self, config_yaml: str) -> None:
        """The resumed run's config with the settings a resume may change (``soar.config.RESUME_SETTINGS``)."""
        write_atomic(self.path / "config.yaml", config_yaml)

    # -- disk space --------------------------------------------------------------
    def set_status(self, step: int, phase: str) -> None:
        """``status.json``: the outer step and phase under way (``teacher_generation``, ``students``, ``promotion``,
        ``teacher_update``, ``checkpoint``, ``done``), for a person or a script watching a long run."""
        write_atomic(self.path / "status.json", json.dumps({"step": step, "phase": phase, "since": round(time.time(), 3),
                                                           "pid": os.getpid()}) + "\n")

    def require_space(self, needed: int, what: str) -> None:
        """:class:`DiskSpaceError` unless the run's disk has ``needed`` bytes (plus the margin) free."""
        require_space(self.path, needed, f"{self.path}: {what}", self.resume_hint)

    @property
    def resume_hint(self) -> str:
        return f"soar train --resume {self.path}"

    # -- records ---------------------------------------------------------------
    def append(self, name: str, records: list[dict[str, Any]]) -> None:
        """Append JSON lines (a line torn by a full disk or a kill is skipped on resume, as the step's checkpoint
        was not written: the step runs again)."""
        try:
            append_jsonl(self.path / name, records)
        except OSError as exc:
            raise write_failed(self.path / name, exc, self.resume_hint) from None

    def write_questions(self, step: int, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r) + "\n" for r in records)
        write_atomic(self.questions / f"step_{step:04d}.jsonl", lines)

    def read(self, name: str) -> list[dict[str, Any]]:
        """The records of a JSONL file of the run (:func:`soar.io.read_jsonl`: a line torn by a kill is skipped)."""
        return read_jsonl(self.path / name)

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (written by a step whose checkpoint never completed)."""
        for name in ("metrics.jsonl", "promotion_questions.jsonl", "memory.jsonl"):
            if (self.path / name).exists():
                kept = [r for r in self.read(name) if r.get("step", -1) <= step]
                write_atomic(self.path / name, "".join(json.dumps(r) + "\n" for r in kept))
        for file in self.questions.glob("step_*.jsonl"):
            if int(file.stem.split("_")[1]) > step:
                file.unlink()
        for stage in self.promoted_stages():  # a promotion of a step that is replayed is written again
            if stage["step"] > step:
                shutil.rmtree(self.promoted / f"stage_{stage['stage']}", ignore_errors=True)
        for file in self.teachers.glob("step_*.pt"):
            if int(file.stem.split("_")[1]) > step:
                file.unlink()

    # -- kept weights: promoted students, periodic teachers ---------------------
    def save_promoted(self, stage: int, weights: dict[str, Any], info: dict[str, Any]) -> Path:
        """Keep promoted student number ``stage`` (its trainable weights and what was measured of it)."""
        folder = self.promoted / f"stage_{stage}"
        self.require_space(payload_bytes(weights), f"promoted student {stage}")
        _save_folder(folder, {"student": weights}, dict(info, stage=stage), hint=self.resume_hint)
        return folder

    def promoted_stages(self) -> list[dict[str, Any]]:
        """``info.json`` of every kept promoted student, by stage."""
        if not self.promoted.is_dir():
            return []
        infos = [json.loads((d / "info.json").read_text(encoding="utf-8"))
                 for d in self.promoted.glob("stage_*") if d.suffix != ".tmp" and (d / "info.json").exists()]
        return sorted(infos, key=lambda info: info["stage"])

    def best_promoted(self) -> tuple[Path, dict[str, Any]]:
        """PS (4.3): the promoted student with the best greedy accuracy on the hard train split (ties: the later)."""
        done = self.completed_step()
        infos = [info for info in self.promoted_stages() if info["step"] <= done]  # not a step a resume will redo
        if not infos:
            raise SoarError(f"{self.path} promoted no student (promoted/ is empty): there is no PS to evaluate")
        best = max(infos, key=lambda info: (info["train_accuracy"], info["stage"]))
        return self.promoted / f"stage_{best['stage']}", best

    def save_teacher(self, step: int, weights: dict[str, Any], keep: int) -> Path:
        """Keep the teacher's weights after ``step`` (no optimiser state); ``keep`` newest (0: all)."""
        self.teachers.mkdir(exist_ok=True)
        path = self.teachers / f"step_{step:04d}.pt"
        self.require_space(payload_bytes(weights), f"the teacher kept after step {step + 1}")
        save_atomic(weights, path, hint=self.resume_hint)
        if keep:
            for old in self.teachers_by_step()[:-keep]:
                old.unlink()
        return path

    def teachers_by_step(self) -> list[Path]:
        """The kept teacher files, oldest step first (by number: step_10000 after step_9999)."""
        return sorted(self.teachers.glob("step_*.pt"), key=lambda f: int(f.stem.split("_")[1]))

    def teacher_steps(self) -> list[int]:
        """Outer steps (0-based) whose teacher weights are kept in ``teachers/``."""
        return [int(f.stem.split("_")[1]) for f in self.teachers_by_step()]

    # -- checkpoints -----------------------------------------------------------
    def save_checkpoint(self, step: int, tensors: dict[str, Any], state: dict[str, Any], keep: int = 1,
                        checksums: bool = True, tags: dict[str, str] | None = None) -> dict[str, int]:
        """Write the checkpoint of ``step`` and point ``latest`` at it; all but the newest ``keep`` are removed
        after that.  ``state.json`` gets each part's size (and, ``checksums``, CRC-32, computed as the bytes are
        written: nothing is read back).  Returns the size in bytes of each part.

        ``tags``: a part whose tag (say, the students' baseline version) equals the one the latest checkpoint
        recorded for it is not written again but hard-linked from there (the bytes are the same; a part that is
        not there at its recorded size is written).  A value in ``tensors`` may be a function that returns it,
        called only when the part is written."""
        name = f"step_{step:04d}"
        final = self.checkpoints / name
        tags = tags or {}
        if keep >= 2:  # at most `keep` on disk while writing: the oldest goes first, keep - 1 >= 1 stay intact
            self._prune(below=step, keep=keep - 1)
        reuse = self._reusable(tags, below=step)
        tensors = {k: (v if k in reuse or not callable(v) else v()) for k, v in tensors.items()}
        written = {k: v for k, v in tensors.items() if k not in reuse}
        self.require_space(payload_bytes(written), f"the checkpoint of step {step}")  # the old ones stay until then
        _save_folder(final, written, state, info_name="state.json", hint=self.resume_hint, manifest=checksums,
                     links=reuse, tags=tags)
        write_atomic(self.checkpoints / "latest", name)
        self._checked = None
        self._prune(below=step + 1, keep=keep)
        return {p.stem: p.stat().st_size for p in sorted(final.glob("*.pt"))}

    def _reusable(self, tags: dict[str, str], below: int) -> dict[str, tuple[Path, dict[str, Any]]]:
        """The parts of the newest checkpoint before step ``below`` whose recorded tag is ``tags``' and whose file
        is there at its recorded size: part -> (its file, its record in state.json)."""
        folders = [f for f in self._checkpoint_folders() if _step_of(f) < below]
        if not tags or not folders:
            return {}
        try:
            parts = json.loads((folders[0] / "state.json").read_text(encoding="utf-8")).get("parts") or {}
        except (OSError, ValueError):
            return {}
        found = {}
        for part, tag in tags.items():
            path, record = folders[0] / f"{part}.pt", parts.get(part) or {}
            if record.get("tag") == tag and path.is_file() and path.stat().st_size == record.get("bytes"):
                found[part] = (path, record)
        return found

    def _prune(self, below: int, keep: int) -> None:
        """Keep the newest ``keep`` checkpoints of steps before ``below`` (and the ``latest`` pointer); remove the
        rest: older ones, temporary folders, and later ones left from before a fallback (their records were
        dropped; should ``latest`` still name one, resuming passes over it as missing)."""
        if not self.checkpoints.is_dir():
            return
        kept = {f.name for f in [f for f in self._checkpoint_folders() if _step_of(f) < below][:max(1, keep)]}
        for entry in self.checkpoints.iterdir():
            if entry.name not in kept and entry.name != "latest":
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()

    def _checkpoint_folders(self) -> list[Path]:
        """Complete-looking checkpoint folders (``step_NNNN`` with a ``state.json``), newest step first."""
        if not self.checkpoints.is_dir():
            return []
        folders = [f for f in self.checkpoints.glob("step_*") if f.is_dir() and _step_of(f) is not None
                   and (f / "state.json").exists()]
        return sorted(folders, key=_step_of, reverse=True)

    def latest_checkpoint(self, warn: Any = None) -> Path | None:
        """The checkpoint to continue from: the one ``latest`` names if it checks out
        (:func:`checkpoint_problem`), else the newest older one that does (``warn`` gets one line per damaged
        checkpoint passed over); None before the first.  Only damaged ones: one line naming the damage."""
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            return None
        text = pointer.read_text(encoding="utf-8").strip()
        if self._checked is not None and self._checked[0] == text:  # a reader asks again: no second CRC pass
            return self._checked[1]
        named = self.checkpoints / text
        limit = _step_of(named)  # a newer folder that latest does not name was never committed
        if limit is None:
            raise SoarError(f"{pointer} names {named.name!r}, which is not a checkpoint folder")
        candidates = [named] + [f for f in self._checkpoint_folders() if _step_of(f) < limit]
        problems = []
        for index, folder in enumerate(candidates):
            problem = checkpoint_problem(folder)
            if problem is None:
                self._checked = (text, folder)
                return folder
            problems.append(problem)
            if warn is not None:
                later = candidates[index + 1].name if index + 1 < len(candidates) else None
                warn(f"{problem}; " + (f"trying the older checkpoint {later}" if later else "no older checkpoint"))
        raise SoarError(f"{problems[0]}, and no older checkpoint of {self.path} is usable "
                        f"(checkpoint.keep keeps more of them)")

    def completed_step(self) -> int:
        """The outer step (0-based) of the checkpoint a resume continues from; -1 before the first."""
        latest = self.latest_checkpoint()
        return json.loads((latest / "state.json").read_text(encoding="utf-8"))["step"] if latest else -1

    def load_checkpoint(self, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        return {p.stem: load_part(folder, p.stem) for p in folder.glob("*.pt")}, state

    # -- reading a finished run (soar sample, evaluate) ---------------------------
    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        """The run's saved config (with ``overrides``); a clear error for a folder that is not a run."""
        from soar.config import load_config

        self._require_run()
        if "keep_students:" in (self.path / "config.yaml").read_text(encoding="utf-8"):
            raise SoarError(f"{self.path} was made by an older soar (its config has inner.keep_students; seeds and "
                            "checkpoints have changed since): it cannot be continued or read by this version")
        return load_config(file=self.path / "config.yaml", overrides=overrides)

    def require_checkpoint(self, warn: Any = None) -> Path:
        """The checkpoint a resume would continue from (see :meth:`latest_checkpoint`), or a clear error when no
        outer step of the run has finished."""
        self._require_run()
        checkpoint = self.latest_checkpoint(warn)
        if checkpoint is None:
            raise SoarError(f"{self.path} has no checkpoint: no outer step of this run has finished yet")
        return checkpoint

    def _require_run(self) -> None:
        if not (self.path / "config.yaml").exists():
            raise SoarError(f"{self.path} is not a run directory (no config.yaml)")


def load_part(folder: Path, name: str) -> Any:
    """One part of a checkpoint (``teacher``, ``students``, ``rng``), onto the CPU: a part is copied into
    models wherever they live, and a reader that needs the students' weights does not load the teacher's
    optimiser.  A file that cannot be read is one line naming it."""
    import torch

    path = folder / f"{name}.pt"
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise SoarError(f"{path} is missing") from None
    except Exception as exc:  # a truncated zip, a bad record, an unpickling error: all mean a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SoarError(f"{path} is damaged and cannot be read ({reason[:160]})") from None


def _step_of(folder: Path) -> int | None:
    """The outer step a ``step_NNNN`` checkpoint folder holds; None for any other name."""
    digits = folder.name.removeprefix("step_")
    return int(digits) if folder.name.startswith("step_") and digits.isdigit() else None


def checkpoint_problem(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder, in one phrase naming the file, or None when every part recorded in
    its ``state.json`` is there with its size and CRC-32 (a checkpoint written before sizes were recorded is
    taken as it is)."""
    state_file = folder / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{state_file} is missing (the checkpoint was never completed)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{state_file} is damaged ({type(exc).__name__})"
    for name, part in (state.get("parts") or {}).items():
        path = folder / f"{name}.pt"
        if not path.exists():
            return f"{path} is missing"
        size = path.stat().st_size
        if size != part["bytes"]:
            return f"{path} is damaged: {size:,} bytes where {part['bytes']:,} were written"
        if "crc32" in part and _crc32(path) != part["crc32"]:
            return f"{path} is damaged: its bytes changed since they were written (CRC-32 differs)"
    return None


def _crc32(path: Path) -> int:
    import zlib

    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(16 * 2**20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _save_folder(final: Path, tensors: dict[str, Any], info: dict[str, Any], info_name: str = "info.json",
                 hint: str = "", manifest: bool | None = None,
                 links: dict[str, tuple[Path, dict[str, Any]]] | None = None, tags: dict[str, str] | None = None) -> None:
    """``final/<part>.pt`` for each tensor part and ``final/<info_name>``, through a temporary folder renamed into
    place: a kill never leaves a half-written folder under the final name, and a failed write (a full disk)
    removes the temporary folder and raises :class:`DiskSpaceError` (``hint``: how to go on).  ``manifest``
    (not None): ``info["parts"]`` records each part's size, and with True its CRC-32 (:func:`checkpoint_problem`),
    computed from the bytes as they are written.  ``links``: parts hard-linked from another folder with the record
    they had there (``part -> (file, record)``); ``tags``: a tag recorded with each named part."""
    import torch

    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        parts = {}
        for key, (source, record) in (links or {}).items():
            try:
                os.link(source, tmp / f"{key}.pt")
            except OSError:  # a file system without hard links: the same bytes, copied
                shutil.copyfile(source, tmp / f"{key}.pt")
            parts[key] = dict(record)
        for key, value in tensors.items():
            with (tmp / f"{key}.pt").open("wb") as handle:
                writer = _Crc32Writer(handle)
                torch.save(value, writer)
            parts[key] = {"bytes": writer.bytes}
            if manifest:
                parts[key]["crc32"] = writer.crc
        for key, tag in (tags or {}).items():
            if key in parts:
                parts[key]["tag"] = tag
        if manifest is not None:
            info = {**info, "parts": parts}
        (tmp / info_name).write_text(json.dumps(info, indent=1), encoding="utf-8")
        for file in tmp.iterdir():  # on disk before anything points at them (survives a power cut, not just a kill)
            fsync(file)
        fsync(tmp)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (OSError, RuntimeError)):  # torch.save reports a full disk as a RuntimeError
            raise write_failed(final, exc, hint) from None
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync(final.parent)


class _Crc32Writer:
    """A file that counts and CRC-32s the bytes :func:`torch.save` writes through it (so no part is read back)."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.crc, self.bytes = handle, 0, 0

    def write(self, data: Any) -> int:
        import zlib

        self.crc = zlib.crc32(data, self.crc)
        self.bytes += len(memoryview(data).cast("B"))
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()
