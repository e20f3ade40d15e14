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
through D only; ``tests/test_gan.py`` shows that pixels which start dead stay
dead without it and come back with it.
The same rule is applied to D's *hidden* neurons in the G step
(:func:`_error_through_d`): on a dark generated image D's hidden layer can be
entirely silent, and then the plain S4NN rule sends G no error at all (G stays
black for good; observed with t_max 64, G lr [2, 5]). D's own update (D step) is
plain S4NN.

G's target is always the baseline relative TTFS one (target *real*), whatever
``loss.kind`` is: ``loss.kind`` only selects D's loss. With the Aggressive
target in the G step (*real* neuron at ``tau - alpha`` even when D is already
fooled) G is pushed to make every pixel brighter without end and collapses to
all-white images within ~10 epochs (observed: 99% pixels on, D fooled 98%).

Real images reach D ``train.real_delay`` steps late (default: G's minimum
latency, one step per G layer; :meth:`Gan.encode_real`). A generated pixel
cannot spike before that, a real white pixel spikes at step 0: without the
delay D separates real from fake by the clock alone (measured at t_max 64: 54
real pixels per image at step 0, the first generated one at step 8 on median),
and D's error tells G "every pixel earlier", which grows bright blobs.

Initialisation (see configs/quick_single.toml): every noise neuron spikes once, so a
positive-only G hidden init (S4NN U[0, 5]) fires every hidden neuron at nearly
the same time for every z and G's output is z-independent (grey squares with
S4NN's output U[0, 48]). A mixed-sign hidden init with large spread
(U[-40, 30]) gives a sparse, early, z-dependent code; a mixed-sign output init
(U[-10, 14]) starts with ~15% of pixels on.

Conditional GAN (``class_inputs = k > 0``, beyond the paper): G's input is
the noise followed by ``10 k`` class neurons, D's the image followed by the
same ``10 k``; the ``k`` neurons of the class fire at step 0, the others never
(:meth:`Gan.label_times`). D's fakes are made for the classes of the real batch,
G's for uniformly drawn ones; the error reaching D's class inputs is dropped.

Auxiliary-classifier GAN (``class_inputs = k > 0`` with ``condition =
"auxiliary"``, beyond the paper; Odena et al. 2017's AC-GAN with spiking G and
D): G gets the class as above, D sees the image only and has ``2 + 10``
output neurons, *real*, *fake*, then one per class. In the D step the class
outputs learn to classify the *real* images (the TTFS loss over the 10 class
outputs, weight ``train.class_weight``); in the G step G is pushed to make D
say *real* and *the asked class*. D's verdict is still the first of its
outputs 0 and 1 (:func:`d_verdict`). Why it helps: under ``dt/dV = -1`` the
error D sends back is nearly the same for every fake (see the README), so an
unconditional G or a D with class *inputs* collapses onto one template; D's
class outputs route a different error to each class.

One GAN per class (``per_class = true``, beyond the paper): ten G/D pairs of
the paper's architecture, pair ``c`` trained on the images of class ``c`` only,
and sampled as a mixture of the classes (:meth:`Gan.generate`: balanced
classes). Every layer of G and D is a *weight bank* (10, n_in, n_out) and a
sample's class chooses its matrices (:mod:`models.kernel`), so a batch of all
ten classes runs as one network of the same size, and each pair learns exactly
as if trained alone (per-class gradient means, dead-neuron counts and G-step
batches). Why: one unconditional pair collapses onto a blob of all digits (the
error D sends back barely differs between fakes), one pair per class has only
one mode to find, and gives recognisable digits with both losses (README).

``train.g_error_blur`` (sigma in pixels, default 0) low-passes G's pixel error
in space before G's backward pass: D's input weights are random per pixel, so
the error they send is speckled, and so are the images G learns from it.

