"""A process pool with a hard per-call timeout: a stuck worker is killed and replaced.

Why not ``concurrent.futures.ProcessPoolExecutor`` or ``multiprocessing.Pool``:
neither can cancel one running call, so an input on which Math-Verify hangs (or
sympy explodes) would stall the whole batch.  Math-Verify's own timeout uses
``signal.alarm``, which only works in a main thread; here each call runs in the
main thread of its own worker, and the parent enforces a wall-clock deadline
on top by killing the worker.

Each worker owns one pipe and runs one call at a time, so the parent always
knows which call a worker is stuck on.  Workers are recycled after
``max_calls_per_worker`` calls to bound memory growth (sympy caches leak).
Workers are plain ``python -m soar.math.pool`` subprocesses talking over two
pipes, not ``multiprocessing`` children: they neither fork a parent that holds
torch threads nor re-import the caller's ``__main__``, so any script may use
the pool without a ``__main__`` guard.  A replacement worker costs one Python
start plus the import of the ops module (about half a second).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any


def _worker_main(conn: Connection, ops_module: str) -> None:
    module = importlib.import_module(ops_module)
    if hasattr(module, "worker_init"):  # heavy imports before "ready", not inside a timed call
        module.worker_init()
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        op, args = message
        try:
            result = getattr(module, f"op_{op}")(*args)
        except Exception:  # an input that crashes the checker counts as a failure
            result = None
        conn.send(result)


class _PipePair:
    """One worker's two one-way pipes, used like a duplex ``Connection``."""

    def __init__(self, reader: Connection, writer: Connection) -> None:
        self.reader, self.writer = reader, writer

    def send(self, obj: Any) -> None:
        self.writer.send(obj)

    def recv(self) -> Any:
        return self.reader.recv()

    def poll(self, timeout: float) -> bool:
        return self.reader.poll(timeout)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: _PipePair
    calls: int = 0


@dataclass
class PoolStats:
    calls: int = 0
    timeouts: int = 0
    crashes: int = 0
    restarts: int = 0
    seconds: float = field(default=0.0)


class KillablePool:
    """Run ``op_<name>(*args)`` from ``ops_module`` in worker processes.

    A call that exceeds ``timeout_s``, crashes its worker, or raises returns
    ``None``; the caller maps ``None`` to its own failure value.
    """

    def __init__(
        self,
        ops_module: str,
        workers: int = 2,
        timeout_s: float = 5.0,
        max_calls_per_worker: int = 2000,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.ops_module = ops_module
        self.timeout_s = float(timeout_s)
        self.max_calls_per_worker = max_calls_per_worker
        self.stats = PoolStats()
        self._lock = threading.Lock()  # one map at a time: calls and pipes are paired by order
        self._workers = [self._start() for _ in range(workers)]
        try:
            for worker in self._workers:  # started together, awaited together
                self._await_ready(worker)
        except RuntimeError:
            self.close()
            raise

    def _start(self) -> _Worker:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "soar.math.pool", str(to_child_r), str(from_child_w), self.ops_module],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            # the worker can import whatever the caller can (source checkouts, tests)
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        os.close(to_child_r)
        os.close(from_child_w)
        conn = _PipePair(Connection(from_child_r, writable=False), Connection(to_child_w, readable=False))
        return _Worker(process=process, conn=conn)  # type: ignore[arg-type]

    def _await_ready(self, worker: _Worker) -> None:
        try:
            ready = worker.conn.poll(60) and worker.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            raise RuntimeError(f"verifier worker failed to start (ops module {self.ops_module!r})")

    def _replace(self, index: int) -> None:
        self._stop(self._workers[index])
        self._workers[index] = self._start()
        self._await_ready(self._workers[index])
        self.stats.restarts += 1

    @staticmethod
    def _stop(worker: _Worker) -> None:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(timeout=10)
        worker.conn.close()

    def map(self, op: str, args_list: Sequence[tuple]) -> list[Any]:
        """Results of ``op`` on every argument tuple, in order (``None`` on failure)."""
        with self._lock:
            return self._map(op, args_list)

    def _map(self, op: str, args_list: Sequence[tuple]) -> list[Any]:
        started = time.perf_counter()
        results: list[Any] = [None] * len(args_list)
        pending = deque(range(len(args_list)))
        busy: dict[int, tuple[int, float]] = {}  # worker index -> (call index, deadline)
        while pending or busy:
            for w, worker in enumerate(self._workers):
                if w not in busy and pending:
                    if worker.calls >= self.max_calls_per_worker:
                        self._replace(w)
                        worker = self._workers[w]
                    i = pending.popleft()
                    try:
                        worker.conn.send((op, args_list[i]))
                    except OSError:  # the worker died while idle: replace it, send again
                        self.stats.crashes += 1
                        self._replace(w)
                        worker = self._workers[w]
                        worker.conn.send((op, args_list[i]))
                    worker.calls += 1
                    busy[w] = (i, time.monotonic() + self.timeout_s)
            next_deadline = min(deadline for _, deadline in busy.values())
            conns = {self._workers[w].conn: w for w in busy}
            readers = {c.reader: c for c in conns}
            ready = wait(list(readers), timeout=max(0.0, next_deadline - time.monotonic()))
            for reader in ready:
                conn = readers[reader]  # type: ignore[index]
                w = conns[conn]
                i, _ = busy.pop(w)
                try:
                    results[i] = conn.recv()
                except (EOFError, OSError):
                    self.stats.crashes += 1
                    self._replace(w)
            now = time.monotonic()
            for w, (i, deadline) in list(busy.items()):
                if now >= deadline:
                    busy.pop(w)
                    self.stats.timeouts += 1
                    self._replace(w)
        self.stats.calls += len(args_list)
        self.stats.seconds += time.perf_counter() - started
        return results

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            self._stop(worker)
        self._workers = []

    def __del__(self) -> None:
        for worker in getattr(self, "_workers", []):
            if worker.process.poll() is None:
                worker.process.kill()

    def __enter__(self) -> "KillablePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # a worker: python -m soar.math.pool READ_FD WRITE_FD OPS_MODULE
    _read_fd, _write_fd, _ops = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    _worker_main(_PipePair(Connection(_read_fd, writable=False), Connection(_write_fd, readable=False)), _ops)  # type: ignore[arg-type]
