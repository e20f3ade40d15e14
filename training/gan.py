"""The Spiking-GAN: a spiking generator G and a spiking discriminator D.

G: noise spike times (``noise_dim`` neurons) -> hidden IF layer(s) -> 784 IF
output neurons, one per pixel (``x = 1 - t / t_max``, no spike = black).
D: 784 input spike times (a real or generated image) -> hidden IF layer(s) ->
2 output neurons, *real* (0) and *fake* (1); D decides with its first spike.

One training step (:func:`gan_step`):

* ``d_steps`` D steps: the TTFS loss (baseline or Aggressive) of D on a real
  batch with target *real* and on a generated batch with target *fake*;
* one G step: the loss of D on a generated batch with target *real*; the error
  is propagated through D (weights frozen) to D's input spike times, which are
  G's output spike times, and on through G with the same S4NN rule.

Silent pixels. A G output neuron that does not fire (a black pixel) would get
no error through D, since only inputs that spiked before D's neurons carry one
(``[t_i < t_j]``); left alone, such pixels die for good. The remedy used here
(``train.silent_pixel_remedy``, on by default): a silent pixel receives the
error it would have if it had spiked at step 0, ``e_in = e_D1 @ W_D0.T``,
i.e. whether D would like it to be bright. It is applied to G's output
through D only; `tests/test_gan.py` shows the pixels die without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from models.coding import decode_times, sample_noise_times
from models.neuron import NeuronParams
from training import backprop
from training.classifier import init_network, init_ranges, neuron_params
from training.config import GanConfig
from training.losses import loss_value, output_error, targets

REAL, FAKE = 0, 1
N_PIXELS = 784


@dataclass
class Gan:
    """Weights (mV) and neuron parameters of G and D."""

    g: List[np.ndarray]
    d: List[np.ndarray]
    g_params: NeuronParams
    d_params: NeuronParams
    noise_dim: int

    @classmethod
    def init(cls, cfg: GanConfig, rng: np.random.Generator) -> "Gan":
        g = init_network(rng, cfg.generator.noise_dim, cfg.generator, N_PIXELS)
        d = init_network(rng, N_PIXELS, cfg.discriminator, 2)
        return cls(g, d, neuron_params(cfg.neuron, cfg.generator),
                   neuron_params(cfg.neuron, cfg.discriminator), cfg.generator.noise_dim)

    @staticmethod
    def sizes(cfg: GanConfig) -> Dict[str, List[int]]:
        return {"g": [cfg.generator.noise_dim, *cfg.generator.hidden, N_PIXELS],
                "d": [N_PIXELS, *cfg.discriminator.hidden, 2]}

    def generate_times(self, rng: np.random.Generator, n: int) -> backprop.Trace:
        """Forward pass of G on ``n`` fresh noise samples."""
        z = sample_noise_times(rng, n, self.noise_dim, self.g_params.t_max)
        return backprop.forward_trace(self.g, z, self.g_params)

    def generate(self, rng: np.random.Generator, n: int, batch: int = 500):
        """``n`` samples: images (n, 28, 28) float32 in [0, 1] and G's output times (n, 784)."""
        times = np.concatenate([self.generate_times(rng, min(batch, n - s)).output
                                for s in range(0, n, batch)]) if n else np.zeros((0, N_PIXELS), np.int32)
        return decode_times(times, self.g_params.t_max).reshape(-1, 28, 28), times


def _d_loss(gan: Gan, cfg: GanConfig, trace: backprop.Trace, labels: np.ndarray):
    p = gan.d_params
    T = targets(cfg.loss.kind, trace.output, labels, p.t_max, cfg.loss.gamma, cfg.loss.alpha,
                cfg.loss.variant)
    return output_error(T, trace.output, p.t_max)


def decision(t_out: np.ndarray, t_max: int):
    """D's verdict (REAL, FAKE, or -1 if no output spike) and its time in steps."""
    t_first = t_out.min(axis=1)
    return np.where(t_first < t_max, t_out.argmin(axis=1), -1), t_first


def gan_step(gan: Gan, cfg: GanConfig, real_batches: List[np.ndarray], rng: np.random.Generator,
             dead_g: backprop.DeadNeuronMonitor, dead_d: backprop.DeadNeuronMonitor) -> Dict[str, float]:
    """``len(real_batches)`` D steps, then one G step; updates ``gan`` in place.

    Parameters
    ----------
    real_batches : list of int arrays (batch, 784), TTFS-encoded real images

    Returns
    -------
    metrics : dict of floats (losses, D accuracy on real / fake, decision time in
        ms, spikes per sample of G and D)
    """
    tr = cfg.train
    dp, gp = gan.d_params, gan.g_params
    m: Dict[str, float] = {}
    for real in real_batches:
        B = len(real)
        fake = gan.generate_times(rng, B).output
        trace = backprop.forward_trace(gan.d, np.concatenate([real, fake]), dp)
        labels = np.r_[np.full(B, REAL), np.full(B, FAKE)]
        e = _d_loss(gan, cfg, trace, labels)
        grads, _ = backprop.backward(gan.d, trace, e, dp)
        backprop.sgd_step(gan.d, grads, cfg.discriminator.lr, tr.l2)
        dead_d.update(trace, dp.t_max)
        verdict, t_dec = decision(trace.output, dp.t_max)
        m["d_loss"] = loss_value(e)
        m["d_acc_real"] = float(np.mean(verdict[:B] == REAL))
        m["d_acc_fake"] = float(np.mean(verdict[B:] == FAKE))
        m["decision_time_ms"] = float(np.mean(t_dec) * dp.dt_ms)
        m["d_spikes"] = float(sum((t < dp.t_max).sum() for t in trace.times) / (2 * B))
    # G step, through the frozen D
    B = len(real_batches[-1])
    g_trace = gan.generate_times(rng, B)
    d_trace = backprop.forward_trace(gan.d, g_trace.output, dp)
    e = _d_loss(gan, cfg, d_trace, np.full(B, REAL))
    _, e_pix = backprop.backward(gan.d, d_trace, e, dp, input_error=True,
                                 silent_inputs_full_error=tr.silent_pixel_remedy)
    g_grads, _ = backprop.backward(gan.g, g_trace, e_pix, gp)
    backprop.sgd_step(gan.g, g_grads, cfg.generator.lr, tr.l2)
    dead_g.update(g_trace, gp.t_max)
    out = g_trace.output
    fired = out < gp.t_max
    m["g_loss"] = loss_value(e)
    m["g_fools_d"] = float(np.mean(decision(d_trace.output, dp.t_max)[0] == REAL))
    m["g_spikes"] = float(sum((t < gp.t_max).sum() for t in g_trace.times) / B)
    m["g_pixels_on"] = float(fired.mean())
    m["g_last_spike_ms"] = float(np.mean(np.where(fired, out, 0).max(axis=1)) * gp.dt_ms)
    return m
