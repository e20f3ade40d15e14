"""NumPy kernel of the windowed ramp IF neuron (:data:`models.neuron.RAMP_EQUATIONS`).

The model and its discrete-time semantics are defined in :mod:`models.neuron`
(section "Windowed ramp neuron"); this module only simulates them. Because a
ramp neuron's potential is piecewise linear with breakpoints at its input spike
times, and its slope is clamped to one unit per step once its output window
opens, the first spike of a whole layer has a closed form: with the earliness
``x = T - t`` (``T`` = ``t_max``, 0 = no spike) of the layer's inputs,

    V_j(window opening + s) = sum_i w_ij x_i + s * r            (r = 1 mV per step)
    x_j = clip(floor(a_j + EPS), 0, T),   a_j = T - theta_j + sum_i w_ij x_i     (steps)

i.e. the layer is exactly a ReLU layer clipped at ``T`` (Stanojevic et al.,
Nat. Commun. 15:6793, 2024), followed by the clock's quantisation to whole
steps. Simulating a layer is one matrix product over the batch: no time loop,
and the cost does not depend on how many spikes there are. ``a`` (the
*pre-activation*, in steps) is kept for the exact gradient
(:mod:`training.exact`).

Spike times are reported per layer *relative to the layer's own window*, as
for the IF kernel: ``t`` in ``0 .. T - 1`` for a spike, ``T`` for none. Layer
``k`` (1-based) fires in the global steps ``k T .. (k + 1) T - 1``
(:meth:`models.neuron.RampNeuron.window_start`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import native
from .neuron import THRESHOLD_EPS_MV


def earliness(t: np.ndarray, t_max: int) -> np.ndarray:
    """``x = T - t``: steps before the window's end (0 = no spike), same dtype as ``t``."""
    return t_max - np.asarray(t)


def pre_activation(x_in: np.ndarray, w: np.ndarray, theta: np.ndarray, t_max: int,
                   dtype=np.float32) -> np.ndarray:
    """``a = T - theta + x_in @ w``, (batch, n_out), in steps (see module docstring).

    Parameters
    ----------
    x_in : int or float array (batch, n_in), the inputs' earliness in steps
    w : array (n_in, n_out), mV per step of earliness, or a :class:`ConvMap`
    theta : array (n_out,), thresholds in mV
    t_max : int, window length T in steps
    """
    return (np.asarray(t_max - np.asarray(theta, dtype=np.float64), dtype=dtype)
            + linear(x_in, w, dtype))


def quantised_earliness(a: np.ndarray, t_max: int) -> np.ndarray:
    """``clip(floor(a + EPS), 0, T)`` in ``a``'s float type: whole steps, exact (one new array)."""
    x = np.add(a, THRESHOLD_EPS_MV)
    np.floor(x, out=x)
    return np.clip(x, 0, t_max, out=x)


def quantise(a: np.ndarray, t_max: int) -> np.ndarray:
    """Earliness of the first spike: ``clip(floor(a + EPS), 0, T)`` as int32 (the clock's ceiling)."""
    return quantised_earliness(a, t_max).astype(np.int32)


