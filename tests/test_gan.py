"""The Spiking-GAN step: silent-pixel remedy, real-image delay, augmentation."""
import numpy as np
import pytest
from helpers import MODELS, tiny

from models.kernel import forward
from models.neuron import RAMP_NEURON
from models.ramp import forward as forward_ramp
from models.spikes import fired_fraction, spike_counts, spikes_per_sample
from training import exact
from training.data import load_digits, random_shift
from training.gan import REAL, Gan, _d_loss, d_step, gan_step, pixel_error


def _g_error(remedy, n=16, seed=0):
    """G's outputs and D's pixel error on them, pixels 0..299 unable to fire."""
    cfg = tiny(**{"train.silent_pixel_remedy": remedy})
    gan = Gan.init(cfg, np.random.default_rng(0))
    gan.g.layers[-1].w[:, :300] = -50.0              # pixels 0..299 can never fire
    t_out = gan.generate_times(np.random.default_rng(seed), n).output
    return gan, t_out, pixel_error(gan, cfg, t_out)[2]


def test_silent_pixels_get_error_only_with_the_remedy():
    gan, t_out, e_plain = _g_error(remedy=False)
    assert np.all(t_out[:, :300] == gan.g_params.t_max)
    assert np.all(e_plain[:, :300] == 0)             # plain S4NN: no error reaches them
    _, _, e_fix = _g_error(remedy=True)
    assert np.abs(e_fix[:, :300]).sum(axis=1).min() > 0


def _dead_pixels_after_training(remedy: bool) -> float:
    cfg = tiny(**{"train.silent_pixel_remedy": remedy, "generator.init_output": [-3.0, -1.0],
                  "generator.lr": [1.0, 20.0]})
    rng = np.random.default_rng(cfg.seed)
    gan = Gan.init(cfg, rng)
    data = load_digits()
    real = gan.encode_real(data.train_images[:200])
    for s in range(20):
        gan_step(gan, cfg, [real[(s % 10) * 20:(s % 10 + 1) * 20]], rng)
    out = forward(gan.g.weights, gan.generate_times(np.random.default_rng(1), 50).t_in, gan.g_params)[-1]
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
    assert gan.per_class and gan.g.weights[0].shape == (10, 10, 16) and gan.d.weights[-1].shape == (10, 16, 2)
    lone_cfg = tiny(**{"train.l2": 0.0})
    lone = Gan.init(lone_cfg, np.random.default_rng(1))
    for net, bank in ((lone.g, gan.g), (lone.d, gan.d)):
        net.load_state({"weights": [w[3].copy() for w in bank.weights]}, {})
    before = [w.copy() for w in gan.g.weights + gan.d.weights]
    data = load_digits()
    threes = gan.encode_real(data.train_images[data.train_labels == 3][:20])
    gan_step(gan, cfg, [threes], np.random.default_rng(5), [np.full(20, 3)])
    gan_step(lone, lone_cfg, [threes], np.random.default_rng(5))
    for w, w0, w_lone in zip(gan.g.weights + gan.d.weights, before, lone.g.weights + lone.d.weights):
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
        g_c, _ = gan.g.brian_layers(c)
        np.testing.assert_array_equal(times[b], forward(g_c, z[b:b + 1], gan.g_params)[-1][0])


# ------------------------------------------------------------- windowed ramp model
def test_ramp_step_trains_both_networks_with_adam():
    cfg = tiny("ramp")
    gan = Gan.init(cfg, np.random.default_rng(0))
    assert gan.g.neuron is RAMP_NEURON and gan.real_delay == 0 and gan.g.layers[0].centre == cfg.neuron.t_max / 2
    before = [a.copy() for a in gan.state()["g"] + gan.state()["d"]]
    real = gan.encode_real(load_digits().train_images[:16])
    m = gan_step(gan, cfg, [real], np.random.default_rng(1))
    after = gan.state()["g"] + gan.state()["d"]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    assert gan.counters() == {"adam_steps": {"g": 1, "d": 1}}
    assert 0 <= m["d_acc_real"] <= 1 and -1 <= m["g_error_cosine"] <= 1 and m["decision_time_ms"] >= 0
    # what Brian2 simulates is the network that was trained (per-neuron thresholds from the biases)
    g_w, g_th = gan.g.brian_layers()
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
        cfg = tiny("ramp", **{"neuron.t_max": T, "ramp.d_bias_init": init})
        gan = Gan.init(cfg, np.random.default_rng(0))
        hidden = gan.d_times(blank)[0]
        _, _, err = pixel_error(gan, cfg, blank)
        errs[init] = err
        if init:
            assert np.all(hidden == T - int(init * T))  # every hidden neuron fires, at the same step
            assert np.all(gan.d.layers[-1].b == 0)  # the output layer keeps its zero bias
        else:
            assert np.all(hidden == T)  # all silent
    assert not np.any(errs[0.0]) and np.all(np.abs(errs[0.5]).sum(axis=1) > 0)


