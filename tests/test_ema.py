"""G's weight average (``ramp.g_ema``): the update, the checkpoint, sampling, resume, Brian2."""
import shutil

import numpy as np
import pytest
from helpers import run_cli, tiny

from models import brian, ramp
from training import checkpoint, exact
from training import config as cm
from training.trainer import load_gan, train_gan


def test_moving_average_is_the_formula():
    avg = [np.array([1.0, 2.0], np.float32), np.array([[0.5]], np.float32)]
    params = [np.array([3.0, -2.0], np.float32), np.array([[1.5]], np.float32)]
    want = [0.9 * a + 0.1 * p for a, p in zip(avg, params)]
    exact.moving_average(avg, params, 0.9)
    for a, w in zip(avg, want):
        np.testing.assert_allclose(a, w, rtol=1e-6)
        assert a.dtype == np.float32


def test_the_main_job_samples_the_average_and_the_dense_pair_does_not():
    """The main job samples G's weight average; the dense pair (its checkpoints hold the arrays
    they always had) and the IF configs (which ignore the key) do not."""
    assert cm.GanConfig().ramp.g_ema == cm.load("configs/quick_single.toml", cm.GanConfig).ramp.g_ema == 0.999
    assert cm.load("configs/dense_single.toml", cm.GanConfig).ramp.g_ema == 0.0
    assert "g_ema" not in cm.to_toml(cm.load("configs/s4nn_single.toml", cm.GanConfig))


def test_g_ema_is_a_ramp_key():
    with pytest.raises(cm.ConfigError, match="ramp.g_ema"):
        cm.override(cm.GanConfig(), {"neuron.model": "if", "ramp.g_ema": 0.99})
    with pytest.raises(cm.ConfigError, match="ramp.g_ema"):
        cm.override(cm.GanConfig(), {"ramp.g_ema": 1.0})


@pytest.fixture(scope="module")
def ema_runs(tmp_path_factory):
    """One tiny ramp run with G's weight average (0.9), trained 3 epochs straight and 1 + 2 resumed."""
    base = tmp_path_factory.mktemp("ema")
    cfg = tiny("ramp", **{"ramp.g_ema": 0.9})
    train_gan(cfg, str(base / "straight"), progress=False)
    train_gan(cm.override(cfg, {"train.epochs": 1}), str(base / "resumed"), progress=False)
    train_gan(None, str(base / "resumed"), resume=True, progress=False, overrides={"train.epochs": 3})
    return base


def test_checkpoint_keeps_the_average_and_resume_continues_it(ema_runs):
    a, _ = checkpoint.load(str(ema_runs / "straight" / "checkpoint.npz"))
    b, _ = checkpoint.load(str(ema_runs / "resumed" / "checkpoint.npz"))
    assert "g_average" in a and "d_average" not in a
    assert sorted(a) == sorted(b)
    for key in a:
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)
    # w_1, b_1, w_2, b_2: the average has G's parameters' shapes, and differs from the last weights
    shapes = [p.shape for layer in zip(a["g"], a["g_bias"]) for p in layer]
    assert [x.shape for x in a["g_average"]] == shapes
    assert not np.array_equal(a["g_average"][0], a["g"][0])


def test_samples_come_from_the_average(ema_runs):
    """load_gan's G is the average (what evaluate, inspect, export and the grids use); averaged=False
    gives the last weights; the two G's make different samples and D is the same."""
    run = str(ema_runs / "straight")
    nets, _ = checkpoint.load(run + "/checkpoint.npz")
    avg, cfg, _ = load_gan(run)
    last, _, _ = load_gan(run, averaged=False)
    np.testing.assert_array_equal(avg.g.layers[0].w, nets["g_average"][0])
    np.testing.assert_array_equal(avg.g.layers[-1].b, nets["g_average"][-1])
    np.testing.assert_array_equal(last.g.layers[0].w, nets["g"][0])
    np.testing.assert_array_equal(avg.d.layers[0].w, last.d.layers[0].w)
    x_avg, _ = avg.generate(np.random.default_rng(1), 20)
    x_last, _ = last.generate(np.random.default_rng(1), 20)
    assert not np.array_equal(x_avg, x_last)


def test_a_checkpoint_without_the_average_is_refused(ema_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ema_runs / "straight", run)
    nets, meta = checkpoint.load(str(run / "checkpoint.npz"))
    del nets["g_average"]
    checkpoint.save(str(run / "checkpoint.npz"), nets, meta)
    with pytest.raises(checkpoint.CheckpointError, match="g_average"):
        load_gan(str(run))


@pytest.mark.brian2
def test_brian2_simulates_the_averaged_g_spike_for_spike(ema_runs):
    """The averaged G is a ramp network like any other: Brian2 fires at the kernel's spike times."""
    gan, cfg, _ = load_gan(str(ema_runs / "straight"))
    z = gan.g_input(np.random.default_rng(4), 3)
    w, th = gan.g.brian_layers()
    got = brian.simulate(w, z, gan.g.params, neuron=gan.g.neuron, thresholds=th).times
    want = ramp.forward(w, th, z, cfg.neuron.t_max)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(want, gan.g_times(z)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.brian2
def test_inspect_simulates_the_averaged_g(ema_runs, tmp_path, capsys):
    code, out, err = run_cli(["inspect", "--run", ema_runs / "straight", "--out", tmp_path / "insp"], capsys)
    assert code == 0, err
    assert (tmp_path / "insp").is_dir() and any((tmp_path / "insp").iterdir())
