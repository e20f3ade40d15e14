"""The Spiking-GAN step: silent-pixel remedy, real-image delay, augmentation."""
import os

import numpy as np
import pytest

from models.kernel import forward
from models.ramp import forward as forward_ramp
from training import backprop
from training import config as cm
from training.config import GanConfig
from training.data import load_digits, random_shift
from training import exact
from training.gan import REAL, Gan, _d_loss, _error_through_d, d_step, gan_step, pixel_error

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "data", "tiny_gan.toml")


def tiny(**over):
    return cm.load(TINY, GanConfig, over)


def _g_error(gan, cfg, remedy, n=16, seed=0):
    rng = np.random.default_rng(seed)
    g_trace = gan.generate_times(rng, n)
    d_trace = backprop.forward_trace(gan.d, g_trace.output, gan.d_params)
    e = _d_loss(gan, cfg, d_trace, np.full(n, REAL), kind="ttfs")
    return g_trace.output, _error_through_d(gan, d_trace, e, remedy)


def test_silent_pixels_get_error_only_with_the_remedy():
    cfg = tiny()
    gan = Gan.init(cfg, np.random.default_rng(0))
    gan.g[-1][:, :300] = -50.0                       # pixels 0..299 can never fire
    t_out, e_plain = _g_error(gan, cfg, remedy=False)
    assert np.all(t_out[:, :300] == gan.g_params.t_max)
    assert np.all(e_plain[:, :300] == 0)             # plain S4NN: no error reaches them
    _, e_fix = _g_error(gan, cfg, remedy=True)
    assert np.abs(e_fix[:, :300]).sum(axis=1).min() > 0


def _dead_pixels_after_training(remedy: bool) -> float:
    cfg = tiny(**{"train.silent_pixel_remedy": remedy, "generator.init_output": [-3.0, -1.0],
                  "generator.lr": [1.0, 20.0]})
    rng = np.random.default_rng(cfg.seed)
    gan = Gan.init(cfg, rng)
    data = load_digits()
    real = gan.encode_real(data.train_images[:200])
    sizes = Gan.sizes(cfg)
    dead_g = backprop.DeadNeuronMonitor(sizes["g"])
    dead_d = backprop.DeadNeuronMonitor(sizes["d"])
    for s in range(20):
        gan_step(gan, cfg, [real[(s % 10) * 20:(s % 10 + 1) * 20]], rng, dead_g, dead_d)
    out = forward(gan.g, gan.generate_times(np.random.default_rng(1), 50).t_in, gan.g_params)[-1]
    return float((out < gan.g_params.t_max).mean())


def test_remedy_brings_dead_generator_pixels_back():
    """Every pixel starts dead (negative output weights): only the remedy revives them."""
    assert _dead_pixels_after_training(remedy=False) == 0.0
    assert _dead_pixels_after_training(remedy=True) > 0.01


def test_real_images_are_delayed_by_the_generator_latency():
    cfg = tiny()
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.real_delay == 2                       # one hidden layer + output, latency 1
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 0, :3] = [255, 128, 0]
    t = gan.encode_real(img)
    T = gan.d_params.t_max
    assert t[0, 0] == 2 and t[0, 1] == (255 - 128) * T // 255 + 2 and t[0, 2] == T
    gan0 = Gan.init(tiny(**{"train.real_delay": 0}), np.random.default_rng(0))
    assert gan0.encode_real(img)[0, 0] == 0


def test_random_shift_moves_whole_images():
    rng = np.random.default_rng(0)
    img = np.zeros((500, 28, 28), np.uint8)
    img[:, 10:14, 10:14] = 255
    out = random_shift(img, 2, rng)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.all(out.reshape(500, -1).sum(axis=1) == img[0].sum())   # nothing lost at 2 px
    rows = np.argmax(out.max(axis=2) > 0, axis=1)
    assert set(rows.tolist()) == {8, 9, 10, 11, 12}
    assert random_shift(img, 0, rng) is img


# ------------------------------------------------------------- one GAN per class
def test_per_class_gan_trains_each_class_as_if_alone():
    """A step on a batch of one class moves only that class's G and D, exactly as a lone GAN would."""
    cfg = tiny(per_class=True, **{"train.l2": 0.0})
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.per_class and gan.g[0].shape == (10, 10, 16) and gan.d[-1].shape == (10, 16, 2)
    lone_cfg = tiny(**{"train.l2": 0.0})
    lone = Gan.init(lone_cfg, np.random.default_rng(1))
    lone.g, lone.d = ([w[3].copy() for w in ws] for ws in (gan.g, gan.d))
    before = [w.copy() for w in gan.g + gan.d]
    data = load_digits()
    threes = gan.encode_real(data.train_images[data.train_labels == 3][:20])
    sizes = Gan.sizes(cfg)
    gan_step(gan, cfg, [threes], np.random.default_rng(5), backprop.DeadNeuronMonitor(sizes["g"], n_banks=10),
             backprop.DeadNeuronMonitor(sizes["d"], n_banks=10), [np.full(20, 3)])
    gan_step(lone, lone_cfg, [threes], np.random.default_rng(5), backprop.DeadNeuronMonitor(sizes["g"]),
             backprop.DeadNeuronMonitor(sizes["d"]))
    for w, w0, w_lone in zip(gan.g + gan.d, before, lone.g + lone.d):
        others = np.arange(10) != 3
        np.testing.assert_array_equal(w[others], w0[others])
        np.testing.assert_array_equal(w[3], w_lone)
        assert not np.array_equal(w[3], w0[3])


