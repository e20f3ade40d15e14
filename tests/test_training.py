import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import MODELS, ROOT, TINY, TINY_CLS, TINY_RAMP, run_cli, tiny
from threadpoolctl import threadpool_info

from experiments.report import write_epoch_grid
from models.kernel import blas_threads, pinned_blas_threads
from models.neuron import RAMP_NEURON
from spiking_gan.cli import main
from training import checkpoint
from training import config as cm
from training.config import GanConfig
from training.gan import Gan
from training.trainer import load_gan, train_gan


# ---------------------------------------------------------------- training
def test_gan_lr_decay_scales_every_update(tmp_path):
    """train.lr_decay = 0: the first epoch learns, later epochs leave the weights alone."""
    over = {"train.epochs": 1, "train.lr_decay": 0.0, "train.dead_min_rate": 0.0}
    train_gan(tiny(**over), str(tmp_path / "r"), progress=False)
    w1, _ = checkpoint.load(str(tmp_path / "r" / "checkpoint.npz"))
    train_gan(None, str(tmp_path / "r"), resume=True, progress=False, overrides={"train.epochs": 2})
    w2, _ = checkpoint.load(str(tmp_path / "r" / "checkpoint.npz"))
    w0 = Gan.init(tiny(**over), np.random.default_rng(tiny().seed))
    assert any(np.abs(a - b).max() > 0 for a, b in zip(w0.g.weights, w1["g"]))
    for net in ("g", "d"):
        for a, b in zip(w1[net], w2[net]):
            np.testing.assert_array_equal(a, b)


def test_train_writes_a_complete_run(tmp_path, tiny_run):
    out = tmp_path / "run"
    summary = train_gan(tiny(), str(out), progress=False, on_epoch=write_epoch_grid)
    for f in ("config.toml", "run.json", "checkpoint.npz", "checkpoint.json", "metrics.jsonl", "summary.json"):
        assert (out / f).exists(), f
    assert sorted(os.listdir(out / "samples")) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    rec = json.loads((out / "run.json").read_text())
    assert rec["seed"] == 3 and "numpy" in rec["versions"] and "brian2" in rec["versions"]
    assert "commit" in rec["git"]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "kind" not in line]
    assert len(steps) == 3 * (200 // 20) and steps[-1]["step"] == 30
    for key in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "decision_time_ms", "d_spikes",
                "g_spikes", "samples_per_s"):
        assert key in steps[0]
    assert summary["epochs"] == 3
    # the same config and seed give the same weights (the session's run of it, without grids)
    a, _ = checkpoint.load(str(out / "checkpoint.npz"))
    b, _ = checkpoint.load(str(tiny_run("if", 3) / "checkpoint.npz"))
    for x, y in zip(a["g"] + a["d"], b["g"] + b["d"]):
        np.testing.assert_array_equal(x, y)


def test_refuses_to_overwrite_and_resume_needs_a_run(tmp_path, tiny_run):
    shutil.copytree(tiny_run("if", 1), tmp_path / "run")
    with pytest.raises(RuntimeError, match="already holds a run"):
        train_gan(tiny(), str(tmp_path / "run"), progress=False)
    with pytest.raises(RuntimeError, match="holds no run"):
        train_gan(None, str(tmp_path / "none"), resume=True, progress=False)


def test_corrupt_nan_and_mismatched_checkpoints(tmp_path, capsys, tiny_run):
    out = tmp_path / "run"
    shutil.copytree(tiny_run("if", 1), out)
    ck = out / "checkpoint.npz"
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])
    assert main(["sample", "--run", str(out), "--n", "4", "--out", str(tmp_path / "s.npz")]) == 2
    assert "corrupt" in capsys.readouterr().err
    ck.write_bytes(good)
    nets, meta = checkpoint.load(str(ck))
    nets["g"][0][0, 0] = np.nan
    with pytest.raises(checkpoint.CheckpointError, match="non-finite"):
        checkpoint.save(str(ck), nets, meta)
    assert ck.read_bytes() == good  # the failed save left the checkpoint alone
    nets["g"][0][0, 0] = 1.0
    nets["g"][0] = nets["g"][0][:5]
    checkpoint.save(str(ck), nets, meta)
    with pytest.raises(checkpoint.CheckpointError, match="does not match the config"):
        load_gan(str(out))
    ck.unlink()
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        load_gan(str(out))


