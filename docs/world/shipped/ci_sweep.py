"""Issue 34 item 8: the CI test's race() for seeds 3..12, one pair at a time: python docs/world/shipped/ci_sweep.py OUT
(from the repository root); OUT/sweep.json gets, per seed, the step the runs separated at and the shares."""
import json, sys, time
from pathlib import Path
sys.path.insert(0, ".")
from tests.integration.test_world_learns import race
root = Path(sys.argv[1]); root.mkdir(parents=True, exist_ok=True)
results = {}
for seed in range(3, 13):
    t = time.time()
    step, learn, frozen = race(root / f"s{seed}", seed)
    results[seed] = {"step": step, "learn": learn, "frozen": frozen, "seconds": round(time.time() - t, 1)}
    (root / "sweep.json").write_text(json.dumps(results, indent=1))
    print(seed, step, round(time.time() - t), flush=True)
