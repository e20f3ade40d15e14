"""Speed features that must not change any result: lazy imports, bounded-memory chunking."""
import subprocess
import sys

import numpy as np
from helpers import ROOT


def _python(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_brian2_is_imported_only_by_commands_that_simulate_with_it(tmp_path):
    out = _python(
        "import sys\n"
        "import spiking_gan.cli, training.trainer, training.gan, models.kernel, models.brian\n"
        "print('after import', 'brian2' in sys.modules)\n"
        f"spiking_gan.cli.main(['simulate', '--digits', '--batch', '3', '--out', {str(tmp_path / 'a.npz')!r}])\n"
        "print('after numpy simulate', 'brian2' in sys.modules)\n")
    assert "after import False" in out and "after numpy simulate False" in out


# ---------------------------------------------------------------- chunked = unchunked, bit for bit
from models import kernel  # noqa: E402
from models.coding import encode_images  # noqa: E402
from models.neuron import THRESHOLD_EPS_MV, NeuronParams  # noqa: E402
from training import backprop  # noqa: E402
from training.data import load_digits  # noqa: E402


def reference_layer(t_in, w, threshold, t_max, latency, dtype):
    """The layer as one padded (batch, distinct steps, n_out) array: increments summed in input
    order, then np.cumsum over the steps in step order (the kernel's sums, unchunked)."""
    horizon = t_max - latency
    batch = len(t_in)
    t_out = np.full((batch, w.shape[1]), t_max, dtype=np.int32)
    steps = [np.unique(t[t < horizon]) for t in t_in]
    k = max([len(s) for s in steps] + [1])
    v = np.zeros((batch, k, w.shape[1]), dtype=dtype)
    times = np.full((batch, k), horizon)
    wd = np.asarray(w, dtype=dtype)
    for b, s in enumerate(steps):  # a test may loop: this is the slow, obvious definition
        times[b, :len(s)] = s
        for r, t in enumerate(s):
            for i in np.flatnonzero(t_in[b] == t):
                v[b, r] += wd[i]
    v = np.cumsum(v, axis=1)
    crossed = v >= np.asarray(threshold - THRESHOLD_EPS_MV, dtype=dtype)
    first = crossed.argmax(axis=1)
    fired = crossed.any(axis=1)
    t_out[fired] = (np.take_along_axis(times, first, axis=1) + latency)[fired]
    return t_out


def _digit_times(n, t_max, seed=0):
    images = load_digits().test_images
    return encode_images(images[np.random.default_rng(seed).choice(len(images), n)], t_max)


def test_running_sum_adds_in_step_order_bit_for_bit():
    """The float32 running sum is a BLAS product: it must add in step order, as np.cumsum does."""
    rng = np.random.default_rng(3)
    shapes = [(1, 5), (5, 777), (16, 16000)] + [(int(rng.integers(1, 17)), int(rng.integers(1, 20000)))
                                                for _ in range(40)]
    with kernel.pinned_blas_threads():
        for dtype in (np.float32, np.float64):
            for k, m in shapes:
                x = (rng.standard_normal((k, m)) * 10 ** rng.uniform(-3, 3, (k, m))).astype(dtype)
                ref = np.cumsum(x, axis=0)
                got = kernel.running_sum(x.copy())
                assert got.dtype == dtype and got.tobytes() == ref.tobytes(), (dtype, k, m)


def test_stable_argsort_matches_numpy_for_small_and_large_key_ranges():
    rng = np.random.default_rng(4)
    for n_keys in (7, 1 << 16, (1 << 16) + 1, 3_000_000):
        keys = rng.integers(0, n_keys, 5000)
        np.testing.assert_array_equal(kernel.stable_argsort(keys, n_keys), np.argsort(keys, kind="stable"))


def test_chunked_forward_equals_the_unchunked_definition_bit_for_bit():
    """Any chunk size gives the spike times of the plain padded cumsum, float32 and float64,
    on real digits, with arbitrary (non-dyadic) mixed-sign weights and with S4NN's positive ones."""
    rng = np.random.default_rng(5)
    t_max = 64
    t_in = _digit_times(24, t_max)
    for w, theta in ((rng.uniform(-1.0, 2.0, (784, 30)), 8.0),   # many never fire: no early stop
                     (rng.uniform(0.0, 5.0, (784, 30)), 100.0)):  # all fire early: early stop
        for dtype in (np.float32, np.float64):
            ref = reference_layer(t_in, w, theta, t_max, 1, dtype)
            assert 0 < np.mean(ref < t_max)
            for chunk_bytes in (1, 200, 5_000, 1 << 30):  # 1: one sample and one rank per block
                got = kernel.layer_forward(t_in, w, theta, t_max, 1, dtype, chunk_bytes=chunk_bytes)
                np.testing.assert_array_equal(got, ref, err_msg=f"{dtype.__name__}, chunk {chunk_bytes}")


def test_chunked_forward_with_weight_bank_and_latency(rng, dyadic_weights):
    sizes, t_max = (20, 12, 5), 40
    weights = [np.stack([dyadic_weights(np.random.default_rng(c), sizes)[k] for c in range(3)])
               for k in range(2)]
    params = NeuronParams((2.0, 1.0), t_max=t_max, latency=2)
    t_in = rng.integers(0, t_max + 1, (30, sizes[0]))
    bank = rng.integers(0, 3, 30)
    ref = kernel.forward(weights, t_in, params, bank=bank, chunk_bytes=1 << 30)
    for chunk_bytes in (1, 64, 1000):
        got = kernel.forward(weights, t_in, params, bank=bank, chunk_bytes=chunk_bytes)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
    for c in range(3):  # and each sample as if its network ran alone
        rows = bank == c
        alone = kernel.forward([w[c] for w in weights], t_in[rows], params)
        for a, b in zip(alone, ref):
            np.testing.assert_array_equal(a, b[rows])


def test_chunked_backward_equals_unchunked_bit_for_bit():
    """Weight gradients and input errors do not depend on the backward chunk size (float32 sums)."""
    rng = np.random.default_rng(6)
    params = NeuronParams((80.0, 6.0), t_max=64)
    weights = [rng.uniform(-1.0, 2.0, (784, 40)).astype(np.float32),
               rng.uniform(-1.0, 3.0, (40, 3)).astype(np.float32)]
    t_in = _digit_times(40, params.t_max, seed=1)
    trace = backprop.forward_trace(weights, t_in, params)
    assert 0.05 < np.mean(trace.times[0] < params.t_max) < 0.95
    e = rng.uniform(-1, 1, (40, 3)).astype(np.float32)
    results = []
    for chunk_bytes in (None, 1, 3000):
        out = []
        e_k = backprop.normalise(e)
        for k in (1, 0):
            dW, e_in = backprop.layer_backward(trace.events[k], trace.layer_input_times(k), trace.times[k], e_k,
                                               weights[k], params.latency, True, True,
                                               chunk_bytes=chunk_bytes)
            out += [dW, e_in]
            e_k = backprop.normalise(e_in)
        results.append(out)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
