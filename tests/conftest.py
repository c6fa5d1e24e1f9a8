import os

# Threads that wait sleep instead of spinning (read by torch's OpenMP when torch loads, after this file; subprocesses
# inherit it).  With other work on the cores, spinning threads wait for descheduled peers at every parallel region:
# measured 2026-12-07 on 2 cores (AVX2) with two other CPU-bound jobs, a tiny model's forward+backward took 2.3x as
# long spinning as sleeping, and tests/integration/test_evaluation_pipeline.py passed its 600 s timeout (48 s alone);
# on an idle machine the two are within noise.  A run of the suite beside other work keeps its pace.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Ray starts its workers at niceness 15; beside other CPU-bound work they then wait for it (2026-12-07, 2 cores, two
# busy processes beside the suite: test_paper_fanout took 596 s of its 600 s timeout, 33 s alone).  Every cluster a
# test starts runs its workers at the tests' own priority (soar's local clusters do the same: connect_ray).
os.environ.setdefault("RAY_worker_niceness", "0")

import pytest  # noqa: E402

from soar.math.verify import Verifier  # noqa: E402


def pytest_report_header(config):
    """The machine kind in the log's head, so a failure names it: the CPU's matrix flags and the matmul dtype that
    ``model.compute_dtype: auto`` (the ``tiny`` preset) resolves to here (bf16 where the CPU has native bf16, else
    fp32; floating-point results differ between the two kinds)."""
    from pathlib import Path

    from soar.config import load_config
    from soar.engines.models import matmul_dtype_name

    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    shown = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))
    return [f"cpu flags: {' '.join(shown) or 'unknown'}",
            f"matmul dtype (tiny, compute_dtype auto): {matmul_dtype_name(load_config('tiny').model)}"]


def pytest_collection_modifyitems(session, config, items):
    """The files that hold a ``slow`` test first, each file's tests in their order: with the suite spread over
    processes a file at a time (``scripts/test.sh``: pytest-xdist, ``--dist loadfile``), the longest files start
    at once instead of last, when the other process would sit idle beside them (the test that SOAR learns, ~2-3
    minutes, came last alphabetically).  The order is the same in every process, as xdist requires."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def verifier():
    """One real Math-Verify process pool for the whole session (2 workers, 10 s hard timeout)."""
    with Verifier(workers=2, timeout_s=10.0) as v:
        yield v
