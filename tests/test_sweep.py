"""Parameter sweeps on Dask: ``experiments/sweep.py``, ``experiments/sweep_report.py``, ``spiking-gan sweep``.

Everything runs for real: LocalClusters of worker processes, a separately started
``dask scheduler`` + ``dask worker``, real training and evaluation of the tiny test GAN.
"""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from helpers import PNG_MAGIC, ROOT, TINY

from experiments.sweep import SweepError, check_scheduler, load_sweep
from spiking_gan.cli import main

TINY_SWEEP = os.path.join(ROOT, "sweeps", "tiny.toml")
BIN = os.path.dirname(sys.executable)


def write_sweep(tmp_path, body: str, name: str = "sweep.toml") -> str:
    """A sweep file based on the tiny test config (``{base}`` is replaced by its path)."""
    path = tmp_path / name
    path.write_text(body.replace("{base}", json.dumps(TINY)))
    return str(path)


def results(out) -> dict:
    """Point id -> result.json of every point folder that has one."""
    found = {}
    for pid in sorted(os.listdir(os.path.join(out, "points"))):
        path = os.path.join(out, "points", pid, "result.json")
        if os.path.exists(path):
            with open(path) as fh:
                found[pid] = json.load(fh)
    return found


def n_done(out) -> int:
    """Points of ``out`` whose result says done (0 before the sweep has made its folders)."""
    if not os.path.isdir(os.path.join(out, "points")):
        return 0
    return sum(r["status"] == "done" for r in results(out).values())


def summary(out) -> list:
    with open(os.path.join(out, "summary.csv")) as fh:
        return list(csv.DictReader(fh))


def sweep_cli(*args) -> list:
    return [sys.executable, "-m", "spiking_gan.cli", "sweep", *map(str, args)]