def test_per_class_samples_come_from_their_class_networks():
    cfg = tiny(per_class=True)
    gan = Gan.init(cfg, np.random.default_rng(0))
    labels = np.array([4, 4, 9, 0])
    images, times = gan.generate(np.random.default_rng(2), 4, labels)
    z = gan.g_input(np.random.default_rng(2), 4)
    for b, c in enumerate(labels):
        g_c, _, _, _ = gan.networks(c)
        np.testing.assert_array_equal(times[b], forward(g_c, z[b:b + 1], gan.g_params)[-1][0])




# ------------------------------------------------------------- windowed ramp model
def test_ramp_step_trains_both_networks_with_adam():
    cfg = tiny(**{"neuron.model": "ramp"})
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.ramp and gan.real_delay == 0 and gan.g[0].centre == cfg.neuron.t_max / 2
    before = [a.copy() for a in gan.state()["g"] + gan.state()["d"]]
    real = gan.encode_real(load_digits().train_images[:16])
    sizes = Gan.sizes(cfg)
    m = gan_step(gan, cfg, [real], np.random.default_rng(1), backprop.DeadNeuronMonitor(sizes["g"]),
                 backprop.DeadNeuronMonitor(sizes["d"]))
    after = gan.state()["g"] + gan.state()["d"]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    assert gan.adam_steps() == {"g": 1, "d": 1}
    assert 0 <= m["d_acc_real"] <= 1 and -1 <= m["g_error_cosine"] <= 1 and m["decision_time_ms"] >= 0
    # what Brian2 simulates is the network that was trained (per-neuron thresholds from the biases)
    g_w, _, g_th, _ = gan.networks()
    z = gan.g_input(np.random.default_rng(2), 30)
    assert np.mean(forward_ramp(g_w, g_th, z, cfg.neuron.t_max)[-1] != gan.g_times(z)[-1]) < 1e-3


def test_d_bias_init_makes_d_hidden_fire_on_blank_images_and_pass_an_error_to_g():
    """ramp.d_bias_init: D's hidden neurons start firing on a blank image (every pixel silent),
    so D passes an error back to every pixel of it; with zero biases none of them fires and
    the blank image gets no error at all."""
    T = 16
    blank = np.full((4, 784), T, np.int32)  # no pixel fires
    errs = {}
    for init in (0.0, 0.5):
        cfg = tiny(**{"neuron.model": "ramp", "neuron.t_max": T, "ramp.d_bias_init": init})
        gan = Gan.init(cfg, np.random.default_rng(0))
        hidden = gan.d_times(blank)[0]
        _, _, err = pixel_error(gan, cfg, blank)
        errs[init] = err
        if init:
            assert np.all(hidden == T - int(init * T))  # every hidden neuron fires, at the same step
            assert np.all(gan.d[-1].b == 0)  # the output layer keeps its zero bias
        else:
            assert np.all(hidden == T)  # all silent
    assert not np.any(errs[0.0]) and np.all(np.abs(errs[0.5]).sum(axis=1) > 0)


def test_r1_penalty_flattens_d_at_real_images():
    """ramp.r1: D trained on the same real and fake batches ends with a smaller input gradient
    of its real-minus-fake logit at the real images than without the penalty."""
    data = load_digits()
    norms = {}
    for r1 in (0.0, 1.0):
        cfg = tiny(**{"neuron.model": "ramp", "ramp.r1": r1, "ramp.d_bias_init": 0.5, "ramp.lr_d": 2e-3})
        gan = Gan.init(cfg, np.random.default_rng(0))
        real = gan.encode_real(data.train_images[:20])
        fake = gan.generate_times(np.random.default_rng(1), 20).output
        for _ in range(30):
            d_step(gan, cfg, real, fake)
        trace = gan.d_trace(real)
        d = np.array([1.0, -1.0], np.float32) / np.float32(cfg.ramp.temperature)
        norms[r1] = exact.input_gradient_penalty(gan.d, trace, d)[0]
    assert norms[1.0] < 0.5 * norms[0.0]


def test_error_cosine():
    from training.gan import error_cosine
    e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    assert error_cosine(e) == pytest.approx(1 / 3)     # pairs (0,1) = 1, (0,3) = (1,3) = 0; row 2 left out
    assert error_cosine(e[:2]) == pytest.approx(1.0) and np.isnan(error_cosine(e[:1]))


def test_pixel_error_conversions_point_the_same_way():
    """intensity_gradient / pixel_error_from_intensity are inverse and keep the sign."""
    from training.gan import intensity_gradient, pixel_error_from_intensity
    g = np.array([[0.5, -1.0]], np.float32)
    for model in ("if", "ramp"):
        gan = Gan.init(tiny(**{"neuron.model": model}), np.random.default_rng(0))
        back = intensity_gradient(gan, pixel_error_from_intensity(gan, g))
        np.testing.assert_allclose(back, g)
        assert np.all(np.sign(pixel_error_from_intensity(gan, g)) == np.sign(g))