def layer_forward(x_in: np.ndarray, w: np.ndarray, theta: np.ndarray, t_max: int,
                  dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """One layer: output earliness (int32 (batch, n_out)) and pre-activation ``a`` (float)."""
    a = pre_activation(x_in, w, theta, t_max, dtype)
    return quantise(a, t_max), a


def forward(weights: Sequence[np.ndarray], thetas: Sequence[np.ndarray], t_in: np.ndarray, t_max: int,
            dtype=np.float64) -> list[np.ndarray]:
    """Spike times of every layer of a ramp network (float64 by default; training runs the
    float32 :func:`training.exact.forward_trace`).

    Unlike :func:`models.kernel.forward` (one threshold per layer, in ``NeuronParams``) a
    ramp layer has a threshold per neuron, given as ``thetas``.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1}), mV per step, or :class:`ConvMap` (a convolutional
        layer)
    thetas : sequence of arrays (n_{k+1},), per-neuron thresholds in mV
    t_in : int array (batch, n_0), input spike times in steps (``t_max`` = none)
    t_max : int
    dtype : float type of the potentials (float64 matches Brian2 bit for bit on
        weights whose partial sums are exact)

    Returns
    -------
    times : list of int32 arrays (batch, n_k), k = 1..L, each relative to its layer's window
    """
    if len(weights) != len(thetas):
        raise ValueError(f"{len(weights)} weight matrices but {len(thetas)} threshold vectors")
    x = earliness(np.asarray(t_in), t_max)
    times = []
    for w, theta in zip(weights, thetas):
        x, _ = layer_forward(x, w, theta, t_max, dtype)
        times.append((t_max - x).astype(np.int32))
    return times


# ------------------------------------------------------------------ convolutional ramp layers
# A convolutional ramp layer is the same neuron with shared weights: its map x_in -> a is a
# (transposed) convolution instead of a dense product, then the same clip (Stanojevic et al.
# 2024 for clipped-ReLU = TTFS networks with convolutions). Its neurons and synapses are those
# of a sparse dense layer whose matrix is the convolution's (:meth:`ConvMap.dense`), so Brian2
# simulates it as such (:meth:`ConvMap.synapses`: the index map from kernel weights to synapses).
#
# Geometry. A convolution of stride ``s`` and zero padding ``p`` maps a "big" image
# (C_big, H, W) to a "small" one (C_small, h, w), h = (H + 2 p - k) // s + 1, by
#
#     small[o, i, j] = sum_{c, dy, dx} big_padded[c, i s + dy, j s + dx] * K[o, c, dy, dx]
#
# with K (C_small, C_big, k, k). A conv layer (D) maps big -> small by it; a transposed layer
# (G) maps small -> big by its adjoint (the transposed matrix; PyTorch's ConvTranspose2d with
# the same kernel layout (in, out, k, k)). Images are flattened channel-major: a neuron's index
# is ``(c * H + y) * W + x``.


def conv_sides(n_layers: int, kernel: int, stride: int, side: int = 28) -> list[int]:
    """Sides of the images of a stack of ``n_layers`` strided convolutions from a ``side`` x ``side``
    image, zero padding ``(kernel - 1) // 2`` (which halves an even side at stride 2): ``[side, s_1,
    ..., s_n]`` with ``s_{l+1} = (s_l + 2 p - k) // stride + 1`` (<= 0: the stack does not fit)."""
    pad, out = (kernel - 1) // 2, [side]
    for _ in range(n_layers):
        out.append((out[-1] + 2 * pad - kernel) // stride + 1)
    return out


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of a (transposed) convolution between a big and a small image.

    Attributes
    ----------
    big : (C_big, H, W), the image of the strided side (D's input, G's output)
    small : (C_small, h, w), ``h = (H + 2 pad - kernel) // stride + 1``
    kernel : int, side ``k`` of the square kernel
    stride, pad : int, stride and zero padding of the strided convolution (big -> small)
    transposed : bool, False: the layer maps big -> small (a convolution); True: small -> big
        (its adjoint, a transposed convolution)
    """

    big: tuple[int, int, int]
    small: tuple[int, int, int]
    kernel: int
    stride: int = 1
    pad: int = 0
    transposed: bool = False

    def __post_init__(self):
        (_, H, W), (_, h, w), k, s, p = self.big, self.small, self.kernel, self.stride, self.pad
        if k < 1 or s < 1 or p < 0 or min(*self.big, *self.small) < 1:
            raise ValueError(f"invalid convolution geometry {self}")
        if (h, w) != ((H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1):
            raise ValueError(f"a {k}x{k} kernel at stride {s}, padding {p} maps {H}x{W} to "
                             f"{(H + 2 * p - k) // s + 1}x{(W + 2 * p - k) // s + 1}, not {h}x{w}")

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """``(C_small, C_big, k, k)``: (out, in) channels of a conv layer, (in, out) of a transposed one."""
        return (self.small[0], self.big[0], self.kernel, self.kernel)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.small if self.transposed else self.big

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.big if self.transposed else self.small

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_in, n_out)`` of the layer's (sparse) weight matrix."""
        return int(np.prod(self.in_shape)), int(np.prod(self.out_shape))

    # ---------------------------------------------------------------- the two maps, vectorised
    # Every map is one BLAS product of the operands np.tensordot would build (the same matrices,
    # the same orientation: the same sums, bit for bit); what is around the product works on
    # channels-last images, where a kernel offset's slice is a contiguous run of channels.
    def _columns(self, big: np.ndarray) -> np.ndarray:
        """im2col of big images (B, C_big, H, W): ``(B h w, C_big k k)`` C-contiguous, row ``(b, i,
        j)`` = the padded image under the kernel at position ``(i, j)``, columns in the kernel's
        ``(c, dy, dx)`` order (a sliding window over the channels-last padded images, one copy)."""
        k, s, p = self.kernel, self.stride, self.pad
        B, C, H, W = big.shape
        h, w = self.small[1], self.small[2]
        cols = native.im2col(big, (h, w), k, s, p)  # float32: the compiled copy
        if cols is not None:
            return cols
        padded = np.zeros((B, H + 2 * p, W + 2 * p, C), big.dtype)
        padded[:, p:p + H, p:p + W, :] = big.transpose(0, 2, 3, 1)
        view = sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::s, ::s][:, :h, :w]  # (B, h, w, C, k, k)
        return np.ascontiguousarray(view).reshape(B * h * w, C * k * k)

    def _down_columns(self, cols: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """:meth:`down` from the im2col matrix (:meth:`_columns`) of its input."""
        cs, (_, h, w) = kernel.shape[0], self.small
        out = cols @ np.ascontiguousarray(kernel.reshape(cs, -1).T)  # (B h w, C_small)
        return np.ascontiguousarray(out.reshape(-1, h, w, cs).transpose(0, 3, 1, 2))

    def down(self, big: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """The strided convolution (B, C_big, H, W) -> (B, C_small, h, w): one product."""
        return self._down_columns(self._columns(big), kernel)

    def up(self, small: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Its adjoint (B, C_small, h, w) -> (B, C_big, H, W): one product gives every input's
        contribution under every kernel offset, ``(B, h, w, C_big, k, k)``; col2im adds them into
        the padded channels-last big image, one strided slice per kernel offset (``k^2``
        vectorised adds in a fixed order)."""
        B, cs, h, w = small.shape
        (C, H, W), k, s, p = self.big, self.kernel, self.stride, self.pad
        rows = np.ascontiguousarray(small.transpose(0, 2, 3, 1)).reshape(B * h * w, cs)
        cols = (rows @ kernel.reshape(cs, -1)).reshape(B, h, w, C, k, k)
        padded = (max(H + 2 * p, (h - 1) * s + k), max(W + 2 * p, (w - 1) * s + k))
        done = native.col2im(cols, (H, W), k, s, p, padded)  # float32: the same adds, compiled
        if done is not None:
            return done
        out = np.zeros((B, *padded, C), np.result_type(small, kernel))
        for dy in range(k):
            for dx in range(k):
                out[:, dy:dy + (h - 1) * s + 1:s, dx:dx + (w - 1) * s + 1:s, :] += cols[..., dy, dx]
        return np.ascontiguousarray(out[:, p:p + H, p:p + W, :].transpose(0, 3, 1, 2))

    def _kernel_grad_columns(self, cols: np.ndarray, small: np.ndarray) -> np.ndarray:
        """:meth:`kernel_grad` from the im2col matrix (:meth:`_columns`) of ``big``."""
        cs = small.shape[1]
        rows = np.ascontiguousarray(small.transpose(1, 0, 2, 3)).reshape(cs, -1)  # (C_small, B h w)
        return (rows @ cols).reshape(self.kernel_shape)

    def kernel_grad(self, big: np.ndarray, small: np.ndarray) -> np.ndarray:
        """``sum_{b,i,j} small[b, o, i, j] big_padded[b, c, i s + dy, j s + dx]`` (C_small, C_big, k, k):
        the derivative of ``<small, down(big, K)>`` by ``K`` (one product)."""
        return self._kernel_grad_columns(self._columns(big), small)

    # ---------------------------------------------------------------- the layer's view
    def _images(self, x: np.ndarray, shape) -> np.ndarray:
        return np.asarray(x).reshape((len(x), *shape))

    def apply(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """``x @ M``: flattened inputs (B, n_in) through the layer's map, (B, n_out)."""
        img = self._images(x, self.in_shape)
        out = self.up(img, kernel) if self.transposed else self.down(img, kernel)
        return out.reshape(len(x), -1)

    def adjoint(self, g: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """``g @ M^T``: output errors (B, n_out) back to the inputs, (B, n_in)."""
        img = self._images(g, self.out_shape)
        out = self.down(img, kernel) if self.transposed else self.up(img, kernel)
        return out.reshape(len(g), -1)

    def weight_grad(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The kernel's part of ``x^T g`` (the dense gradient summed over the synapses that
        share a weight): inputs (B, n_in), output errors (B, n_out) -> kernel shape."""
        x_img, g_img = self._images(x, self.in_shape), self._images(g, self.out_shape)
        return self.kernel_grad(g_img, x_img) if self.transposed else self.kernel_grad(x_img, g_img)

    def weight_grad_and_adjoint(self, x: np.ndarray, g: np.ndarray, kernel: np.ndarray):
        """``(weight_grad(x, g), adjoint(g, kernel))`` with one im2col of ``g`` for a transposed
        layer, whose two maps both read it (the same bits as the two calls)."""
        if not self.transposed:
            return self.weight_grad(x, g), self.adjoint(g, kernel)
        cols = self._columns(self._images(g, self.out_shape))
        grad = self._kernel_grad_columns(cols, self._images(x, self.in_shape))
        return grad, self._down_columns(cols, kernel).reshape(len(g), -1)

    # ---------------------------------------------------------------- synapses
    def index_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every synapse of the layer: presynaptic and postsynaptic neuron (flat indices) and the
        flat index into the kernel of its weight, int64 (n_synapses,) each; a synapse whose input
        lies in the zero padding does not exist (border neurons have fewer)."""
        (Cb, H, W), (Cs, h, w), k, s, p = self.big, self.small, self.kernel, self.stride, self.pad
        o, i, j, c, dy, dx = np.ix_(*(np.arange(n) for n in (Cs, h, w, Cb, k, k)))
        y, x = i * s - p + dy, j * s - p + dx
        valid = np.broadcast_to((y >= 0) & (y < H) & (x >= 0) & (x < W), (Cs, h, w, Cb, k, k))
        small = np.broadcast_to((o * h + i) * w + j, valid.shape)[valid]
        big = np.broadcast_to((c * H + y) * W + x, valid.shape)[valid]
        kidx = np.broadcast_to(((o * Cb + c) * k + dy) * k + dx, valid.shape)[valid]
        return (small, big, kidx) if self.transposed else (big, small, kidx)


@dataclass(frozen=True)
class ConvMap:
    """The weights of a convolutional ramp layer as the simulators see them: a geometry and
    its kernel. Stands wherever a dense weight matrix (n_in, n_out) stands
    (:func:`linear`, :func:`forward`, :func:`models.brian.simulate`).

    Attributes
    ----------
    geometry : ConvGeometry
    kernel : float array ``geometry.kernel_shape``, mV per step of input earliness
    """

    geometry: ConvGeometry
    kernel: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.geometry.shape

    def apply(self, x: np.ndarray, dtype=np.float64) -> np.ndarray:
        """``x @ M`` in ``dtype``, (B, n_out)."""
        return self.geometry.apply(np.asarray(x, dtype), np.asarray(self.kernel, dtype))

    def synapses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pre, post, w)`` of every synapse: ``w = kernel.ravel()[kernel_index]`` (float64, mV)."""
        pre, post, kidx = self.geometry.index_map()
        return pre, post, np.asarray(self.kernel, np.float64).ravel()[kidx]

    def dense(self) -> np.ndarray:
        """The layer's weight matrix (n_in, n_out), float64: zero where there is no synapse."""
        pre, post, w = self.synapses()
        out = np.zeros(self.shape)
        out[pre, post] = w
        return out

    def fan_out(self) -> np.ndarray:
        """Synapses leaving each input neuron, int64 (n_in,)."""
        return np.bincount(self.geometry.index_map()[0], minlength=self.shape[0])

    def incoming_sums(self) -> np.ndarray:
        """Sum of each neuron's incoming weights, float64 (n_out,): the map applied to ones."""
        return self.apply(np.ones((1, self.shape[0])))[0]


def linear(x: np.ndarray, w, dtype=np.float32) -> np.ndarray:
    """``x @ W`` in ``dtype`` for a dense weight matrix (n_in, n_out) or a :class:`ConvMap`."""
    if isinstance(w, ConvMap):
        return w.apply(x, dtype)
    return np.asarray(x, dtype=dtype) @ np.asarray(w, dtype=dtype)


def incoming_sums(w) -> np.ndarray:
    """Sum of each neuron's incoming weights (n_out,), float64, of a matrix or a :class:`ConvMap`."""
    return w.incoming_sums() if isinstance(w, ConvMap) else np.asarray(w, np.float64).sum(axis=0)
