"""One run per folder: the folder lock of every command that writes a folder (issue 21)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, TINY, one_line, run_cli

from training import checkpoint
from training import config as cm
from training.config import GanConfig
from training.runinfo import LOCK_FILE, FolderBusy, OutputError, folder_lock


def _cli(*argv, **kw):
    """``spiking-gan ARGV`` in a new process (a process of its own, as a user starts one)."""
    return subprocess.Popen([sys.executable, "-m", "spiking_gan.cli", *map(str, argv)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def _long_config(tmp_path, epochs=400):
    cfg = tmp_path / "long.toml"
    cfg.write_text(cm.to_toml(cm.load(TINY, GanConfig, {"train.epochs": epochs, "train.sample_grid": 0})))
    return cfg


# ----------------------------------------------------------------- the lock itself
def test_lock_creates_the_folder_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "a" / "b"
    with folder_lock(str(out), "train"):
        rec = json.loads((out / LOCK_FILE).read_text())
        assert rec["pid"] == os.getpid() and rec["command"] == "train"
        with folder_lock(str(out), "train"):  # re-entrant in one process
            pass
        assert (out / LOCK_FILE).exists()
    assert not (tmp_path / "a").exists()  # made by the lock and left empty: removed again
    out.mkdir(parents=True)
    (out / "x").write_text("kept")
    with folder_lock(str(out), "train"):
        pass
    assert sorted(os.listdir(out)) == ["x"]


def test_lock_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        with folder_lock(str(tmp_path / "f"), "train"):
            pass
    with pytest.raises(OutputError, match="is a file"):
        with folder_lock(str(tmp_path / "f" / "run"), "train"):
            pass


def test_a_second_process_is_refused_and_named(tmp_path):
    out = tmp_path / "held"
    code = ("import sys, time\nfrom training.runinfo import folder_lock\n"
            f"with folder_lock({str(out)!r}, 'compare-losses'):\n"
            "    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=rf"in use by `spiking-gan compare-losses` \(process {holder.pid} "):
            with folder_lock(str(out), "train"):
                pass
        holder.send_signal(signal.SIGKILL)  # kill -9: the operating system releases the lock
        holder.wait(timeout=30)
        assert (out / LOCK_FILE).exists()  # the killed owner could not remove its file...
        with folder_lock(str(out), "train"):  # ...which blocks nobody
            pass
    finally:
        holder.kill()
        holder.wait()


# ----------------------------------------------------------------- train, as a user runs it
@pytest.mark.slow
def test_two_trains_started_together_give_one_consistent_run(tmp_path):
    out = tmp_path / "run"
    procs = [_cli("train", "--config", TINY, "--out", out, "--seed", seed, "--loss", loss, "--quiet")
             for seed, loss in ((0, "ttfs"), (1, "aggressive"))]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    err = next(r[2] for r in results if r[0] == 2)
    assert one_line(err) and str(out) in err, err
    assert "in use by `spiking-gan train` (process" in err or "already holds a run" in err, err
    # the folder holds one run: config, checkpoint and metrics agree
    cfg = cm.load(out / "config.toml", GanConfig)
    ck = checkpoint.load(str(out / "checkpoint.npz"))[1]
    assert ck["seed"] == cfg.seed and ck["loss"] == cfg.loss.kind, (ck, cfg.seed, cfg.loss.kind)
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == ck["epoch"] == 3
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e.get("kind") == "epoch"] == [1, 2, 3]
    assert not (out / LOCK_FILE).exists()


@pytest.mark.slow
def test_resume_while_training_is_refused_and_kill_9_frees_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    proc = _cli("train", "--config", _long_config(tmp_path), "--out", out, "--quiet")
    try:
        _wait_for(out / "checkpoint.npz", proc)
        code, _, err = run_cli(["train", "--out", out, "--resume", "--quiet"], capsys)
        assert code == 2 and one_line(err), err
        assert f"--out {out} is in use by `spiking-gan train` (process {proc.pid} " in err
        code, _, err = run_cli(["train", "--config", TINY, "--out", out, "--force", "--quiet"], capsys)
        assert code == 2 and "is in use by" in err  # --force does not take a folder in use either
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done = checkpoint.load(str(out / "checkpoint.npz"))[1]["epoch"]
        code, outp, err = run_cli(["train", "--out", out, "--resume", "--epochs", done + 1, "--quiet"], capsys)
        assert code == 0, err
        assert checkpoint.load(str(out / "checkpoint.npz"))[1]["epoch"] == done + 1
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["classify", "--config", os.path.join(ROOT, "tests", "data", "tiny_classifier.toml")],
    ["compare-losses", "--config", TINY, "--n-seeds", "1", "--no-ann"],
])
def test_other_commands_refuse_a_folder_in_use(tmp_path, capsys, argv):
    out = tmp_path / "busy"
    code = ("import sys, time\nfrom training.runinfo import folder_lock\n"
            f"with folder_lock({str(out)!r}, {argv[0]!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli([*argv, "--out", out, "--quiet"], capsys)
        assert code == 2 and one_line(err) and f"{out} is in use by `spiking-gan {argv[0]}`" in err, err
        assert os.listdir(out) == [LOCK_FILE]  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_figures_says_it_replaces_committed_files(tmp_path, capsys):
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "table.md").write_text("committed\n")
    (figs / "run.json").write_text('{"command": "figures"}\n')  # an earlier figures output
    for args in (["init", "-q"], ["add", "figs"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "figures"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    code, _, err = run_cli(["figures", "--config", TINY, "--out", figs, "--runs-dir", tmp_path / "r",
                            "--n", 10**12], capsys)
    lines = err.splitlines()
    assert code == 2 and "Traceback" not in err, err  # the note first, the size check's one line last
    assert f"{figs} holds 2 files committed to git" in lines[0] and "error: --n" in lines[-1]
    assert sorted(os.listdir(figs)) == ["run.json", "table.md"]
