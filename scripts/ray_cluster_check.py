"""A Ray cluster started outside soar, as a user's nodes would be, with one node lost in the student phase.

    python scripts/ray_cluster_check.py [--out runs/ray-cluster-check] [--port PORT]

What it does, printing each command (the README's cluster section shows the same ones):

1. the reference: one outer step of the test loop (``tests/integration/test_train_loop.py``'s config, the
   formatted tiny model, 4 full fine-tuned students) with the in-process pool;
2. ``ray start --head`` (no CPUs: students go to the worker nodes) and two worker nodes, ``ray start
   --address ... --block``, each its own process group with its own 2 CPUs, all on this machine;
3. ``soar train ... --compute.pool ray --compute.ray_address 127.0.0.1:PORT`` joins the cluster;
4. once a student is training on a worker node (Ray's state API), that whole node is killed (SIGKILL to its
   process group: raylet, object store and workers);
5. the run must finish (dead workers replaced on the surviving node, their batches run again) with metrics equal
   to the reference's (times and the pool's name aside).

Everything runs with a temporary, empty HOME (``ray get-auth-token --generate`` makes the head's token there, as
the README's commands do on a fresh machine).  Exit status 0 when it holds.  Each worker node gets a root
temporary folder of its own (``--temp-dir``), as on a machine of its own: with one shared folder, two nodes
started together raced for the same plasma-store socket name and one raylet died on ``bind: Address already in
use`` (3 of 7 runs on 2026-12-03, Ray 2.60); with their own folders, 4 of 4 runs back to back passed.  Nodes that
still do not join are started again once.  It stops every Ray process it started (``ray stop --force`` at the end
stops any other local Ray processes too).  Takes ~2-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers: the formatted tiny model
SKIP = ("seconds", "step_wall", "pool")
TEMP_DIRS: list[str] = []
"""Each worker node's root temporary folder (``--temp-dir``) and the temporary HOME, removed at the end."""


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kwargs)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on now, from 31000-32699: below Linux's ephemeral range
    (32768-60999) and above the worker port ranges below.  A precaution, not the flake's cause: ``bind(0)`` hands
    out an ephemeral port, which an outbound connection of a Ray process could take before the node binds it.  The
    observed "bind: Address already in use" was the shared plasma-store socket (see ``--temp-dir`` below), and the
    runs that passed 4 of 4 used both changes."""
    import socket

    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(31000, 32700)
        if port in chosen:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


def start_nodes(nodes: dict[str, subprocess.Popen], address: str, env: dict[str, str]) -> None:
    """Two worker nodes, ``a`` and ``b``, each ``ray start --block`` in its own process group with 2 CPUs."""
    flags = ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
             "metrics-export-port", "runtime-env-agent-port")
    ports = free_ports(2 * len(flags))  # all distinct: two nodes on one machine need their own ports
    base = random.randrange(20000, 30000, 1000)  # worker port ranges: a fresh pair each start (a killed run's linger)
    for i, name in enumerate(("a", "b")):
        own = [f"--{flag}={port}" for flag, port in zip(flags, ports[i * len(flags):(i + 1) * len(flags)])]
        low = base + 1000 * i
        own += [f"--min-worker-port={low}", f"--max-worker-port={low + 999}"]
        # a root temporary folder of its own, as on a machine of its own: two nodes started together in one folder
        # race for the same plasma-store and raylet socket names, and one raylet dies on "bind: Address already in
        # use" (seen in 3 of 7 runs, and in 2 of 3 even with every TCP port chosen apart)
        TEMP_DIRS.append(tempfile.mkdtemp(prefix=f"ray-{name}-", dir="/tmp"))  # short: socket paths have a limit
        own += [f"--temp-dir={TEMP_DIRS[-1]}"]
        cmd = ["ray", "start", "--address", address, "--num-cpus", "2", "--resources", json.dumps({f"node_{name}": 1}),
               *own, "--block"]
        print("$", " ".join(cmd), "&", flush=True)
        nodes[name] = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)


def metrics(folder: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k not in SKIP}
            for x in (folder / "metrics.jsonl").read_text().splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/ray-cluster-check")
    parser.add_argument("--port", type=int, default=0, help="the head's port (default: a free one)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    from soar.config import to_yaml
    from tests.helpers.formatted import formatted_tiny_model_dir
    from tests.integration.test_train_loop import _cfg

    model = formatted_tiny_model_dir(out / "model")
    cfg = _cfg(model, out, **{"outer_steps": 1, "inner.steps": 6, "inner.max_steps": 6, "compute.threads": 1, "promotion.tau": -1.0})
    config = out / "config.yaml"
    config.write_text(to_yaml(cfg))
    # Ray's token authentication (on by default for `ray start`): every process of the cluster, the drivers too,
    # reads the token from ~/.ray/auth_token.  A fresh machine has none: `ray get-auth-token --generate` makes it
    # on the head (copy it to the other machines).  Everything here runs with a HOME of its own, empty at the
    # start, so the check neither needs nor touches the user's ~/.ray.
    home = tempfile.mkdtemp(prefix="ray-home-", dir="/tmp")
    TEMP_DIRS.append(home)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), RAY_ADDRESS="", RAY_AUTH_MODE="token", HOME=home)
    os.environ.update(RAY_AUTH_MODE="token", HOME=home)  # this script's own driver (the state API below)
    soar = [sys.executable, "-m", "soar", "train", "--config", str(config)]
    started = time.perf_counter()
    run([*soar, "--out", str(out / "inprocess")], env=env, stdout=subprocess.DEVNULL)
    reference = time.perf_counter() - started

    port = args.port or free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    nodes: dict[str, subprocess.Popen] = {}
    try:
        print(f"# HOME={home} (empty)", flush=True)
        run(["ray", "get-auth-token", "--generate"], env=env, stdout=subprocess.DEVNULL)
        run(["ray", "start", "--head", "--port", str(port), "--num-cpus", "0", "--disable-usage-stats"], env=env,
            stdout=subprocess.DEVNULL)
        import ray
        from ray.util.state import list_tasks

        ray.init(address=address, log_to_driver=False, configure_logging=False)
        for attempt in (1, 2):  # a port taken between choosing and binding it fails a node: start both again
            start_nodes(nodes, address, env)
            deadline = time.time() + 90
            while sum(n["Alive"] for n in ray.nodes()) < 3 and time.time() < deadline:
                time.sleep(0.5)
            if sum(n["Alive"] for n in ray.nodes()) >= 3:
                break
            print(f"# the worker nodes did not all come up (attempt {attempt}): starting them again", flush=True)
            for proc in nodes.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        else:
            raise SystemExit("the cluster did not reach 3 live nodes")
        cmd = [*soar, "--out", str(out / "cluster"), "--compute.pool", "ray", "--compute.ray_address", address,
               "--compute.workers", "2"]
        print("$", " ".join(cmd), flush=True)
        train = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim = None
        deadline = time.time() + 300
        while victim is None and train.poll() is None:
            if time.time() > deadline:
                raise SystemExit("no student was seen training within 300 s")
            tasks = list_tasks(address=None, filters=[("state", "=", "RUNNING")], raise_on_missing_output=False)
            running = [t for t in tasks if t.name.endswith("_WorkerHost.train")]
            if running:
                where = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}.get(running[0].node_id)
                victim = next((name for name in nodes if where and f"node_{name}" in where["Resources"]), None)
            time.sleep(0.2)
        if victim is None:
            raise SystemExit(f"the run ended before a student was seen training:\n{train.stderr.read()[-2000:]}")
        print(f"# a student is training on node {victim}: kill -9 its process group", flush=True)
        os.killpg(nodes[victim].pid, signal.SIGKILL)
        stdout, stderr = train.communicate(timeout=600)
        if train.returncode != 0:
            raise SystemExit(f"the cluster run failed ({train.returncode}):\n{stderr[-3000:]}")
        replaced = [line for line in stderr.splitlines() if line.startswith("Ray worker") and "replacing it" in line]
        print("\n".join(replaced) or "no worker was replaced", flush=True)
        equal = metrics(out / "cluster") == metrics(out / "inprocess")
        records = [json.loads(x) for x in (out / "cluster" / "metrics.jsonl").read_text().splitlines()]
        print(f"reference (in process) {reference:.0f} s; cluster run: pool {records[0]['pool']}, "
              f"metrics equal to the reference: {equal}")
        return 0 if equal and replaced else 1
    finally:
        for proc in nodes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["ray", "stop", "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for folder in TEMP_DIRS:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