def stop_group(proc: subprocess.Popen, sig=signal.SIGKILL, timeout: float = 20.0) -> None:
    """Signal the process group of ``proc`` (started with a new session) and wait until it is gone."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- the tiny sweep
def test_tiny_sweep_on_a_local_cluster_of_two_workers(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["sweep", TINY_SWEEP, "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert "4 points: 4 run, 0 skipped (done before), 0 failed" in capsys.readouterr().out

    rows = summary(out)
    assert [r["status"] for r in rows] == ["done"] * 4
    assert [(r["loss.kind"], r["seed"]) for r in rows] == [
        ("ttfs", "0"), ("ttfs", "1"), ("aggressive", "0"), ("aggressive", "1")]
    for r in rows:
        for key in ("decision_time_ms", "spikes_total", "spikes_g", "spikes_d", "classifier_fid", "kid"):
            assert float(r[key]) >= 0, key
        assert 0 < float(r["decision_time_ms"]) <= 32  # tiny config: t_max = 32 steps of 1 ms
    md = (out / "summary.md").read_text().splitlines()
    assert len(md) == 2 + 4 and "classifier_fid" in md[0] and "| aggressive |" in md[-1]
    for name in ("loss.kind.png", "seed.png"):
        assert (out / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    assert (out / "quality_classifier.npz").exists()

    recorded = results(out)
    assert len(recorded) == 4
    for pid, r in recorded.items():
        assert r["status"] == "done" and r["attempts"] == 1 and r["elapsed_s"] > 0
        assert os.path.exists(r["checkpoint"]) and r["metrics"]["epoch"] == 2
        point = json.loads((out / "points" / pid / "point.json").read_text())
        assert point["overrides"] == r["overrides"]
    pids = {r["pid"] for r in recorded.values()}
    assert os.getpid() not in pids and len(pids) == 2  # two worker processes shared the points
    record = json.loads((out / "sweep.json").read_text())
    assert [p["id"] for p in record["points"]] == [r["point"] for r in rows]


def test_point_ids_and_random_draws_are_reproducible(tmp_path):
    grid = write_sweep(tmp_path, 'base = {base}\n[grid]\n"seed" = [0, 1]\n"loss.alpha" = [2.0, 4]\n', "a.toml")
    swapped = write_sweep(tmp_path, 'base = {base}\n[grid]\n"loss.alpha" = [4, 2.0]\n"seed" = [1, 0]\n', "b.toml")
    ids = [p.id for p in load_sweep(grid).points]
    assert len(ids) == 4 and ids[0].startswith("seed=0,loss.alpha=2-")
    assert sorted(p.id.split("-")[-1] for p in load_sweep(swapped).points) == \
        sorted(i.split("-")[-1] for i in ids)  # same configs, same hashes, whatever the order

    body = ('base = {base}\nmode = "random"\nsamples = 6\nseed = 5\n[random]\n'
            '"loss.alpha" = {low = 2.0, high = 16.0, log = true}\n"neuron.t_max" = {low = 16, high = 40}\n'
            '"loss.kind" = ["ttfs", "aggressive"]\n')
    first, again = load_sweep(write_sweep(tmp_path, body, "r.toml")), load_sweep(str(tmp_path / "r.toml"))
    assert [p.id for p in first.points] == [p.id for p in again.points] and len(first.points) == 6
    assert first.log_keys == ("loss.alpha",)
    for p in first.points:
        assert 2.0 <= p.overrides["loss.alpha"] <= 16.0 and isinstance(p.overrides["loss.alpha"], float)
        assert 16 <= p.overrides["neuron.t_max"] <= 40 and isinstance(p.overrides["neuron.t_max"], int)
        assert p.config["neuron"]["t_max"] == p.overrides["neuron.t_max"]


# ------------------------------------------------------------------------------- validation
GRID = '[grid]\n"seed" = [0, 1]\n'


@pytest.mark.parametrize("body,msg", [
    ('base = {base}\nretires = 2\n' + GRID, "unknown sweep key retires"),
    ('base = {base}\n[grid]\n"loss.knd" = ["ttfs"]\n', "[grid] unknown config key loss.knd"),
    ('base = {base}\n[grid]\n"loss.kind" = ["ttfs", "mse"]\n', "[grid] loss.kind: 'mse' is not one of"),
    ('base = {base}\n[grid]\n"train.epochs" = [1, 0]\n', "[grid] train.epochs: 0 is below the minimum 1"),
    ('base = {base}\n[grid]\n"seed" = 3\n', "[grid] seed: expected a non-empty list"),
    ('base = {base}\n[grid]\n"seed" = [1, 1]\n', "[grid] seed: a value is listed twice"),
    ('base = {base}\n[set]\n"train.epochs" = "two"\n' + GRID, "[set] train.epochs: expected an integer"),
    ('base = {base}\n[set]\n"seed" = 4\n' + GRID, "seed is both in [set] and [grid]"),
    ('base = "nowhere.toml"\n' + GRID, "base: config file"),
    (GRID, "base: missing"),
    ('base = {base}\nmode = "sobol"\n' + GRID, "mode: 'sobol' is not one of grid, random"),
    ('base = {base}\nsamples = 3\n' + GRID, "samples: not used with mode = 'grid'"),
    ('base = {base}\nretries = -1\n' + GRID, "retries: -1 is below the minimum 0"),
    ('base = {base}\nmode = "random"\n[random]\n"loss.alpha" = {low = 1.0, high = 2.0}\n',
     "samples: missing"),
    ('base = {base}\nmode = "random"\nsamples = 2\n[random]\n"loss.alpha" = {low = 5.0, high = 1.0}\n',
     "[random] loss.alpha: low 5.0 is above high 1.0"),
    ('base = {base}\nmode = "random"\nsamples = 2\n[random]\n"loss.alpha" = {low = 1.0, hi = 2.0}\n',
     "[random] loss.alpha: unknown range key hi"),
    ('base = {base}\nmode = "random"\nsamples = 2\n[random]\n"neuron.t_max" = {low = 16.0, high = 32.0}\n',
     "[random] neuron.t_max: expected an integer"),
    ('base = {base}\n[grid\n', "is not valid TOML"),
])
def test_invalid_sweep_files_are_rejected_before_anything_runs(tmp_path, capsys, body, msg):
    out = tmp_path / "out"
    assert main(["sweep", write_sweep(tmp_path, body), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1, err
    assert not out.exists()
    with pytest.raises(SweepError):
        load_sweep(str(tmp_path / "sweep.toml"))


def test_bad_command_line_is_one_line(tmp_path, capsys):
    args = ["sweep", TINY_SWEEP, "--out", str(tmp_path / "o")]
    assert main(args + ["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert main(args + ["--workers", "0"]) == 2
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()  # --workers 0: argparse's usage line and its error
    assert "--workers" in err[0] and "argument --workers: expected a count >= 1" in err[-2]
    assert "does not exist" in err[-1]
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- kill and resume
@pytest.mark.slow
def test_killed_sweep_reruns_only_the_missing_points(tmp_path):
    # 8 epochs (~3 s a point) leave a few seconds between the first and the last point
    sweep = write_sweep(tmp_path, 'base = {base}\nn_eval_samples = 100\n[set]\n"train.epochs" = 8\n'
                        '[grid]\n"loss.kind" = ["ttfs", "aggressive"]\n"seed" = [0, 1]\n')
    out = tmp_path / "out"
    proc = subprocess.Popen(sweep_cli(sweep, "--out", out, "--quiet"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while n_done(out) == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
            time.sleep(0.05)
    finally:
        stop_group(proc)  # SIGKILL: the client, the LocalCluster's scheduler and workers
    before = {pid: r for pid, r in results(out).items() if r["status"] == "done"}
    assert 1 <= len(before) < 4
    mtimes = {pid: os.stat(out / "points" / pid / "result.json").st_mtime_ns for pid in before}
    started = {pid for pid in os.listdir(out / "points")
               if pid not in before and (out / "points" / pid / "config.toml").exists()}

    rerun = subprocess.run(sweep_cli(sweep, "--out", out, "--quiet"), cwd=ROOT, capture_output=True,
                           text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert f"4 points: {4 - len(before)} run, {len(before)} skipped (done before), 0 failed" in rerun.stdout
    after = results(out)
    assert len(after) == 4 and all(r["status"] == "done" for r in after.values())
    for pid, r in before.items():  # untouched
        assert after[pid] == r
        assert os.stat(out / "points" / pid / "result.json").st_mtime_ns == mtimes[pid]
    for pid in started:  # interrupted runs were resumed from their folder
        assert after[pid]["resumed"] is True
    assert [r["status"] for r in summary(out)] == ["done"] * 4


# ---------------------------------------------------------------------------- a failing point
def test_failing_point_is_retried_then_recorded_and_the_others_finish(tmp_path, capsys):
    # batch_size 150 x d_steps 2 = 300 images per step > the 200 training images of the tiny
    # config: valid config values, but train_gan refuses them when it starts
    sweep = write_sweep(tmp_path, 'base = {base}\nretries = 1\nn_eval_samples = 100\n[set]\n'
                        '"train.epochs" = 1\n"train.d_steps" = 2\n[grid]\n"train.batch_size" = [20, 150, 50]\n')
    out = tmp_path / "out"
    assert main(["sweep", sweep, "--out", str(out), "--workers", "2", "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "3 points: 3 run, 0 skipped (done before), 1 failed" in cap.out
    assert cap.err.count("\n") == 1 and "1 point(s) failed" in cap.err and "exceeds" in cap.err

    rows = summary(out)
    assert [(r["train.batch_size"], r["status"]) for r in rows] == [
        ("20", "done"), ("150", "failed"), ("50", "done")]
    assert rows[1]["attempts"] == "2" and "train.batch_size * train.d_steps = 300 exceeds" in rows[1]["error"]
    assert rows[1]["decision_time_ms"] == "" and float(rows[0]["decision_time_ms"]) > 0
    failed = results(out)[rows[1]["point"]]
    assert failed["status"] == "failed" and failed["attempts"] == 2 and failed["error"].startswith("ConfigError")
    assert "train_gan" in failed["traceback"]
    assert (out / "plots" / "train.batch_size.png").read_bytes()[:8] == PNG_MAGIC
    assert "| failed |" in (out / "summary.md").read_text()

    # a re-run tries the failed point again (here without retries) and skips the others
    assert main(["sweep", sweep, "--out", str(out), "--workers", "1", "--retries", "0", "--quiet"]) == 2
    assert "3 points: 1 run, 2 skipped (done before), 1 failed" in capsys.readouterr().out
    assert results(out)[rows[1]["point"]]["attempts"] == 1


# ------------------------------------------------------------------ a separately started scheduler
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(proc: subprocess.Popen) -> set:
    return {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}


@pytest.mark.slow  # ~15 s idle, ~25 s on a busy machine
def test_sweep_on_a_running_dask_scheduler_and_workers(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    log = open(tmp_path / "dask.log", "w")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
             "--no-dashboard"], cwd=ROOT, start_new_session=True, stdout=log, stderr=log,
            env=dict(os.environ, TMPDIR=str(tmp_path))))  # its dask-scratch-space, not in the system temp
        procs.append(subprocess.Popen(
            [os.path.join(BIN, "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(tmp_path / "dask-worker")],
            cwd=ROOT, start_new_session=True, stdout=log, stderr=log))
        out = tmp_path / "out"
        run = subprocess.run(sweep_cli(TINY_SWEEP, "--out", out, "--scheduler", address, "--quiet"),
                             cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr + (tmp_path / "dask.log").read_text()
        assert "4 points: 4 run, 0 skipped" in run.stdout
        recorded = results(out)
        assert len(recorded) == 4 and all(r["status"] == "done" for r in recorded.values())
        # the points ran in the processes of the separately started `dask worker`
        assert {r["pid"] for r in recorded.values()} <= descendants(procs[1])
        assert [r["status"] for r in summary(out)] == ["done"] * 4
    finally:
        for proc in reversed(procs):
            stop_group(proc, signal.SIGTERM)
        log.close()


def test_an_unreachable_scheduler_fails_within_seconds(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        t0 = time.perf_counter()
        code = main(["sweep", TINY_SWEEP, "--out", str(tmp_path / "o"), "--scheduler", address])
        took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--scheduler {address}: cannot connect" in err, err
    assert took < 5, took
    assert not (tmp_path / "o").exists()
    with pytest.raises(SweepError, match="expected an address tcp://HOST:PORT"):
        check_scheduler("tcp://nohost")
    assert main(["sweep", TINY_SWEEP, "--out", str(tmp_path / "o"), "--connect-timeout", "0"]) == 2
