"""The Spiking-GAN step: silent-pixel remedy, real-image delay, augmentation."""
import os

import numpy as np

from models.kernel import forward
from training import backprop
from training import config as cm
from training.config import GanConfig
from training.data import load_digits, random_shift
from training.gan import REAL, Gan, _blur_pixels, _d_loss, _error_through_d, d_verdict, gan_step

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


# ------------------------------------------------------------- conditional GAN
def test_conditional_inputs_carry_the_class_as_spikes_at_step_0():
    cfg = tiny(class_inputs=3)
    gan = Gan.init(cfg, np.random.default_rng(0))
    T = gan.g_params.t_max
    assert gan.conditional and gan.g[0].shape[0] == cfg.generator.noise_dim + 30
    assert gan.d[0].shape[0] == 784 + 30
    lab = gan.label_times(np.array([0, 9]), 2)
    assert lab.shape == (2, 30)
    assert np.all(lab[0, :3] == 0) and np.all(lab[0, 3:] == T)
    assert np.all(lab[1, 27:] == 0) and np.all(lab[1, :27] == T)
    z = gan.g_input(np.random.default_rng(0), 12)           # default: balanced classes 0..9, 0, 1
    assert z.shape == (12, cfg.generator.noise_dim + 30)
    np.testing.assert_array_equal(z[:, cfg.generator.noise_dim:], gan.label_times(np.arange(12) % 10, 12))
    with np.testing.assert_raises(ValueError):
        gan.label_times(np.array([10]), 1)
    unc = Gan.init(tiny(), np.random.default_rng(0))
    assert not unc.conditional and unc.default_labels(4) is None
    assert unc.g_input(np.random.default_rng(0), 4).shape == (4, cfg.generator.noise_dim)


def test_conditional_step_trains_and_the_class_changes_the_image():
    """A conditional step needs labels and trains D's class inputs; G's code depends on the class."""
    cfg = tiny(class_inputs=5, **{"generator.init_hidden": [-4.0, 3.0], "generator.init_output": [-1.0, 1.5]})
    rng = np.random.default_rng(cfg.seed)
    gan = Gan.init(cfg, rng)
    data = load_digits()
    real = gan.encode_real(data.train_images[:200])
    sizes = Gan.sizes(cfg)
    dead_g, dead_d = backprop.DeadNeuronMonitor(sizes["g"]), backprop.DeadNeuronMonitor(sizes["d"])
    with np.testing.assert_raises(ValueError):
        gan_step(gan, cfg, [real[:20]], rng, dead_g, dead_d)
    d0 = [w.copy() for w in gan.d]
    for s in range(4):
        sl = slice(s * 20, (s + 1) * 20)
        m = gan_step(gan, cfg, [real[sl]], rng, dead_g, dead_d, [data.train_labels[sl]])
        assert np.isfinite(m["g_loss"]) and np.isfinite(m["d_loss"])
    assert np.abs(gan.d[0][784:] - d0[0][784:]).max() > 0     # D learns from the class inputs
    hidden = [gan.generate_times(np.random.default_rng(3), 10, np.full(10, c)).times[0] for c in (1, 7)]
    assert (hidden[0] != hidden[1]).mean() > 0.05          # same noise, another class: another code


# ------------------------------------------------------------- auxiliary-classifier GAN
def _aux_gan(**over):
    cfg = tiny(class_inputs=2, condition="auxiliary", **{"discriminator.init_hidden": [0.0, 5.0], **over})
    return cfg, Gan.init(cfg, np.random.default_rng(cfg.seed))


def test_auxiliary_d_sees_the_image_only_and_has_class_outputs():
    cfg, gan = _aux_gan()
    assert gan.auxiliary and Gan.sizes(cfg)["d"][0] == 784 and Gan.sizes(cfg)["d"][-1] == 12
    assert gan.g[0].shape[0] == cfg.generator.noise_dim + 20         # G still gets the class
    img = np.zeros((3, 784), np.int32)
    assert gan.d_input(img, np.array([1, 2, 3])) is img
    t = np.arange(3 * 12).reshape(3, 12)
    np.testing.assert_array_equal(d_verdict(t), t[:, :2])
    assert not Gan.init(tiny(class_inputs=2), np.random.default_rng(0)).auxiliary   # default: input


