import numpy as np

from analysis.spikes import completion_times, decision_times, sparsity, spikes_before


def test_sparsity_hand_made_raster():
    T = 10
    layer1 = np.array([[0, 3, T], [T, 5, T]])        # neuron 2 silent in both samples
    layer2 = np.array([[2, T], [T, T]])
    s = sparsity([layer1, layer2], T)
    assert s["spikes_per_sample"] == [1.5, 0.5]
    np.testing.assert_allclose(s["spikes_per_neuron"], [3 / 6, 1 / 4])
    np.testing.assert_allclose(s["silent_fraction"], [1 / 3, 1 / 2])


def test_decision_and_completion():
    T = 10
    out = np.array([[4, 2], [T, T], [3, 3]])
    t, win = decision_times(out, T)
    np.testing.assert_array_equal(t, [2, T, 3])
    np.testing.assert_array_equal(win, [1, -1, 0])
    np.testing.assert_array_equal(completion_times(np.array([[1, 5], [2, T]]), T), [5, T])


def test_spikes_before_decision():
    T = 10
    hidden = np.array([[0, 1, 6], [2, T, T]])
    out = np.array([[2, 7], [T, 3]])
    t, _ = decision_times(out, T)
    np.testing.assert_array_equal(spikes_before([hidden, out], t), [2 + 1, 1 + 1])
