"""Brian2 and the NumPy kernel agree spike for spike (models/neuron.py semantics)."""
import numpy as np
import pytest

from models import brian, kernel, ramp
from models.neuron import RAMP_NEURON, NeuronParams

TARGETS = [pytest.param("numpy", marks=pytest.mark.brian2),
           pytest.param("cython", marks=[pytest.mark.brian2, pytest.mark.cython, pytest.mark.slow])]


def assert_same(weights, t_in, params, target, dtypes=(np.float32, np.float64)):
    ref = brian.simulate(weights, t_in, params, target=target).times
    for dtype in dtypes:
        got = kernel.forward(weights, t_in, params, dtype=dtype)
        assert len(got) == len(ref)
        for k, (a, b) in enumerate(zip(got, ref)):
            np.testing.assert_array_equal(a, b, err_msg=f"layer {k + 1}, kernel {dtype.__name__}")
    return ref


@pytest.mark.parametrize("target", TARGETS)
def test_hand_worked_single_neuron(target):
    # w = (60, 40) mV, theta = 100 mV; inputs at steps 3 and 7 -> V reaches 100 at step 7
    # -> spike at 8 (one step latency). Drop one input -> never fires -> t_max.
    params = NeuronParams((100.0,), t_max=16)
    w = [np.array([[60.0], [40.0]])]
    t_in = np.array([[3, 7], [3, 16], [0, 0], [14, 14], [15, 0]])
    out = assert_same(w, t_in, params, target)[0][:, 0]
    # [0, 0]: both at step 0 -> spike at 1; [14, 14] -> 15; [15, 0]: crossing at 15 -> 16 = no spike
    np.testing.assert_array_equal(out, [8, 16, 1, 15, 16])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sizes,thresholds,t_max", [
    ((30, 20, 5), (4.0, 2.5), 40),
    ((25, 15, 12, 3), (3.0, 1.5, 2.0), 64),
    ((12, 8), (1.0,), 20),
])
def test_random_networks(target, sizes, thresholds, t_max, rng, dyadic_weights):
    weights = dyadic_weights(rng, sizes)
    params = NeuronParams(thresholds, t_max=t_max)
    t_in = rng.integers(0, t_max + 1, size=(7, sizes[0]))
    out = assert_same(weights, t_in, params, target)
    fired = np.mean([np.mean(t < t_max) for t in out])
    assert 0.05 < fired < 0.98, "the test network should have firing and silent neurons"


@pytest.mark.parametrize("target", TARGETS)
def test_adversarial_inputs(target, rng, dyadic_weights):
    sizes, t_max = (16, 10, 4), 24
    weights = dyadic_weights(rng, sizes, low=-0.5, high=1.0)
    # exact landings: neuron 0 of layer 1 sums to exactly 2.0 with all inputs, neuron 1 to
    # 2.0 - 2^-8 (just below), neuron 2 only negative weights (never fires)
    weights[0][:, 0] = 0.125
    weights[0][:, 1] = 0.125
    weights[0][0, 1] -= 2.0 ** -8
    weights[0][:, 2] = -0.25
    params = NeuronParams((2.0, 0.75), t_max=t_max)
    t_in = np.stack([
        np.full(16, t_max),                      # no input spikes at all
        np.zeros(16, int),                       # all inputs at step 0
        np.full(16, 5),                          # all at one step
        np.full(16, t_max - 1),                  # all at the last step: too late to cause a spike
        np.arange(16),                           # one per step
        rng.integers(0, t_max + 1, 16),
    ])
    out = assert_same(weights, t_in, params, target)
    h = out[0]
    # neuron 0 lands on 2.0 with the 16th input: one step after the last input, if in time
    last = t_in.max(axis=1)
    np.testing.assert_array_equal(h[:, 0], np.where(last + 1 < t_max, last + 1, t_max))
    np.testing.assert_array_equal(h[:5, 0], [t_max, 1, 6, t_max, 16])
    assert np.all(h[:4, 1] == t_max) and h[4, 1] == t_max     # 2.0 - 2^-8: never reached
    assert np.all(h[:, 2] == t_max)                           # inhibitory only
    assert np.all(out[1][0] == t_max)


