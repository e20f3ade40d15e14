import numpy as np
import pytest

from models.kernel import forward
from models.neuron import NeuronParams, causal_mask
from training import backprop
from training.losses import aggressive_targets, earliest_output_time, output_error, targets, ttfs_targets

T_MAX = 100


def test_ttfs_correct_first_but_wrong_close():
    # correct (0) fires at 10, wrong 1 at 11 (< gamma=3 behind), wrong 2 at 50 (far)
    T = ttfs_targets(np.array([[10, 11, 50]]), np.array([0]), T_MAX, 3)
    np.testing.assert_array_equal(T, [[10, 13, 50]])


def test_ttfs_wrong_first():
    # wrong 1 first at 5; correct 0 at 20 -> target 5; neuron 1 within gamma -> 8
    T = ttfs_targets(np.array([[20, 5, 7]]), np.array([0]), T_MAX, 3)
    np.testing.assert_array_equal(T, [[5, 8, 8]])


def test_ttfs_zero_error_once_leading_by_gamma():
    t = np.array([[10, 13, 40]])
    T = ttfs_targets(t, np.array([0]), T_MAX, 3)
    assert np.all(output_error(T, t, T_MAX) == 0)


def test_ttfs_nothing_fired():
    T = ttfs_targets(np.full((2, 3), T_MAX), np.array([1, 2]), T_MAX, 3)
    np.testing.assert_array_equal(T, [[100, 97, 100], [100, 100, 97]])


def test_ttfs_target_capped_at_t_max():
    T = ttfs_targets(np.array([[99, 98]]), np.array([1]), T_MAX, 3)
    np.testing.assert_array_equal(T, [[100, 98]])


def test_aggressive_variants_hand_worked():
    t, y = np.array([[10, 13, 40]]), np.array([0])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "A"), [[5, 13, 40]])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "B"), [[0, 100, 100]])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "C"), [[5, 100, 100]])
    # alpha larger than tau: clipped at 0
    np.testing.assert_array_equal(aggressive_targets(np.array([[2, 30]]), y, T_MAX, 3, 5, "A"), [[0, 30]])
    # alpha = 0 in variant A is the baseline
    rng = np.random.default_rng(0)
    t = rng.integers(0, T_MAX + 1, (50, 4))
    y = rng.integers(0, 4, 50)
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 0, "A"), ttfs_targets(t, y, T_MAX, 3))


def test_aggressive_nothing_fired():
    t, y = np.full((1, 3), T_MAX), np.array([2])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "A"), [[100, 100, 95]])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "B"), [[100, 100, 0]])


def test_unknown_loss_or_variant():
    with pytest.raises(ValueError, match="unknown loss"):
        targets("mse", np.zeros((1, 2)), np.zeros(1, int), T_MAX, 3)
    with pytest.raises(ValueError, match="variant"):
        aggressive_targets(np.zeros((1, 2)), np.zeros(1, int), T_MAX, 3, 1, "D")


def reference_backward(weights, t_in, times, e_out, latency):
    """Direct formula with the (batch, n_in, n_out) causal mask of models.neuron."""
    grads, e = [None] * len(weights), backprop.normalise(e_out)
    for k in range(len(weights) - 1, -1, -1):
        tin = t_in if k == 0 else times[k - 1]
        m = causal_mask(tin, times[k], latency).astype(np.float64)
        grads[k] = np.einsum("bk,bik->ik", e, m) / len(e)
        e = backprop.normalise(np.einsum("bk,ik,bik->bi", e, weights[k], m))
    return grads, e


@pytest.mark.parametrize("latency", [1, 2])
def test_event_driven_backward_equals_mask_formula(latency, dyadic_weights):
    rng = np.random.default_rng(3)
    sizes, t_max = (30, 20, 6), 40
    weights = [w.astype(np.float32) for w in dyadic_weights(rng, sizes)]
    params = NeuronParams((3.0, 2.0), t_max=t_max, latency=latency)
    t_in = rng.integers(0, t_max + 1, (8, sizes[0]))
    tr = backprop.forward_trace(weights, t_in, params)
    for a, b in zip(tr.times, forward(weights, t_in, params)):
        np.testing.assert_array_equal(a, b)
    e_out = rng.normal(size=(8, sizes[-1])).astype(np.float32)
    grads, e_in = backprop.backward(weights, tr, e_out, params, input_error=True)
    ref_g, ref_e = reference_backward(weights, t_in, tr.times, e_out, latency)
    for g, r in zip(grads, ref_g):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e_in, ref_e, rtol=1e-4, atol=1e-6)


