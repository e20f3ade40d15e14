"""The Spiking-GAN: a spiking generator G and a spiking discriminator D.

G: noise spike times (``noise_dim`` neurons) -> hidden layer(s) -> 784 output
neurons, one per pixel (``x = 1 - t / t_max``, no spike = black).
D: 784 input spike times (a real or generated image) -> hidden layer(s) -> 2
output neurons, *real* (0) and *fake* (1); D decides with its first spike.

Two neuron models, one per learning rule (``neuron.model``), each a network class of
:mod:`training.networks` (this module only calls their interface):

* ``"if"``, the paper's: IF neurons with jump synapses trained with S4NN's
  ``dt/dV = -1`` rule (plain SGD). Remedies the paper leaves open: silent pixels
  (and D's silent hidden neurons in the G step) get the error they would have
  had if they had spiked (``train.silent_pixel_remedy``); real images reach D
  ``train.real_delay`` steps late (G's latency), else D tells real from fake by
  the clock; ``per_class`` trains one such pair per class as weight banks. The
  ``[s4nn]`` options (bias neurons, feature matching, instance noise) are the
  single pair's remedies that were tried (docs/experiments.md).
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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from models.coding import decide, decode_times, encode_images, jitter_times, sample_noise_times
from models.neuron import NeuronParams
from models.spikes import fired_fraction, last_spike_times, spikes_per_sample
from training.checkpoint import CheckpointError
from training.config import GanConfig
from training.losses import loss_value, output_error, targets
from training.networks import FAKE, N_PIXELS, REAL, Network, network_class, sizes

#: Classes of every supported data set (digits, MNIST, Fashion-MNIST).
N_CLASSES = 10


@dataclass
class Gan:
    """G and D: two networks of one neuron model (:class:`training.networks.Network`).

    Attributes
    ----------
    g, d : Network (their layers, neuron model, optimiser state)
    noise_dim : int
    real_delay : int, steps by which real images reach D late (the IF model's G latency; 0 for
        the ramp model)
    per_class : bool, one G/D pair per class (weight banks of the IF model)
    """

    g: Network
    d: Network
    noise_dim: int
    real_delay: int = 0
    per_class: bool = False

    @classmethod
    def init(cls, cfg: GanConfig, rng: np.random.Generator) -> Gan:
        net = network_class(cfg.neuron.model)
        n_banks = N_CLASSES if cfg.per_class else 0
        size = sizes(cfg)
        g = net.init(cfg, "g", size["g"], rng, n_banks)  # G's weights are drawn first
        d = net.init(cfg, "d", size["d"], rng, n_banks)
        return cls(g, d, cfg.generator.noise_dim, net.input_delay(cfg), cfg.per_class)

    @staticmethod
    def sizes(cfg: GanConfig) -> dict[str, list[int]]:
        return sizes(cfg)

    @property
    def g_params(self) -> NeuronParams:
        return self.g.params

    @property
    def d_params(self) -> NeuronParams:
        return self.d.params

    # ------------------------------------------------------------ parameters as arrays
    def state(self) -> dict[str, list[np.ndarray]]:
        """Every array of the GAN by name (what a checkpoint stores): weights ``g``, ``d``, and
        the networks' other families as ``g_<family>`` (ramp: ``g_bias``, ``g_adam_m``, ...)."""
        out = {}
        for name in ("g", "d"):
            for family, arrays in getattr(self, name).state().items():
                out[name if family == "weights" else f"{name}_{family}"] = arrays
        return out

    def load_state(self, arrays: dict[str, list[np.ndarray]], meta: dict | None = None,
                   where: str = "checkpoint") -> None:
        """Set the arrays of :meth:`state` (float32) and the :meth:`counters` (from a checkpoint's
        metadata ``meta``; missing counters start at 0).

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
        for name in ("g", "d"):
            net = getattr(self, name)
            families = {family: f32[name if family == "weights" else f"{name}_{family}"] for family in net.state()}
            counters = {key: int(((meta or {}).get(key) or {}).get(name, 0)) for key in net.counters()}
            net.load_state(families, counters)

    def counters(self) -> dict[str, dict[str, int]]:
        """The networks' integer state by counter and network (ramp: ``{"adam_steps": {"g": .., "d": ..}}``;
        part of a checkpoint's metadata; empty for the IF model)."""
        out: dict[str, dict[str, int]] = {}
        for name in ("g", "d"):
            for key, value in getattr(self, name).counters().items():
                out.setdefault(key, {})[name] = value
        return out

    def for_sampling(self) -> Gan:
        """The GAN with the G that makes its samples: the moving average of G's weights
        (``ramp.g_ema``) if it keeps one, else itself. Not for training."""
        g = self.g.sampling()
        return self if g is self.g else Gan(g, self.d, self.noise_dim, self.real_delay, self.per_class)

    # ------------------------------------------------------------ networks as simulated
    def bank(self, labels: np.ndarray | None) -> np.ndarray | None:
        """Each sample's networks for the kernel (:mod:`models.kernel` weight banks): its
        class if ``per_class``, else None (one G and one D for every sample)."""
        return np.asarray(labels) if self.per_class else None

    def default_labels(self, n: int) -> np.ndarray | None:
        """Balanced classes ``0, 1, ..., 9, 0, 1, ...`` for ``n`` samples (None if unconditional)."""
        return np.arange(n) % N_CLASSES if self.per_class else None

    def g_input(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """G's input spike times: fresh noise ``z`` (n, noise_dim)."""
        return sample_noise_times(rng, n, self.noise_dim, self.g_params.t_max)

    def g_input_at(self, rng: np.random.Generator, index: int, chunk: int = 100_000) -> np.ndarray:
        """Row ``index`` of ``g_input(rng, index + 1)`` (1, noise_dim), drawn chunk by chunk:
        memory holds one chunk, whatever ``index``."""
        done = 0
        while index - done >= chunk:
            self.g_input(rng, chunk)
            done += chunk
        return self.g_input(rng, index - done + 1)[-1:]

    def encode_real(self, images: np.ndarray) -> np.ndarray:
        """Real images as D sees them: TTFS-encoded, then delayed by ``real_delay`` steps
        (the IF model's G latency, :meth:`training.networks.S4nnNetwork.input_delay`)."""
        t = encode_images(images, self.d_params.t_max)
        return np.minimum(t + self.real_delay, self.d_params.t_max).astype(np.int32)

    def g_trace(self, z: np.ndarray, labels: np.ndarray | None = None):
        """G's forward pass on noise times ``z`` (a :class:`training.networks.Trace`)."""
        return self.g.trace(z, self.bank(labels))

    def d_trace(self, image_times: np.ndarray, labels: np.ndarray | None = None,
                groups: np.ndarray | None = None):
        """D's forward pass on images (n, 784) given as spike times (of classes ``labels`` if per
        class; ``groups``: the sub-batches of a batch statistic, :meth:`Network.trace`)."""
        return self.d.trace(image_times, self.bank(labels), groups)

    def g_times(self, z: np.ndarray, labels: np.ndarray | None = None) -> list[np.ndarray]:
        """Spike times of G's layers (hidden..., output) for noise times ``z``, each relative to
        its layer's window, without what training keeps."""
        return self.g.times(z, self.bank(labels))

    def d_times(self, image_times: np.ndarray, labels: np.ndarray | None = None) -> list[np.ndarray]:
        """Spike times of D's layers (hidden..., output (n, 2): real, fake) on images (n, 784)."""
        return self.d.times(image_times, self.bank(labels))

    def d_window_starts(self) -> list[int]:
        """Step at which each of D's layers opens its window, counted from the end of D's input
        window (ramp model: one window per layer, ``0, T, 2T, ...``; the IF model's layers share
        one window: all 0). The last entry is D's decision offset."""
        return self.d.window_starts()

    def generate_times(self, rng: np.random.Generator, n: int, labels: np.ndarray | None = None):
        """Forward pass of G on ``n`` fresh noise samples (of classes ``labels`` if per class,
        default :meth:`default_labels`)."""
        if self.per_class and labels is None:
            labels = self.default_labels(n)
        return self.g_trace(self.g_input(rng, n), labels)

    def generate_batches(self, rng: np.random.Generator, n: int, labels: np.ndarray | None = None,
                         batch: int = 500) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The samples of :meth:`generate`, ``batch`` at a time: (images (b, 28, 28) float32,
        G's output times (b, 784) int32). Memory holds one batch, whatever ``n``."""
        if self.per_class and labels is None:
            labels = self.default_labels(n)
        for s in range(0, n, batch):
            t = self.generate_times(rng, min(batch, n - s), None if labels is None else labels[s:s + batch]).output
            yield decode_times(t, self.g_params.t_max).reshape(-1, 28, 28), t.astype(np.int32, copy=False)

    def generate(self, rng: np.random.Generator, n: int, labels: np.ndarray | None = None,
                 batch: int = 500):
        """``n`` samples: images (n, 28, 28) float32 in [0, 1] and G's output times (n, 784).

        A per-class GAN makes the classes ``labels`` (default :meth:`default_labels`).
        """
        # filled batch by batch: memory stays ~ the two results, whatever n
        times = np.empty((n, N_PIXELS), np.int32)
        images = np.empty((n, 28, 28), np.float32)
        s = 0
        for img, t in self.generate_batches(rng, n, labels, batch):
            times[s:s + len(t)] = t
            images[s:s + len(t)] = img
            s += len(t)
        return images, times


def _d_loss(gan: Gan, cfg: GanConfig, trace, labels: np.ndarray, kind: str = "") -> np.ndarray:
    """D's output error ``(T - t) / t_max`` under the TTFS loss ``kind`` (default ``loss.kind``), (n, 2).

    Parameters
    ----------
    labels : int array (n,), REAL or FAKE, the target of each sample
    """
    t_max = gan.d_params.t_max
    t = trace.output
    T = targets(kind or cfg.loss.kind, t, labels, t_max, cfg.loss.gamma, cfg.loss.alpha,
                cfg.loss.variant, gan.d.earliest_output(trace))
    return output_error(T, t, t_max)


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


def _d_metrics(gan: Gan, trace, e: np.ndarray, B: int) -> dict[str, float]:
    """D's loss, accuracies, decision time and spikes on a batch of B real then B fake images."""
    dp = gan.d_params
    verdict, t_dec = decide(trace.output, dp.t_max)
    return {"d_loss": loss_value(e),
            "d_acc_real": np.count_nonzero(verdict[:B] == REAL) / B,  # = np.mean of the flags
            "d_acc_fake": np.count_nonzero(verdict[B:] == FAKE) / B,
            "decision_time_ms": float(np.mean(t_dec) * dp.dt_ms),
            "d_spikes": spikes_per_sample(trace.times, dp.t_max)}


def _g_metrics(gan: Gan, g_trace, d_trace, e: np.ndarray) -> dict[str, float]:
    """G's loss, how often it fools D, its spikes, pixels on and last spike on a batch."""
    gp, dp = gan.g_params, gan.d_params
    out = g_trace.output
    return {"g_loss": loss_value(e),
            "g_fools_d": float(np.mean(decide(d_trace.output, dp.t_max)[0] == REAL)),
            "g_spikes": spikes_per_sample(g_trace.times, gp.t_max),
            "g_pixels_on": fired_fraction(out, gp.t_max),
            "g_last_spike_ms": float(np.mean(last_spike_times(out, gp.t_max)) * gp.dt_ms)}


def d_step(gan: Gan, cfg: GanConfig, real: np.ndarray, fake: np.ndarray, lr_scale: float = 1.0,
           labels: np.ndarray | None = None) -> dict[str, float]:
    """One update of D on ``B`` real and ``B`` fake images given as spike times (B, 784).

    D's loss is the TTFS loss ``loss.kind`` on its output spike times (the ramp model adds
    ``ramp.d_loss``'s softmax and the R1 penalty), followed by the network's update rule (IF:
    S4NN's, plain SGD; ramp: the exact gradient, Adam). ``labels``: the classes of a per-class
    GAN (each image goes to its class's D). Returns D's metrics on the batch.
    """
    B = len(real)
    target = np.r_[np.full(B, REAL), np.full(B, FAKE)]
    trace = gan.d_trace(np.concatenate([real, fake]), None if labels is None else np.r_[labels, labels],
                        groups=target)  # real and fake batches are two batches to a batch statistic
    e = _d_loss(gan, cfg, trace, target)
    grads = gan.d.backward(trace, gan.d.loss_gradient(trace, target, e, "d"), gate_output=False)
    gan.d.update(gan.d.regularise(trace, grads, B), lr_scale)
    gan.d.observe(trace)
    return _d_metrics(gan, trace, e, B)


def pixel_error(gan: Gan, cfg: GanConfig, fake: np.ndarray, labels: np.ndarray | None = None):
    """The error D (frozen) sends to the pixels of generated images (B, 784), target *real*.

    Returns ``(d_trace, e, err)``: D's trace, D's TTFS output error (for the metrics) and
    the pixel error in G's own convention: IF model, the per-sample normalised desired
    shift of the pixel spike times (S4NN); ramp model, ``dL/dx`` of the pixel earliness.
    Both point the same way as ``dL/d(intensity)``; ``gan.d.intensity_gradient`` converts.
    G's target is always the baseline relative TTFS one (see module docstring); the IF
    model's silent-pixel remedy: :meth:`training.networks.S4nnNetwork.input_error`.
    """
    d_trace = gan.d_trace(fake, labels)
    target = np.full(len(fake), REAL)
    e = _d_loss(gan, cfg, d_trace, target, kind="ttfs")
    err = gan.d.input_error(d_trace, gan.d.loss_gradient(d_trace, target, e, "g"))
    return d_trace, e, err


def g_update(gan: Gan, g_trace, err: np.ndarray, lr_scale: float = 1.0) -> None:
    """Update G from its pixel error ``err`` (:func:`pixel_error`'s convention) on trace ``g_trace``."""
    grads = gan.g.backward(g_trace, err)
    gan.g.update(grads, lr_scale)
    gan.g.observe(g_trace)


def gan_step(gan: Gan, cfg: GanConfig, real_batches: list[np.ndarray], rng: np.random.Generator,
             real_labels: list[np.ndarray] | None = None, lr_scale: float = 1.0) -> dict[str, float]:
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
    m: dict[str, float] = {}
    noise, t_max = cfg.s4nn.instance_noise, gan.d_params.t_max
    for j, real in enumerate(real_batches):
        y = real_labels[j] if gan.per_class else None
        fake = gan.generate_times(rng, len(real), y).output
        if noise:  # s4nn.instance_noise: D sees both kinds of image through the same jitter
            real, fake = jitter_times(rng, real, noise, t_max), jitter_times(rng, fake, noise, t_max)
        m.update(d_step(gan, cfg, real, fake, lr_scale, y))
    # G step, through the frozen D; every class's G gets as many samples as its D saw
    y = np.asarray(real_labels[-1]) if gan.per_class else None
    g_trace = gan.generate_times(rng, len(real_batches[-1]), y)
    d_trace, e, err = pixel_error(gan, cfg, g_trace.output, y)
    share = cfg.s4nn.feature_matching
    if share:  # the error that moves D's first hidden layer on fakes towards its mean on real images
        real_hidden = gan.d_times(real_batches[-1], y)[0].mean(axis=0)
        err = (1.0 - share) * err + share * gan.d.feature_error(d_trace, real_hidden)
    g_update(gan, g_trace, err, lr_scale)
    m.update(_g_metrics(gan, g_trace, d_trace, e))
    m["g_error_cosine"] = error_cosine(err)
    return m
