"""Exact spike-time gradients of the windowed ramp neuron (training/exact.py)."""
import numpy as np
import pytest

from models import ramp
from models.coding import encode_images, sample_noise_times
from models.kernel import pinned_blas_threads
from models.neuron import THRESHOLD_EPS_MV
from training import exact


def continuous_forward(layers, x_in, T):
    """The ramp network without the clock's quantisation: x = clip(a, 0, T) (a reference)."""
    xs, pre, x = [], [], np.asarray(x_in, np.float64)
    for layer in layers:
        a = layer.b.astype(np.float64) + (x - layer.centre) @ layer.w.astype(np.float64)
        x = np.clip(a, 0, T)
        xs.append(x)
        pre.append(a)
    return exact.Trace(np.asarray(x_in, np.float64), xs, pre, T)


def small_net(rng, sizes=(7, 6, 3), T=32):
    layers = [exact.init_layer(rng, a, b, T / 2 if k == 0 else 0.0)
              for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    for layer in layers:  # float64 for the finite differences, biases that open most gates
        layer.w = layer.w.astype(np.float64)
        layer.b = rng.uniform(5, 20, layer.b.shape)
    return layers


def test_gradients_match_finite_differences(rng):
    """dL/dW, dL/db and dL/dx_in of L = sum(c * x_out) against central differences."""
    T = 32
    layers = small_net(rng, T=T)
    x_in = rng.uniform(0, T, (5, 7))
    c = rng.normal(size=(5, 3))

    def loss(ls, x):
        return float((c * continuous_forward(ls, x, T).xs[-1]).sum())

    tr = continuous_forward(layers, x_in, T)
    grads, g_in = exact.backward(layers, tr, c, input_grad=True)
    h = 1e-6
    for k, layer in enumerate(layers):
        for arr, g in ((layer.w, grads[k][0]), (layer.b, grads[k][1])):
            for idx in list(np.ndindex(arr.shape))[::3]:
                old = arr[idx]
                arr[idx] = old + h
                up = loss(layers, x_in)
                arr[idx] = old - h
                down = loss(layers, x_in)
                arr[idx] = old
                assert g[idx] == pytest.approx((up - down) / (2 * h), abs=1e-5)
    for idx in list(np.ndindex(x_in.shape))[::2]:
        x = x_in.copy()
        x[idx] += h
        up = loss(layers, x)
        x[idx] -= 2 * h
        down = loss(layers, x)
        assert g_in[idx] == pytest.approx((up - down) / (2 * h), abs=1e-5)
    # the gate is per sample: some neuron is open for one sample and closed for another
    open_ = (tr.pre[0] > 0) & (tr.pre[0] < T)
    assert (open_.any(axis=0) & ~open_.all(axis=0)).any()



def test_training_forward_is_the_simulated_network(rng):
    """The float32 training pass and the float64 simulator on the layers' thresholds give the
    same spike times (so a trained network is what Brian2 simulates)."""
    from models.coding import sample_noise_times
    T = 64
    layers = [exact.init_layer(rng, 100, 64, T / 2), exact.init_layer(rng, 64, 30, 0.0)]
    z = sample_noise_times(rng, 200, 100, T)
    got = exact.forward_trace(layers, ramp.earliness(z, T), T).times
    ref = ramp.forward([layer.w for layer in layers], [layer.thresholds(T) for layer in layers], z, T)
    for a, b in zip(got, ref):
        assert np.mean(a != b) < 1e-3        # float32 vs float64 rounding at exact landings only
        assert 0.1 < np.mean(a < T) < 0.95


def test_adam_matches_the_reference_formula():
    p = [np.array([1.0, -2.0], np.float32)]
    opt = exact.Adam.like(p)
    g = [np.array([0.5, -0.1], np.float32)]
    for _ in range(3):
        opt.step(p, g, lr=0.1, beta1=0.5, beta2=0.9)
    # constant gradient: m_hat = g, v_hat = g^2 -> three steps of lr * sign(g)
    np.testing.assert_allclose(p[0], [1.0 - 0.3, -2.0 + 0.3], atol=1e-5)
    assert opt.t == 3


def test_the_gate_is_open_only_inside_the_window():
    a = np.array([[-3.0, 5.0, 0.0, 16.0, 15.5]], np.float32)
    np.testing.assert_array_equal(exact.gate(a, 16), [[0, 1, 0, 0, 1]])


def test_input_gradient_penalty_matches_finite_differences(rng):
    """P = 1/2 mean ||ds/dx_in||^2 of s = a_L . d: its value against a float64 Jacobian, and
    dP/dW (dP/db = 0) against central differences, on a three-layer network."""
    T = 32
    layers = small_net(rng, sizes=(7, 6, 5, 2), T=T)
    x_in = rng.uniform(0, T, (6, 7))
    d = np.array([1.0, -1.0]) / 4.0

    def penalty(ls):
        tr = continuous_forward(ls, x_in, T)
        g = np.tile(d, (len(x_in), 1))
        for k in range(len(ls) - 1, -1, -1):
            if k < len(ls) - 1:
                g = g * ((tr.pre[k] > 0) & (tr.pre[k] < T))
            g = g @ ls[k].w.T
        return 0.5 * np.mean(np.sum(g ** 2, axis=1))

    p, grads = exact.input_gradient_penalty(layers, continuous_forward(layers, x_in, T), d)
    assert p == pytest.approx(penalty(layers), rel=1e-5) and p > 0
    h = 1e-6
    for k, layer in enumerate(layers):
        assert not np.any(grads[k][1])
        for idx in list(np.ndindex(layer.w.shape))[::2]:
            old = layer.w[idx]
            layer.w[idx] = old + h
            up = penalty(layers)
            layer.w[idx] = old - h
            down = penalty(layers)
            layer.w[idx] = old
            assert grads[k][0][idx] == pytest.approx((up - down) / (2 * h), rel=1e-3, abs=1e-7)


def _plain_forward(layers, x_in, T):
    """forward_trace as one expression per layer (its form before the passes were cut)."""
    xs, pre, x = [], [], np.asarray(x_in)
    for layer in layers:
        a = (layer.b + (x.astype(np.float32) - np.float32(layer.centre)) @ layer.w).astype(np.float32)
        x = np.clip(np.floor(a + THRESHOLD_EPS_MV), 0, T).astype(np.int32)
        xs.append(x)
        pre.append(a)
    return xs, pre


def _plain_penalty_grads(layers, trace, direction):
    """input_gradient_penalty's gradients as one expression each, with float gates."""
    gates = [exact.gate(a, trace.t_max) for a in trace.pre[:-1]]
    g = np.broadcast_to(np.asarray(direction, np.float32), (len(trace.x_in), layers[-1].w.shape[1]))
    q = [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        g = g * gates[k] if k < len(layers) - 1 else g
        q[k] = g
        g = g @ layers[k].w.T
    p, out = g, []
    for k in range(len(layers)):
        out.append((p.T @ q[k]) * np.float32(1.0 / len(trace.x_in)))
        if k < len(layers) - 1:
            p = (p @ layers[k].w) * gates[k]
    return out


@pytest.mark.parametrize("role", ["g", "d"])
def test_the_training_passes_are_the_plain_expressions_bit_for_bit(rng, digits, role):
    """forward_trace (float earliness between layers, no subtraction of c = 0, bias added in
    place), backward (boolean gates, the forward pass's centred inputs reused) and the R1
    penalty (in-place scaling and gating) give the bits of the plain expressions, on G's noise
    (centre T / 2) and on real digits (D)."""
    T = 64
    if role == "g":
        layers = [exact.init_layer(rng, 100, 512, T / 2), exact.init_layer(rng, 512, 784, 0.0)]
        x_in = ramp.earliness(sample_noise_times(rng, 50, 100, T), T)
    else:
        layers = [exact.init_layer(rng, 784, 256, 0.0), exact.init_layer(rng, 256, 2, 0.0)]
        layers[0].b += np.float32(0.5 * T)
        x_in = ramp.earliness(encode_images(digits.train_images[:100], T), T)
    direction = np.array([1.0, -1.0] if role == "d" else np.ones(784), np.float32) / np.float32(32)
    tr = exact.forward_trace(layers, x_in, T)
    with pinned_blas_threads():  # the sums of one thread, as the training passes make them
        xs, pre = _plain_forward(layers, x_in, T)
        plain_pen = _plain_penalty_grads(layers, tr, direction)
    for got, want in zip(tr.xs + tr.pre, xs + pre):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert 0.05 < np.mean(tr.xs[0] > 0) < 0.95 and 0.05 < np.mean(exact.gate(tr.pre[0], T)) < 0.95
    g_out = rng.standard_normal(tr.xs[-1].shape).astype(np.float32)
    got, g_in = exact.backward(layers, tr, g_out, input_grad=True)
    plain = exact.Trace(tr.x_in, tr.xs, tr.pre, T)  # without the centred inputs: computed from x_in and xs
    want, g_in_plain = exact.backward(layers, plain, g_out, input_grad=True)
    for (gw, gb), (ww, wb) in zip(got + [(g_in, g_in)], want + [(g_in_plain, g_in_plain)]):
        np.testing.assert_array_equal(gw, ww)
        np.testing.assert_array_equal(gb, wb)
    _, pen = exact.input_gradient_penalty(layers, tr, direction)
    for (pw, _), w in zip(pen, plain_pen):
        np.testing.assert_array_equal(pw, w)
