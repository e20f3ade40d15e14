"""The IF single pair's remedies (``[s4nn]``): bias neurons, feature matching, instance noise."""
import numpy as np
import pytest
from helpers import TINY, one_line, run_cli, tiny

from models import brian, kernel
from models.coding import jitter_times
from models.neuron import causal_mask
from training import backprop
from training import config as cm
from training.config import ConfigError, GanConfig
from training.gan import Gan, d_step, gan_step, pixel_error
from training.networks import N_PIXELS, sizes

T = 32  # the tiny config's window; D's hidden threshold is 50 mV
BIAS = {"s4nn.d_bias_time": 24, "s4nn.d_bias_weight": 60.0}


def test_a_late_bias_neuron_lets_d_fire_and_learn_on_blank_images():
    """A blank image sends the IF neuron no spike: D's hidden layer is silent on it, whatever
    its thresholds. With a bias neuron at step 24 (60 mV > 50 mV), every hidden neuron fires at
    step 25 on it, and the D step moves the bias neuron's weights."""
    blank = np.full((4, N_PIXELS), T, np.int32)
    plain = Gan.init(tiny(), np.random.default_rng(0))
    assert np.all(plain.d_times(blank)[0] == T)
    cfg = tiny(**BIAS)
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.d.weights[0].shape == (N_PIXELS + 1, 16) == tuple(sizes(cfg)["d"][:2])
    assert np.all(gan.d.weights[0][-1] == 60.0)
    assert np.all(gan.d_times(blank)[0] == 25)
    real = gan.encode_real(np.full((4, 28, 28), 255, np.uint8))
    before = gan.d.weights[0][-1].copy()
    d_step(gan, cfg, real, blank)
    assert not np.array_equal(gan.d.weights[0][-1], before)
    assert pixel_error(gan, cfg, blank)[2].shape == (4, N_PIXELS)  # the bias column is not a pixel


@pytest.mark.brian2
def test_brian2_simulates_the_bias_neuron_as_one_more_input():
    cfg = tiny(**BIAS, **{"s4nn.g_bias_time": 3, "s4nn.g_bias_weight": 4.0})
    gan = Gan.init(cfg, np.random.default_rng(1))
    z = gan.g_input(np.random.default_rng(2), 3)
    for net, t_in in ((gan.g, z), (gan.d, gan.g_times(z)[-1])):
        w, th = net.brian_layers()
        t0, extra = net.brian_inputs(t_in)
        assert not extra
        got = brian.simulate([np.asarray(a, np.float64) for a in w], t0, net.params, thresholds=th).times
        for a, b in zip(got, kernel.forward(w, t0, net.params, dtype=np.float64)):
            np.testing.assert_array_equal(a, b)