@pytest.mark.parametrize("model", MODELS)
def test_resume_equals_uninterrupted(tmp_path, model, tiny_run):
    """Weights, biases and (ramp) Adam moments after 1 + 2 resumed epochs equal 3 straight epochs."""
    shutil.copytree(tiny_run(model, 1), tmp_path / "a")
    train_gan(None, str(tmp_path / "a"), resume=True, progress=False, overrides={"train.epochs": 3})
    a, ma = checkpoint.load(str(tmp_path / "a" / "checkpoint.npz"))
    b, mb = checkpoint.load(str(tiny_run(model, 3) / "checkpoint.npz"))
    assert ma["epoch"] == mb["epoch"] == 3
    assert ma.get("adam_steps") == mb.get("adam_steps") == (None if model == "if" else {"g": 30, "d": 30})
    assert sorted(a) == sorted(b) == (["d", "g"] if model == "if" else
                                      ["d", "d_adam_m", "d_adam_v", "d_bias", "g", "g_adam_m", "g_adam_v", "g_bias"])
    for key in a:
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)


def _blas_threads_now() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_blas_threads_sets_the_pinned_count_and_restores_it():
    """Products are pinned to one BLAS thread, to N inside ``blas_threads(N)``; both restore what was."""
    before = _blas_threads_now()
    with pinned_blas_threads():
        assert _blas_threads_now() == {1}
    with blas_threads(2):
        assert _blas_threads_now() == {2}
        with pinned_blas_threads():
            assert _blas_threads_now() == {2}
    assert _blas_threads_now() == before
    with pytest.raises(ValueError, match="at least 1"):
        with blas_threads(0):
            pass


def test_threads_repeat_their_results_and_are_recorded(tmp_path, capsys):
    """``train --threads 2``: two runs on one machine give the same checkpoint (products large
    enough for OpenBLAS to split them among its threads); config.toml and run.json record it."""
    args = ["train", "--config", TINY_RAMP, "--epochs", "1", "--set", "generator.hidden=[256]",
            "--set", "discriminator.hidden=[128]", "--threads", "2", "--quiet"]
    for name in ("a", "b"):
        code, _, err = run_cli(args + ["--out", str(tmp_path / name)], capsys)
        assert code == 0, err
    a, ma = checkpoint.load(str(tmp_path / "a" / "checkpoint.npz"))
    b, mb = checkpoint.load(str(tmp_path / "b" / "checkpoint.npz"))
    assert sorted(a) == sorted(b) and ma["rng_state"] == mb["rng_state"]
    for key in a:
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)
    assert cm.load(str(tmp_path / "a" / "config.toml")).train.threads == 2
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    assert rec["threads"] == 2 and rec["cores"] == os.cpu_count()
    # the count is part of the run: a resumed run keeps it
    code, _, err = run_cli(["train", "--out", str(tmp_path / "a"), "--resume", "--threads", "1"], capsys)
    assert code != 0 and "train.threads cannot change in a resumed run" in err


