"""Convolutional windowed ramp layers (models/ramp.py ConvGeometry / ConvMap, training/exact.py
ConvLayer): the conv layer is the dense ramp layer whose matrix is the convolution's, forward and
exact gradients bit for bit on exact (dyadic) values; Brian2 simulates it spike for spike."""
import nir
import numpy as np
import pytest

from analysis import energy
from models import brian, nirgraph, ramp
from models.neuron import RAMP_NEURON, NeuronParams
from training import config as cm
from training import exact
from training.networks import RampNetwork, conv_geometries, sizes, weight_shapes

STEP = 2.0 ** -6  # dyadic kernel values: every partial sum below is exact in float32 and float64
#: (big, small channels, kernel, stride, pad): strided, padded, unpadded, stride 1 and 3, a remainder
GEOMETRIES = [((2, 8, 8), 3, 4, 2, 1), ((1, 9, 7), 2, 3, 2, 1), ((2, 6, 6), 2, 4, 2, 0),
              ((1, 5, 5), 2, 3, 1, 1), ((2, 10, 11), 3, 5, 3, 2)]


def geometry(big, c_small, k, s, p, transposed):
    h, w = ((n + 2 * p - k) // s + 1 for n in big[1:])
    return ramp.ConvGeometry(big, (c_small, h, w), k, s, p, transposed)


def dyadic(rng, shape, low, high, step=STEP):
    return (np.round(rng.uniform(low, high, shape) / step) * step).astype(np.float32)


def conv_and_dense(rng, geo, centre):
    """A conv layer with dyadic kernel and biases, and the dense layer of the same matrix."""
    conv = exact.ConvLayer(dyadic(rng, geo.kernel_shape, -1.0, 1.0), dyadic(rng, (geo.out_shape[0],), 0, 8),
                           geo, centre)
    dense = exact.Layer(conv.simulated.dense().astype(np.float32), np.repeat(conv.b, np.prod(geo.out_shape[1:])),
                        centre)
    return conv, dense


def test_index_map_by_hand():
    """3x3 kernel, stride 1, padding 1 on a 3x3 image: a corner neuron has 4 synapses, an edge
    neuron 6, the centre 9 (49 in all); each synapse reads the kernel entry of its offset."""
    geo = ramp.ConvGeometry((1, 3, 3), (1, 3, 3), 3, 1, 1)
    pre, post, kidx = geo.index_map()
    assert len(pre) == 49
    np.testing.assert_array_equal(np.bincount(post, minlength=9), [4, 6, 4, 6, 9, 6, 4, 6, 4])
    # output (0, 0) reads inputs (0, 0), (0, 1), (1, 0), (1, 1) through kernel offsets (1, 1), (1, 2), (2, 1), (2, 2)
    first = post == 0
    np.testing.assert_array_equal(pre[first], [0, 1, 3, 4])
    np.testing.assert_array_equal(kidx[first], [4, 5, 7, 8])
    m = ramp.ConvMap(geo, np.arange(9.0).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(m.dense()[:, 0], [4, 5, 0, 7, 8, 0, 0, 0, 0])
    np.testing.assert_array_equal(m.fan_out(), np.bincount(pre, minlength=9))
    # the transposed layer has the same synapses the other way round
    tpre, tpost, tkidx = ramp.ConvGeometry((1, 3, 3), (1, 3, 3), 3, 1, 1, transposed=True).index_map()
    np.testing.assert_array_equal(tpre, post)
    np.testing.assert_array_equal(tpost, pre)


def test_geometry_is_checked():
    with pytest.raises(ValueError, match="maps 28x28 to 14x14, not 13x13"):
        ramp.ConvGeometry((1, 28, 28), (4, 13, 13), 4, 2, 1)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
@pytest.mark.parametrize("spec", GEOMETRIES, ids=lambda s: f"{s[0]}k{s[2]}s{s[3]}p{s[4]}")
def test_conv_layer_is_the_dense_layer_of_its_matrix(spec, transposed, rng):
    """Forward (pre-activations, spike times), exact gradients (kernel = dense gradient summed
    over the synapses that share a weight, channel bias = sum over the channel's neurons, input
    error) and the R1 penalty's gradients: equal bit for bit to the dense layer of the conv's
    matrix, float32, on dyadic values and integer earliness."""
    T = 32
    geo = geometry(*spec, transposed)
    conv, dense = conv_and_dense(rng, geo, centre=4.0)
    n_in, n_out = geo.shape
    x = rng.integers(0, T + 1, (8, n_in))  # 8: the penalty's 1 / batch is dyadic
    tc, td = exact.forward_trace([conv], x, T), exact.forward_trace([dense], x, T)
    np.testing.assert_array_equal(tc.pre[0], td.pre[0])
    np.testing.assert_array_equal(tc.xs[0], td.xs[0])
    gate = exact.gate(tc.pre[0], T)
    assert 0.2 < gate.mean() < 0.95, "a test with open and closed gates"
    g_out = dyadic(rng, (8, n_out), -1, 1)
    (gc,), gin_c = exact.backward([conv], tc, g_out, input_grad=True)
    (gd,), gin_d = exact.backward([dense], td, g_out, input_grad=True)
    np.testing.assert_array_equal(gin_c, gin_d)
    pre, post, kidx = geo.index_map()
    want_k = np.zeros(conv.w.size, np.float32)
    np.add.at(want_k, kidx, gd[0][pre, post])
    np.testing.assert_array_equal(gc[0].ravel(), want_k)
    np.testing.assert_array_equal(gc[1], gd[1].reshape(geo.out_shape[0], -1).sum(axis=1))
    assert np.any(gc[0]) and np.any(gc[1])
    # the R1 penalty of a two-layer net, the conv layer first
    head = exact.Layer(dyadic(rng, (n_out, 2), -0.5, 0.5), np.zeros(2, np.float32))
    d = np.array([1.0, -1.0], np.float32) / 4
    pc, rc = exact.input_gradient_penalty([conv, head], exact.forward_trace([conv, head], x, T), d)
    pd, rd = exact.input_gradient_penalty([dense, head], exact.forward_trace([dense, head], x, T), d)
    assert pc == pd and pc > 0
    want_k[:] = 0
    np.add.at(want_k, kidx, rd[0][0][pre, post])
    np.testing.assert_array_equal(rc[0][0].ravel(), want_k)
    np.testing.assert_array_equal(rc[1][0], rd[1][0])


def _tensordot_maps(geo, big, small, kernel):
    """The three maps as plain NumPy expressions (NCHW, np.tensordot, col2im in NCHW), the
    reference of the channels-last implementation."""
    (C, H, W), k, s, p = geo.big, geo.kernel, geo.stride, geo.pad
    h, w = geo.small[1:]
    padded = np.pad(big, ((0, 0), (0, 0), (p, p), (p, p)))
    columns = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :h, :w]
    down = np.tensordot(columns, kernel, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    cols = np.tensordot(small.transpose(0, 2, 3, 1), kernel, axes=([3], [0])).transpose(0, 3, 4, 5, 1, 2)
    out = np.zeros((len(small), C, max(H + 2 * p, (h - 1) * s + k), max(W + 2 * p, (w - 1) * s + k)), small.dtype)
    for dy in range(k):
        for dx in range(k):
            out[:, :, dy:dy + (h - 1) * s + 1:s, dx:dx + (w - 1) * s + 1:s] += cols[:, :, dy, dx]
    grad = np.tensordot(small, columns, axes=([0, 2, 3], [0, 2, 3]))
    return down, out[:, :, p:p + H, p:p + W], grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", [*GEOMETRIES, ((16, 14, 14), 32, 4, 2, 1), ((1, 28, 28), 16, 4, 2, 1)],
                         ids=lambda s: f"{s[0]}-{s[1]}k{s[2]}s{s[3]}p{s[4]}")
def test_maps_are_the_tensordot_expressions_bit_for_bit(spec, dtype, rng):
    """On arbitrary (not dyadic) values the maps give the bits of the plain tensordot expressions,
    the same products on the same operands (the main job's two G geometries included); the
    backward step's shared im2col gives the bits of the two separate calls."""
    geo = geometry(*spec, False)
    kernel = rng.standard_normal(geo.kernel_shape).astype(dtype)
    big = rng.standard_normal((5, *geo.big)).astype(dtype)
    small = rng.standard_normal((5, *geo.small)).astype(dtype)
    want = _tensordot_maps(geo, big, small, kernel)
    for got, ref in zip((geo.down(big, kernel), geo.up(small, kernel), geo.kernel_grad(big, small)), want):
        assert got.dtype == dtype and got.flags.c_contiguous and got.tobytes() == np.ascontiguousarray(ref).tobytes()
    for transposed in (False, True):
        g2 = geometry(*spec, transposed)
        x = rng.standard_normal((5, g2.shape[0])).astype(dtype)
        g = rng.standard_normal((5, g2.shape[1])).astype(dtype)
        wg, adj = g2.weight_grad_and_adjoint(x, g, kernel)
        assert wg.tobytes() == g2.weight_grad(x, g).tobytes() and adj.tobytes() == g2.adjoint(g, kernel).tobytes()


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
def test_kernel_gradient_matches_finite_differences(transposed, rng):
    """The conv layer's exact gradient on the continuous map (float64, no quantisation)."""
    T = 32
    geo = geometry((2, 6, 6), 2, 3, 2, 1, transposed)
    layer = exact.ConvLayer(rng.normal(0, 0.5, geo.kernel_shape), rng.uniform(4, 12, geo.out_shape[0]), geo, 2.0)
    x = rng.uniform(0, T, (3, geo.shape[0]))
    c = rng.normal(size=(3, geo.shape[1]))

    def pre64(lay, xx):
        return np.repeat(lay.b, np.prod(geo.out_shape[1:]))[None] + geo.apply(xx - lay.centre, lay.w)

    a = pre64(layer, x)
    g = c * ((a > 0) & (a < T))
    dk = geo.weight_grad(x - layer.centre, g)
    h = 1e-6
    for idx in list(np.ndindex(layer.w.shape))[::3]:
        w0 = layer.w[idx]
        up, down = layer.w.copy(), layer.w.copy()
        up[idx], down[idx] = w0 + h, w0 - h
        f = [float((c * np.clip(pre64(exact.ConvLayer(k, layer.b, geo, layer.centre), x), 0, T)).sum())
             for k in (up, down)]
        assert dk[idx] == pytest.approx((f[0] - f[1]) / (2 * h), abs=1e-5)


def test_border_neurons_have_their_own_thresholds(rng):
    """A threshold is theta = T - b + c * (sum of incoming weights): with zero padding a border neuron has fewer
    synapses, so its threshold differs from the interior's with one bias per channel; it is the
    dense layer's threshold."""
    geo = ramp.ConvGeometry((1, 6, 6), (1, 6, 6), 3, 1, 1)
    layer = exact.ConvLayer(np.full(geo.kernel_shape, 0.5, np.float32), np.array([2.0], np.float32), geo, 8.0)
    th = layer.thresholds(16).reshape(6, 6)
    assert th[2, 2] == 16 - 2 + 8 * 9 * 0.5 and th[0, 0] == 16 - 2 + 8 * 4 * 0.5 and th[0, 2] == 16 - 2 + 8 * 6 * 0.5
    dense = exact.Layer(layer.simulated.dense().astype(np.float32), np.full(36, 2.0, np.float32), 8.0)
    np.testing.assert_array_equal(layer.thresholds(16), dense.thresholds(16))


def conv_network(rng, T):
    """G-like and D-like ramp networks mixing dense, transposed and strided conv layers, as
    simulated: (weights or ConvMap, per-neuron thresholds) with dyadic values."""
    up1 = ramp.ConvGeometry((3, 6, 6), (2, 3, 3), 4, 2, 1, transposed=True)
    up2 = ramp.ConvGeometry((1, 12, 12), (3, 6, 6), 4, 2, 1, transposed=True)
    down1 = ramp.ConvGeometry((1, 12, 12), (3, 6, 6), 3, 2, 1)
    down2 = ramp.ConvGeometry((3, 6, 6), (4, 3, 3), 4, 2, 1)
    g = [dyadic(rng, (10, 18), -0.4, 0.6), ramp.ConvMap(up1, dyadic(rng, up1.kernel_shape, -0.5, 0.8)),
         ramp.ConvMap(up2, dyadic(rng, up2.kernel_shape, -0.5, 0.8))]
    d = [ramp.ConvMap(down1, dyadic(rng, down1.kernel_shape, -0.3, 0.5)),
         ramp.ConvMap(down2, dyadic(rng, down2.kernel_shape, -0.3, 0.5)), dyadic(rng, (36, 2), -0.2, 0.3)]
    thetas = {name: [dyadic(rng, (w.shape[1],), 0.3 * T, 1.5 * T) for w in ws] for name, ws in (("g", g), ("d", d))}
    return {"g": (g, thetas["g"], 10), "d": (d, thetas["d"], 144)}


def test_kernel_forward_with_conv_maps_is_the_dense_forward(rng):
    T = 24
    for ws, ths, n_in in conv_network(rng, T).values():
        t_in = rng.integers(0, T + 1, (5, n_in))
        dense = [w.dense() if isinstance(w, ramp.ConvMap) else w for w in ws]
        for dtype in (np.float32, np.float64):
            for a, b in zip(ramp.forward(ws, ths, t_in, T, dtype), ramp.forward(dense, ths, t_in, T, dtype)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.brian2
@pytest.mark.parametrize("role", ["g", "d"])
def test_brian2_conv_layers_spike_for_spike(role, rng):
    """Brian2 (ramp equations, sparse Synapses from the index map, per-neuron thresholds) fires
    at the closed form's steps in every layer, on random inputs through transposed (G) or
    strided (D) convolutions; some neurons fire inside their window, some at its opening, some
    not at all."""
    T = 24
    ws, ths, n_in = conv_network(rng, T)[role]
    t_in = rng.integers(0, T + 1, (4, n_in))
    params = NeuronParams((1.0,) * len(ws), t_max=T)
    got = brian.simulate(ws, t_in, params, neuron=RAMP_NEURON, thresholds=ths).times
    want = ramp.forward(ws, ths, t_in, T)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"{role} layer {k + 1}")
    every = np.concatenate([t.ravel() for t in want])
    assert np.mean((every > 0) & (every < T)) > 0.2 and np.any(every == T) and np.any(every == 0)


# ------------------------------------------------------------------ the option in the GAN
CONV = {"generator.conv": [4, 2], "generator.hidden": [], "discriminator.conv": [2, 4],
        "discriminator.hidden": [], "generator.noise_dim": 6, "neuron.t_max": 16}


def test_config_builds_the_conv_stack():
    cfg = cm.override(cm.GanConfig(), CONV)
    assert sizes(cfg) == {"g": [6, 4 * 49, 2 * 196, 784], "d": [784, 2 * 196, 4 * 49, 2]}
    assert weight_shapes(cfg) == {"g": [(6, 196), (4, 2, 4, 4), (2, 1, 4, 4)],
                                  "d": [(2, 1, 4, 4), (4, 2, 4, 4), (196, 2)]}
    g = conv_geometries(cfg, "g")
    assert g[0] is None and g[1].transposed and g[2].big == (1, 28, 28)
    assert cm.override(cm.GanConfig(), {}) == cm.GanConfig()
    main = sizes(cm.GanConfig())  # the main job: dense 100 -> 32x7x7, transposed convolutions, dense D
    assert main == {"g": [100, 32 * 49, 16 * 196, 784], "d": [784, 256, 2]}


@pytest.mark.parametrize("key, value, message", [
    ("discriminator.conv", [4] * 5, "discriminator.conv: 5 layers of a 4x4 kernel at stride 2 shrink"),
    ("generator.conv_stride", 4, "generator.conv_stride: 4 is above conv_kernel (3)"),
    ("generator.conv", [0], "generator.conv[0]: 0 is below the minimum 1"),
])
def test_bad_conv_specs_are_one_line_errors(key, value, message):
    over = {"generator.conv": [4], "generator.conv_kernel": 3, key: value}
    with pytest.raises(cm.ConfigError) as exc:
        cm.override(cm.GanConfig(), over)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


@pytest.mark.brian2
def test_conv_network_trains_and_brian2_simulates_it():
    """A conv G and D built from the config: a few Adam steps change the kernels, the state loads
    back into a fresh network, and Brian2 given brian_layers fires at the network's spike times."""
    cfg = cm.override(cm.GanConfig(), CONV)
    rng = np.random.default_rng(0)
    d = RampNetwork.init(cfg, "d", sizes(cfg)["d"], rng)
    assert isinstance(d.layers[0], exact.ConvLayer) and isinstance(d.layers[-1], exact.Layer)
    t_in = rng.integers(0, 17, (4, 784)).astype(np.int32)
    labels = np.array([0, 1, 0, 1])
    for _ in range(3):
        trace = d.trace(t_in)
        g_out = d.loss_gradient(trace, labels, rng.standard_normal((4, 2)).astype(np.float32), "d")
        before = d.layers[0].w.copy()
        d.update(d.regularise(trace, d.backward(trace, g_out, gate_output=False), 2))
    assert not np.array_equal(before, d.layers[0].w)
    fresh = RampNetwork.init(cfg, "d", sizes(cfg)["d"], np.random.default_rng(5))
    fresh.load_state({k: [a.copy() for a in v] for k, v in d.state().items()}, d.counters())
    for a, b in zip(fresh.times(t_in), d.times(t_in)):
        np.testing.assert_array_equal(a, b)
    g = RampNetwork.init(cfg, "g", sizes(cfg)["g"], rng)
    z = rng.integers(0, 16, (2, 6)).astype(np.int32)
    for net, x in ((g, z), (d, t_in[:2])):
        w, th = net.brian_layers()
        got = brian.simulate(w, x, net.params, neuron=net.neuron, thresholds=th).times
        want = ramp.forward(w, th, x, 16)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_energy_counts_a_conv_layer_by_its_synapses():
    """ACs of a conv layer: each input spike times its own fan-out (a corner pixel of a 3x3 image
    under a 3x3 kernel, padding 1, reaches 4 neurons, the centre 9); MACs = synapses (49)."""
    geo = ramp.ConvGeometry((1, 3, 3), (1, 3, 3), 3, 1, 1)
    fan = ramp.ConvMap(geo, np.ones(geo.kernel_shape)).fan_out()
    spec = energy.network_specs([geo.shape], [0, 8], [fan])[0]
    T = 8
    t_in = np.full((2, 9), T)
    t_in[0, [0, 4]] = 1  # a corner and the centre
    c = energy.layer_counts(t_in, spec, T)
    assert c["acs"].tolist() == [4 + 9, 0] and c["ann_macs"].tolist() == [49, 49]
    assert energy.layer_summary(c, spec)["spikes_per_synapse"] == pytest.approx(13 / 2 / 49)


@pytest.mark.brian2
def test_nir_export_of_a_conv_network_gives_its_spike_times():
    """A conv D exported to NIR (each conv layer as its matrix) and read back into Brian2 fires
    at the network's own spike times."""
    cfg = cm.override(cm.GanConfig(), CONV)
    rng = np.random.default_rng(2)
    d = RampNetwork.init(cfg, "d", sizes(cfg)["d"], rng)
    graph = nirgraph.network_graph(d, 784, "discriminator")
    assert isinstance(graph.nodes["linear_1"], nir.Linear) and graph.nodes["linear_1"].weight.shape == (392, 784)
    t_in = rng.integers(0, 17, (2, 784)).astype(np.int32)
    for got, want in zip(nirgraph.simulate_graph(graph, t_in), d.times(t_in)):
        np.testing.assert_array_equal(got, want)