def test_a_run_with_bias_neurons_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    sets = ["--set", "s4nn.d_bias_time=24", "--set", "s4nn.d_bias_weight=60.0", "--set", "s4nn.g_bias_time=2",
            "--set", "s4nn.minibatch_std=2.0"]
    code, _, err = run_cli(["train", "--config", TINY, *sets, "--epochs", "1", "--out", run,
                            "--quiet"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--out", run, "--resume", "--epochs", "2", "--quiet"], capsys)
    assert code == 0, err
    with np.load(run / "checkpoint.npz") as z:
        assert z["g_0"].shape == (11, 16) and z["d_0"].shape == (N_PIXELS + 1, 16)
        assert z["d_1"].shape == (17, 2)  # the minibatch-statistics neuron's row


def test_feature_matching_error_is_s4nns_rule_through_the_first_layer():
    """By hand: e_h = normalise((target - t_h) / t_max), e_in[i] = sum_j e_h[j] w_ij [t_i < t_j],
    normalised per sample (the silent-pixel remedy off)."""
    cfg = tiny(**{"train.silent_pixel_remedy": False})
    gan = Gan.init(cfg, np.random.default_rng(0))
    rng = np.random.default_rng(3)
    t_in = rng.integers(0, T + 1, (6, N_PIXELS)).astype(np.int32)
    trace = gan.d.trace(t_in)
    target = rng.uniform(0, T, 16)
    got = gan.d.feature_error(trace, target)
    t_h = trace.times[0]
    e_h = backprop.normalise(((target[None] - t_h) / T).astype(np.float32))
    mask = causal_mask(np.where(t_in < T - 1, t_in, 10**6), t_h)  # spikes inside the horizon only
    want = backprop.normalise(np.einsum("bj,ij,bij->bi", e_h, gan.d.weights[0], mask).astype(np.float32))
    np.testing.assert_allclose(got, want, atol=1e-6)
    at_target = gan.d.feature_error(trace, t_h[0].astype(float))  # sample 0 is on target
    assert not np.any(at_target[0])


def test_feature_matching_and_instance_noise_change_the_step():
    base = tiny()
    real = Gan.init(base, np.random.default_rng(0)).encode_real(
        np.random.default_rng(5).integers(0, 256, (20, 28, 28)).astype(np.uint8))
    runs = {}
    for name, over in (("plain", {}), ("fm", {"s4nn.feature_matching": 0.5}), ("noise", {"s4nn.instance_noise": 2.0})):
        cfg = tiny(**over)
        gan = Gan.init(cfg, np.random.default_rng(0))
        gan_step(gan, cfg, [real], np.random.default_rng(1))
        runs[name] = gan
    for name in ("fm", "noise"):
        assert not np.array_equal(runs[name].g.weights[1], runs["plain"].g.weights[1]), name


def test_jitter_times_keeps_silent_neurons_silent_and_spikes_in_the_window():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 17, (200, 50))
    j = jitter_times(rng, t, 3.0, 16)
    assert np.all(j[t == 16] == 16) and j[t < 16].min() >= 0 and j[t < 16].max() <= 15
    moved = (j - t)[(t > 5) & (t < 10)]
    assert 2.0 < moved.std() < 4.0 and abs(moved.mean()) < 0.5
    np.testing.assert_array_equal(jitter_times(rng, t, 0.0, 16), t)


@pytest.mark.parametrize("key, value", [("s4nn.d_bias_time", 10), ("s4nn.feature_matching", 0.5),
                                        ("s4nn.instance_noise", 1.0), ("s4nn.r1", 1e-6),
                                        ("s4nn.minibatch_std", 4.0)])
def test_s4nn_keys_belong_to_the_if_model(key, value):
    with pytest.raises(ConfigError, match=f"{key}: read only by the 'if' model"):
        cm.override(GanConfig(), {key: value})


def test_a_bias_neuron_outside_the_window_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="s4nn.d_bias_time: 32 is not inside the window"):
        tiny(**{"s4nn.d_bias_time": 32})
    code, _, err = run_cli(["train", "--config", TINY, "--set", "s4nn.g_bias_time=40",
                            "--out", tmp_path / "r"], capsys)
    assert code == 2 and one_line(err) and not (tmp_path / "r").exists()


def test_smoothness_penalty_gradient_matches_finite_differences():
    """s4nn.r1: the penalty is quadratic in the weights for fixed spike times (the trace), so
    central differences of P give its gradient exactly (float32 rounding aside)."""
    cfg = tiny(**{"s4nn.r1": 1e-5})
    gan = Gan.init(cfg, np.random.default_rng(0))
    t_in = np.random.default_rng(1).integers(0, T + 1, (12, N_PIXELS)).astype(np.int32)
    trace = gan.d.trace(t_in)
    w = [a.astype(np.float64) for a in gan.d.weights]
    P, grads = backprop.smoothness_penalty(w, trace, 8, gan.d.params)
    assert P > 0
    checked = 0
    for k, (i, j) in ((0, (10, 3)), (0, (200, 7)), (0, (500, 15)), (1, (2, 0)), (1, (9, 1))):
        eps = 1e-3
        up, down = [a.copy() for a in w], [a.copy() for a in w]
        up[k][i, j] += eps
        down[k][i, j] -= eps
        fd = (backprop.smoothness_penalty(up, trace, 8, gan.d.params)[0]
              - backprop.smoothness_penalty(down, trace, 8, gan.d.params)[0]) / (2 * eps)
        np.testing.assert_allclose(grads[k][i, j], fd, rtol=1e-3, atol=1e-3 * max(1.0, abs(fd)))
        checked += fd != 0
    assert checked >= 3


