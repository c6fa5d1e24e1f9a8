"""Student pools: batched LoRA students inside the outer loop, and Ray workers (a real local Ray instance).

The model is the formatted tiny network (``tests/helpers/formatted.py``): students answer in ``\\boxed{}``, so
accuracies move, and every Ray worker can load it from its folder as ``soar train`` would.
"""

import json
import sys
import threading
import time

import pytest

from soar.config import load_config
from soar.loops.train import train
from soar.types import StepRecord, StudentJob
from tests.helpers.formatted import formatted_tiny_model_dir
from tests.integration.test_train_loop import _cfg


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return formatted_tiny_model_dir(tmp_path_factory.mktemp("formatted-tiny"))


BATCHED = {"student.finetune": "lora", "student.lora_rank": 4, "student.lora_alpha": 8, "student.lr": 1e-3,
           "compute.student_batch": 4}


@pytest.fixture(scope="module")
def batched_run(model_dir, tmp_path_factory):
    """Two outer steps of batched LoRA students with a promotion every step."""
    tmp = tmp_path_factory.mktemp("batched")
    return train(_cfg(model_dir, tmp, **BATCHED, **{"promotion.tau": -1.0, "outer_steps": 2}), out=tmp / "run")


def _records(run):
    return [StepRecord.from_dict(json.loads(x)) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_batched_students_promote_by_merging_the_measured_adapter(batched_run, model_dir):
    import torch

    from soar.config import PolicyConfig
    from soar.engines.models import load_model
    from soar.engines.trainer import load_trained
    from soar.loops.run_dir import RunDir, load_part

    first, second = _records(batched_run.run_dir)
    assert first.pool == second.pool == "inprocess+batched"
    chosen = first.promoted_dataset * 2 + first.promoted_student
    assert first.promoted and first.promotion_recheck_accuracy == first.promoted_accuracy \
        == first.student_accuracies[chosen]
    assert second.baseline_accuracy == first.student_accuracies[chosen]  # Q_R = the whole train split
    assert len(set(first.student_accuracies)) > 1 or len(set(map(tuple, first.student_rewards))) >= 1
    run = RunDir(batched_run.run_dir)
    infos = run.promoted_stages()
    assert [i["weights"] for i in infos] == ["full", "full"]
    state = load_part(run.latest_checkpoint(), "students")
    assert state["version"] == 2 and len(state["merges"]) == 2  # the baseline is the base plus two merged adapters
    # the saved promoted student is an ordinary model: loaded as one, it scores what the run measured
    cfg = load_config(file=batched_run.run_dir / "config.yaml")
    model, _ = load_model(cfg.model)
    model = load_trained(model, PolicyConfig(finetune="full"), load_part(run.promoted / "stage_2", "student"))
    plain, _ = load_model(cfg.model)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, dict(plain.named_parameters())[n])]
    assert changed and all("proj" in n for n in changed)  # merges touch the adapted linear layers only


def test_batched_run_resumed_from_its_checkpoint_equals_the_uninterrupted_one(batched_run, model_dir, tmp_path):
    """The checkpoint's merges, replayed on a fresh base model, rebuild the promoted baseline exactly."""
    cfg = _cfg(model_dir, batched_run.run_dir.parent, **BATCHED, **{"promotion.tau": -1.0, "outer_steps": 1})
    train(cfg, out=tmp_path / "run")
    config = tmp_path / "run" / "config.yaml"
    config.write_text(config.read_text().replace("outer_steps: 1", "outer_steps: 2"))
    train(resume=tmp_path / "run")
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k not in ("seconds", "step_wall")}  # noqa: E731
    assert [strip(r) for r in _records(tmp_path / "run")] == [strip(r) for r in _records(batched_run.run_dir)]


# ---------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _jobs(cfg, version=0, steps=2, tag=""):
    from soar.data.load import load_hard_set

    hard = load_hard_set(cfg.data)
    questions = [p.to_dict() for p in hard.train]
    synthetic = [{"question": f"What is {a} + {b}?", "answer": str(a + b), "id": f"s{a}{b}", "metadata": {}}
                 for a, b in ((12, 7), (30, 41), (5, 66), (23, 23))]
    return [StudentJob(f"{tag}k{k}-j{j}", version, synthetic[k * 2:k * 2 + 2], questions, 100 * k + j, steps, k, j)
            for k in range(2) for j in range(2)]


