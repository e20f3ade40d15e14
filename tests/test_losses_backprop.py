import numpy as np
import pytest

from conftest import dyadic_weights
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
    t = rng.integers(0, T_MAX + 1, (50, 4)); y = rng.integers(0, 4, 50)
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
def test_event_driven_backward_equals_mask_formula(latency):
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