def test_silent_inputs_get_full_error():
    rng = np.random.default_rng(4)
    w = [rng.uniform(0, 1, (5, 3)).astype(np.float32)]
    params = NeuronParams((1.0,), t_max=20)
    t_in = np.array([[0, 2, 20, 20, 19]])   # inputs 2, 3 silent; 4 too late to matter
    tr = backprop.forward_trace(w, t_in, params)
    e = np.array([[-1.0, 0.5, 0.2]], np.float32)
    _, plain = backprop.backward(w, tr, e, params, input_error=True)
    _, full = backprop.backward(w, tr, e, params, input_error=True, silent_inputs_full_error=True)
    assert np.all(plain[0, 2:] == 0)
    raw = backprop.normalise(e) @ w[0].T
    # the silent ones get e @ W.T (before the common normalisation)
    ratio = full[0, 2:] / raw[0, 2:]
    assert ratio[0] > 0  # the normalisation is a positive factor: the same direction
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)


def test_sgd_step_moves_output_spike_toward_target():
    """One update with a target earlier than the spike makes it fire earlier."""
    rng = np.random.default_rng(5)
    params = NeuronParams((20.0, 20.0), t_max=64)
    w = [rng.uniform(0, 2, (40, 30)).astype(np.float32), rng.uniform(0, 3, (30, 2)).astype(np.float32)]
    t_in = rng.integers(0, 65, (16, 40))
    tr = backprop.forward_trace(w, t_in, params)
    T = np.maximum(tr.output - 10, 0)
    grads, _ = backprop.backward(w, tr, output_error(T, tr.output, 64), params)
    backprop.sgd_step(w, grads, [0.5, 0.5], 0.0)
    after = forward(w, t_in, params)[-1]
    assert after.mean() < tr.output.mean()


def test_dead_neuron_monitor_reinitialises():
    rng = np.random.default_rng(6)
    params = NeuronParams((5.0, 5.0), t_max=30)
    w = [rng.uniform(0, 1, (10, 6)).astype(np.float32), rng.uniform(0, 1, (6, 2)).astype(np.float32)]
    w[0][:, 3] = -1.0   # neuron 3 can never fire
    mon = backprop.DeadNeuronMonitor((10, 6, 2))
    mon.update(backprop.forward_trace(w, rng.integers(0, 31, (20, 10)), params), 30)
    revived = mon.reinit(w, [(0.0, 5.0), (0.0, 5.0)], rng)
    assert revived[0] >= 1 and np.all(w[0][:, 3] >= 0)


def test_aggressive_target_is_floored_at_the_earliest_reachable_time():
    t, y = np.array([[4, 4, 9]]), np.array([0])
    hidden = np.array([[3, 7, T_MAX]])                 # first input spike at 3 -> output >= 4
    floor = earliest_output_time(hidden, T_MAX, 1)
    np.testing.assert_array_equal(floor, [4])
    # already as early as possible: no push on the correct neuron (without the floor: 4 - 5 -> 0)
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "A", floor), [[4, 7, 9]])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "A"), [[0, 7, 9]])
    np.testing.assert_array_equal(aggressive_targets(t, y, T_MAX, 3, 5, "B", floor), [[4, 100, 100]])
    np.testing.assert_array_equal(earliest_output_time(np.full((1, 2), T_MAX), T_MAX), [T_MAX])


# ------------------------------------------------------------------ weight banks
def _bank_case(dyadic_weights, seed=7, n_banks=3, batch=12):
    rng = np.random.default_rng(seed)
    sizes, t_max = (30, 20, 6), 40
    nets = [dyadic_weights(rng, sizes) for _ in range(n_banks)]
    weights = [np.stack(layer).astype(np.float32) for layer in zip(*nets)]  # (n_banks, n_in, n_out) each
    params = NeuronParams((3.0, 2.0), t_max=t_max)
    t_in = rng.integers(0, t_max + 1, (batch, sizes[0]))
    t_in[:, :4] = t_max                                   # some silent inputs
    bank = rng.integers(0, n_banks, batch)
    bank[:n_banks] = np.arange(n_banks)                   # every matrix used
    return weights, params, t_in, bank, rng