def test_auxiliary_class_error_counts_only_where_asked():
    cfg, gan = _aux_gan()
    data = load_digits()
    real = gan.encode_real(data.train_images[:8])
    trace = backprop.forward_trace(gan.d, real, gan.d_params)
    y = data.train_labels[:8]
    rows = np.arange(8) < 4
    e = _d_loss(gan, cfg, trace, np.full(8, REAL), classes=y, class_rows=rows)
    assert e.shape == (8, 12)
    assert np.all(e[~rows, 2:] == 0) and np.abs(e[rows, 2:]).sum() > 0
    e_all = _d_loss(gan, cfg, trace, np.full(8, REAL), classes=y)
    np.testing.assert_array_equal(e_all[rows], e[rows])
    e2 = _d_loss(gan, cm.override(cfg, {"train.class_weight": 2.0}), trace, np.full(8, REAL), classes=y)
    np.testing.assert_array_equal(e2[:, :2], e_all[:, :2])
    np.testing.assert_allclose(e2[:, 2:], 2 * e_all[:, 2:])


def test_auxiliary_d_learns_to_classify_real_digits():
    """D steps teach D's class outputs the class of real images (S4NN loss over 10 outputs)."""
    cfg, gan = _aux_gan(**{"discriminator.lr": [5.0, 5.0], "discriminator.hidden": [100],
                           "discriminator.thresholds": [100.0, 100.0], "train.class_weight": 3.0})
    rng = np.random.default_rng(0)
    data = load_digits()
    n = 400
    real, y = gan.encode_real(data.train_images[:n]), data.train_labels[:n]
    sizes = Gan.sizes(cfg)
    dead_g, dead_d = backprop.DeadNeuronMonitor(sizes["g"]), backprop.DeadNeuronMonitor(sizes["d"])

    def accuracy():
        out = forward(gan.d, real, gan.d_params)[-1][:, 2:]
        return float(np.mean(np.where(out.min(1) < gan.d_params.t_max, out.argmin(1), -1) == y))

    before = accuracy()
    for epoch in range(6):
        for s in range(0, n, 20):
            m = gan_step(gan, cfg, [real[s:s + 20]], rng, dead_g, dead_d, [y[s:s + 20]])
    assert 0 <= m["d_class_acc_real"] <= 1 and 0 <= m["d_class_acc_fake"] <= 1
    assert before < 0.2 and accuracy() > 0.4


def test_clipped_g_error_moves_each_output_at_most_gamma():
    cfg = tiny()
    gan = Gan.init(cfg, np.random.default_rng(0))
    gan.d[-1][:, REAL] = 0.0                               # D wins: its *real* neuron stays silent
    g = gan.generate_times(np.random.default_rng(1), 16)
    trace = backprop.forward_trace(gan.d, g.output, gan.d_params)
    full = _d_loss(gan, cfg, trace, np.full(16, REAL), kind="ttfs")
    clip = _d_loss(gan, cfg, trace, np.full(16, REAL), kind="ttfs", real_error="clip")
    lim = cfg.loss.gamma / gan.d_params.t_max
    assert np.abs(clip).max() <= lim + 1e-7
    np.testing.assert_allclose(clip, np.clip(full, -lim, lim))
    assert np.abs(full).max() > lim                       # the test is not vacuous


def test_blurred_pixel_error_is_a_gaussian_low_pass():
    e = np.zeros((2, 784), np.float32)
    e[0, 14 * 28 + 14] = 1.0
    b = _blur_pixels(e, 1.0).reshape(2, 28, 28)
    assert b.dtype == np.float32 and np.all(b[1] == 0)
    assert abs(b[0].sum() - 1.0) < 1e-5                    # away from the border: mass kept
    assert b[0, 14, 14] == b[0].max() and 0 < b[0, 14, 15] < b[0, 14, 14]
    np.testing.assert_allclose(b[0, 14, 15], b[0, 15, 14])  # isotropic


# ------------------------------------------------------------- one GAN per class
def test_per_class_gan_trains_each_class_as_if_alone():
    """A step on a batch of one class moves only that class's G and D, exactly as a lone GAN would."""
    cfg = tiny(per_class=True, **{"train.l2": 0.0})
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.conditional and gan.g[0].shape == (10, 10, 16) and gan.d[-1].shape == (10, 16, 2)
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
    z = gan.g_input(np.random.default_rng(2), 4, labels)
    for b, c in enumerate(labels):
        g_c, _ = gan.networks(c)
        np.testing.assert_array_equal(times[b], forward(g_c, z[b:b + 1], gan.g_params)[-1][0])


def test_batch_mean_error_is_removed_per_class_network():
    from training.gan import _group_mean
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    group = np.array([2, 0, 2, 0, 0, 5])
    m = _group_mean(x, group)
    for b, c in enumerate(group):
        np.testing.assert_allclose(m[b], x[group == c].mean(axis=0))
    np.testing.assert_allclose(_group_mean(x, None), x.mean(axis=0, keepdims=True))