@pytest.mark.brian2
def test_float_weights_float64_kernel(rng):
    """Arbitrary (non-dyadic) float weights: the float64 kernel is bit-compatible."""
    sizes, t_max = (40, 30, 6), 50
    weights = [rng.normal(0.3, 1.0, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    params = NeuronParams((3.0, 2.0), t_max=t_max)
    t_in = rng.integers(0, t_max + 1, size=(9, sizes[0]))
    assert_same(weights, t_in, params, "numpy", dtypes=(np.float64,))


@pytest.mark.brian2
def test_latency_two_steps(rng, dyadic_weights):
    """Latency = 2 is a synaptic delay of one dt in Brian2 and a shift in the kernel."""
    sizes, t_max = (20, 10, 3), 40
    weights = dyadic_weights(rng, sizes)
    params = NeuronParams((2.0, 1.0), t_max=t_max, latency=2)
    t_in = rng.integers(0, t_max + 1, size=(5, sizes[0]))
    out = assert_same(weights, t_in, params, "numpy")
    assert out[0].min() >= 2


@pytest.mark.brian2
def test_digits_through_s4nn_sized_network(rng):
    """Real digits through a 784-40-10 network with S4NN-style weights and dt = 0.5 ms."""
    from models.coding import encode_images
    from training.data import load_digits
    data = load_digits()
    params = NeuronParams((30.0, 20.0), t_max=64, dt_ms=0.5)
    weights = [np.round(rng.uniform(0, 1, (784, 40)) * 256) / 256,
               np.round(rng.uniform(0, 4, (40, 10)) * 256) / 256]
    t_in = encode_images(data.test_images[:6], params.t_max)
    out = assert_same(weights, t_in, params, "numpy")
    assert (out[1] < params.t_max).any()


@pytest.mark.brian2
@pytest.mark.standalone
@pytest.mark.slow
def test_cpp_standalone(rng, tmp_path, dyadic_weights):
    sizes, t_max = (15, 8, 3), 30
    weights = dyadic_weights(rng, sizes)
    params = NeuronParams((2.0, 1.0), t_max=t_max)
    t_in = rng.integers(0, t_max + 1, size=(4, sizes[0]))
    ref = brian.simulate(weights, t_in, params, target="cpp_standalone", build_dir=str(tmp_path / "cpp"))
    for a, b in zip(kernel.forward(weights, t_in, params), ref.times):
        np.testing.assert_array_equal(a, b)
    # the runtime device is restored afterwards
    assert_same(weights, t_in, params, "numpy")


@pytest.mark.brian2
def test_state_monitor_trace_matches_spike(rng):
    """The recorded membrane potential crosses the threshold one step before the spike."""
    params = NeuronParams((100.0,), t_max=16)
    w = [np.array([[60.0], [40.0]])]
    res = brian.simulate(w, np.array([[3, 7]]), params, record_v={1: [0]})
    v = res.v_trace[1][0, 0]
    assert v.shape == (16,)
    np.testing.assert_allclose(v[:8], [0, 0, 0, 0, 60, 60, 60, 60], atol=1e-9)
    assert v[8] == pytest.approx(100.0) and res.times[0][0, 0] == 8


# ------------------------------------------------------------------ windowed ramp neuron
def assert_same_ramp(weights, thetas, t_in, t_max, target, dt_ms=1.0):
    """Brian2 (ramp equations) and the closed-form kernel give the same spike times."""
    params = NeuronParams((1.0,) * len(weights), t_max=t_max, dt_ms=dt_ms)
    ref = brian.simulate(weights, t_in, params, target=target, neuron=RAMP_NEURON, thresholds=thetas).times
    got = ramp.forward(weights, thetas, t_in, t_max)
    assert len(got) == len(ref)
    for k, (a, b) in enumerate(zip(got, ref)):
        np.testing.assert_array_equal(a, b, err_msg=f"ramp layer {k + 1}")
    return ref


def dyadic(rng, shape, low, high, step=2.0 ** -8):
    return np.round(rng.uniform(low, high, shape) / step) * step


@pytest.mark.parametrize("target", TARGETS)
def test_ramp_hand_worked_single_neuron(target):
    # T = 10, w = (2, 1) mV per step; inputs at steps 3 and 7 have earliness 7 and 3, so the
    # potential at the window's opening (step 10) is 2 * 7 + 1 * 3 = 17 mV, then +1 mV per step.
    T = 10
    w = [np.array([[2.0], [1.0]])]
    t_in = np.array([[3, 7]] * 5 + [[3, T], [T, T]])
    thetas = [np.array([20.0])]
    cases = {20.0: 3, 17.0: 0, 5.0: 0, 26.0: 9, 26.5: T}   # theta -> spike step within the window
    for theta, want in cases.items():
        out = assert_same_ramp(w, [np.array([theta])], t_in[:1], T, target)[0][0, 0]
        assert out == want, (theta, out)
    # one input only: V = 14 at the opening, theta 20 -> 6 steps later; no input: 20 steps -> none
    out = assert_same_ramp(w, thetas, t_in, T, target)[0][:, 0]
    np.testing.assert_array_equal(out[-2:], [6, T])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sizes,t_max", [((30, 20, 5), 20), ((25, 15, 12, 3), 32), ((12, 8), 16)])
def test_ramp_random_networks(target, sizes, t_max, rng):
    weights = [dyadic(rng, (a, b), -0.4, 0.5) for a, b in zip(sizes[:-1], sizes[1:])]
    thetas = [dyadic(rng, (b,), 0.0, 2.5 * t_max) for b in sizes[1:]]
    t_in = rng.integers(0, t_max + 1, size=(6, sizes[0]))
    out = assert_same_ramp(weights, thetas, t_in, t_max, target)
    fired = np.mean([np.mean(t < t_max) for t in out])
    inside = np.mean([np.mean((t > 0) & (t < t_max)) for t in out])
    assert 0.05 < fired < 0.98, "the test network should have firing and silent neurons"
    assert inside > 0.1, "and spikes inside the window, not only at its opening"


@pytest.mark.brian2
def test_ramp_digits_and_membrane(rng):
    """Real digits through a 784-40-2 ramp network (dt = 0.5 ms); the StateMonitor trace ramps
    at 1 mV per step in the output window and is at threshold when the neuron fires."""
    from models.coding import encode_images
    from training.data import load_digits
    T = 32
    data = load_digits()
    weights = [dyadic(rng, (784, 40), -0.01, 0.012), dyadic(rng, (40, 2), -0.1, 0.2)]
    thetas = [dyadic(rng, (40,), 10.0, 40.0), dyadic(rng, (2,), 10.0, 40.0)]
    t_in = encode_images(data.test_images[:5], T)
    out = assert_same_ramp(weights, thetas, t_in, T, "numpy", dt_ms=0.5)
    assert 0.05 < np.mean(out[0] < T) < 0.98
    params = NeuronParams((1.0, 1.0), t_max=T, dt_ms=0.5)
    res = brian.simulate(weights, t_in[:1], params, neuron=RAMP_NEURON, thresholds=thetas, record_v={2: [0, 1]})
    v = res.v_trace[2][0]                          # (2, 3 T): recorded at the start of each step
    out_window = v[:, 2 * T + 2:3 * T]
    np.testing.assert_allclose(np.diff(out_window, axis=1)[:, :5], 1.0, atol=1e-9)
    for j in range(2):
        t = res.times[-1][0, j]
        if t < T:  # recorded at the start of step n: the potential after step n - 1
            n = 2 * T + t
            assert v[j, n + 1] >= thetas[1][j] - 1e-6 and (t == 0 or v[j, n] < thetas[1][j])


def test_ramp_kernel_is_a_clipped_relu():
    """The closed form: x = clip(floor(T - theta + W^T x_in), 0, T)."""
    T = 16
    w = np.array([[1.5, -1.0], [0.25, 2.0]])
    theta = np.array([10.0, 3.0])
    t_in = np.array([[0, 8], [16, 16], [4, 0]])   # earliness (16, 8), (0, 0), (12, 16)
    x_in = T - t_in
    a = T - theta + x_in @ w
    want = T - np.clip(np.floor(a), 0, T)
    np.testing.assert_array_equal(ramp.forward([w], [theta], t_in, T)[0], want)
    np.testing.assert_array_equal(want, [[0, 3], [10, 3], [0, 0]])   # worked by hand


@pytest.mark.parametrize("target", TARGETS)
def test_strict_threshold_on_integer_weights(target, rng):
    """The S4NN reference's strict test (``V > theta``, ``NeuronParams.strict``) in both
    simulators, on integer weights where potentials land exactly on the threshold often."""
    sizes, t_max = (40, 20, 4), 48
    weights = [rng.integers(0, 6, size=(a, b)).astype(np.float64) for a, b in zip(sizes[:-1], sizes[1:])]
    t_in = rng.integers(0, t_max + 1, size=(6, sizes[0]))
    loose = NeuronParams((20.0, 15.0), t_max=t_max)
    strict = NeuronParams((20.0, 15.0), t_max=t_max, strict=True)
    out = assert_same(weights, t_in, strict, target)
    differs = sum(int(np.sum(a != b)) for a, b in zip(out, kernel.forward(weights, t_in, loose)))
    assert differs > 0, "the test network should have potentials landing exactly on the threshold"


@pytest.mark.brian2
def test_ramp_output_window_overlap_matches_brian2(rng):
    """experiments.overlap: the output layer's threshold test switched on ``o`` steps early.
    Its potential during the overlap is the ramp of the hidden spikes that have arrived; Brian2,
    given the same equations with ``t_from`` moved, fires at the same steps (negative = inside
    the overlap)."""
    from experiments.overlap import OverlapRampNeuron, output_times

    T, o = 16, 8
    weights = [dyadic(rng, (30, 20), -0.5, 1.5), dyadic(rng, (20, 2), 0.0, 1.0)]
    thetas = [dyadic(rng, (20,), 5.0, 15.0), np.array([12.0, 30.0])]
    t_in = rng.integers(0, T + 1, (6, 30))
    params = NeuronParams((1.0, 1.0), t_max=T)
    ref = brian.simulate(weights, t_in, params, neuron=OverlapRampNeuron(o, 2), thresholds=thetas).times
    hidden = ramp.forward(weights[:1], thetas[:1], t_in, T)[0]
    np.testing.assert_array_equal(ref[0], hidden)
    got = output_times(hidden, weights[1], thetas[1], T, o)
    np.testing.assert_array_equal(got, ref[1])
    assert np.any(got < 0), "some outputs should fire inside the overlap"
    np.testing.assert_array_equal(output_times(hidden, weights[1], thetas[1], T, 0),
                                  ramp.forward(weights, thetas, t_in, T)[1])