@pytest.mark.slow
def test_killed_run_resumes_to_the_end(tmp_path):
    """SIGKILL a real `spiking-gan train` process mid-run; --resume finishes it, same result."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(cm.to_toml(tiny(**{"train.epochs": 150, "train.sample_grid": 0})))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spiking_gan.cli", "train", "--config", str(cfg), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta = out / "checkpoint.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if meta.exists() and json.loads(meta.read_text())["epoch"] >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(meta.read_text())["epoch"]
    assert 3 <= killed_at < 150 and not (out / "summary.json").exists(), "the run was not interrupted"
    checkpoint.load(str(out / "checkpoint.npz"))  # the last checkpoint is intact
    r = subprocess.run([sys.executable, "-m", "spiking_gan.cli", "train", "--out", str(out), "--resume",
                        "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 150
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if '"kind": "epoch"' in line]
    assert epochs == list(range(1, 151))  # no epoch lost, none counted twice
    train_gan(cm.load(str(cfg), GanConfig), str(tmp_path / "ref"), progress=False)
    a, _ = checkpoint.load(str(out / "checkpoint.npz"))
    b, _ = checkpoint.load(str(tmp_path / "ref" / "checkpoint.npz"))
    for x, y in zip(a["g"] + a["d"], b["g"] + b["d"]):
        np.testing.assert_array_equal(x, y)


def test_sample_command(tmp_path, capsys, tiny_run):
    out = tiny_run("if", 1)
    assert main(["sample", "--run", str(out), "--n", "30", "--out", str(tmp_path / "s.npz"),
                 "--grid", str(tmp_path / "g.png")]) == 0
    z = np.load(tmp_path / "s.npz")
    assert z["images"].shape == (30, 28, 28) and z["images"].dtype == np.float32
    assert 0 <= z["images"].min() and z["images"].max() <= 1
    assert z["spike_times"].shape == (30, 784)
    np.testing.assert_allclose(z["images"].reshape(30, -1), 1 - z["spike_times"] / 32, atol=1e-6)
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_classify_cli_writes_metrics(tmp_path, capsys):
    out = tmp_path / "cls"
    assert main(["classify", "--config", TINY_CLS,
                 "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m) >= {"test_accuracy", "decision_time_ms", "spikes_per_image"}
    assert m["test_accuracy"] > 0.5  # 3 epochs of a 784-40-10 net on 1000 digits (chance: 0.1)
    assert 0 < m["decision_time_ms"] < 64
    assert m["epochs"] == 3


def test_classify_weight_average_is_no_extra_epoch(tmp_path, capsys):
    out = tmp_path / "cls"
    assert main(["classify", "--config", TINY_CLS, "--set", "train.average_from=2",
                 "--out", str(out), "--quiet"]) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m.get("kind") for m in lines] == [None, None, None, "average"]
    assert lines[-1]["averaged_epochs"] == 2
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 3 and m["test_accuracy"] == lines[-1]["test_accuracy"]


@pytest.mark.brian2
def test_inspect_writes_raster_and_traces(tmp_path, capsys, tiny_run):
    out = tmp_path / "run"
    shutil.copytree(tiny_run("if", 1), out)
    assert main(["inspect", "--run", str(out), "--sample", "1", "--neurons", "10,400"]) == 0
    for f in ("raster.png", "membrane.png"):
        assert (out / "inspect" / f).stat().st_size > 10_000
    assert main(["inspect", "--run", str(out), "--neurons", "9999"]) == 2
    assert "(pixel) indices" in capsys.readouterr().err


def test_cli_dataset_flags_give_one_line_errors(tmp_path, capsys):
    """--dataset/--data-dir override data.*; a missing data folder is one line."""
    assert main(["train", "--config", TINY, "--dataset", "fashion-mnist", "--data-dir",
                 str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err
    assert not (tmp_path / "run").exists()  # nothing half-made to get in the way of the next try


VARIANTS = {"per_class": ("if", {"per_class": True, "train.batch_size": 4}),
            "ramp": ("ramp", {"train.batch_size": 8})}


@pytest.mark.brian2
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_run_end_to_end(tmp_path, capsys, variant):
    """A per-class and a ramp GAN train, resume, sample, are evaluated and inspected in Brian2."""
    from analysis.evaluate import evaluate_run
    out = tmp_path / "run"
    model, over = VARIANTS[variant]
    train_gan(tiny(model, **over, **{"train.epochs": 1}), str(out), progress=False)
    train_gan(None, str(out), resume=True, progress=False, overrides={"train.epochs": 2})
    gan, cfg, meta = load_gan(str(out))
    per_class = variant == "per_class"
    ramp = variant == "ramp"
    assert meta["epoch"] == 2 and gan.per_class == per_class and (gan.g.neuron is RAMP_NEURON) == ramp
    assert main(["sample", "--run", str(out), "--n", "25", "--out", str(tmp_path / "s.npz"),
                 "--grid", str(tmp_path / "g.png")]) == 0
    z = np.load(tmp_path / "s.npz")
    if per_class:
        np.testing.assert_array_equal(z["labels"], np.arange(25) % 10)
    m = evaluate_run(str(out), n_samples=50, classifier_cache=str(tmp_path))
    assert np.isfinite(m["classifier_fid"]) and (0 <= m["label_accuracy"] <= 1 if per_class else True)
    assert m["decision_latency_ms"] == pytest.approx(m["decision_time_ms"] + (cfg.neuron.t_max if ramp else 0))
    assert main(["inspect", "--run", str(out), "--sample", "3"]) == 0
    assert (out / "inspect" / "raster.png").stat().st_size > 10_000


def test_class_balanced_batches_and_bank_checkpoint_checks():
    from training import checkpoint
    from training.trainer import _class_balanced_order
    labels = np.repeat(np.arange(10), [7, 5, 6, 9, 5, 8, 5, 5, 6, 5])
    order = _class_balanced_order(labels, 2, np.random.default_rng(0))
    assert len(order) == 40 and len(set(order)) == 40           # 2 batches of 2 per class, no repeats
    for chunk in order.reshape(-1, 20):
        assert np.bincount(labels[chunk], minlength=10).tolist() == [2] * 10
    nets = {"g": [np.zeros((10, 4, 3)), np.zeros((10, 3, 5))]}
    checkpoint.check_shapes(nets, {"g": [4, 3, 5]}, "ck", banks=10)
    with pytest.raises(checkpoint.CheckpointError, match="asks for one network"):
        checkpoint.check_shapes(nets, {"g": [4, 3, 5]}, "ck")
    with pytest.raises(checkpoint.CheckpointError, match="asks for 10 networks"):
        checkpoint.check_shapes({"g": [np.zeros((4, 3)), np.zeros((3, 5))]}, {"g": [4, 3, 5]}, "ck", banks=10)