``train.g_real_error`` selects how G gets D's real/fake error: ``"ttfs"``
(default, the paper's) the S4NN error of both outputs (target *real*);
``"clip"`` the same error clipped to ``+-gamma / t_max`` per output, i.e. "move
each of D's outputs by at most gamma steps". Why: once D wins, its *real*
neuron is silent on a fake (``t = t_max``) and its target is the *fake*
neuron's early time, an error of up to ``-1``, against ``+gamma / t_max`` for
the *fake* neuron; under ``dt/dV = -1`` that error also runs back through
every D hidden neuron that fired (the *fake* neuron's only through those that
fired before it). "Make *real* earlier" then dominates and, D's input weights
being mostly positive, says "every pixel brighter": G grows white images
(measured with the auxiliary-classifier GAN: 50% of pixels on after 24 epochs,
classifier-FID ~500). Giving G only the *fake* output's error instead
kills G's pixels (3% on after 8 epochs).

``train.g_error_centre`` (default 0) removes that fraction of the batch-mean
pixel error from each sample's error, an optional counter to mode collapse
(every fake gets nearly the same error from D, so G collapses to one blob);
tried at 0.5-0.8, it kept diversity longer but gave blobs, not digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from models.coding import decide, decode_times, encode_images, sample_noise_times
from models.neuron import NeuronParams
from training import backprop
from training.classifier import init_network, neuron_params
from training.config import GanConfig
from training.losses import earliest_output_time, loss_value, output_error, targets, ttfs_targets

REAL, FAKE = 0, 1
#: D's real/fake output neurons (an auxiliary-classifier D has 10 class outputs after them).
N_VERDICT = 2
N_PIXELS = 784
#: Classes of every supported data set (digits, MNIST, Fashion-MNIST).
N_CLASSES = 10


@dataclass
class Gan:
    """Weights (mV) and neuron parameters of G and D."""

    g: List[np.ndarray]
    d: List[np.ndarray]
    g_params: NeuronParams
    d_params: NeuronParams
    noise_dim: int
    real_delay: int = 0
    class_inputs: int = 0
    condition: str = "input"
    per_class: bool = False

    @classmethod
    def init(cls, cfg: GanConfig, rng: np.random.Generator) -> "Gan":
        sizes = cls.sizes(cfg)
        n_nets = N_CLASSES if cfg.per_class else 1
        g = [init_network(rng, sizes["g"][0], cfg.generator, N_PIXELS) for _ in range(n_nets)]
        d = [init_network(rng, sizes["d"][0], cfg.discriminator, sizes["d"][-1]) for _ in range(n_nets)]
        # per class: every layer a bank (10, n_in, n_out) of the classes' weights
        g, d = ([np.stack(ws) for ws in zip(*nets)] if cfg.per_class else nets[0] for nets in (g, d))
        delay = cfg.train.real_delay
        if delay < 0:  # G's minimum latency: noise at step 0 -> output at step (layers x latency)
            delay = (len(cfg.generator.hidden) + 1) * cfg.neuron.latency
        return cls(g, d, neuron_params(cfg.neuron, cfg.generator),
                   neuron_params(cfg.neuron, cfg.discriminator), cfg.generator.noise_dim, delay,
                   cfg.class_inputs, cfg.condition, cfg.per_class)

    @property
    def conditional(self) -> bool:
        """True if samples have a class: G and D receive it (``class_inputs > 0``) or it
        chooses them (``per_class``)."""
        return self.class_inputs > 0 or self.per_class

    def bank(self, labels: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Each sample's networks for the kernel (:mod:`models.kernel` weight banks): its
        class if ``per_class``, else None (one G and one D for every sample)."""
        return np.asarray(labels) if self.per_class else None

    def networks(self, label: int = 0):
        """G's and D's weight lists (2-D arrays) for class ``label`` (``per_class``), else the only ones."""
        if not self.per_class:
            return self.g, self.d
        return [w[label] for w in self.g], [w[label] for w in self.d]

    @property
    def auxiliary(self) -> bool:
        """True for an auxiliary-classifier GAN: D has 10 class outputs instead of class inputs."""
        return self.conditional and self.condition == "auxiliary"

    def default_labels(self, n: int) -> Optional[np.ndarray]:
        """Balanced classes ``0, 1, ..., 9, 0, 1, ...`` for ``n`` samples (None if unconditional)."""
        return np.arange(n) % N_CLASSES if self.conditional else None

    def label_times(self, labels: Optional[np.ndarray], n: int) -> np.ndarray:
        """The class as spikes: ``class_inputs`` neurons per class, those of ``labels`` fire at step 0.

        Returns int32 (n, N_CLASSES * class_inputs); every other neuron is silent
        (``t_max``). Empty (n, 0) for an unconditional GAN.
        """
        k = self.class_inputs
        t = np.full((n, N_CLASSES * k), self.g_params.t_max, dtype=np.int32)
        if k:
            labels = np.asarray(labels)
            if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= N_CLASSES:
                raise ValueError(f"a conditional GAN needs {n} labels in 0..{N_CLASSES - 1}")
            cols = labels[:, None] * k + np.arange(k)
            t[np.arange(n)[:, None], cols] = 0
        return t

    def _with_class(self, times: np.ndarray, labels: Optional[np.ndarray]) -> np.ndarray:
        """``times`` (n, m), then the class spikes if G and D get them (default :meth:`default_labels`)."""
        if not self.class_inputs:
            return times
        n = len(times)
        return np.concatenate([times, self.label_times(self.default_labels(n) if labels is None else labels, n)],
                              axis=1)

    def g_input(self, rng: np.random.Generator, n: int, labels: Optional[np.ndarray] = None) -> np.ndarray:
        """G's input spike times: fresh noise ``z`` (n, noise_dim), then the class spikes if conditional."""
        return self._with_class(sample_noise_times(rng, n, self.noise_dim, self.g_params.t_max), labels)

    def d_input(self, image_times: np.ndarray, labels: Optional[np.ndarray] = None) -> np.ndarray:
        """D's input spike times: the image (n, 784), then the class spikes if D gets them as input."""
        return image_times if self.auxiliary else self._with_class(image_times, labels)

    def encode_real(self, images: np.ndarray) -> np.ndarray:
        """Real images as D sees them: TTFS-encoded, then delayed by ``real_delay`` steps.

        A generated pixel can spike no earlier than G's latency (one step per G
        layer), a real pixel of intensity 255 spikes at step 0: without the delay D
        tells real from fake by the clock alone (fakes are uniformly late), and
        G's error says "every pixel earlier", so G grows bright blobs.
        """
        t = encode_images(images, self.d_params.t_max)
        return np.minimum(t + self.real_delay, self.d_params.t_max).astype(np.int32)

    @staticmethod
    def sizes(cfg: GanConfig) -> Dict[str, List[int]]:
        extra = N_CLASSES * cfg.class_inputs
        aux = bool(extra) and cfg.condition == "auxiliary"
        return {"g": [cfg.generator.noise_dim + extra, *cfg.generator.hidden, N_PIXELS],
                "d": [N_PIXELS + (0 if aux else extra), *cfg.discriminator.hidden,
                      N_VERDICT + (N_CLASSES if aux else 0)]}

    def generate_times(self, rng: np.random.Generator, n: int,
                       labels: Optional[np.ndarray] = None) -> backprop.Trace:
        """Forward pass of G on ``n`` fresh noise samples (of classes ``labels`` if conditional,
        default :meth:`default_labels`)."""
        if self.conditional and labels is None:
            labels = self.default_labels(n)
        return backprop.forward_trace(self.g, self.g_input(rng, n, labels), self.g_params,
                                      bank=self.bank(labels))

    def d_trace(self, image_times: np.ndarray, labels: Optional[np.ndarray] = None) -> backprop.Trace:
        """Forward pass of D on images (n, 784) of classes ``labels`` (needed if conditional)."""
        return backprop.forward_trace(self.d, self.d_input(image_times, labels), self.d_params,
                                      bank=self.bank(labels))

    def generate(self, rng: np.random.Generator, n: int, labels: Optional[np.ndarray] = None,
                 batch: int = 500):
        """``n`` samples: images (n, 28, 28) float32 in [0, 1] and G's output times (n, 784).

        A conditional GAN makes the classes ``labels`` (default :meth:`default_labels`).
        """
        if self.conditional and labels is None:
            labels = self.default_labels(n)
        # filled batch by batch: memory stays ~ the two results, whatever n (sample --n 100000)
        times = np.empty((n, N_PIXELS), np.int32)
        images = np.empty((n, 28, 28), np.float32)
        for s in range(0, n, batch):
            t = self.generate_times(rng, min(batch, n - s), None if labels is None else labels[s:s + batch]).output
            times[s:s + len(t)] = t
            images[s:s + len(t)] = decode_times(t, self.g_params.t_max).reshape(-1, 28, 28)
        return images, times


def d_verdict(t_out: np.ndarray) -> np.ndarray:
    """D's real (0) and fake (1) output times, (n, 2), from all its output times (n, 2 [+ 10])."""
    return t_out[:, :N_VERDICT]


def d_classes(t_out: np.ndarray) -> np.ndarray:
    """An auxiliary-classifier D's class output times, (n, 10), from all its output times (n, 12)."""
    return t_out[:, N_VERDICT:]


def d_class_accuracy(t_out: np.ndarray, labels: np.ndarray, t_max: int) -> float:
    """How often the first of an auxiliary-classifier D's class outputs is ``labels`` (no spike = wrong)."""
    return float(np.mean(decide(d_classes(t_out), t_max)[0] == np.asarray(labels)))


def _d_loss(gan: Gan, cfg: GanConfig, trace: backprop.Trace, labels: np.ndarray, kind: str = "",
            classes: Optional[np.ndarray] = None, class_rows: Optional[np.ndarray] = None,
            real_error: str = "ttfs") -> np.ndarray:
    """D's output error ``(T - t) / t_max``, (n, 2 [+ 10]).

    Parameters
    ----------
    labels : int array (n,), REAL or FAKE, the target of the verdict outputs
    kind : loss of the verdict outputs (default ``loss.kind``)
    classes : int array (n,), the target class of an auxiliary-classifier D's class
        outputs (baseline TTFS loss, weight ``train.class_weight``)
    class_rows : bool array (n,), the samples whose class error counts (default all)
    real_error : "ttfs", or "clip" (each verdict error clipped to ``+-gamma / t_max``; see module docstring)
    """
    p = gan.d_params
    t = d_verdict(trace.output)
    T = targets(kind or cfg.loss.kind, t, labels, p.t_max, cfg.loss.gamma, cfg.loss.alpha,
                cfg.loss.variant, earliest_output_time(trace.layer_input(-1), p.t_max, p.latency))
    e = output_error(T, t, p.t_max)
    if real_error == "clip":
        np.clip(e, -cfg.loss.gamma / p.t_max, cfg.loss.gamma / p.t_max, out=e)
    if not gan.auxiliary:
        return e
    tc = d_classes(trace.output)
    ec = output_error(ttfs_targets(tc, classes, p.t_max, cfg.loss.gamma), tc, p.t_max)
    ec *= np.float32(cfg.train.class_weight)
    if class_rows is not None:
        ec[~np.asarray(class_rows)] = 0.0
    return np.concatenate([e, ec], axis=1)


def _blur_pixels(e_pix: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass (``sigma`` pixels) of per-sample pixel errors (n, 784) in image space."""
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(e_pix.reshape(-1, 28, 28), (0, sigma, sigma), mode="constant")
    return img.reshape(e_pix.shape).astype(e_pix.dtype, copy=False)


def _group_mean(x: np.ndarray, group: Optional[np.ndarray]) -> np.ndarray:
    """Each row's group mean of ``x`` (n, m) (the batch mean if ``group`` is None), shape (n, m)."""
    if group is None:
        return x.mean(axis=0, keepdims=True)
    sums = np.zeros((int(group.max()) + 1, x.shape[1]), dtype=np.float64)
    np.add.at(sums, group, x)
    return (sums / np.bincount(group)[:, None].clip(min=1))[group].astype(x.dtype)


def _error_through_d(gan: Gan, d_trace: backprop.Trace, e_out: np.ndarray, remedy: bool) -> np.ndarray:
    """Normalised error of D's input spike times (= G's output times), D frozen.

    :func:`training.backprop.backward` without weight gradients. With ``remedy`` the
    silent-input rule (error as if the silent neuron had spiked at step 0) applies at
    *every* layer of D, not only at the pixels: when D's hidden neurons are all
    silent on a dark generated image, the plain rule gives G no error at all
    (only neurons that fired carry one) and G stays dark for good.
    """
    e_in = backprop.backward(gan.d, d_trace, e_out, gan.d_params, input_error=True,
                             silent_inputs_full_error=remedy, weight_grads=False)[1]
    return e_in[:, :N_PIXELS]  # a conditional D's class inputs are data, not G's output


def gan_step(gan: Gan, cfg: GanConfig, real_batches: List[np.ndarray], rng: np.random.Generator,
             dead_g: backprop.DeadNeuronMonitor, dead_d: backprop.DeadNeuronMonitor,
             real_labels: Optional[List[np.ndarray]] = None, lr_scale: float = 1.0) -> Dict[str, float]:
    """``len(real_batches)`` D steps, then one G step; updates ``gan`` in place.

    Parameters
    ----------
    real_batches : list of int arrays (batch, 784), TTFS-encoded real images
    real_labels : list of int arrays (batch,), their classes (needed by a conditional
        GAN: D sees each real image with its class, and each D-step fake is made for
        the class of a real image of the same batch)
    lr_scale : float, multiplies every learning rate (``train.lr_decay ** epoch``)

    Returns
    -------
    metrics : dict of floats (losses, D accuracy on real / fake, decision time in
        ms, spikes per sample of G and D)
    """
    tr = cfg.train
    dp, gp = gan.d_params, gan.g_params
    m: Dict[str, float] = {}
    if gan.conditional and real_labels is None:
        raise ValueError("a conditional GAN step needs the real images' labels")
    for j, real in enumerate(real_batches):
        B = len(real)
        y = real_labels[j] if gan.conditional else None
        fake = gan.generate_times(rng, B, y).output
        trace = gan.d_trace(np.concatenate([real, fake]), None if y is None else np.r_[y, y])
        labels = np.r_[np.full(B, REAL), np.full(B, FAKE)]
        # an auxiliary-classifier D learns the class of the real images only
        e = _d_loss(gan, cfg, trace, labels, classes=None if y is None else np.r_[y, y],
                    class_rows=np.arange(2 * B) < B)
        grads, _ = backprop.backward(gan.d, trace, e, dp)
        backprop.sgd_step(gan.d, grads, [lr_scale * eta for eta in cfg.discriminator.lr], tr.l2)
        dead_d.update(trace, dp.t_max)
        verdict, t_dec = decide(d_verdict(trace.output), dp.t_max)
        if gan.auxiliary:
            m["d_class_acc_real"] = d_class_accuracy(trace.output[:B], y, dp.t_max)
        m["d_loss"] = loss_value(e)
        m["d_acc_real"] = float(np.mean(verdict[:B] == REAL))
        m["d_acc_fake"] = float(np.mean(verdict[B:] == FAKE))
        m["decision_time_ms"] = float(np.mean(t_dec) * dp.dt_ms)
        m["d_spikes"] = float(sum((t < dp.t_max).sum() for t in trace.times) / (2 * B))
    # G step, through the frozen D
    B = len(real_batches[-1])
    if gan.per_class:  # every class's G gets as many samples as its D saw
        y = np.asarray(real_labels[-1])
    else:
        y = rng.integers(0, N_CLASSES, B) if gan.conditional else None
    g_trace = gan.generate_times(rng, B, y)
    d_trace = gan.d_trace(g_trace.output, y)
    # G's target is always the baseline relative TTFS one (see module docstring)
    e = _d_loss(gan, cfg, d_trace, np.full(B, REAL), kind="ttfs", classes=y, real_error=tr.g_real_error)
    e_pix = _error_through_d(gan, d_trace, e, tr.silent_pixel_remedy)
    if tr.g_error_blur > 0:
        e_pix = _blur_pixels(e_pix, tr.g_error_blur)
    if tr.g_error_centre > 0:
        e_pix = e_pix - np.float32(tr.g_error_centre) * _group_mean(e_pix, g_trace.bank)
    g_grads, _ = backprop.backward(gan.g, g_trace, e_pix, gp)
    backprop.sgd_step(gan.g, g_grads, [lr_scale * eta for eta in cfg.generator.lr], tr.l2)
    dead_g.update(g_trace, gp.t_max)
    out = g_trace.output
    fired = out < gp.t_max
    m["g_loss"] = loss_value(e)
    m["g_fools_d"] = float(np.mean(decide(d_verdict(d_trace.output), dp.t_max)[0] == REAL))
    if gan.auxiliary:  # does D see the class G was asked for?
        m["d_class_acc_fake"] = d_class_accuracy(d_trace.output, y, dp.t_max)
    m["g_spikes"] = float(sum((t < gp.t_max).sum() for t in g_trace.times) / B)
    m["g_pixels_on"] = float(fired.mean())
    m["g_last_spike_ms"] = float(np.mean(np.where(fired, out, 0).max(axis=1)) * gp.dt_ms)
    return m