def _chosen(cfg, results, baseline):
    """The job the promotion rule picks from ``results`` (tau below any reward: it always promotes)."""
    from soar.algo.promotion import PromotionState, decide_promotion, grounded_rewards

    per_student, _ = grounded_rewards([[r.accuracy for r in results[k * 2:k * 2 + 2]] for k in range(2)], baseline)
    decision, _ = decide_promotion(PromotionState(), per_student, -1.0, 1, True)
    return _jobs(cfg)[decision.dataset * 2 + decision.student]


def _pool_cfg(model_dir, tmp_path, **extra):
    """bf16 matmuls on every CPU kind (native on AVX512-BF16, emulated on AVX2-only CPUs), so "Ray equals
    in-process" is checked in the precision where it once failed: the in-process pool then ran fp32 while the
    workers ran bf16 (the pool's caller chose the dtype; now ``build_worker`` takes it from the config)."""
    return _cfg(model_dir, tmp_path, **{**BATCHED, "compute.student_batch": 2, "compute.threads": 1,
                                        "compute.workers": 2, "model.compute_dtype": "bfloat16", **extra})


def _summary(results):
    return [(r.job_id, r.accuracy, r.correct, r.train_rewards, r.tokens) for r in results]


@pytest.fixture(scope="module")
def in_process(model_dir, tmp_path_factory):
    """The in-process pool's results for the jobs, a promotion, and the next jobs (torch on 1 thread, as each
    Ray worker runs)."""
    import torch

    from soar.engines.models import load_model
    from soar.math.verify import Verifier
    from soar.students.pool import build_pool

    cfg = _pool_cfg(model_dir, tmp_path_factory.mktemp("inproc"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with Verifier(1, 10.0) as verifier:
            model, tokenizer = load_model(cfg.model)
            pool = build_pool(cfg, model, tokenizer, verifier)
            base = pool.baseline_accuracy(_jobs(cfg)[0].reward_questions)
            first = pool.run(_jobs(cfg), base.accuracy)
            recheck = pool.promote(_chosen(cfg, first, base.accuracy))
            second = pool.run(_jobs(cfg, version=1, tag="after-"), recheck.accuracy)
    finally:
        torch.set_num_threads(threads)
    return cfg, base, first, recheck, second


def test_ray_pool_equals_the_in_process_pool_and_promotion_reaches_every_worker(ray_cluster, in_process, tmp_path):
    from soar.students.pool import RayStudentPool

    cfg, base, first, recheck, second = in_process
    pool = RayStudentPool(cfg, worker_log=tmp_path / "workers.log")
    try:
        assert pool.baseline_accuracy(_jobs(cfg)[0].reward_questions).accuracy == base.accuracy
        # what a worker prints (a warning, a traceback it logs) reaches the run's workers.log after the step
        ray_cluster.get(pool.actors[1].__ray_call__.remote(lambda host: print("a line from worker 1", file=sys.stderr)))
        assert _summary(pool.run(_jobs(cfg), base.accuracy)) == _summary(first)
        log = (tmp_path / "workers.log").read_text()
        header = f"== worker 1 ({pool.nodes[1]}) ==\n"
        assert pool.nodes[1] and header in log
        assert "a line from worker 1\n" in log.split(header, 1)[1].split("== worker ")[0]
        assert pool.promote(_chosen(cfg, first, base.accuracy)).accuracy == recheck.accuracy
        assert pool.baseline_version == 1
        # both workers hold the promoted baseline: each runs one of the next step's two batches
        assert _summary(pool.run(_jobs(cfg, version=1, tag="after-"), recheck.accuracy)) == _summary(second)
        assert pool.state_dict()["version"] == 1 and len(pool.state_dict()["merges"]) == 1
    finally:
        pool.close()


def test_a_killed_ray_worker_is_replaced_and_its_batch_runs_again(ray_cluster, in_process):
    from soar.students.pool import RayStudentPool

    cfg, base, first, _, _ = in_process
    pool = RayStudentPool(cfg)
    try:
        victim = pool.actors[0]
        out = {}
        runner = threading.Thread(target=lambda: out.update(results=pool.run(_jobs(cfg), base.accuracy)))
        runner.start()
        deadline = time.time() + 60
        while not any(actor == 0 for actor, _, _ in list(pool.in_flight.values())):  # its batch is on it
            assert time.time() < deadline and runner.is_alive()
            time.sleep(0.01)
        ray_cluster.kill(victim, no_restart=True)
        runner.join()
        results = out["results"]
        assert pool.replaced == 1 and pool.actors[0] is not victim
        assert _summary(results) == _summary(first)
        # learnability's datasets, 3 on 2 workers: worker 0, killed before they are sent, holds two of the calls;
        # it is replaced once (not once per call), runs both again, and the rates are the live pool's
        datasets, seeds = [[q] for q in _jobs(cfg)[0].reward_questions[:3]], [5, 6, 7]
        expected = pool.success_rates(datasets, 4, seeds)
        ray_cluster.kill(pool.actors[0], no_restart=True)
        assert pool.success_rates(datasets, 4, seeds) == expected and pool.replaced == 2
        # past compute.worker_retries the run stops with one line naming the worker and its last error
        from soar.errors import SoarError

        pool.retries = 0
        ray_cluster.kill(pool.actors[0], no_restart=True)
        with pytest.raises(SoarError) as stopped:
            pool.baseline_accuracy(_jobs(cfg)[0].reward_questions)
        message = str(stopped.value)
        assert "Ray worker 0 died 1 times running the baseline's evaluation" in message
        assert "compute.worker_retries 0" in message
        assert "last error:" in message and "\n" not in message
    finally:
        pool.close()


def _full_copies(value, parameters):
    """How many full copies of the model's weights ``value`` holds (dicts of tensors of at least half the model)."""
    import torch

    from soar.types import StudentResult

    if isinstance(value, dict):
        tensors = [v for v in value.values() if isinstance(v, torch.Tensor)]
        if tensors and sum(t.numel() for t in tensors) >= parameters / 2:
            return 1
        return sum(_full_copies(v, parameters) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_full_copies(v, parameters) for v in value)
    assert value is None or isinstance(value, (StudentResult, int, float, str)), type(value)
    return 0


def test_ray_workers_keep_their_students_and_the_driver_gets_one_copy_per_promotion(ray_cluster, model_dir, tmp_path,
                                                                                    monkeypatch):
    """Issue 26: 8 datasets x 4 full fine-tuned students on 2 workers.  No student's weights reach the driver in
    the student phase; the promotion brings exactly one copy (which the checkpoint and promoted/ reuse); a worker
    never holds a student the promotion rule can no longer choose, and after the step only the one candidate."""
    from soar.algo.promotion import PromotionCandidates, PromotionState, decide_promotion, grounded_rewards
    from soar.data.load import load_hard_set
    from soar.engines.models import load_model
    from soar.students.pool import RayStudentPool

    cfg = _cfg(model_dir, tmp_path, **{"compute.workers": 2, "compute.threads": 1, "inner.repeats": 4})
    parameters = sum(p.numel() for p in load_model(cfg.model)[0].parameters())
    questions = [p.to_dict() for p in load_hard_set(cfg.data).train][:4]
    jobs = [StudentJob(f"k{k}-j{j}", 0, [{"question": f"What is {k} + {j}?", "answer": str(k + j), "id": f"s{k}{j}",
                                          "metadata": {}}], questions, 10 * k + j, 1, k, j)
            for k in range(8) for j in range(4)]
    received = []
    real_get = ray_cluster.get
    monkeypatch.setattr(ray_cluster, "get", lambda *a, **k: (lambda out: received.append(_full_copies(out, parameters))
                                                                 or out)(real_get(*a, **k)))
    pool = RayStudentPool(cfg)
    actors = pool.actors
    try:
        base = pool.baseline_accuracy(questions).accuracy
        replica, dropped, index = PromotionCandidates(4), set(), {job.job_id: job for job in jobs}
        checks = []

        def after_each(result):  # the driver's drops are sent before this; each worker runs its calls in order
            job = index[result.job_id]
            dropped.update(replica.add(job.dataset_index, job.student_index, result.accuracy - base))
            busy = {slot for slot, _, _ in pool.in_flight.values()}  # asked later: a busy worker would block the run
            held = [tuple(key) for slot, a in enumerate(pool.actors) if slot not in busy
                    for key in real_get(a.kept_keys.remote())]
            checks.append(len(held))
            assert not dropped & set(held), (sorted(dropped & set(held)), result.job_id)

        results = pool.run(jobs, base, progress=after_each)
        assert len(results) == len(checks) == 32 and sum(received) == 0  # results travel without weights
        held = [tuple(key) for a in pool.actors for key in real_get(a.kept_keys.remote())]
        assert held == [replica.best], (held, replica.best)
        per_student, _ = grounded_rewards([[r.accuracy for r in results[k * 4:k * 4 + 4]] for k in range(8)], base)
        decision, _ = decide_promotion(PromotionState(), per_student, -1.0, 1, True)
        assert (decision.dataset, decision.student) == replica.best
        log = []
        real_wait = pool._wait
        monkeypatch.setattr(pool, "_wait", lambda ref, kind, what, index: log.append(("wait", index))
                            or real_wait(ref, kind, what, index))
        pool.actors = [_Logged(actor, log) for actor in actors]
        pool.promote(jobs[decision.dataset * 4 + decision.student])
        assert sum(received) == 1  # the promoted student, once
        adopt = [i for i, entry in enumerate(log) if entry == ("call", "adopt")]  # issue 35: all at once
        assert adopt == [adopt[0], adopt[0] + 1] and log[adopt[1] + 1:adopt[1] + 3] == [("wait", 0), ("wait", 1)], log
        state, weights = pool.state_dict(), pool.baseline_weights()  # what the checkpoint and promoted/ write
        assert state["version"] == 1 and _full_copies(state, parameters) == 1 and weights is state["weights"]
        assert sum(received) == 1
        assert all(not real_get(a.kept_keys.remote()) for a in pool.actors)
        assert max(pool.memory()["workers_peak_kept"]) <= 4 * 2 + 1  # students of the datasets still open on 2 workers, and the best
        # learnability (B.4): 3 datasets on 2 workers, all sent before any is waited for; each worker holds the
        # promoted baseline, so the rates equal worker 0's for every dataset
        log.clear()
        datasets, seeds = [[q] for q in questions[:3]], [5, 6, 7]
        rates = pool.success_rates(datasets, 4, seeds)
        assert log == [("call", "success_rates")] * 3 + [("wait", 0), ("wait", 1), ("wait", 0)], log
        assert rates == [real_get(actors[0].call.remote("success_rates", d, 4, seed)) for d, seed in zip(datasets, seeds)]
        assert all(len(r) == 1 and 0.0 <= r[0] <= 1.0 for r in rates)
        # a resume's baseline goes into the object store once (not once per worker), and both loads run at once
        puts, real_put = [], ray_cluster.put
        monkeypatch.setattr(ray_cluster, "put", lambda value, **kw: puts.append(_full_copies(value, parameters))
                            or real_put(value, **kw))
        log.clear()
        pool.load_state_dict(state)
        assert puts == [1] and log == [("call", "load_baseline_state")] * 2 + [("wait", 0), ("wait", 1)], (puts, log)
        assert sum(received) == 1
    finally:
        pool.actors = actors  # the real handles, for close()
        pool.close()


class _Logged:
    """An actor handle that logs each method call it sends (``call``'s first argument names the worker method)."""

    def __init__(self, actor, log):
        self._actor, self._log = actor, log

    def __getattr__(self, name):
        method, log = getattr(self._actor, name), self._log

        class _Method:
            @staticmethod
            def remote(*args):
                log.append((name, args[0] if name == "call" else None))
                return method.remote(*args)

        return _Method


def test_the_teacher_holds_a_gpu_no_student_worker_is_placed_on(model_dir, tmp_path):
    """compute.teacher_gpus 1 on a Ray instance with 3 logical GPUs (Ray declares GPUs that do not exist): the
    teacher's seat and 2 one-GPU workers get 3 different GPUs; a fourth one-GPU claim has none left."""
    ray = pytest.importorskip("ray")
    from soar.errors import SoarError
    from soar.students.pool import RayStudentPool, reserve_teacher_gpus

    was = ray.is_initialized()
    if was:
        ray.shutdown()  # the module's instance has no GPUs
    ray.init(num_cpus=2, num_gpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        cfg = _cfg(model_dir, tmp_path, **{"compute.pool": "ray", "compute.workers": 2, "compute.worker_gpus": 1,
                                           "compute.teacher_gpus": 1, "compute.threads": 1})
        seat, teacher = reserve_teacher_gpus(cfg)
        pool = RayStudentPool(cfg)
        try:
            workers = [ray.get(a.gpu_ids.remote()) for a in pool.actors]
            assert len(teacher) == 1 and all(len(ids) == 1 for ids in workers)
            assert sorted(teacher + [i for ids in workers for i in ids]) == [0, 1, 2]
            with pytest.raises(SoarError, match="no free GPU on this Ray node"):
                reserve_teacher_gpus(cfg, timeout_s=3)
            # every GPU taken: one more worker can never be placed, and the pool says so instead of waiting
            with pytest.raises(SoarError) as unplaced:
                RayStudentPool(_cfg(model_dir, tmp_path, **{"compute.pool": "ray", "compute.workers": 1,
                                                            "compute.worker_gpus": 1, "compute.worker_timeout_s": 3}))
            said = str(unplaced.value)
            assert "Ray did not start worker 0 within 3 s" in said and "compute.worker_gpus" in said
            assert "and the cluster has " in said and " 0 of 3 GPU free" in said and "\n" not in said
            # a node lost on a full cluster: its worker's replacement cannot be placed either
            pool.deadlines.fixed_s = 3
            ray.kill(pool.actors[0], no_restart=True)
            other, _ = reserve_teacher_gpus(cfg)  # takes the GPU the dead worker freed
            with pytest.raises(SoarError, match="Ray did not start worker 0 within 3 s"):
                pool.baseline_accuracy(_jobs(cfg)[0].reward_questions)
            ray.kill(other)
        finally:
            pool.close()
            ray.kill(seat)
    finally:
        ray.shutdown()


def test_a_worker_out_of_memory_or_hung_stops_the_run_in_one_line(ray_cluster, model_dir, tmp_path):
    """CUDA's out-of-memory raised inside a worker (the only fake here: no GPU), and a batch that never returns
    within compute.worker_timeout_s: one line each, naming the worker, its node, the students and what to change."""
    import torch

    from soar.errors import SoarError
    from soar.students.pool import RayStudentPool

    cfg = _pool_cfg(model_dir, tmp_path, **{"compute.workers": 1})
    pool = RayStudentPool(cfg)

    class Failing:
        def __init__(self, how):
            self.how = how

        def clear(self):
            pass

        def train(self, jobs):
            if self.how == "oom":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            time.sleep(60)

    try:
        real = pool.actors[0]
        pool.actors[0] = ray_cluster.remote(num_cpus=0)(Failing).remote("oom")
        with pytest.raises(SoarError) as oom:
            pool.run(_jobs(cfg), 0.0)
        said = str(oom.value)
        assert said.startswith("Ray worker 0 (") and "ran out of memory running students k0-j0..k0-j1" in said
        assert "student.micro_batch_size" in said and "\n" not in said
        ray_cluster.kill(pool.actors[0])
        pool.actors[0] = ray_cluster.remote(num_cpus=0)(Failing).remote("hang")
        pool.deadlines.fixed_s = 2
        started = time.time()
        with pytest.raises(SoarError) as hung:
            pool.run(_jobs(cfg), 0.0)
        said = str(hung.value)
        assert time.time() - started < 30 and "no batch of students finished within 2 s" in said
        assert "worker 0" in said and "compute.worker_timeout_s 2" in said and "\n" not in said
        ray_cluster.kill(pool.actors[0])
        pool.actors[0] = real
    finally:
        pool.close()