def test_weight_bank_forward_equals_each_network_alone(dyadic_weights):
    weights, params, t_in, bank, _ = _bank_case(dyadic_weights)
    times = forward(weights, t_in, params, bank=bank)
    for c in range(weights[0].shape[0]):
        alone = forward([w[c] for w in weights], t_in[bank == c], params)
        for a, b in zip(times, alone):
            np.testing.assert_array_equal(a[bank == c], b)


def test_weight_bank_backward_equals_each_network_alone(dyadic_weights):
    """dW[c] is the mean over class c's samples only; each sample's input error is its network's."""
    weights, params, t_in, bank, rng = _bank_case(dyadic_weights)
    e_out = rng.normal(size=(len(t_in), 6)).astype(np.float32)
    tr = backprop.forward_trace(weights, t_in, params, bank=bank)
    grads, e_in = backprop.backward(weights, tr, e_out, params, input_error=True, silent_inputs_full_error=True)
    for c in range(weights[0].shape[0]):
        w_c, rows = [w[c] for w in weights], bank == c
        tr_c = backprop.forward_trace(w_c, t_in[rows], params)
        g_c, e_c = backprop.backward(w_c, tr_c, e_out[rows], params, input_error=True,
                                     silent_inputs_full_error=True)
        for g, r in zip(grads, g_c):
            np.testing.assert_allclose(g[c], r, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(e_in[rows], e_c, rtol=1e-6, atol=1e-7)


def test_weight_bank_needs_one_valid_index_per_sample(dyadic_weights):
    weights, params, t_in, bank, _ = _bank_case(dyadic_weights)
    with pytest.raises(ValueError, match="needs bank"):
        forward(weights, t_in, params)
    with pytest.raises(ValueError, match="indices in 0..2"):
        forward(weights, t_in, params, bank=np.full(len(t_in), 3))
    with pytest.raises(ValueError, match="single weight matrix"):
        forward([w[0] for w in weights], t_in, params, bank=bank)


def test_dead_neuron_monitor_counts_each_bank_on_its_own_samples(dyadic_weights):
    weights, params, t_in, bank, rng = _bank_case(dyadic_weights)
    weights[0][1, :, 5] = -100.0                          # neuron 5 of network 1 can never fire
    before = [w.copy() for w in weights]
    mon = backprop.DeadNeuronMonitor((30, 20, 6), min_rate=1e-3, n_banks=3)
    mon.update(backprop.forward_trace(weights, t_in, params, bank=bank), params.t_max)
    assert mon.samples.tolist() == np.bincount(bank, minlength=3).tolist()
    fired = (forward(weights, t_in, params, bank=bank)[0] < params.t_max)
    np.testing.assert_array_equal(mon.counts[0][1], fired[bank == 1].sum(axis=0))
    revived = mon.reinit(weights, [(0.0, 5.0)], rng)
    assert revived[0] >= 1 and np.all(weights[0][1, :, 5] >= 0)
    assert mon.counts[0].sum() == 0                        # counting starts again
    for c in range(3):   # only never-firing neurons of each network were re-drawn
        changed = np.flatnonzero(np.any(weights[0][c] != before[0][c], axis=0))
        assert np.all(fired[bank == c][:, changed].sum(axis=0) == 0)


def test_softmax_error():
    from training.losses import softmax_error
    a = np.array([[8.0, 0.0], [0.0, 0.0]])
    g = softmax_error(a, np.array([0, 1]), temperature=8.0)
    p = 1 / (1 + np.exp(-1.0))                      # softmax([1, 0])[0]
    np.testing.assert_allclose(g, [[(p - 1) / 8, (1 - p) / 8], [0.5 / 8, -0.5 / 8]], rtol=1e-6)
    # the earliest output (largest earliness) is pushed up for its label: dL/da < 0 there
    assert g[0, 0] < 0 and g[1, 1] < 0
