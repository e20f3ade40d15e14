"""Exact spike-time gradients of the windowed ramp neuron, and Adam.

The ramp layer (:mod:`models.ramp`) maps its inputs' earliness ``x = T - t`` to
its own by ``x_out = clip(floor(a), 0, T)`` with ``a = b + (x_in - c) @ W`` (in
steps), where a neuron's threshold is ``theta = T - b + c * sum_i W_i``
(:func:`thresholds`): ``b`` is a per-neuron bias and ``c`` a fixed centre of the
layer's inputs (``T / 2`` for G's noise, so that a noise neuron's weight
pushes both ways, else 0). The forward pass quantises to whole steps, as a
clock-driven simulator does; the backward pass uses the continuous map's exact
gradient straight through the quantisation (Stanojevic et al. 2024)::

    dx_out/da = [0 < a < T]              (the neuron fired, and not at its window's opening)
    dL/dW = (x_in - c)^T (dL/dx_out * gate),   dL/db = sum_batch (dL/dx_out * gate)
    dL/dx_in = (dL/dx_out * gate) @ W^T

Unlike S4NN's ``dt/dV = -1`` the error reaching an input is gated per sample
and neuron, exactly as in a ReLU network: that is what lets each fake receive
its own error from D.

A neuron that stopped firing on every sample (``a <= 0``) gets no exact gradient
and stays silent for ever; the surrogates tried against it (a leak through closed
gates, reviving units silent on a whole batch) are measured in docs/experiments.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models import native, ramp
from models.kernel import pinned_blas_threads


@dataclass
class Layer:
    """Trainable parameters of one dense ramp layer.

    Attributes
    ----------
    w : float32 array (n_in, n_out), mV per step of input earliness
    b : float32 array (n_out,), bias in steps (``T - theta + c * sum(w)``)
    centre : float, the fixed centre ``c`` of the inputs' earliness, steps

    A layer's map is used only through the methods below (:class:`ConvLayer` has the same ones),
    so that the forward pass, the backward pass and the R1 penalty are written once for both.
    """

    w: np.ndarray
    b: np.ndarray
    centre: float = 0.0

    def thresholds(self, t_max: int) -> np.ndarray:
        """Per-neuron thresholds theta (mV, float64) that make the simulated neuron this layer."""
        return thresholds(self.w, self.b, self.centre, t_max)

    def pre_activation(self, x: np.ndarray) -> np.ndarray:
        """``a = b + (x - c) @ W``, float32 (batch, n_out), from input earliness ``x`` (batch, n_in)."""
        return (self.b + (x.astype(np.float32) - np.float32(self.centre)) @ self.w).astype(np.float32)

    def linear(self, p: np.ndarray) -> np.ndarray:
        """``p @ W`` (batch, n_out): the map without bias and centre."""
        return p @ self.w

    @property
    def neuron_bias(self) -> np.ndarray:
        """The bias of every output neuron, float32 (n_out,)."""
        return self.b

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        """``g @ W^T`` (batch, n_in): an output error sent back to the inputs."""
        return g @ self.w.T

    def weight_grad(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``x^T g``, the weights' shape: inputs (batch, n_in), output errors (batch, n_out)."""
        return x.T @ g

    def weight_grad_and_adjoint(self, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(weight_grad(x, g), adjoint(g))``: the two products of a backward step."""
        return self.weight_grad(x, g), self.adjoint(g)

    def bias_grad(self, g: np.ndarray) -> np.ndarray:
        """``sum_batch g`` (n_out,)."""
        return g.sum(axis=0)

    @property
    def simulated(self) -> np.ndarray:
        """What Brian2 and :func:`models.ramp.forward` are given: the matrix (n_in, n_out)."""
        return self.w


@dataclass
class ConvLayer:
    """Trainable parameters of one convolutional ramp layer: the ramp neuron with shared weights.

    Its map is a convolution (D) or a transposed convolution (G) of the input image (the
    geometry, :class:`models.ramp.ConvGeometry`) followed by the clip of every ramp layer::

        a = b + conv(x_in - c, K),    x_out = clip(floor(a + EPS), 0, T)

    with one bias per output channel. It is the dense :class:`Layer` whose weight matrix is the
    convolution's (:meth:`models.ramp.ConvMap.dense`), forward and gradients alike (the
    kernel's gradient is the dense one summed over the synapses sharing each weight); Brian2
    simulates it as that sparse matrix. Border neurons of a padded convolution have fewer
    synapses, so their thresholds ``theta = T - b + c * sum(incoming weights)`` differ from the
    interior's.

    Attributes
    ----------
    w : float32 array ``geometry.kernel_shape`` (C_small, C_big, k, k), mV per step of earliness
    b : float32 array (C_out,), bias in steps, one per output channel
    geometry : ConvGeometry
    centre : float, the fixed centre ``c`` of the inputs' earliness, steps
    """

    w: np.ndarray
    b: np.ndarray
    geometry: ramp.ConvGeometry
    centre: float = 0.0

    @property
    def neuron_bias(self) -> np.ndarray:
        """The channel biases broadcast to every neuron, float32 (n_out,)."""
        c, h, w = self.geometry.out_shape
        return np.repeat(self.b, h * w)

    def thresholds(self, t_max: int) -> np.ndarray:
        """Per-neuron thresholds theta (mV, float64, n_out); border neurons differ."""
        b = np.asarray(self.neuron_bias, np.float64)
        return t_max - b + self.centre * self.simulated.incoming_sums()

    def pre_activation(self, x: np.ndarray) -> np.ndarray:
        """``a = b + conv(x - c, K)``, float32 (batch, n_out), from input earliness (batch, n_in)."""
        p = x.astype(np.float32) - np.float32(self.centre)
        return (self.neuron_bias + self.linear(p)).astype(np.float32)

    def linear(self, p: np.ndarray) -> np.ndarray:
        return self.geometry.apply(p, self.w)

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        return self.geometry.adjoint(g, self.w)

    def weight_grad(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return self.geometry.weight_grad(x, g)

    def weight_grad_and_adjoint(self, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(weight_grad(x, g), adjoint(g))``, the im2col of ``g`` built once where both read it
        (:meth:`models.ramp.ConvGeometry.weight_grad_and_adjoint`)."""
        return self.geometry.weight_grad_and_adjoint(x, g, self.w)

    def bias_grad(self, g: np.ndarray) -> np.ndarray:
        c, h, w = self.geometry.out_shape
        return g.reshape(len(g), c, h * w).sum(axis=(0, 2))

    @property
    def simulated(self) -> ramp.ConvMap:
        """What Brian2 and :func:`models.ramp.forward` are given: the kernel and its geometry."""
        return ramp.ConvMap(self.geometry, self.w)


def thresholds(w: np.ndarray, b: np.ndarray, centre: float, t_max: int) -> np.ndarray:
    """``theta = T - b + c * sum_i w_i`` in mV (``r = 1 mV`` per step), float64 (n_out,)."""
    return (t_max - np.asarray(b, np.float64) + centre * np.asarray(w, np.float64).sum(axis=0))


def init_layer(rng: np.random.Generator, n_in: int, n_out: int, centre: float,
               gain: float = 1.0) -> Layer:
    """He-normal weights ``w ~ N(0, 2 gain^2 / n_in)`` (mV per step), zero bias.

    The earliness of the inputs spans ``0 .. T`` steps, so ``a`` starts with a
    spread of a fraction of the window (about ``0.4 T`` at ``T = 64``).
    """
    scale = gain * np.sqrt(2.0 / n_in)
    w = (rng.standard_normal((n_in, n_out)) * scale).astype(np.float32)
    return Layer(w, np.zeros(n_out, np.float32), float(centre))


def init_conv_layer(rng: np.random.Generator, geometry: ramp.ConvGeometry, centre: float = 0.0,
                    gain: float = 1.0) -> ConvLayer:
    """He-normal kernel ``K ~ N(0, 2 gain^2 / fan_in)`` (mV per step), zero channel biases;
    ``fan_in`` = synapses per neuron on average (``C_in k^2`` for a convolution, about
    ``C_in k^2 / s^2`` for a transposed one of stride ``s``)."""
    fan_in = len(geometry.index_map()[0]) / geometry.shape[1]
    w = (rng.standard_normal(geometry.kernel_shape) * (gain * np.sqrt(2.0 / fan_in))).astype(np.float32)
    return ConvLayer(w, np.zeros(geometry.out_shape[0], np.float32), geometry, float(centre))


@dataclass
class Trace:
    """What the backward pass needs: inputs and pre-activations of every layer.

    Attributes
    ----------
    x_in : int array (batch, n_0), input earliness
    xs : list of int32 arrays (batch, n_k), output earliness of layers 1..L
    pre : list of float32 arrays (batch, n_k), pre-activations ``a`` of layers 1..L
    t_max : int
    inputs : list of float32 arrays (batch, n_{k-1}), or None: the centred inputs ``x - c`` of
        layers 1..L as :func:`forward_trace` multiplied them (the weight gradients reuse them;
        None: :func:`backward` computes them from ``x_in`` and ``xs``)
    """

    x_in: np.ndarray
    xs: list[np.ndarray]
    pre: list[np.ndarray]
    t_max: int
    inputs: list[np.ndarray] | None = None

    @property
    def times(self) -> list[np.ndarray]:
        """Spike times of layers 1..L, relative to each layer's window (``t_max`` = none)."""
        return [(self.t_max - x).astype(np.int32) for x in self.xs]

    @property
    def output(self) -> np.ndarray:
        """Spike times of the output layer (``t_max`` = none)."""
        return (self.t_max - self.xs[-1]).astype(np.int32)

    @property
    def t_in(self) -> np.ndarray:
        """Input spike times (``t_max`` = none)."""
        return (self.t_max - np.asarray(self.x_in)).astype(np.int32)

    def layer_input_earliness(self, k: int) -> np.ndarray:
        """Earliness ``x`` of the inputs of layer ``k`` (0-based; negative counts from the output)."""
        return self.x_in if k % len(self.xs) == 0 else self.xs[k % len(self.xs) - 1]


def forward_trace(layers: Sequence[Layer], x_in: np.ndarray, t_max: int) -> Trace:
    """Float32 forward pass on the inputs' earliness ``x_in`` (batch, n_0), in the bias form
    ``a = b + (x_in - c) @ W`` (the map of :func:`models.ramp.layer_forward` with the thresholds
    :meth:`Layer.thresholds`), quantised by :func:`models.ramp.quantise`.

    A layer's quantised earliness stays float32 (whole steps, exact) as the next layer's input,
    and is kept as int32 in the trace; ``c = 0`` is not subtracted (``x - 0 = x``), the bias is
    added in place (``b + M = M + b``): the bits of the plain expression, with fewer passes.
    """
    xs, pre, inputs = [], [], []
    x = np.asarray(x_in).astype(np.float32)
    with pinned_blas_threads():  # the same sums on every machine: GAN training amplifies any last-bit change
        for layer in layers:
            if layer.centre:
                x = x - np.float32(layer.centre)
            inputs.append(x)
            a = layer.linear(x)
            a += layer.neuron_bias
            x = ramp.quantised_earliness(a, t_max)
            xs.append(x.astype(np.int32))
            pre.append(a)
    return Trace(np.asarray(x_in), xs, pre, t_max, inputs)


def gate(a: np.ndarray, t_max: int) -> np.ndarray:
    """``dx/da``: 1 inside ``0 < a < T`` (the neuron fired, and not at its window's opening), else 0."""
    return _open(a, t_max).astype(np.float32)


def _open(a: np.ndarray, t_max: int) -> np.ndarray:
    """:func:`gate` as booleans (a product with them is the product with the float gate, one pass less)."""
    return (a > 0) & (a < t_max)


def backward(layers: Sequence[Layer], trace: Trace, g_out: np.ndarray, gate_output: bool = True,
             input_grad: bool = False, weight_grads: bool = True):
    """Exact gradients of a loss through a ramp network.

    Parameters
    ----------
    layers : the network's layers
    trace : its forward :class:`Trace`
    g_out : float32 array (batch, n_L), ``dL/dx`` of the output earliness; when
        ``gate_output`` is False it is taken as ``dL/da`` of the output layer (the
        loss reads the output spike times straight through their clip, as S4NN's
        output error does for a silent neuron)
    input_grad : also return ``dL/dx_in`` (batch, n_0)
    weight_grads : compute the parameter gradients (False: only ``dL/dx_in``)

    Returns
    -------
    grads : list of (dW, db) per layer (None if not ``weight_grads``)
    g_in : float32 array (batch, n_0) or None
    """
    n = len(layers)
    grads: list = [None] * n
    g = np.asarray(g_out, np.float32)
    with pinned_blas_threads():
        return _backward(layers, trace, g, gate_output, input_grad, weight_grads, grads)


def _backward(layers, trace, g, gate_output, input_grad, weight_grads, grads):
    n = len(layers)
    for k in range(n - 1, -1, -1):
        if k < n - 1 or gate_output:
            g = g * _open(trace.pre[k], trace.t_max)
        layer = layers[k]
        back = k > 0 or input_grad
        if weight_grads:
            x = (trace.inputs[k] if trace.inputs is not None
                 else trace.layer_input_earliness(k).astype(np.float32) - np.float32(layer.centre))
            gb = layer.bias_grad(g)
            if back:
                gw, g = layer.weight_grad_and_adjoint(x, g)
            else:
                gw = layer.weight_grad(x, g)
            grads[k] = (gw, gb)
        elif back:
            g = layer.adjoint(g)
    return (grads if weight_grads else None), (g if input_grad else None)


def input_gradient_penalty(layers: Sequence[Layer], trace: Trace, direction: np.ndarray):
    """R1-style penalty ``P = 1/2 mean_batch ||ds/dx_in||^2`` of a score ``s = a_L . direction``
    (a linear read-out of the output layer's pre-activations), and its parameter gradients.

    Within one sample's gate pattern the network is linear, so ``r = ds/dx_in =
    W_1 q_1`` with ``q_L = direction`` and ``q_k = gate_k * (W_{k+1} q_{k+1})`` (the
    backward pass); with ``p_1 = r`` and ``p_{k+1} = gate_k * (W_k^T p_k)`` (the same
    gates, forwards), ``dP/dW_k = mean_batch p_k q_k^T`` and ``dP/db_k = 0`` (the gates
    are piecewise constant; Mescheder et al. 2018 for R1 on real data).

    Parameters
    ----------
    trace : forward trace of the images the penalty is taken at (batch, n_0)
    direction : float array (n_L,), the read-out (e.g. ``(1, -1) / temperature`` for D's
        real-minus-fake logit in softmax units)

    Returns
    -------
    penalty : float
    grads : list of (dW, db) per layer, as :func:`backward` returns
    """
    n = len(layers)
    B = len(trace.x_in)
    gates = [_open(a, trace.t_max) for a in trace.pre[:-1]]  # hidden layers; the read-out is ungated
    with pinned_blas_threads():
        q: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        g = np.broadcast_to(np.asarray(direction, np.float32), (B, len(direction)))
        for k in range(n - 1, -1, -1):
            if k < n - 1:
                g = g * gates[k]
            q[k] = g
            g = layers[k].adjoint(g)
        r = g  # (B, n_0) = ds/dx_in
        grads = []
        p = r
        inv_b = np.float32(1.0 / B)
        for k in range(n):
            gw = layers[k].weight_grad(p, q[k])
            gw *= inv_b
            grads.append((gw, np.zeros_like(layers[k].b)))
            if k < n - 1:
                p = layers[k].linear(p)
                p *= gates[k]
    return float(0.5 * np.mean(np.sum(r.astype(np.float64) ** 2, axis=1))), grads


@dataclass
class Adam:
    """Adam state of a list of float32 arrays (Kingma & Ba 2015), updated in place.

    The state (``m``, ``v``, step count ``t``) is part of a checkpoint, so that a
    resumed run is identical to an uninterrupted one.
    """

    m: list[np.ndarray]
    v: list[np.ndarray]
    t: int = 0

    @classmethod
    def like(cls, params: Sequence[np.ndarray]) -> Adam:
        return cls([np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params], 0)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float,
             beta1: float = 0.5, beta2: float = 0.999, eps: float = 1e-8) -> None:
        """``p -= lr * m_hat / (sqrt(v_hat) + eps)`` for every parameter, in place.

        Float32 throughout, in this order: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) (g g)``,
        ``p -= (step m) / (sqrt(v) + eps)`` with the bias corrections folded into ``step`` and
        ``eps``; two scratch arrays per parameter instead of one per operation (the same bits).
        Float32 contiguous arrays go through the compiled loop :func:`models.native.adam` (the
        same operations in one pass; the same bits).
        """
        self.t += 1
        c1 = 1.0 - beta1 ** self.t
        c2 = 1.0 - beta2 ** self.t
        step = np.float32(lr * np.sqrt(c2) / c1)
        eps_t = np.float32(eps * np.sqrt(c2))
        consts = (np.float32(beta1), np.float32(1.0 - beta1), np.float32(beta2), np.float32(1.0 - beta2),
                  step, eps_t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            if native.adam(p, g, m, v, *consts):  # the compiled loop: the same operations, one pass
                continue
            tmp = np.multiply(g, np.float32(1.0 - beta1))
            m *= np.float32(beta1)
            m += tmp
            np.multiply(g, g, out=tmp)
            tmp *= np.float32(1.0 - beta2)
            v *= np.float32(beta2)
            v += tmp
            den = np.sqrt(v)
            den += eps_t
            np.multiply(m, step, out=tmp)
            tmp /= den
            p -= tmp


def parameters(layers: Sequence[Layer]) -> list[np.ndarray]:
    """The trainable arrays of a network, in a fixed order: ``w_1, b_1, w_2, b_2, ...``."""
    return [a for layer in layers for a in (layer.w, layer.b)]


def moving_average(average: Sequence[np.ndarray], params: Sequence[np.ndarray], decay: float) -> None:
    """``avg <- decay * avg + (1 - decay) * param`` for each pair, in place (float32)."""
    d = np.float32(decay)
    for avg, p in zip(average, params):
        avg *= d
        avg += (np.float32(1.0) - d) * p


def flat_grads(grads) -> list[np.ndarray]:
    """Gradients in the order of :func:`parameters`."""
    return [a for gw_gb in grads for a in gw_gb]
