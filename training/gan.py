"""The Spiking-GAN: a spiking generator G and a spiking discriminator D.

G: noise spike times (``noise_dim`` neurons) -> hidden layer(s) -> 784 output
neurons, one per pixel (``x = 1 - t / t_max``, no spike = black).
D: 784 input spike times (a real or generated image) -> hidden layer(s) -> 2
output neurons, *real* (0) and *fake* (1); D decides with its first spike.

Two neuron models, one per learning rule (``neuron.model``):

* ``"if"``, the paper's: IF neurons with jump synapses trained with S4NN's
  ``dt/dV = -1`` rule (plain SGD). Remedies the paper leaves open: silent pixels
  (and D's silent hidden neurons in the G step) get the error they would have
  had if they had spiked (``train.silent_pixel_remedy``); real images reach D
  ``train.real_delay`` steps late (G's latency), else D tells real from fake by
  the clock; ``per_class`` trains one such pair per class as weight banks.
* ``"ramp"``: windowed ramp IF neurons (:mod:`models.ramp`) trained with their
  exact spike-time gradient (:mod:`training.exact`) and Adam; D's loss is the
  TTFS loss of ``loss.kind`` on its output spike times plus a softmax over their
  earliness (``ramp.d_loss``), G's the softmax one with target *real*.

One training step (:func:`gan_step`): ``train.d_steps`` D steps (:func:`d_step`:
real images with target *real*, fresh fakes with target *fake*), then one G
step: D's error on fresh fakes with target *real* is propagated through the
frozen D to its input spike times (:func:`pixel_error`), which are G's output
times, and on through G (:func:`g_update`). G's target is always the baseline
relative TTFS one whatever ``loss.kind`` is (the Aggressive target in the G step
turns G white within ~10 epochs). Why each choice was made, with the numbers:
``docs/experiments.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from models import kernel, ramp
from models.coding import decide, decode_times, encode_images, sample_noise_times
from models.network import init_network, neuron_params
from models.neuron import NeuronParams
from training import backprop, exact
from training.checkpoint import CheckpointError
from training.config import GanConfig
from training.losses import earliest_output_time, loss_value, output_error, softmax_error, targets

REAL, FAKE = 0, 1
N_PIXELS = 784
#: Classes of every supported data set (digits, MNIST, Fashion-MNIST).
N_CLASSES = 10


@dataclass
class Gan:
    """G and D: their parameters, neuron model and (ramp model) optimiser state.

    Attributes
    ----------
    g, d : list of layers. ``model = "if"``: weight arrays (n_in, n_out) in mV (or weight
        banks (10, n_in, n_out) with ``per_class``); ``model = "ramp"``: :class:`training.exact.Layer`
    g_params, d_params : NeuronParams (window, step; the IF model's layer thresholds)
    noise_dim : int
    real_delay : int, steps by which real images reach D late (IF model; 0 for the ramp)
    per_class : bool, one G/D pair per class (IF model)
    model : "if" (the paper's, S4NN rule) or "ramp" (windowed ramp neuron, exact gradient)
    opt : dict {"g": Adam, "d": Adam} of the ramp model, else None
    """

    g: list
    d: list
    g_params: NeuronParams
    d_params: NeuronParams
    noise_dim: int
    real_delay: int = 0
    per_class: bool = False
    model: str = "if"
    opt: Optional[Dict[str, exact.Adam]] = None

    @classmethod
    def init(cls, cfg: GanConfig, rng: np.random.Generator) -> "Gan":
        sizes = cls.sizes(cfg)
        gp, dp = neuron_params(cfg.neuron, cfg.generator), neuron_params(cfg.neuron, cfg.discriminator)
        if cfg.neuron.model == "ramp":
            T = cfg.neuron.t_max
            g = [exact.init_layer(rng, a, b, T / 2 if k == 0 else 0.0, cfg.ramp.init_gain)
                 for k, (a, b) in enumerate(zip(sizes["g"][:-1], sizes["g"][1:]))]
            d = [exact.init_layer(rng, a, b, 0.0, cfg.ramp.init_gain)
                 for a, b in zip(sizes["d"][:-1], sizes["d"][1:])]
            for layer in d[:-1]:  # hidden layers: firing on every image at the start (ramp.d_bias_init)
                layer.b += np.float32(cfg.ramp.d_bias_init * T)
            opt = {"g": exact.Adam.like(exact.parameters(g)), "d": exact.Adam.like(exact.parameters(d))}
            return cls(g, d, gp, dp, cfg.generator.noise_dim, 0, False, "ramp", opt)
        n_nets = N_CLASSES if cfg.per_class else 1
        g = [init_network(rng, sizes["g"][0], cfg.generator, N_PIXELS) for _ in range(n_nets)]
        d = [init_network(rng, sizes["d"][0], cfg.discriminator, sizes["d"][-1]) for _ in range(n_nets)]
        # per class: every layer a bank (10, n_in, n_out) of the classes' weights
        g, d = ([np.stack(ws) for ws in zip(*nets)] if cfg.per_class else nets[0] for nets in (g, d))
        delay = cfg.train.real_delay
        if delay < 0:  # G's minimum latency: noise at step 0 -> output at step (layers x latency)
            delay = (len(cfg.generator.hidden) + 1) * cfg.neuron.latency
        return cls(g, d, gp, dp, cfg.generator.noise_dim, delay, cfg.per_class)

    @staticmethod
    def sizes(cfg: GanConfig) -> Dict[str, List[int]]:
        return {"g": [cfg.generator.noise_dim, *cfg.generator.hidden, N_PIXELS],
                "d": [N_PIXELS, *cfg.discriminator.hidden, 2]}

    @property
    def ramp(self) -> bool:
        return self.model == "ramp"

    # ------------------------------------------------------------ parameters as arrays
    def state(self) -> Dict[str, List[np.ndarray]]:
        """Every array of the GAN by name (what a checkpoint stores): weights ``g``, ``d``;
        for the ramp model also the biases and the Adam moments."""
        if not self.ramp:
            return {"g": self.g, "d": self.d}
        out = {}
        for name in ("g", "d"):
            layers, opt = getattr(self, name), self.opt[name]
            out[name] = [layer.w for layer in layers]
            out[f"{name}_bias"] = [layer.b for layer in layers]
            out[f"{name}_adam_m"], out[f"{name}_adam_v"] = opt.m, opt.v
        return out

    def load_state(self, arrays: Dict[str, List[np.ndarray]], adam_steps: Optional[Dict[str, int]] = None,
                   where: str = "checkpoint") -> None:
        """Set the arrays of :meth:`state` (float32), e.g. from a checkpoint.

        Raises :class:`training.checkpoint.CheckpointError` naming ``where`` and the array if
        one is missing or has another shape than this GAN's.
        """
        for key, mine in self.state().items():
            got = arrays.get(key)
            if got is None or len(got) != len(mine):
                raise CheckpointError(f"{where}: has no {key} arrays for {len(mine)} layers "
                                      f"(a checkpoint of another model?)")
            for k, (a, b) in enumerate(zip(got, mine)):
                if a.shape != b.shape:
                    raise CheckpointError(f"{where}: {key}_{k} has shape {a.shape}, this GAN needs {b.shape}")
        f32 = {k: [np.asarray(a, np.float32) for a in v] for k, v in arrays.items()}
        if not self.ramp:
            self.g, self.d = f32["g"], f32["d"]
            return
        for name in ("g", "d"):
            for layer, w, b in zip(getattr(self, name), f32[name], f32[f"{name}_bias"]):
                layer.w, layer.b = w, b
            self.opt[name] = exact.Adam(f32[f"{name}_adam_m"], f32[f"{name}_adam_v"],
                                        int((adam_steps or {}).get(name, 0)))

    def adam_steps(self) -> Dict[str, int]:
        """The Adam step counts (part of a checkpoint's metadata); empty for the IF model."""
        return {name: opt.t for name, opt in self.opt.items()} if self.ramp else {}

    # ------------------------------------------------------------ networks as simulated
    def bank(self, labels: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Each sample's networks for the kernel (:mod:`models.kernel` weight banks): its
        class if ``per_class``, else None (one G and one D for every sample)."""
        return np.asarray(labels) if self.per_class else None

    def networks(self, label: int = 0):
        """What Brian2 simulates: ``(g_weights, d_weights, g_thetas, d_thetas)``.

        Weights are 2-D arrays (class ``label``'s with ``per_class``); the thetas are the
        ramp model's per-neuron thresholds in mV (None for the IF model, whose thresholds
        are per layer in ``g_params`` / ``d_params``).
        """
        if self.ramp:
            T = self.g_params.t_max
            return ([layer.w for layer in self.g], [layer.w for layer in self.d],
                    [layer.thresholds(T) for layer in self.g], [layer.thresholds(T) for layer in self.d])
        if not self.per_class:
            return self.g, self.d, None, None
        return [w[label] for w in self.g], [w[label] for w in self.d], None, None

    def default_labels(self, n: int) -> Optional[np.ndarray]:
        """Balanced classes ``0, 1, ..., 9, 0, 1, ...`` for ``n`` samples (None if unconditional)."""
        return np.arange(n) % N_CLASSES if self.per_class else None

    def g_input(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """G's input spike times: fresh noise ``z`` (n, noise_dim)."""
        return sample_noise_times(rng, n, self.noise_dim, self.g_params.t_max)

    def encode_real(self, images: np.ndarray) -> np.ndarray:
        """Real images as D sees them: TTFS-encoded, then delayed by ``real_delay`` steps.

        A generated pixel of the IF model can spike no earlier than G's latency (one
        step per G layer), a real pixel of intensity 255 spikes at step 0: without the
        delay D tells real from fake by the clock alone (fakes are uniformly late), and
        G's error says "every pixel earlier", so G grows bright blobs. (The ramp model's
        pixels can fire at their window's opening: no delay.)
        """
        t = encode_images(images, self.d_params.t_max)
        return np.minimum(t + self.real_delay, self.d_params.t_max).astype(np.int32)

    def g_trace(self, z: np.ndarray, labels: Optional[np.ndarray] = None):
        """G's forward pass on noise times ``z`` (a :class:`backprop.Trace` or :class:`exact.Trace`)."""
        if self.ramp:
            return exact.forward_trace(self.g, ramp.earliness(z, self.g_params.t_max), self.g_params.t_max)
        return backprop.forward_trace(self.g, z, self.g_params, bank=self.bank(labels))

    def d_trace(self, image_times: np.ndarray, labels: Optional[np.ndarray] = None):
        """D's forward pass on images (n, 784) given as spike times (of classes ``labels`` if per class)."""
        if self.ramp:
            return exact.forward_trace(self.d, ramp.earliness(image_times, self.d_params.t_max),
                                       self.d_params.t_max)
        return backprop.forward_trace(self.d, image_times, self.d_params, bank=self.bank(labels))

    def g_times(self, z: np.ndarray, labels: Optional[np.ndarray] = None) -> List[np.ndarray]:
        """Spike times of G's layers (hidden..., output) for noise times ``z`` (each relative to
        its layer's window for the ramp model), without what training keeps."""
        if self.ramp:
            return self.g_trace(z).times
        return kernel.forward(self.g, z, self.g_params, bank=self.bank(labels))

    def d_times(self, image_times: np.ndarray, labels: Optional[np.ndarray] = None) -> List[np.ndarray]:
        """Spike times of D's layers (hidden..., output (n, 2): real, fake) on images (n, 784)."""
        if self.ramp:
            return self.d_trace(image_times).times
        return kernel.forward(self.d, image_times, self.d_params, bank=self.bank(labels))

    def d_window_starts(self) -> List[int]:
        """Step at which each of D's layers opens its window, counted from the end of D's input
        window (ramp model: one window per layer, ``0, T, 2T, ...``; the IF model's layers share
        one window: all 0). The last entry is D's decision offset."""
        return [ramp.window_start(k, self.d_params.t_max) if self.ramp else 0 for k in range(len(self.d))]

    def generate_times(self, rng: np.random.Generator, n: int, labels: Optional[np.ndarray] = None):
        """Forward pass of G on ``n`` fresh noise samples (of classes ``labels`` if per class,
        default :meth:`default_labels`)."""
        if self.per_class and labels is None:
            labels = self.default_labels(n)
        return self.g_trace(self.g_input(rng, n), labels)

    def generate(self, rng: np.random.Generator, n: int, labels: Optional[np.ndarray] = None,
                 batch: int = 500):
        """``n`` samples: images (n, 28, 28) float32 in [0, 1] and G's output times (n, 784).

        A per-class GAN makes the classes ``labels`` (default :meth:`default_labels`).
        """
        if self.per_class and labels is None:
            labels = self.default_labels(n)
        # filled batch by batch: memory stays ~ the two results, whatever n (sample --n 100000)
        times = np.empty((n, N_PIXELS), np.int32)
        images = np.empty((n, 28, 28), np.float32)
        for s in range(0, n, batch):
            t = self.generate_times(rng, min(batch, n - s), None if labels is None else labels[s:s + batch]).output
            times[s:s + len(t)] = t
            images[s:s + len(t)] = decode_times(t, self.g_params.t_max).reshape(-1, 28, 28)
        return images, times


def _d_loss(gan: Gan, cfg: GanConfig, trace, labels: np.ndarray, kind: str = "") -> np.ndarray:
    """D's output error ``(T - t) / t_max`` under the TTFS loss ``kind`` (default ``loss.kind``), (n, 2).

    Parameters
    ----------
    labels : int array (n,), REAL or FAKE, the target of each sample
    """
    p = gan.d_params
    t = trace.output
    floor = (np.zeros(len(t), np.float32) if gan.ramp  # a ramp neuron can fire at its window's opening
             else earliest_output_time(trace.layer_input(-1), p.t_max, p.latency))
    T = targets(kind or cfg.loss.kind, t, labels, p.t_max, cfg.loss.gamma, cfg.loss.alpha,
                cfg.loss.variant, floor)
    return output_error(T, t, p.t_max)


def _error_through_d(gan: Gan, d_trace: backprop.Trace, e_out: np.ndarray, remedy: bool) -> np.ndarray:
    """Normalised error of D's input spike times (= G's output times), D frozen (IF model).

    :func:`training.backprop.backward` without weight gradients. With ``remedy`` the
    silent-input rule (error as if the silent neuron had spiked at step 0) applies at
    *every* layer of D, not only at the pixels: when D's hidden neurons are all
    silent on a dark generated image, the plain rule gives G no error at all
    (only neurons that fired carry one) and G stays dark for good.
    """
    return backprop.backward(gan.d, d_trace, e_out, gan.d_params, input_error=True,
                             silent_inputs_full_error=remedy, weight_grads=False)[1]


def error_cosine(e: np.ndarray) -> float:
    """Mean pairwise cosine similarity of per-sample errors ``e`` (n, m), over pairs i != j.

    Applied to G's pixel error through D: near 1 means D tells every fake the same
    thing (the collapse diagnosis), near 0 that each fake gets its own error. Rows
    that are all zero are left out; nan if fewer than two remain.
    """
    e = np.asarray(e, np.float64)
    norm = np.linalg.norm(e, axis=1)
    u = e[norm > 0] / norm[norm > 0, None]
    n = len(u)
    if n < 2:
        return float("nan")
    s = u.sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


def _d_metrics(gan: Gan, trace, e: np.ndarray, B: int) -> Dict[str, float]:
    """D's loss, accuracies, decision time and spikes on a batch of B real then B fake images."""
    dp = gan.d_params
    verdict, t_dec = decide(trace.output, dp.t_max)
    return {"d_loss": loss_value(e),
            "d_acc_real": float(np.mean(verdict[:B] == REAL)),
            "d_acc_fake": float(np.mean(verdict[B:] == FAKE)),
            "decision_time_ms": float(np.mean(t_dec) * dp.dt_ms),
            "d_spikes": float(sum((t < dp.t_max).sum() for t in trace.times) / (2 * B))}


def _g_metrics(gan: Gan, g_trace, d_trace, e: np.ndarray) -> Dict[str, float]:
    """G's loss, how often it fools D, its spikes, pixels on and last spike on a batch."""
    gp, dp = gan.g_params, gan.d_params
    out = g_trace.output
    fired = out < gp.t_max
    B = len(out)
    return {"g_loss": loss_value(e),
            "g_fools_d": float(np.mean(decide(d_trace.output, dp.t_max)[0] == REAL)),
            "g_spikes": float(sum((t < gp.t_max).sum() for t in g_trace.times) / B),
            "g_pixels_on": float(fired.mean()),
            "g_last_spike_ms": float(np.mean(np.where(fired, out, 0).max(axis=1)) * gp.dt_ms)}


def _ramp_output_grad(gan: Gan, cfg: GanConfig, trace: exact.Trace, labels: np.ndarray, loss: str,
                      kind: str = "") -> tuple:
    """``dL/da`` of the ramp D's two output neurons (mean over the batch) and the TTFS error.

    ``loss`` "ttfs": the TTFS loss ``kind`` on the output spike times, read straight
    through the window's clip: ``dL/da = e = (T - t) / t_max`` (S4NN's output error, the
    gradient of ``t_max / 2 * sum e^2`` with ``dt/da = -1``); "softmax": cross-entropy of
    a softmax over the output earliness ``a / temperature`` (the earliest spike is the most
    probable verdict); "both": their sum.
    """
    n = len(labels)
    e = _d_loss(gan, cfg, trace, labels, kind)
    g = np.zeros_like(e)
    if loss in ("ttfs", "both"):
        g += e
    if loss in ("softmax", "both"):
        g += softmax_error(trace.pre[-1], labels, cfg.ramp.temperature)
    return g / np.float32(n), e


def _add_r1(gan: Gan, cfg: GanConfig, trace: exact.Trace, B: int, grads: list) -> list:
    """D's gradients plus those of the R1 penalty ``ramp.r1`` at the batch's B real images.

    The penalty is ``gamma / 2 * E ||ds/d(intensity)||^2`` of the softmax logit ``s =
    (a_real - a_fake) / temperature``; a pixel's earliness is ``t_max * intensity``, so in
    steps the weight is ``gamma * t_max^2`` (:func:`training.exact.input_gradient_penalty`).
    """
    T = trace.t_max
    real = exact.Trace(trace.x_in[:B], [x[:B] for x in trace.xs], [a[:B] for a in trace.pre], T)
    direction = np.zeros(2, np.float32)
    direction[REAL], direction[FAKE] = 1.0, -1.0
    _, pen = exact.input_gradient_penalty(gan.d, real, direction / np.float32(cfg.ramp.temperature))
    w = np.float32(cfg.ramp.r1 * T * T)
    return [(gw + w * pw, gb) for (gw, gb), (pw, _) in zip(grads, pen)]


def d_step(gan: Gan, cfg: GanConfig, real: np.ndarray, fake: np.ndarray, lr_scale: float = 1.0,
           labels: Optional[np.ndarray] = None,
           dead_d: Optional[backprop.DeadNeuronMonitor] = None) -> Dict[str, float]:
    """One update of D on ``B`` real and ``B`` fake images given as spike times (B, 784).

    IF model: S4NN's rule on the TTFS loss ``loss.kind`` (plain SGD, per-layer lr);
    ramp model: the exact gradient of ``ramp.d_loss``, Adam. ``labels``: the classes of a
    per-class GAN (each image goes to its class's D). Returns D's metrics on the batch.
    """
    B = len(real)
    trace = gan.d_trace(np.concatenate([real, fake]), None if labels is None else np.r_[labels, labels])
    target = np.r_[np.full(B, REAL), np.full(B, FAKE)]
    if gan.ramp:
        rc = cfg.ramp
        g_out, e = _ramp_output_grad(gan, cfg, trace, target, rc.d_loss)
        grads, _ = exact.backward(gan.d, trace, g_out, gate_output=False)
        if rc.r1 > 0:
            grads = _add_r1(gan, cfg, trace, B, grads)
        gan.opt["d"].step(exact.parameters(gan.d), exact.flat_grads(grads), lr_scale * rc.lr_d,
                          beta1=rc.beta1, beta2=rc.beta2)
    else:
        e = _d_loss(gan, cfg, trace, target)
        grads, _ = backprop.backward(gan.d, trace, e, gan.d_params)
        backprop.sgd_step(gan.d, grads, [lr_scale * eta for eta in cfg.discriminator.lr], cfg.train.l2)
        if dead_d is not None:
            dead_d.update(trace, gan.d_params.t_max)
    return _d_metrics(gan, trace, e, B)


def pixel_error(gan: Gan, cfg: GanConfig, fake: np.ndarray, labels: Optional[np.ndarray] = None):
    """The error D (frozen) sends to the pixels of generated images (B, 784), target *real*.

    Returns ``(d_trace, e, err)``: D's trace, D's TTFS output error (for the metrics) and
    the pixel error in G's own convention: IF model, the per-sample normalised desired
    shift of the pixel spike times (S4NN); ramp model, ``dL/dx`` of the pixel earliness.
    Both point the same way as ``dL/d(intensity)``; :func:`intensity_gradient` converts.
    G's target is always the baseline relative TTFS one (see module docstring).
    """
    d_trace = gan.d_trace(fake, labels)
    target = np.full(len(fake), REAL)
    if gan.ramp:
        g_out, e = _ramp_output_grad(gan, cfg, d_trace, target, cfg.ramp.g_loss, kind="ttfs")
        _, err = exact.backward(gan.d, d_trace, g_out, gate_output=False, input_grad=True, weight_grads=False)
    else:
        e = _d_loss(gan, cfg, d_trace, target, kind="ttfs")
        err = _error_through_d(gan, d_trace, e, cfg.train.silent_pixel_remedy)
    return d_trace, e, err


def intensity_gradient(gan: Gan, err: np.ndarray) -> np.ndarray:
    """G's pixel error (:func:`pixel_error`) as ``dL/d(intensity)`` of the pixels in [0, 1]
    (IF: up to a positive factor per sample)."""
    return err * np.float32(gan.g_params.t_max) if gan.ramp else err


def pixel_error_from_intensity(gan: Gan, grad01: np.ndarray) -> np.ndarray:
    """The inverse of :func:`intensity_gradient`: G's pixel error from ``dL/d(intensity)``."""
    return (grad01 / np.float32(gan.g_params.t_max) if gan.ramp else grad01).astype(np.float32)


def g_update(gan: Gan, cfg: GanConfig, g_trace, err: np.ndarray, lr_scale: float = 1.0,
             dead_g: Optional[backprop.DeadNeuronMonitor] = None) -> None:
    """Update G from its pixel error ``err`` (:func:`pixel_error`'s convention) on trace ``g_trace``."""
    if gan.ramp:
        rc = cfg.ramp
        grads, _ = exact.backward(gan.g, g_trace, err)
        gan.opt["g"].step(exact.parameters(gan.g), exact.flat_grads(grads), lr_scale * rc.lr_g,
                          beta1=rc.beta1, beta2=rc.beta2)
        return
    grads, _ = backprop.backward(gan.g, g_trace, err, gan.g_params)
    backprop.sgd_step(gan.g, grads, [lr_scale * eta for eta in cfg.generator.lr], cfg.train.l2)
    if dead_g is not None:
        dead_g.update(g_trace, gan.g_params.t_max)


def gan_step(gan: Gan, cfg: GanConfig, real_batches: List[np.ndarray], rng: np.random.Generator,
             dead_g: backprop.DeadNeuronMonitor, dead_d: backprop.DeadNeuronMonitor,
             real_labels: Optional[List[np.ndarray]] = None, lr_scale: float = 1.0) -> Dict[str, float]:
    """``len(real_batches)`` D steps, then one G step; updates ``gan`` in place.

    Parameters
    ----------
    real_batches : list of int arrays (batch, 784), TTFS-encoded real images
    real_labels : list of int arrays (batch,), their classes (needed per class: each
        D-step fake is made for the class of a real image of the same batch)
    lr_scale : float, multiplies every learning rate (``train.lr_decay ** epoch``)

    Returns
    -------
    metrics : dict of floats (losses, D accuracy on real / fake, decision time in
        ms, spikes per sample of G and D, ``g_error_cosine``)
    """
    if gan.per_class and real_labels is None:
        raise ValueError("a per-class GAN step needs the real images' labels")
    m: Dict[str, float] = {}
    for j, real in enumerate(real_batches):
        y = real_labels[j] if gan.per_class else None
        fake = gan.generate_times(rng, len(real), y).output
        m.update(d_step(gan, cfg, real, fake, lr_scale, y, dead_d))
    # G step, through the frozen D; every class's G gets as many samples as its D saw
    y = np.asarray(real_labels[-1]) if gan.per_class else None
    g_trace = gan.generate_times(rng, len(real_batches[-1]), y)
    d_trace, e, err = pixel_error(gan, cfg, g_trace.output, y)
    g_update(gan, cfg, g_trace, err, lr_scale, dead_g)
    m.update(_g_metrics(gan, g_trace, d_trace, e))
    m["g_error_cosine"] = error_cosine(err)
    return m