def test_r1_penalty_flattens_d_at_real_images():
    """ramp.r1: D trained on the same real and fake batches ends with a smaller input gradient
    of its real-minus-fake logit at the real images than without the penalty."""
    data = load_digits()
    norms = {}
    for r1 in (0.0, 1.0):
        cfg = tiny("ramp", **{"ramp.r1": r1, "ramp.d_bias_init": 0.5, "ramp.lr_d": 2e-3})
        gan = Gan.init(cfg, np.random.default_rng(0))
        real = gan.encode_real(data.train_images[:20])
        fake = gan.generate_times(np.random.default_rng(1), 20).output
        for _ in range(30):
            d_step(gan, cfg, real, fake)
        trace = gan.d_trace(real)
        d = np.array([1.0, -1.0], np.float32) / np.float32(cfg.ramp.temperature)
        norms[r1] = exact.input_gradient_penalty(gan.d.layers, trace, d)[0]
    assert norms[1.0] < 0.5 * norms[0.0]


def test_error_cosine():
    from training.gan import error_cosine
    e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    assert error_cosine(e) == pytest.approx(1 / 3)     # pairs (0,1) = 1, (0,3) = (1,3) = 0; row 2 left out
    assert error_cosine(e[:2]) == pytest.approx(1.0) and np.isnan(error_cosine(e[:1]))


#: A tiny IF config whose D at initialisation tells its inputs apart (mixed-sign weights, low
#: hidden threshold): the tiny config's D fires its hidden neurons all at one step on most images,
#: so moving a pixel by a step hardly ever changes its loss.
IF_D_MIXED = {"discriminator.init_hidden": [-2.0, 3.0], "discriminator.init_output": [-5.0, 8.0],
              "discriminator.thresholds": [20.0, 10.0]}


def _d_loss_of_g_target(gan, cfg, times):
    """Per sample, the loss D's pixel error is the gradient of: G's target *real*; the IF model
    S4NN's TTFS loss 1/2 sum e^2 (training.losses), the ramp model ``ramp.g_loss`` (softmax)."""
    trace = gan.d_trace(times)
    if cfg.neuron.model == "ramp":
        assert cfg.ramp.g_loss == "softmax"
        a = trace.pre[-1].astype(np.float64) / cfg.ramp.temperature
        return np.logaddexp.reduce(a, axis=1) - a[:, REAL]
    e = _d_loss(gan, cfg, trace, np.full(len(times), REAL), kind="ttfs").astype(np.float64)
    return 0.5 * np.sum(e ** 2, axis=1)


@pytest.mark.parametrize("model", MODELS)
def test_pixel_error_converts_to_the_intensity_gradient_of_d_loss(model):
    """D's pixel error on G's fakes, converted by intensity_gradient, is dL/d(intensity) of the
    loss G is trained on (ramp: exactly, for the batch-mean loss; IF: up to a positive factor
    per sample, S4NN's approximate rule): checked against finite differences of that loss.

    Each fake is probed one clock step against and along the sign of its converted gradient
    (intensity = 1 - t / t_max: one step later is 1 / t_max darker); the step against it must
    give the lower loss. Flipping the conversion's sign makes every count below swap."""
    cfg = tiny(model, **(IF_D_MIXED if model == "if" else {}))
    gan = Gan.init(cfg, np.random.default_rng(0))
    T = gan.d_params.t_max
    n = 200
    fake = gan.generate_times(np.random.default_rng(1), n).output
    _, _, err = pixel_error(gan, cfg, fake)
    grad = gan.d.intensity_gradient(err)
    assert grad.shape == fake.shape and np.all(np.abs(grad).sum(axis=1) > 0)
    darker = np.clip(fake + np.sign(grad).astype(int), 0, T)    # intensity - sign(grad) / T
    brighter = np.clip(fake - np.sign(grad).astype(int), 0, T)  # intensity + sign(grad) / T
    down, up = (_d_loss_of_g_target(gan, cfg, t) for t in (darker, brighter))
    lower, higher = int(np.sum(down < up)), int(np.sum(down > up))
    assert lower >= 0.4 * n and higher <= 0.05 * lower, (lower, higher)
    if model == "ramp":  # the exact gradient of the batch-mean loss: first order, also its size
        d_intensity = (darker - brighter) / T                    # from the darker to the brighter
        predicted = float(np.sum(grad * d_intensity))
        measured = float(np.mean(up - down))
        assert 0.7 < measured / predicted < 1.4, (measured, predicted)


def test_pixel_error_conversions_are_inverse_and_keep_the_sign():
    """intensity_gradient and error_from_intensity are inverse and keep the sign (both models)."""
    g = np.array([[0.5, -1.0]], np.float32)
    for model in MODELS:
        gan = Gan.init(tiny(model), np.random.default_rng(0))
        back = gan.d.intensity_gradient(gan.d.error_from_intensity(g))
        np.testing.assert_allclose(back, g)
        assert np.all(np.sign(gan.d.error_from_intensity(g)) == np.sign(g))


@pytest.mark.parametrize("model", MODELS)
def test_step_spike_measures_are_the_means_they_stand_for(model):
    """spikes_per_sample and fired_fraction (counted, not averaged) are the plain means bit for bit."""
    cfg = tiny(model)
    gan = Gan.init(cfg, np.random.default_rng(0))
    trace = gan.generate_times(np.random.default_rng(1), 37)
    T = gan.g_params.t_max
    assert spikes_per_sample(trace.times, T) == float(spike_counts(trace.times, T).mean()) > 0
    out = trace.output
    assert fired_fraction(out, T) == float((out < T).mean())
