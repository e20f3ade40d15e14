"""One interface for the trainable networks of every neuron model, and their registry.

A *network* is one G or one D: its layers, how it is simulated (its neuron model,
:class:`models.neuron.NeuronModel`), how its error flows back and how it learns. Every
neuron model has one class here that follows :class:`Network`; :data:`NETWORKS` maps
the config's ``neuron.model`` to it, and nothing else in the project asks which model
a network is (``training.gan``, ``training.trainer``, ``analysis.inspect`` and
``models.brian`` only call the interface).

=========  ==========================================  ============================
model      neuron (:mod:`models.neuron`)               learning
=========  ==========================================  ============================
``if``     the paper's IF neuron, jump synapses         S4NN's ``dt/dV = -1`` rule,
                                                        SGD, dead-neuron re-init
``ramp``   windowed ramp IF neuron, current synapses    exact spike-time gradient,
                                                        Adam
=========  ==========================================  ============================

Units where two quantities meet: a trace's ``t_in`` / ``times`` / ``output`` are spike
times in steps (``t_max`` = no spike) for every model; the ramp trace also keeps the
earliness ``x = t_max - t`` its gradient is written in (``x_in``, ``xs``).

Adding a model or a layer kind is one new class here plus one line in :data:`NETWORKS`
(and its equations in :mod:`models.neuron`); :meth:`Network.config_keys` names the
config keys only it reads, which the config check (:mod:`training.config`) turns into
an error for every other model.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from models import kernel, ramp
from models.network import init_network, init_ranges, neuron_params
from models.neuron import IF_NEURON, RAMP_NEURON, NeuronModel, NeuronParams
from training import backprop, exact
from training.losses import earliest_output_time, softmax_error

if TYPE_CHECKING:  # the config module imports this one (for the registry)
    from training.config import GanConfig

#: Index of D's output neurons: *real* and *fake*.
REAL, FAKE = 0, 1
#: G's output neurons and D's inputs: one per pixel of a 28 x 28 image.
N_SIDE = 28
N_PIXELS = N_SIDE * N_SIDE


@runtime_checkable
class Layer(Protocol):
    """One layer of TTFS neurons as every simulator sees it.

    Attributes
    ----------
    w : float32 array (n_in, n_out), mV per input spike (IF) or per step of input
        earliness (ramp); an IF weight bank is (C, n_in, n_out)
    """

    w: np.ndarray

    def thresholds(self, t_max: int) -> np.ndarray:
        """Per-neuron firing thresholds (float64 (n_out,), mV) that make the simulated neuron
        this layer."""


@runtime_checkable
class Trace(Protocol):
    """A forward pass as the learning rule keeps it."""

    t_in: np.ndarray  # int (batch, n_0): input spike times, steps

    @property
    def times(self) -> list[np.ndarray]:
        """Spike times (int32 (batch, n_k), steps) of layers 1..L, each relative to its window."""

    @property
    def output(self) -> np.ndarray:
        """Spike times of the output layer."""


@runtime_checkable
class Network(Protocol):
    """A trainable network of one neuron model (G or D).

    Attributes
    ----------
    neuron : NeuronModel, what its neurons are (equations for Brian2, window timing)
    params : NeuronParams, window, step, latency (and the IF model's layer thresholds)
    layers : list of :class:`Layer`
    """

    neuron: NeuronModel
    params: NeuronParams
    layers: list

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """Dotted config keys (or ``section.`` prefixes) that only this model reads."""

    @classmethod
    def init(cls, cfg: GanConfig, role: str, sizes: Sequence[int], rng: np.random.Generator,
             n_banks: int = 0) -> Network:
        """A fresh network of role ``"g"`` or ``"d"`` with layer sizes ``sizes``."""

    @classmethod
    def extra_inputs(cls, cfg: GanConfig, role: str) -> int:
        """Input neurons of role ``role`` beyond the data's (a bias neuron: 1; :func:`sizes`)."""

    def brian_inputs(self, t_in: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """What Brian2 is given besides :meth:`brian_layers` for data spike times (batch, n): the
        first layer's input times (the data and any bias neuron), and the spike times of extra
        input neurons of deeper layers by layer (1-based; a batch statistic), from this
        network's NumPy pass."""

    def trace(self, t_in: np.ndarray, bank: np.ndarray | None = None, groups: np.ndarray | None = None) -> Trace:
        """Forward pass on input spike times (batch, n_0), keeping what learning needs; ``groups``
        (batch,) names the sub-batches a batch statistic is computed over (default: one)."""

    def times(self, t_in: np.ndarray, bank: np.ndarray | None = None,
              groups: np.ndarray | None = None) -> list[np.ndarray]:
        """Spike times of every layer (relative to each layer's window), nothing kept."""

    def earliest_output(self, trace: Trace) -> np.ndarray:
        """Float32 (batch,): the earliest step at which an output neuron can fire (loss floor)."""

    def loss_gradient(self, trace: Trace, labels: np.ndarray, e: np.ndarray, step: str) -> np.ndarray:
        """The error the backward pass starts from, given the TTFS output error ``e`` (batch, n_L)
        of a D step (``step = "d"``) or of the G step through D (``"g"``)."""

    def backward(self, trace: Trace, error: np.ndarray, gate_output: bool = True) -> list:
        """The parameter gradients, one entry per layer, from the error ``error`` of the output.

        ``gate_output`` False: ``error`` is the gradient of a loss read on the output spike
        times straight through the window's clip (:meth:`loss_gradient`, D's loss); True: the
        error of the output neurons as they fired (G's pixel error from D)."""

    def input_error(self, trace: Trace, error: np.ndarray) -> np.ndarray:
        """The error of the input spike times (batch, n_0), the network frozen, from a loss
        gradient :meth:`loss_gradient` (the G step's error through D to the pixels)."""

    def regularise(self, trace: Trace, grads: list, n_real: int) -> list:
        """The gradients plus those of the network's penalties at the first ``n_real`` samples."""

    def update(self, grads: list, lr_scale: float = 1.0) -> None:
        """One step of the network's optimiser with learning rates times ``lr_scale``."""

    def observe(self, trace: Trace) -> None:
        """Count what the end-of-epoch rule needs (spikes of hidden neurons)."""

    def end_epoch(self, rng: np.random.Generator) -> dict[str, int]:
        """The end-of-epoch rule; returns what it did (e.g. ``{"revived": n}``)."""

    def state(self) -> dict[str, list[np.ndarray]]:
        """Every array a checkpoint stores, by family (``"weights"`` first)."""

    def load_state(self, arrays: dict[str, list[np.ndarray]], counters: dict[str, int]) -> None:
        """Set the arrays of :meth:`state` (float32) and the :meth:`counters`."""

    def counters(self) -> dict[str, int]:
        """Integer state a checkpoint's metadata keeps (the optimiser's step count)."""

    def sampling(self) -> Network:
        """The network that makes samples (a weight average's, or this one)."""

    def window_starts(self) -> list[int]:
        """Step at which each layer opens its window, counted from the end of the input window."""

    def brian_layers(self, index: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """What Brian2 simulates: weights (n_k, n_{k+1}) and per-neuron thresholds (mV) of each
        layer (of network ``index`` of a weight bank)."""

    def intensity_gradient(self, error: np.ndarray) -> np.ndarray:
        """An input error (:meth:`backward`'s convention) as ``dL/d(intensity)`` in [0, 1]."""

    def error_from_intensity(self, grad01: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`intensity_gradient`."""


class _Windows:
    """What every network derives from its neuron model and its layers: the layers' windows;
    and by default no input neuron beyond the data."""

    neuron: NeuronModel
    params: NeuronParams
    layers: list

    @classmethod
    def extra_inputs(cls, cfg, role: str) -> int:
        return 0

    def input_times(self, t_in):
        return np.asarray(t_in)

    def brian_inputs(self, t_in):
        return self.input_times(t_in), {}

    def window_starts(self) -> list[int]:
        T = self.params.t_max
        return [self.neuron.window_start(k, T) for k in range(len(self.layers))]


# ------------------------------------------------------------------------------ IF, S4NN
class S4nnNetwork(_Windows):
    """The paper's IF network trained with S4NN's rule (plain SGD with L2 decay, per-layer
    learning rates, dead hidden neurons re-initialised every epoch).

    With ``n_banks`` > 0 every layer is a weight bank (C, n_in, n_out), one network per class,
    and ``bank`` (each sample's class) picks the network of each sample (:mod:`models.kernel`).

    The ``[s4nn]`` options (all off by default; docs/experiments.md 3.2): a bias neuron, one
    more input of the first layer spiking at ``s4nn.{g,d}_bias_time`` on every sample (the last
    row of the first weight matrix, trained by the same rule; a dead hidden neuron's re-draw
    draws its bias weight too); D's R1-style penalty ``s4nn.r1``
    (:func:`training.backprop.smoothness_penalty`); :meth:`feature_error` for
    ``s4nn.feature_matching`` (the GAN step mixes it in).
    """

    neuron = IF_NEURON

    def __init__(self, layers: list[backprop.Layer], params: NeuronParams, lr: Sequence[float],
                 l2: float, init: Sequence[tuple[float, float]], dead_min_rate: float,
                 sizes: Sequence[int], n_banks: int = 0, silent_inputs: bool = True,
                 bias_time: int | None = None, r1: float = 0.0, r1_samples: int = 16,
                 minibatch_std: float = 0.0):
        self.layers, self.params = layers, params
        self.lr, self.l2, self.init_ranges = list(lr), float(l2), list(init)
        self.silent_inputs = bool(silent_inputs)  # train.silent_pixel_remedy
        self.dead = backprop.DeadNeuronMonitor(sizes, dead_min_rate, max(n_banks, 1))
        self.bias_time = bias_time  # s4nn.{g,d}_bias_time: the bias neuron's step, or None
        self.r1, self.r1_samples = float(r1), int(r1_samples)  # s4nn.r1 (D only), s4nn.r1_samples
        self.minibatch_std = float(minibatch_std)  # s4nn.minibatch_std (D only)

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        nets = [f"{n}.{k}" for n in ("generator", "discriminator")
                for k in ("thresholds", "lr", "init_hidden", "init_output")]
        return ("per_class", "neuron.latency", "neuron.strict_threshold", *nets,
                "train.l2", "train.dead_min_rate", "train.silent_pixel_remedy", "train.real_delay", "s4nn.")

    @classmethod
    def extra_inputs(cls, cfg, role: str) -> int:
        """Input neurons beyond the data: 1 with a bias neuron (``s4nn.{g,d}_bias_time`` >= 0)."""
        return int(getattr(cfg.s4nn, f"{role}_bias_time") >= 0)

    # ---------------------------------------------------- the minibatch-statistics input (D)
    def _statistic_times(self, t_h: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """Spike time (batch, 1) of the minibatch-statistics neuron: ``T - scale * sigma`` (rounded,
        clipped to the window), ``sigma`` the mean over neurons of the standard deviation over
        each group's samples of the hidden spike times ``t_h`` (silent = ``T``)."""
        T = self.params.t_max
        groups = np.zeros(len(t_h), np.int64) if groups is None else np.asarray(groups)
        out = np.empty((len(t_h), 1), np.int32)
        for g in np.unique(groups):
            rows = groups == g
            sigma = float(t_h[rows].astype(np.float64).std(axis=0).mean())
            out[rows] = int(np.clip(np.rint(T - self.minibatch_std * sigma), 0, T))
        return out

    def _extra_inputs(self, groups):
        """``backprop.forward_trace``'s hook: the statistics neuron feeds the output layer."""
        if not self.minibatch_std:
            return None
        last = len(self.layers) - 1
        return lambda k, t: self._statistic_times(t, groups) if k == last else None

    def _statistic_error(self, trace):
        """``backprop.backward``'s hook: the statistics neuron's error passed on to the hidden spike
        times it was computed from (``dt_s / dt_h[b, j] = -scale (t_h[b, j] - mu_j) / (n s_j H)``
        within each group; 0 where the neuron's time was clipped or ``s_j = 0``)."""
        T = self.params.t_max

        def hook(k, e_below, e_extra):
            t_h = trace.layer_input_times(k)[:, :e_below.shape[1]].astype(np.float64)
            t_s = trace.extra[k][:, 0]
            groups = np.zeros(len(t_h), np.int64) if trace.groups is None else np.asarray(trace.groups)
            out = e_below.astype(np.float64)
            for g in np.unique(groups):
                rows = groups == g
                if not 0 < t_s[rows][0] < T:
                    continue
                x = t_h[rows]
                sd = x.std(axis=0)
                dsig = np.divide(x - x.mean(axis=0), len(x) * sd * x.shape[1], out=np.zeros_like(x), where=sd > 0)
                out[rows] += e_extra[rows, 0].sum() * -self.minibatch_std * dsig
            return out.astype(e_below.dtype)
        return hook

    @classmethod
    def init(cls, cfg, role, sizes, rng, n_banks=0):
        net = cfg.generator if role == "g" else cfg.discriminator
        nets = [init_network(rng, sizes[0], net, sizes[-1]) for _ in range(max(n_banks, 1))]
        weights = [np.stack(ws) for ws in zip(*nets)] if n_banks else nets[0]
        bias_time = getattr(cfg.s4nn, f"{role}_bias_time")
        if bias_time >= 0:  # the bias neuron is the last input; its weights start equal
            weights[0][..., -1, :] = getattr(cfg.s4nn, f"{role}_bias_weight")
        if role == "d" and cfg.s4nn.minibatch_std:  # the statistics neuron's weights start at 0
            weights[-1] = np.concatenate([weights[-1], np.zeros_like(weights[-1][..., :1, :])], axis=-2)
        params = neuron_params(cfg.neuron, net)
        layers = [backprop.Layer(w, th) for w, th in zip(weights, params.thresholds)]
        ranges = init_ranges(net)[:-1]  # hidden layers (S4NN's dead-neuron rule)
        return cls(layers, params, net.lr, cfg.train.l2, ranges, cfg.train.dead_min_rate, sizes, n_banks,
                   cfg.train.silent_pixel_remedy, bias_time if bias_time >= 0 else None,
                   cfg.s4nn.r1 if role == "d" else 0.0, cfg.s4nn.r1_samples,
                   cfg.s4nn.minibatch_std if role == "d" else 0.0)

    def input_times(self, t_in):
        """The data's spike times (batch, n) plus the bias neuron's column when there is one."""
        t_in = np.asarray(t_in)
        if self.bias_time is None:
            return t_in
        return np.concatenate([t_in, np.full((len(t_in), 1), self.bias_time, t_in.dtype)], axis=1)

    @staticmethod
    def input_delay(cfg) -> int:
        """Steps by which real images reach D late (``train.real_delay``; -1 = G's latency).

        A generated pixel of the IF model can spike no earlier than G's latency (one step per
        G layer), a real pixel of intensity 255 spikes at step 0: without the delay D tells
        real from fake by the clock alone (fakes are uniformly late), and G's error says
        "every pixel earlier", so G grows bright blobs."""
        delay = cfg.train.real_delay
        if delay < 0:  # noise at step 0 -> output at step (layers x latency)
            delay = (len(cfg.generator.hidden) + 1) * cfg.neuron.latency
        return delay

    @property
    def weights(self) -> list[np.ndarray]:
        return [layer.w for layer in self.layers]

    def trace(self, t_in, bank=None, groups=None):
        return backprop.forward_trace(self.weights, self.input_times(t_in), self.params, bank=bank,
                                      extra_inputs=self._extra_inputs(groups), groups=groups)

    def times(self, t_in, bank=None, groups=None):
        if self.minibatch_std:
            return self.trace(t_in, bank, groups).times
        return kernel.forward(self.weights, self.input_times(t_in), self.params, bank=bank)

    def brian_inputs(self, t_in):
        extra = (self.trace(t_in).extra or {}) if self.minibatch_std else {}
        return self.input_times(t_in), {k + 1: t for k, t in extra.items()}

    def earliest_output(self, trace):
        return earliest_output_time(trace.layer_input_times(-1), self.params.t_max, self.params.latency)

    def loss_gradient(self, trace, labels, e, step):
        return e  # S4NN: the output error itself (normalised per sample by the backward pass)

    def backward(self, trace, error, gate_output=True):
        return backprop.backward(self.weights, trace, error, self.params,
                                 extra_error=self._statistic_error(trace))[0]

    def input_error(self, trace, error):
        """S4NN's normalised error of the input spike times. With ``train.silent_pixel_remedy``
        the silent-input rule (error as if the silent neuron had spiked at step 0) applies at
        *every* layer, not only at the pixels: when D's hidden neurons are all silent on a dark
        generated image, the plain rule gives G no error at all (only neurons that fired carry
        one) and G stays dark for good."""
        e_in = backprop.backward(self.weights, trace, error, self.params, input_error=True,
                                 silent_inputs_full_error=self.silent_inputs, weight_grads=False,
                                 extra_error=self._statistic_error(trace))[1]
        return self._data_columns(e_in)

    def _data_columns(self, e_in):
        """An input error without the bias neuron's column (renormalised per sample)."""
        return e_in if self.bias_time is None else backprop.normalise(e_in[:, :-1])

    def feature_error(self, trace, target):
        """Feature matching through the first layer: the normalised error of the input spike
        times that moves the first hidden layer's spike times towards ``target`` (n_1,), steps
        (the batch mean on real images), by S4NN's rule, the network frozen."""
        t_h = trace.times[0]
        e_h = backprop.normalise(((np.asarray(target, np.float32)[None, :] - t_h) / self.params.t_max)
                                 .astype(np.float32))
        _, e_in = backprop.layer_backward(trace.events[0], trace.layer_input_times(0), t_h, e_h,
                                          self.weights[0], self.params.latency, True,
                                          self.silent_inputs, want_grad=False)
        return self._data_columns(backprop.normalise(e_in))

    def regularise(self, trace, grads, n_real):
        if not self.r1:
            return grads
        n = min(n_real, self.r1_samples)
        _, penalty = backprop.smoothness_penalty(self.weights, trace, n, self.params)
        return [g + np.float32(self.r1) * p for g, p in zip(grads, penalty)]

    def update(self, grads, lr_scale=1.0):
        backprop.sgd_step(self.weights, grads, [lr_scale * eta for eta in self.lr], self.l2)

    def observe(self, trace):
        self.dead.update(trace, self.params.t_max)

    def end_epoch(self, rng):
        return {"revived": sum(self.dead.reinit(self.weights, self.init_ranges, rng))}

    def state(self):
        return {"weights": self.weights}

    def load_state(self, arrays, counters):
        for layer, w in zip(self.layers, arrays["weights"]):
            layer.w = w

    def counters(self):
        return {}

    def sampling(self):
        return self  # no weight average

    def brian_layers(self, index=0):
        T = self.params.t_max
        return ([w[index] if w.ndim == 3 else w for w in self.weights],
                [layer.thresholds(T) for layer in self.layers])

    def intensity_gradient(self, error):
        return error  # the desired shift of the spike times: dL/d(intensity) up to a positive factor

    def error_from_intensity(self, grad01):
        return np.asarray(grad01).astype(np.float32)


# ------------------------------------------------------------------------------ ramp, exact
class RampNetwork(_Windows):
    """Windowed ramp IF neurons trained with their exact spike-time gradient and Adam.

    G's first layer centres its noise inputs (``c = T / 2``); D's hidden neurons start with
    their thresholds lowered by ``ramp.d_bias_init`` windows (they fire on any image). D's
    loss is ``ramp.d_loss`` (the TTFS loss, a softmax over the output earliness, or both),
    the G step's ``ramp.g_loss``; D carries an R1 penalty ``ramp.r1`` at real images.
    """

    neuron = RAMP_NEURON

    def __init__(self, layers: list[exact.Layer], params: NeuronParams, lr: float, rc, ema: float = 0.0):
        self.layers, self.params, self.rc = layers, params, rc
        self.lr, self.beta1, self.beta2 = float(lr), float(rc.beta1), float(rc.beta2)
        self.losses = {"d": rc.d_loss, "g": rc.g_loss}
        self.temperature, self.r1 = float(rc.temperature), float(rc.r1)
        self.opt = exact.Adam.like(exact.parameters(layers))
        self.ema = float(ema)
        #: the moving average of every parameter (``exact.parameters`` order), or None
        self.average = [p.copy() for p in exact.parameters(layers)] if self.ema else None

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        return ("ramp.", *(f"{n}.{k}" for n in ("generator", "discriminator")
                           for k in ("conv", "conv_kernel", "conv_stride")))

    @classmethod
    def init(cls, cfg, role, sizes, rng, n_banks=0):
        if n_banks:
            raise ValueError("the ramp model has no weight banks (one network per class)")
        rc, T = cfg.ramp, cfg.neuron.t_max
        pairs = list(zip(sizes[:-1], sizes[1:]))
        convs = conv_geometries(cfg, role)

        def make(k, centre):  # layer k: a convolutional one where the plan has a geometry
            if convs[k] is not None:
                return exact.init_conv_layer(rng, convs[k], centre, rc.init_gain)
            return exact.init_layer(rng, *pairs[k], centre, rc.init_gain)

        if role == "g":  # noise centred at T / 2: a noise neuron's weight pushes both ways
            layers = [make(k, T / 2 if k == 0 else 0.0) for k in range(len(pairs))]
        else:
            layers = [make(k, 0.0) for k in range(len(pairs))]
            for layer in layers[:-1]:  # hidden layers fire on every image at the start
                layer.b += np.float32(rc.d_bias_init * T)
        net = cfg.generator if role == "g" else cfg.discriminator
        return cls(layers, neuron_params(cfg.neuron, net), rc.lr_g if role == "g" else rc.lr_d, rc,
                   rc.g_ema if role == "g" else 0.0)

    @staticmethod
    def input_delay(cfg) -> int:
        return 0  # a ramp pixel can fire at its window's opening, as a real one

    def trace(self, t_in, bank=None, groups=None):
        T = self.params.t_max
        return exact.forward_trace(self.layers, ramp.earliness(t_in, T), T)

    def times(self, t_in, bank=None, groups=None):
        return self.trace(t_in).times

    def earliest_output(self, trace):
        return np.zeros(len(trace.output), np.float32)  # a ramp neuron can fire at its window's opening

    def loss_gradient(self, trace, labels, e, step):
        """``dL/da`` of the output neurons (mean over the batch): ``loss`` "ttfs": the TTFS error
        read straight through the window's clip (``dL/da = e``, S4NN's output error with ``dt/da =
        -1``); "softmax": cross-entropy of a softmax over the output earliness ``a / temperature``;
        "both": their sum."""
        loss = self.losses[step]
        g = np.zeros_like(e)
        if loss in ("ttfs", "both"):
            g += e
        if loss in ("softmax", "both"):
            g += softmax_error(trace.pre[-1], labels, self.temperature)
        return g / np.float32(len(labels))

    def backward(self, trace, error, gate_output=True):
        return exact.backward(self.layers, trace, error, gate_output=gate_output)[0]

    def input_error(self, trace, error):
        """``dL/dx`` of the input earliness, the loss read straight through the output clip."""
        return exact.backward(self.layers, trace, error, gate_output=False, input_grad=True, weight_grads=False)[1]

    def regularise(self, trace, grads, n_real):
        """Plus the R1 penalty ``gamma / 2 * E ||ds/d(intensity)||^2`` of the softmax logit ``s =
        (a_real - a_fake) / temperature`` at the first ``n_real`` (real) images; a pixel's
        earliness is ``t_max * intensity``, so in steps the weight is ``gamma * t_max^2``
        (:func:`training.exact.input_gradient_penalty`)."""
        if self.r1 <= 0:
            return grads
        T = trace.t_max
        real = exact.Trace(trace.x_in[:n_real], [x[:n_real] for x in trace.xs],
                           [a[:n_real] for a in trace.pre], T)
        direction = np.zeros(2, np.float32)
        direction[REAL], direction[FAKE] = 1.0, -1.0
        _, pen = exact.input_gradient_penalty(self.layers, real, direction / np.float32(self.temperature))
        w = np.float32(self.r1 * T * T)
        for (gw, _), (pw, _) in zip(grads, pen):  # in place: pw is the penalty's own array
            pw *= w
            pw += gw
        return [(pw, gb) for (_, gb), (pw, _) in zip(grads, pen)]

    def update(self, grads, lr_scale=1.0):
        params = exact.parameters(self.layers)
        self.opt.step(params, exact.flat_grads(grads), lr_scale * self.lr, beta1=self.beta1, beta2=self.beta2)
        if self.average is not None:
            exact.moving_average(self.average, params, self.ema)

    def sampling(self):
        """The network that makes samples: with ``ramp.g_ema``, a copy whose layers hold the
        moving average of the weights and biases (optimiser state shared, not for training);
        without, this network."""
        if self.average is None:
            return self
        layers = [dataclasses.replace(layer, w=w, b=b)
                  for layer, w, b in zip(self.layers, self.average[0::2], self.average[1::2])]
        return RampNetwork(layers, self.params, self.lr, self.rc)

    def observe(self, trace):
        pass  # no end-of-epoch rule

    def end_epoch(self, rng):
        return {}

    def state(self):
        out = {"weights": [layer.w for layer in self.layers], "bias": [layer.b for layer in self.layers],
               "adam_m": self.opt.m, "adam_v": self.opt.v}
        if self.average is not None:
            out["average"] = self.average
        return out

    def load_state(self, arrays, counters):
        for layer, w, b in zip(self.layers, arrays["weights"], arrays["bias"]):
            layer.w, layer.b = w, b
        self.opt = exact.Adam(arrays["adam_m"], arrays["adam_v"], int(counters.get("adam_steps", 0)))
        if self.average is not None:
            self.average = list(arrays["average"])

    def counters(self):
        return {"adam_steps": self.opt.t}

    def brian_layers(self, index=0):
        """Weight matrices, or :class:`models.ramp.ConvMap` for convolutional layers (sparse synapses)."""
        T = self.params.t_max
        return [layer.simulated for layer in self.layers], [layer.thresholds(T) for layer in self.layers]

    def intensity_gradient(self, error):
        return error * np.float32(self.params.t_max)  # x = t_max * intensity

    def error_from_intensity(self, grad01):
        return (grad01 / np.float32(self.params.t_max)).astype(np.float32)


#: ``neuron.model`` -> its network class: the one place a model's name is mapped to code.
NETWORKS: dict[str, type] = {"if": S4nnNetwork, "ramp": RampNetwork}


def network_class(model: str):
    """The :class:`Network` class of ``neuron.model`` (a ValueError naming the known ones)."""
    try:
        return NETWORKS[model]
    except KeyError:
        raise ValueError(f"unknown neuron model {model!r}; choose one of {', '.join(NETWORKS)}") from None


def conv_geometries(cfg, role: str) -> list[ramp.ConvGeometry | None]:
    """The convolutional layers of G (``role = "g"``) or D: one entry per layer, its geometry or
    None for a dense layer (``generator.conv`` / ``discriminator.conv``, ramp model; the layout:
    :func:`conv_stack`)."""
    section = "generator" if role == "g" else "discriminator"
    net = getattr(cfg, section)
    dense = [None] * (len(net.hidden) + 1)
    if not net.conv or f"{section}.conv" not in network_class(cfg.neuron.model).config_keys():
        return dense  # (a model without conv layers ignores the key: the IF model under the defaults)
    stack = conv_stack(role, net.conv, net.conv_kernel, net.conv_stride)
    return [*stack, *dense] if role == "d" else [*dense, *stack]


def convolutional(cfg) -> bool:
    """Whether G or D of ``cfg`` has a convolutional layer (:func:`conv_geometries`)."""
    return any(x is not None for role in ("g", "d") for x in conv_geometries(cfg, role))


def conv_stack(role: str, channels, kernel: int, stride: int) -> list[ramp.ConvGeometry]:
    """The convolutions of a stack of ``channels`` (one entry per layer), zero padding ``(kernel -
    1) // 2``.

    D (``role = "d"``): ``1 x 28 x 28 -> channels[0] x s_1 x s_1 -> ...`` by strided convolutions,
    followed by D's dense layers. G: its dense layers end on ``channels[0] x s_n x s_n``, then
    transposed convolutions up to ``1 x 28 x 28`` (the pixels), the sides ``s`` those of D's
    stack (:func:`models.ramp.conv_sides`)."""
    n = len(channels)
    pad, side = (kernel - 1) // 2, ramp.conv_sides(n, kernel, stride, N_SIDE)
    if role == "d":
        chans = [1, *channels]
        return [ramp.ConvGeometry((chans[i], side[i], side[i]), (chans[i + 1], side[i + 1], side[i + 1]),
                                  kernel, stride, pad, transposed=False) for i in range(n)]
    chans = [*channels, 1]  # G: from the smallest image (channels[0] x s_n x s_n) up to the pixels
    return [ramp.ConvGeometry((chans[i + 1], side[n - i - 1], side[n - i - 1]),
                              (chans[i], side[n - i], side[n - i]), kernel, stride, pad, transposed=True)
            for i in range(n)]


def sizes(cfg) -> dict[str, list[int]]:
    """Layer sizes of G (noise, hidden..., 784 pixels) and D (784, hidden..., real / fake); the
    first entry counts every input neuron, a bias neuron included (:meth:`Network.extra_inputs`).
    Convolutional layers (:func:`conv_geometries`) count their neurons (channels x side^2)."""
    net = network_class(cfg.neuron.model)
    g, d = cfg.generator, cfg.discriminator
    g_conv = [int(np.prod(x.in_shape)) for x in conv_geometries(cfg, "g") if x is not None]
    d_conv = [int(np.prod(x.out_shape)) for x in conv_geometries(cfg, "d") if x is not None]
    return {"g": [g.noise_dim + net.extra_inputs(cfg, "g"), *g.hidden, *g_conv, N_PIXELS],
            "d": [N_PIXELS + net.extra_inputs(cfg, "d"), *d_conv, *d.hidden, 2]}


def weight_shapes(cfg) -> dict[str, list[tuple[int, ...]]]:
    """Shapes of the weight arrays of G and D: ``(n_in, n_out)`` of a dense layer, the kernel's
    ``(C_small, C_big, k, k)`` of a convolutional one (what a checkpoint must hold)."""
    size = sizes(cfg)
    return {role: [g.kernel_shape if g is not None else (a, b)
                   for g, a, b in zip(conv_geometries(cfg, role), size[role][:-1], size[role][1:])]
            for role in ("g", "d")}