def test_smoothness_penalty_is_added_to_ds_step_and_needs_one_hidden_layer():
    cfg = tiny(**{"s4nn.r1": 1e-5})
    real = Gan.init(cfg, np.random.default_rng(0)).encode_real(
        np.random.default_rng(5).integers(0, 256, (20, 28, 28)).astype(np.uint8))
    fake = np.random.default_rng(6).integers(0, T + 1, (20, N_PIXELS)).astype(np.int32)
    after = {}
    for r1 in (0.0, 1e-5):
        gan = Gan.init(tiny(**{"s4nn.r1": r1}), np.random.default_rng(0))
        d_step(gan, tiny(**{"s4nn.r1": r1}), real, fake)
        after[r1] = gan.d.weights[0].copy()
    assert not np.array_equal(after[0.0], after[1e-5])
    with pytest.raises(ConfigError, match="s4nn.r1: the penalty is written for one D with one hidden layer"):
        tiny(**{"s4nn.r1": 1e-5, "discriminator.hidden": [8, 8], "discriminator.thresholds": [5.0, 5.0, 5.0],
                "discriminator.lr": [1.0, 1.0, 1.0]})


MBSTD = {"s4nn.minibatch_std": 2.0}


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, T + 1, (n, N_PIXELS)).astype(np.int32)


def test_minibatch_statistic_neuron_is_silent_on_a_collapsed_batch():
    """Sigma = 0 (every image the same) -> the statistics neuron never fires; a varied batch
    makes it fire at T - scale * sigma; real and fake batches are measured apart."""
    gan = Gan.init(tiny(**MBSTD), np.random.default_rng(0))
    assert gan.d.weights[1].shape == (17, 2) and not np.any(gan.d.weights[1][-1])
    same = np.repeat(_images(1, 1), 8, axis=0)
    trace = gan.d.trace(same)
    assert np.all(trace.extra[1] == T)
    varied = _images(8, 2)
    trace = gan.d.trace(varied)
    sigma = trace.times[0].astype(float).std(axis=0).mean()
    assert sigma > 0 and np.all(trace.extra[1] == int(np.clip(np.rint(T - 2.0 * sigma), 0, T)))
    both = gan.d.trace(np.concatenate([same, varied]), groups=np.r_[np.zeros(8), np.ones(8)])
    assert np.all(both.extra[1][:8] == T) and np.all(both.extra[1][8:] == trace.extra[1])


def test_minibatch_statistic_error_is_the_derivative_of_its_spike_time():
    """The error the statistics neuron passes to the hidden spike times is its own error times
    d t_s / d t_h, checked by central differences of T - scale * sigma(t_h)."""
    gan = Gan.init(tiny(**MBSTD), np.random.default_rng(0))
    trace = gan.d.trace(_images(8, 3))
    t_h = trace.times[0].astype(np.float64)
    assert 0 < trace.extra[1][0, 0] < T
    e_extra = np.linspace(-1, 1, 8)[:, None].astype(np.float32)
    added = gan.d._statistic_error(trace)(1, np.zeros(t_h.shape, np.float32), e_extra)

    def t_s(x):
        return T - 2.0 * x.std(axis=0).mean()

    for b, j in ((0, 0), (3, 5), (7, 15)):
        up, down = t_h.copy(), t_h.copy()
        up[b, j] += 1e-4
        down[b, j] -= 1e-4
        want = e_extra.sum() * (t_s(up) - t_s(down)) / 2e-4
        np.testing.assert_allclose(added[b, j], want, rtol=1e-3, atol=1e-6)


def _stepped_mbstd_gan():
    cfg = tiny(**{"s4nn.minibatch_std": 8.0})  # the statistic spikes early enough to be causal
    gan = Gan.init(cfg, np.random.default_rng(0))
    real = gan.encode_real(np.random.default_rng(5).integers(0, 256, (20, 28, 28)).astype(np.uint8))
    gan_step(gan, cfg, [real], np.random.default_rng(1))
    return gan


def test_minibatch_statistic_neuron_learns():
    gan = _stepped_mbstd_gan()
    assert np.any(gan.d.weights[1][-1])  # the D step moved the statistics neuron's weights
    with pytest.raises(ConfigError, match="s4nn.minibatch_std: a statistic of one D's batch"):
        tiny(**MBSTD, per_class=True)


@pytest.mark.brian2
def test_brian2_simulates_the_minibatch_statistic_neuron_as_an_input_of_the_output_layer():
    gan = _stepped_mbstd_gan()
    fakes = gan.g_times(gan.g_input(np.random.default_rng(2), 4))[-1]
    t0, extra = gan.d.brian_inputs(fakes)
    assert set(extra) == {2} and np.all(extra[2] < T)
    w, th = gan.d.brian_layers()
    got = brian.simulate([np.asarray(a, np.float64) for a in w], t0, gan.d.params, thresholds=th,
                         extra_inputs=extra).times
    for a, b in zip(got, gan.d.trace(fakes).times):
        np.testing.assert_array_equal(a, b)
