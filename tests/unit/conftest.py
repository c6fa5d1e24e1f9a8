"""The unit tier's rule, enforced: no test here starts a process (a subprocess, a Math-Verify pool, Ray).  Such a
test belongs in tests/integration; models are kept out by review (tests/unit loads none)."""

import subprocess

import pytest

try:  # matplotlib builds its font cache on its first import on a machine by running fc-list: let that happen here,
    import matplotlib.font_manager  # noqa: F401  before the rule applies (a fresh HOME or CI machine has no cache)
except ImportError:
    pass


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a unit test started a process: move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr("os.fork", refuse, raising=False)
    monkeypatch.setattr("multiprocessing.process.BaseProcess.start", refuse)
