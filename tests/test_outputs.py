"""One rule for output folders, writes after checks, no leaks (issue 13)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from helpers import ROOT, TINY, TINY_CLS, one_line, run_cli, snapshot

from experiments.report import write_epoch_grid
from training import config as cm
from training.config import GanConfig
from training.trainer import load_gan, train_gan


@pytest.fixture
def gan_run(tiny_run):
    """A finished 2-epoch run of the tiny GAN, shared by the session (copy it before changing it)."""
    return tiny_run("if", 2)


# ------------------------------------------------------------------ folders are created with parents
def test_train_and_classify_create_missing_parents(tmp_path, capsys):
    """The README's `train --out runs/quick` and `classify --out runs/classify` on a fresh clone."""
    code, _, err = run_cli(["train", "--config", TINY, "--epochs", "1", "--out", tmp_path / "runs" / "quick",
                            "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "runs" / "quick" / "checkpoint.npz").exists()
    rec = json.loads((tmp_path / "runs" / "quick" / "run.json").read_text())
    assert rec["command"] == "train" and rec["kind"] == "gan"
    code, _, err = run_cli(["classify", "--config", TINY_CLS, "--epochs", "1", "--out",
                            tmp_path / "more" / "runs" / "classify", "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "more" / "runs" / "classify" / "run.json").read_text())["command"] == "classify"


# ------------------------------------------------------------------ no command writes into another's folder
def test_classify_never_overwrites_a_run(gan_run, tmp_path, capsys):
    """Classify --out used to replace config.toml, run.json, metrics of any folder, GAN runs included."""
    gan = tmp_path / "gan"
    shutil.copytree(gan_run, gan)
    gan_before = snapshot(gan)
    code, _, err = run_cli(["classify", "--config", TINY_CLS, "--out", gan, "--quiet"], capsys)
    assert code == 2 and one_line(err) and "spiking-gan train" in err
    assert snapshot(gan) == gan_before
    cls = tmp_path / "cls"
    assert run_cli(["classify", "--config", TINY_CLS, "--epochs", "1", "--out", cls, "--quiet"], capsys)[0] == 0
    before = snapshot(cls)
    code, _, err = run_cli(["classify", "--config", TINY_CLS, "--epochs", "1", "--out", cls, "--quiet"], capsys)
    assert code == 2 and one_line(err) and "--force" in err
    assert snapshot(cls) == before
    # --force replaces a classify run, and says what it replaces
    code, _, err = run_cli(["classify", "--config", TINY_CLS, "--epochs", "2", "--out", cls, "--quiet", "--force"],
                           capsys)
    assert code == 0 and "replacing the classify run" in err and "metrics.json" in err
    assert json.loads((cls / "metrics.json").read_text())["epochs"] == 2
    # --force never replaces another command's folder
    code, _, err = run_cli(["classify", "--config", TINY_CLS, "--out", gan, "--quiet", "--force"], capsys)
    assert code == 2 and one_line(err) and snapshot(gan) == gan_before
    # and a classify run is not a GAN to sample from
    code, _, err = run_cli(["sample", "--run", cls, "--n", "2", "--out", tmp_path / "s.npz"], capsys)
    assert code == 2 and one_line(err) and "spiking-gan classify" in err


def test_train_refuses_other_folders_and_force_replaces_its_own(gan_run, tmp_path, capsys):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    for target in (other, tmp_path / "cls"):
        if target.name == "cls":
            assert run_cli(["classify", "--config", TINY_CLS, "--epochs", "1", "--out", target, "--quiet"],
                           capsys)[0] == 0
        before = snapshot(target)
        code, _, err = run_cli(["train", "--config", TINY, "--out", target, "--quiet", "--force"], capsys)
        assert code == 2 and one_line(err), err
        assert snapshot(target) == before
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(["train", "--config", TINY, "--out", tmp_path / "afile", "--quiet"], capsys)
    assert code == 2 and "is a file" in err
    gan = tmp_path / "gan"
    shutil.copytree(gan_run, gan)
    # the old run's last grid, as `spiking-gan train` writes it: --force must not leave it behind
    old_gan, old_cfg, _ = load_gan(str(gan))
    write_epoch_grid(2, old_gan, old_cfg, str(gan))
    assert sorted(os.listdir(gan / "samples")) == ["epoch_002.png"]
    code, _, err = run_cli(["train", "--config", TINY, "--epochs", "1", "--out", gan, "--quiet"], capsys)
    assert code == 2 and "--resume" in err and "--force" in err
    code, _, err = run_cli(["train", "--config", TINY, "--epochs", "1", "--out", gan, "--quiet", "--force"], capsys)
    assert code == 0 and "replacing the train run" in err
    assert json.loads((gan / "checkpoint.json").read_text())["epoch"] == 1
    assert sorted(os.listdir(gan / "samples")) == ["epoch_001.png"]  # the old run's files are gone


def test_no_command_writes_into_a_train_run_folder(gan_run, tmp_path, capsys):
    gan = tmp_path / "gan"
    shutil.copytree(gan_run, gan)
    before = snapshot(gan)
    for cmd in (["evaluate", "--no-brian", "--no-quality", "--n", "10", "--run", gan], ["inspect", "--run", gan],
                ["sweep", os.path.join(ROOT, "sweeps", "tiny.toml")],
                ["compare-losses", "--config", TINY], ["figures", "--config", TINY]):
        code, _, err = run_cli([*cmd, "--out", gan], capsys)
        assert code == 2 and one_line(err) and "spiking-gan train" in err, cmd
    assert snapshot(gan) == before


# ------------------------------------------------------------------ nothing is created before the checks
def test_batch_larger_than_data_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "runs" / "big"
    code, _, err = run_cli(["train", "--config", TINY, "--set", "train.batch_size=500", "--out", out], capsys)
    assert code == 2 and one_line(err) and "exceeds the 200 training images" in err
    assert not (tmp_path / "runs").exists()
    # the corrected command then just works
    assert run_cli(["train", "--config", TINY, "--epochs", "1", "--out", out, "--quiet"], capsys)[0] == 0


def test_compare_and_figures_bad_options_leave_no_folder(tmp_path, capsys):
    from experiments.figures import make_figures

    for argv in (["compare-losses", "--config", TINY, "--variants", "Z"],
                 ["compare-losses", "--config", TINY, "--n-seeds", "0"],
                 ["figures", "--n-seeds", "0"], ["figures", "--n", "0"], ["figures", "--variants", "Z"]):
        code, _, err = run_cli([*argv, "--out", tmp_path / "out"], capsys)
        assert code == 2 and "Traceback" not in err, argv
        assert not (tmp_path / "out").exists(), argv
    with pytest.raises(ValueError):
        make_figures(str(tmp_path / "out"), n_seeds=0, runs_dir=str(tmp_path / "runs"), config_path=TINY)
    assert os.listdir(tmp_path) == []


def test_sample_and_simulate_write_all_outputs_or_none(gan_run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    bad_figures = [tmp_path / "g.txt", tmp_path / "file" / "g.png", tmp_path]
    for bad in bad_figures:
        code, _, err = run_cli(["sample", "--run", gan_run, "--n", "4", "--out", tmp_path / "s.npz",
                                "--grid", bad], capsys)
        assert code == 2 and one_line(err), err
        code, _, err = run_cli(["simulate", "--layers", "20,5", "--out", tmp_path / "x.npz", "--raster", bad], capsys)
        assert code == 2 and one_line(err), err
    assert sorted(os.listdir(tmp_path)) == ["file"]
    code, out, err = run_cli(["sample", "--run", gan_run, "--n", "4", "--out", tmp_path / "new" / "s.npz",
                              "--grid", tmp_path / "new" / "g.png"], capsys)
    assert code == 0 and sorted(os.listdir(tmp_path / "new")) == ["g.png", "s.npz"]


def test_simulate_reports_the_path_it_wrote(tmp_path, capsys):
    code, out, _ = run_cli(["simulate", "--layers", "20,5", "--out", tmp_path / "x"], capsys)
    assert code == 0 and os.listdir(tmp_path) == ["x.npz"]
    assert f"wrote {tmp_path / 'x.npz'}" in out


# ------------------------------------------------------------------ train --resume checks before writing
def test_resume_with_fewer_epochs_is_an_error_naming_epochs(gan_run, tmp_path, capsys):
    gan = tmp_path / "gan"
    shutil.copytree(gan_run, gan)
    before = snapshot(gan)
    code, _, err = run_cli(["train", "--out", gan, "--resume", "--epochs", "1", "--quiet"], capsys)
    assert code == 2 and one_line(err) and "--epochs 1" in err and "2 epochs" in err
    assert snapshot(gan) == before
    # the same number of epochs: nothing to train, nothing changes
    assert run_cli(["train", "--out", gan, "--resume", "--epochs", "2", "--quiet"], capsys)[0] == 0
    assert (gan / "config.toml").read_bytes() == (gan_run / "config.toml").read_bytes()


def test_resume_on_a_corrupt_checkpoint_keeps_the_config(gan_run, tmp_path, capsys):
    gan = tmp_path / "gan"
    shutil.copytree(gan_run, gan)
    ck = gan / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[:-100])
    before = snapshot(gan)
    code, _, err = run_cli(["train", "--out", gan, "--resume", "--epochs", "5", "--quiet"], capsys)
    assert code == 2 and one_line(err) and "checkpoint" in err
    assert snapshot(gan) == before  # config.toml still says 2 epochs


def test_files_get_umask_permissions_also_after_resume(tmp_path, umask, capsys):
    for mask in (0o022, 0o002):
        umask(mask)
        out = tmp_path / f"run{mask}"
        train_gan(cm.load(TINY, GanConfig, {"train.epochs": 1}), str(out), progress=False,
                  on_epoch=write_epoch_grid)
        train_gan(None, str(out), resume=True, progress=False, overrides={"train.epochs": 2},
                  on_epoch=write_epoch_grid)
        modes = {p: m for p, (_, m) in ((p, v) for p, v in snapshot(out).items() if v)}
        assert set(modes.values()) == {0o666 & ~mask}, modes
        assert "metrics.jsonl" in modes and "samples/epoch_002.png" in modes


# ------------------------------------------------------------------ Ctrl-C
@pytest.mark.slow
def test_interrupt_message_names_resume(tmp_path):
    import signal

    cfg = tmp_path / "c.toml"
    cfg.write_text(cm.to_toml(cm.load(TINY, GanConfig, {"train.epochs": 500, "train.sample_grid": 0})))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "spiking_gan.cli", "train", "--config", cfg, "--out", out,
                             "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoint.json").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"spiking-gan train --out {out} --resume" in err and "Traceback" not in err


# ------------------------------------------------------------------ Brian2 build folders
@pytest.mark.brian2
def test_cpp_standalone_leaves_no_build_folder(tmp_path, monkeypatch, capsys):
    """cpp_standalone built its project in tempfile.mkdtemp() and never removed it (387 MB)."""
    from models import brian
    from models.neuron import NeuronParams

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(brian, "_noted", set())  # the compile note is said once per process
    rng = np.random.default_rng(0)
    w = [rng.uniform(0, 10, (20, 8)).astype(np.float32), rng.uniform(0, 20, (8, 2)).astype(np.float32)]
    params = NeuronParams((10.0, 10.0), t_max=32)
    t_in = rng.integers(0, 33, (3, 20))
    res = brian.simulate(w, t_in, params, target="cpp_standalone")
    assert "building the C++ standalone project" in capsys.readouterr().err
    from models.kernel import forward
    for a, b in zip(res.times, forward(w, t_in, params)):
        np.testing.assert_array_equal(a, b)
    assert [p for p in os.listdir(temp) if p.startswith("spiking_gan")] == []
    # also when the run fails half-way (after the build folder was made)
    bad = t_in.copy()
    bad[0, 0] = -1  # Brian2 refuses it while the network is built, after the build folder was made
    with pytest.raises(ValueError, match="negative"):
        brian.simulate(w, bad, params, target="cpp_standalone")
    assert [p for p in os.listdir(temp) if p.startswith("spiking_gan")] == []
    # a build_dir given by the caller is kept
    keep = tmp_path / "keep"
    brian.simulate(w, t_in, params, target="cpp_standalone", build_dir=str(keep))
    assert os.listdir(keep)


@pytest.mark.brian2
def test_simulate_command_leaves_nothing_in_the_temp_folder(tmp_path):
    """The README's Brian2 `simulate` as a user runs it, with its own system temp folder (TMPDIR):
    nothing is left there, neither the C++ project nor Brian2's debug log, also after a crash."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    r = subprocess.run([sys.executable, "-m", "spiking_gan.cli", "simulate", "--layers", "30,10,2",
                        "--threshold", "10", "--batch", "2", "--backend", "brian2", "--target", "cpp_standalone",
                        "--out", str(tmp_path / "s.npz")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "building the C++ standalone project" in r.stderr
    assert os.listdir(temp) == []
    crash = ("import numpy as np\nfrom models import brian\nfrom models.neuron import NeuronParams\n"
             "brian.simulate([np.ones((5, 3), np.float32)], np.zeros((2, 5), int), NeuronParams((1.0,), t_max=16))\n"
             "raise RuntimeError('a crash after a Brian2 run')\n")
    r = subprocess.run([sys.executable, "-c", crash], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "a crash after" in r.stderr
    assert os.listdir(temp) == []


def test_reused_output_folder_keeps_or_refreshes_its_record(tmp_path):
    """A reused folder keeps its run.json (a resumed run's record of how it started), unless the
    caller rewrites the whole output each time (compare-losses: refresh=True)."""
    from training.runinfo import RUN_FILE, make_out_dir

    out = tmp_path / "cmp"
    make_out_dir(str(out), "compare-losses", "new", {"seed": 0})
    make_out_dir(str(out), "compare-losses", "reuse", {"seed": 1})
    assert json.loads((out / RUN_FILE).read_text())["seed"] == 0
    make_out_dir(str(out), "compare-losses", "reuse", {"seed": 2}, refresh=True)
    rec = json.loads((out / RUN_FILE).read_text())
    assert rec["seed"] == 2 and rec["command"] == "compare-losses"


def test_git_record_separates_code_changes_from_rewritten_figures(tmp_path, monkeypatch):
    """A run is "dirty" when code has uncommitted changes, not when only committed figures were
    rewritten (make figures rewrites them step after step)."""
    import subprocess

    from training import runinfo

    repo = tmp_path / "repo"
    (repo / "figures").mkdir(parents=True)
    (repo / "code.py").write_text("x = 1\n")
    (repo / "figures" / "table.md").write_text("a\n")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(runinfo, "REPO", str(repo))
    assert runinfo.git_commit()["dirty"] is False
    (repo / "figures" / "table.md").write_text("b\n")
    rec = runinfo.git_commit()
    assert rec["dirty"] is False and rec["outputs_changed"] is True
    (repo / "code.py").write_text("x = 2\n")
    assert runinfo.git_commit()["dirty"] is True
