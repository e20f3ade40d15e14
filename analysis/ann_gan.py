"""A same-size NON-spiking GAN in NumPy: the reference point for the Spiking-GAN's sample quality.

G: noise ``z ~ U(0, 1)^noise_dim`` (the spiking GAN's prior, ``models/coding.py``) ->
fixed centring ``2 z - 1`` -> hidden layer(s) (leaky ReLU, slope 0.2) -> 784 (sigmoid, pixel
intensities in [0, 1]).
D: 784 -> hidden layer(s) (leaky ReLU, slope 0.2) -> 1 logit.

Optionally convolutional (DCGAN-style, Radford et al. 2016, without batch normalisation): D's
images go through strided convolutions before its dense layers, G's dense layers end on the
smallest image and transposed convolutions take it up to 28 x 28 (``g_conv`` / ``d_conv`` of
:func:`train_ann_gan`; the layout of the spiking model's convolutional ramp layers,
:func:`training.networks.conv_stack`, and the same maps, :class:`models.ramp.ConvGeometry`, with
one bias per output channel). A layer's ``geometry`` is None for a dense layer.

The fixed centring belongs to G, just as the fixed TTFS encoding ``t = floor((1 - z) t_max)``
belongs to the spiking G: the prior stays U(0, 1). It matters: fed the uncentred z, this G
collapses onto a single image within a few epochs (measured at 256 hidden units: class
coverage 0.1, classifier-FID ~200 after 25-50 epochs), while with ``2 z - 1`` it covers all
ten digits (FID ~27 after 50 epochs).

Non-saturating GAN loss (Goodfellow et al. 2014):
``L_D = softplus(-D(x)) + softplus(D(G(z)))``, ``L_G = softplus(-D(G(z)))``, means over the
minibatch; one D step then one G step (fresh noise) per minibatch; Adam (lr 2e-4,
beta1 0.5, beta2 0.999, as in DCGAN).

The helps a GAN practitioner gives such a pair, each off by default (the spiking pair gets the
same kinds: ``ramp.r1``, ``train.lr_decay``):

* an R1 penalty on D at real images (Mescheder et al. 2018), ``r1 / 2 * mean ||dD(x)/dx||^2``
  with D's logit, exact (:func:`r1_penalty`);
* an exponential moving average of G's weights after every G step (``ema``, e.g. 0.999;
  Yazici et al. 2019, as in StyleGAN), which :meth:`AnnGan.generate` samples from;
* a learning-rate decay per epoch (``lr_decay``). Everything is float32 and vectorised over the batch;
the run is deterministic given ``seed`` (one ``np.random.default_rng(seed)`` for the
initialisation, the shuffling and the noise). Real images are scaled to [0, 1], the same
range as G's output and as the spiking GAN's decoded images.

Saved as one ``.npz`` (weights + JSON metadata), written atomically, no pickle.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.quality import N_PIXELS, as_unit_images, limit_blas_threads
from models.files import FileFormatError, load_npz, numeric_array, save_npz
from models.ramp import ConvGeometry
from training.exact import Adam
from training.networks import conv_stack

#: Format tag stored in ANN-GAN files.
ANN_GAN_FORMAT = "spiking-gan-ann-gan-1"
#: Negative slope of the leaky ReLU.
LEAK = np.float32(0.2)


# ----------------------------------------------------------------------------------------------
# a plain MLP: forward with cache, backward


def init_mlp(rng: np.random.Generator, sizes: Sequence[int],
             geoms: Sequence[ConvGeometry | None] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Glorot-uniform weights, zero biases: float32 (n_in, n_out) of a dense layer, the kernel
    ``geometry.kernel_shape`` of a convolutional one (its fan-in and fan-out: synapses per output
    and per input neuron, on average), and one bias per output channel."""
    ws, bs = [], []
    geoms = geoms or [None] * (len(sizes) - 1)
    for a, b, geom in zip(sizes[:-1], sizes[1:], geoms):
        if geom is None:
            lim = np.sqrt(6.0 / (a + b))
            ws.append(rng.uniform(-lim, lim, (a, b)).astype(np.float32))
            bs.append(np.zeros(b, np.float32))
        else:
            n_syn = len(geom.index_map()[0])
            lim = np.sqrt(6.0 / (n_syn / geom.shape[1] + n_syn / geom.shape[0]))
            ws.append(rng.uniform(-lim, lim, geom.kernel_shape).astype(np.float32))
            bs.append(np.zeros(geom.out_shape[0], np.float32))
    return ws, bs


def _linear(geom: ConvGeometry | None, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ W`` (batch, n_out) of a dense layer, or the (transposed) convolution of a conv one."""
    return x @ w if geom is None else geom.apply(x, w)


def _adjoint(geom: ConvGeometry | None, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``g @ W^T`` (batch, n_in): an error sent back through the layer."""
    return g @ w.T if geom is None else geom.adjoint(g, w)


def _weight_grad(geom: ConvGeometry | None, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``x^T g`` in the weights' shape (a kernel's: summed over the synapses sharing a weight)."""
    return x.T @ g if geom is None else geom.weight_grad(x, g)


def _bias(geom: ConvGeometry | None, b: np.ndarray) -> np.ndarray:
    """The bias of every output neuron (a conv layer's channel biases, repeated over the image)."""
    return b if geom is None else np.repeat(b, geom.out_shape[1] * geom.out_shape[2])


def _bias_grad(geom: ConvGeometry | None, g: np.ndarray) -> np.ndarray:
    """``sum_batch g`` per bias (a conv layer's: also summed over the channel's image)."""
    if geom is None:
        return g.sum(axis=0)
    return g.reshape(len(g), geom.out_shape[0], -1).sum(axis=(0, 2))


def mlp_forward(ws, bs, x: np.ndarray, geoms=None):
    """Pre-activation of the last layer and the inputs of every layer (for backprop);
    ``geoms``: a :class:`ConvGeometry` or None per layer (None: all dense)."""
    inputs = []
    h = x
    geoms = geoms or [None] * len(ws)
    for k, (w, b, geom) in enumerate(zip(ws, bs, geoms)):
        inputs.append(h)
        z = h @ w + b if geom is None else geom.apply(h, w) + _bias(geom, b)
        if k < len(ws) - 1:
            h = np.where(z > 0, z, LEAK * z)
        else:
            h = z
    return h, inputs


def mlp_backward(ws, inputs, delta: np.ndarray, need_input_grad: bool = False, geoms=None):
    """Gradients given ``delta`` = dL/d(last pre-activation) (batch, n_out).

    Returns (weight grads, bias grads, dL/dx or None). Hidden layers are leaky ReLU; their
    output was the next layer's input, whose sign equals the pre-activation's sign.
    """
    gws: list[np.ndarray] = [None] * len(ws)  # type: ignore[list-item]
    gbs: list[np.ndarray] = [None] * len(ws)  # type: ignore[list-item]
    geoms = geoms or [None] * len(ws)
    for k in range(len(ws) - 1, -1, -1):
        gws[k] = _weight_grad(geoms[k], inputs[k], delta)
        gbs[k] = _bias_grad(geoms[k], delta)
        if k > 0 or need_input_grad:
            dh = _adjoint(geoms[k], ws[k], delta)
            if k > 0:
                delta = np.where(inputs[k] > 0, dh, LEAK * dh)
            else:
                delta = dh
    return gws, gbs, (delta if need_input_grad else None)


def centre_noise(z: np.ndarray) -> np.ndarray:
    """G's fixed input map: U(0, 1) noise to U(-1, 1)."""
    return np.float32(2.0) * z - np.float32(1.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32, copy=False)


def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), z)


# ----------------------------------------------------------------------------------------------
# one GAN step, shared with experiments.controls


class Mlp:
    """One half of a non-spiking GAN: an MLP's weights and biases with their own Adam state.

    ``w`` and ``b`` are the lists :func:`init_mlp` returns; updates change them in place.
    """

    def __init__(self, w: list[np.ndarray], b: list[np.ndarray], geoms=None):
        self.w, self.b = w, b
        #: a :class:`models.ramp.ConvGeometry` or None (dense) per layer
        self.geoms = list(geoms) if geoms else [None] * len(w)
        self.opt = Adam.like(w + b)

    @classmethod
    def init(cls, rng: np.random.Generator, sizes: Sequence[int], geoms=None) -> Mlp:
        return cls(*init_mlp(rng, sizes, geoms), geoms)

    def forward(self, x: np.ndarray):
        """:func:`mlp_forward`: last pre-activation and every layer's input."""
        return mlp_forward(self.w, self.b, x, self.geoms)

    def step(self, inputs, delta: np.ndarray, lr: float, beta1: float, beta2: float) -> None:
        """One Adam step from ``delta`` = dL/d(last pre-activation) (batch, n_out)."""
        gws, gbs, _ = mlp_backward(self.w, inputs, delta, geoms=self.geoms)
        self.opt.step(self.w + self.b, gws + gbs, lr, beta1, beta2)


def r1_penalty(ws: Sequence[np.ndarray], inputs: Sequence[np.ndarray], gamma: float, geoms=None
               ) -> tuple[float, list[np.ndarray]]:
    """The R1 penalty ``gamma / 2 * mean_n ||d logit_n / d x_n||^2`` of a one-logit leaky-ReLU
    MLP and its gradient with respect to the weights.

    The input gradient of such an MLP is ``W_0 M_1 W_1 ... M_{L-1} W_{L-1}`` (``M_k`` the slopes,
    1 or :data:`LEAK`, of hidden layer k), piecewise constant in the biases and linear in each
    weight matrix between the kinks; the gradient below is exact there (and the biases get none).
    A convolutional layer is the dense layer of its (sparse, shared) matrix: the same chain, with
    its map, adjoint and kernel gradient.

    Parameters
    ----------
    ws : weight matrices (n_k, n_{k+1}), the last (n, 1)
    inputs : the layer inputs of a forward pass (:func:`mlp_forward`) on the images the penalty
        is taken at (only their signs, the leaky ReLU's slopes, are used beyond the first)
    gamma : the weight
    geoms : a :class:`models.ramp.ConvGeometry` or None per layer (None: all dense)

    Returns
    -------
    (penalty value, list of weight gradients shaped like ``ws``)
    """
    n_layers = len(ws)
    geoms = geoms or [None] * n_layers
    n = inputs[0].shape[0]
    slopes = [None] + [np.where(inputs[k] > 0, np.float32(1.0), LEAK) for k in range(1, n_layers)]
    # backward of the logit as a linear chain: u[L] = 1, v_k = u[k+1] W_k^T, u[k] = v_k * M_k
    u: list[np.ndarray] = [None] * (n_layers + 1)  # type: ignore[list-item]
    u[n_layers] = np.ones((n, 1), np.float32)
    for k in range(n_layers - 1, 0, -1):
        u[k] = _adjoint(geoms[k], ws[k], u[k + 1]) * slopes[k]
    grad_x = _adjoint(geoms[0], ws[0], u[1])  # (n, n_in)
    value = float(0.5 * gamma * np.mean(np.einsum("ij,ij->i", grad_x, grad_x)))
    # reverse mode through that chain
    gws: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    dv = grad_x * np.float32(gamma / n)
    for k in range(n_layers):
        gws[k] = _weight_grad(geoms[k], dv, u[k + 1])
        if k + 1 < n_layers:
            dv = _linear(geoms[k], ws[k], dv) * slopes[k + 1]
    return value, gws


def d_step(d: Mlp, real01: np.ndarray, fake01: np.ndarray, lr: float, beta1: float,
           beta2: float, r1: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One update of D on m real and m fake images (m, 784) in [0, 1]: real -> 1, fake -> 0.

    Minimises ``mean softplus(-D(x)) + mean softplus(D(G(z)))``, plus with ``r1 > 0`` the R1
    penalty :func:`r1_penalty` at the real images; returns D's logits on the real and on the
    fake images (m,) each, before the update.
    """
    m = len(real01)
    inv_m = np.float32(1.0 / m)
    logit, inputs = d.forward(np.concatenate([real01, fake01]))
    lr_, lf_ = logit[:m, 0], logit[m:, 0]
    # dL/dlogit: softplus(-l)' = -sigmoid(-l); softplus(l)' = sigmoid(l)
    delta = np.concatenate([-sigmoid(-lr_), sigmoid(lf_)]) * inv_m
    gws, gbs, _ = mlp_backward(d.w, inputs, delta[:, None], geoms=d.geoms)
    if r1 > 0:
        _, r1_gws = r1_penalty(d.w, [a[:m] for a in inputs], r1, d.geoms)
        gws = [a + b for a, b in zip(gws, r1_gws)]
    d.opt.step(d.w + d.b, gws + gbs, lr, beta1, beta2)
    return lr_, lf_


def pixel_grad(d: Mlp, fake01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dL_G/d(intensity)`` of fakes (m, 784) under the non-saturating G loss
    ``mean softplus(-D(G(z)))`` through D (not updated), and D's logits on them (m,)."""
    logit, inputs = d.forward(fake01)
    logit = logit[:, 0]
    delta = (-sigmoid(-logit) * np.float32(1.0 / len(fake01)))[:, None]
    _, _, dx = mlp_backward(d.w, inputs, delta, need_input_grad=True, geoms=d.geoms)
    return dx, logit


def g_step(g: Mlp, g_inputs, fake01: np.ndarray, grad01: np.ndarray, lr: float, beta1: float,
           beta2: float) -> None:
    """One update of G (sigmoid pixels ``fake01``, forward inputs ``g_inputs``) from the
    gradient ``grad01`` of its loss with respect to the pixel intensities (m, 784)."""
    g.step(g_inputs, grad01 * fake01 * (1.0 - fake01), lr, beta1, beta2)


# ----------------------------------------------------------------------------------------------
# the model


@dataclass
class AnnGan:
    """Weights of a trained non-spiking GAN.

    Attributes
    ----------
    noise_dim : int
    g_weights, g_biases : lists of float32 arrays, (n_in, n_out) and (n_out,) per layer;
        noise_dim -> g_hidden... -> 784
    d_weights, d_biases : lists of float32 arrays; 784 -> d_hidden... -> 1
    history : dict of per-epoch lists (``d_loss``, ``g_loss``, ``d_real`` = mean
        sigmoid(D(x)), ``d_fake`` = mean sigmoid(D(G(z))), ``seconds`` since the start,
        callback time included)
    g_ema_weights, g_ema_biases : lists like ``g_weights`` / ``g_biases``, or None
        The moving average of G's weights (``ema`` of :func:`train_ann_gan`); when present,
        :meth:`generate` and :meth:`generate_from` sample from it unless told otherwise.
    g_geoms, d_geoms : lists of :class:`models.ramp.ConvGeometry` or None per layer, or None
        The convolutional layers (their weights are kernels ``kernel_shape``, their biases one per
        output channel); None: every layer dense.
    """

    noise_dim: int
    g_weights: list[np.ndarray]
    g_biases: list[np.ndarray]
    d_weights: list[np.ndarray]
    d_biases: list[np.ndarray]
    history: dict[str, list] = field(default_factory=dict)
    g_ema_weights: list[np.ndarray] | None = None
    g_ema_biases: list[np.ndarray] | None = None
    g_geoms: list[ConvGeometry | None] | None = None
    d_geoms: list[ConvGeometry | None] | None = None

    @property
    def g_sizes(self) -> list[int]:
        """Neurons per layer of G, its inputs first."""
        return _layer_sizes(self.g_weights, self.g_geoms)

    @property
    def d_sizes(self) -> list[int]:
        """Neurons per layer of D, its inputs first."""
        return _layer_sizes(self.d_weights, self.d_geoms)

    @property
    def has_ema(self) -> bool:
        """Whether a moving average of G's weights is kept."""
        return self.g_ema_weights is not None

    def generate_from(self, z: np.ndarray, ema: bool = True) -> np.ndarray:
        """Images from given noise ``z`` (n, noise_dim) in [0, 1]: float32 (n, 28, 28) in [0, 1].

        ``ema``: use the moving average of G's weights when there is one (False: the last weights).
        """
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.noise_dim:
            raise ValueError(f"z must have shape (n, {self.noise_dim}), got {z.shape}")
        ws, bs = ((self.g_ema_weights, self.g_ema_biases) if ema and self.has_ema
                  else (self.g_weights, self.g_biases))
        logits, _ = mlp_forward(ws, bs, centre_noise(z), self.g_geoms)
        return sigmoid(logits).reshape(-1, 28, 28)

    def generate(self, n: int, rng: np.random.Generator, ema: bool = True) -> np.ndarray:
        """``n`` fresh samples: ``z ~ U(0, 1)^noise_dim`` from ``rng``, then G (see :meth:`generate_from`).

        Returns
        -------
        float32 array (n, 28, 28) in [0, 1]
        """
        return self.generate_from(rng.random((n, self.noise_dim), dtype=np.float32), ema)

    def discriminate(self, images01: np.ndarray) -> np.ndarray:
        """D's logits (float32 (n,)) for images (n, 28, 28) or (n, 784) in [0, 1] (or uint8)."""
        logits, _ = mlp_forward(self.d_weights, self.d_biases, as_unit_images(images01), self.d_geoms)
        return logits[:, 0]


def _layer_sizes(ws, geoms) -> list[int]:
    """``[n_in, n_1, ..., n_L]`` of layers given by their weights and geometries (None: dense)."""
    shapes = [w.shape if g is None else g.shape for w, g in zip(ws, geoms or [None] * len(ws))]
    return [int(shapes[0][0])] + [int(sh[1]) for sh in shapes]


def layout(noise_dim: int, g_hidden, d_hidden, g_conv=(), d_conv=(), conv_kernel: int = 4,
           conv_stride: int = 2) -> tuple[list[int], list, list[int], list]:
    """Layer sizes and geometries of G and D: ``(g_sizes, g_geoms, d_sizes, d_geoms)``.

    G: noise -> ``g_hidden`` (dense) -> [dense to ``g_conv[0] x s x s``, then one transposed
    convolution per entry of ``g_conv``] -> 784. D: 784 -> [one strided convolution per entry of
    ``d_conv``] -> ``d_hidden`` (dense) -> 1 logit. The convolutions:
    :func:`training.networks.conv_stack` (zero padding ``(conv_kernel - 1) // 2``).
    """
    g_stack = conv_stack("g", list(g_conv), conv_kernel, conv_stride) if len(g_conv) else []
    d_stack = conv_stack("d", list(d_conv), conv_kernel, conv_stride) if len(d_conv) else []
    g_sizes = [noise_dim, *_sizes(g_hidden), *[int(np.prod(c.in_shape)) for c in g_stack], N_PIXELS]
    d_sizes = [N_PIXELS, *[int(np.prod(c.out_shape)) for c in d_stack], *_sizes(d_hidden), 1]
    g_geoms = [None] * (len(g_sizes) - 1 - len(g_stack)) + g_stack
    d_geoms = d_stack + [None] * (len(d_sizes) - 1 - len(d_stack))
    return g_sizes, g_geoms, d_sizes, d_geoms


def _sizes(hidden) -> list[int]:
    if isinstance(hidden, (int, np.integer)):
        hidden = [hidden]
    hidden = [int(h) for h in hidden]
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be >= 1, got {hidden}")
    return hidden


def train_ann_gan(images: np.ndarray, noise_dim: int = 100, g_hidden: Sequence[int] = (400,),
                  d_hidden: Sequence[int] = (400,), epochs: int = 500, batch_size: int = 64,
                  lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, seed: int = 0,
                  progress: bool = False, max_seconds: float | None = None,
                  callback: Callable[[int, AnnGan], None] | None = None,
                  blas_threads: int | None = 1, r1: float = 0.0, ema: float = 0.0,
                  lr_decay: float = 1.0, g_conv: Sequence[int] = (), d_conv: Sequence[int] = (),
                  conv_kernel: int = 4, conv_stride: int = 2) -> AnnGan:
    """Train the non-spiking reference GAN.

    Per minibatch of real images (a shuffled pass over the data per epoch; the last, smaller
    batch is kept): one Adam step of D on the real batch and as many fakes, then one Adam
    step of G on a fresh noise batch of the same size (non-saturating loss).

    Parameters
    ----------
    images : (n, 28, 28) or (n, 784), uint8 or float in [0, 1]
    noise_dim : int
        Dimension of the uniform [0, 1] noise.
    g_hidden, d_hidden : int or sequence of int
        Hidden layer sizes of G and D (any depth).
    epochs : int
        Passes over the data. Default 500: about 2 minutes (112 s measured, 1 BLAS thread)
        for the 4,000 embedded training digits at noise 100, hidden (256,), batch 64, on 2
        cores; the classifier-FID fluctuates between about 25 and 40 from epoch 50 on
        (29-32 at epoch 500).
    batch_size : int
    lr, beta1, beta2 : Adam settings of both networks (DCGAN's 2e-4, 0.5, 0.999).
    seed : int
        Seeds initialisation, shuffling and noise: the run is deterministic (for a given
        ``blas_threads``).
    progress : bool
        Show a tqdm bar over epochs (with the latest losses).
    max_seconds : float, optional
        Stop after the first epoch that ends past this wall-clock budget (the result then
        depends on the machine's speed; ``history["seconds"]`` records it).
    callback : callable(epoch, gan), optional
        Called after each epoch (1-based) with the current model (arrays are live: copy
        them to keep a snapshot), e.g. to evaluate the sample quality along the way.
    blas_threads : int or None
        BLAS threads while training (``analysis.quality.limit_blas_threads``; None = as is).
    r1 : float
        Weight gamma of the R1 penalty on D at the real images of each D step
        (:func:`r1_penalty`; 0 = none; 10 is the usual value for images in [0, 1]).
    ema : float in [0, 1)
        Decay of the moving average of G's weights, updated after every G step
        (``avg <- ema * avg + (1 - ema) * w``, started at the initial weights; 0 = none).
    lr_decay : float in (0, 1]
        Both learning rates are multiplied by this after every epoch.
    g_conv, d_conv : sequences of int
        Channels of G's transposed and D's strided convolutions (empty: an MLP; :func:`layout`).
    conv_kernel, conv_stride : int
        Their square kernel's side and stride.

    Returns
    -------
    AnnGan
    """
    with limit_blas_threads(blas_threads):
        return _train(as_unit_images(images), noise_dim, g_hidden, d_hidden, epochs, batch_size,
                      lr, beta1, beta2, seed, progress, max_seconds, callback, r1, ema, lr_decay,
                      (g_conv, d_conv, conv_kernel, conv_stride))


def _train(x, noise_dim, g_hidden, d_hidden, epochs, batch_size, lr, beta1, beta2, seed, progress,
           max_seconds, callback, r1, ema, lr_decay, conv) -> AnnGan:
    if x.shape[0] < 1:
        raise ValueError("need at least one training image")
    if noise_dim < 1 or batch_size < 1 or epochs < 0:
        raise ValueError("noise_dim and batch_size must be >= 1, epochs >= 0")
    if r1 < 0 or not 0 <= ema < 1 or not 0 < lr_decay <= 1:
        raise ValueError(f"need r1 >= 0, 0 <= ema < 1 and 0 < lr_decay <= 1, got {r1}, {ema}, {lr_decay}")
    rng = np.random.default_rng(seed)
    g_sizes, g_geoms, d_sizes, d_geoms = layout(noise_dim, g_hidden, d_hidden, *conv)
    g = Mlp.init(rng, g_sizes, g_geoms)
    d = Mlp.init(rng, d_sizes, d_geoms)
    hist: dict[str, list] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "seconds": []}
    convolutional = any(x is not None for x in g_geoms + d_geoms)
    gan = AnnGan(noise_dim, g.w, g.b, d.w, d.b, hist, g_geoms=g_geoms if convolutional else None,
                 d_geoms=d_geoms if convolutional else None)
    if ema > 0:
        gan.g_ema_weights, gan.g_ema_biases = [w.copy() for w in g.w], [b.copy() for b in g.b]
    averaged = (gan.g_ema_weights or []) + (gan.g_ema_biases or [])
    keep, take = np.float32(ema), np.float32(1.0 - ema)
    gw, dw = g.w, d.w
    n = x.shape[0]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs, desc="ANN GAN", unit="epoch")
    t0 = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            sums = np.zeros(4)
            for s in range(0, n, batch_size):
                real = x[order[s:s + batch_size]]
                m = real.shape[0]
                # --- D step: real -> 1, fake -> 0
                fake = sigmoid(g.forward(centre_noise(rng.random((m, noise_dim), dtype=np.float32)))[0])
                lr_, lf_ = d_step(d, real, fake, lr, beta1, beta2, r1)
                d_loss = float(softplus(-lr_).mean() + softplus(lf_).mean())
                d_real, d_fake = float(sigmoid(lr_).mean()), float(sigmoid(lf_).mean())
                # --- G step: non-saturating, maximise log D(G(z))
                g_logit, g_in = g.forward(centre_noise(rng.random((m, noise_dim), dtype=np.float32)))
                fake = sigmoid(g_logit)
                grad01, d_logit = pixel_grad(d, fake)
                g_step(g, g_in, fake, grad01, lr, beta1, beta2)
                for avg, w in zip(averaged, g.w + g.b):
                    avg *= keep
                    avg += take * w
                g_loss = float(softplus(-d_logit).mean())
                sums += np.array([d_loss, g_loss, d_real, d_fake]) * m
            sums /= n
            for key, v in zip(("d_loss", "g_loss", "d_real", "d_fake"), sums):
                hist[key].append(float(v))
            elapsed = time.perf_counter() - t0
            hist["seconds"].append(elapsed)
            if not np.all([np.all(np.isfinite(w)) for w in gw + dw]):
                raise FloatingPointError(f"ANN GAN weights became non-finite at epoch {epoch}")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d_loss=f"{sums[0]:.3f}", g_loss=f"{sums[1]:.3f}",
                                d_real=f"{sums[2]:.2f}", d_fake=f"{sums[3]:.2f}")
            if callback is not None:
                callback(epoch, gan)
            if max_seconds is not None and elapsed >= max_seconds:
                break
            lr *= lr_decay
    finally:
        if bar is not None:
            bar.close()
    return gan


# ----------------------------------------------------------------------------------------------
# files


def save_ann_gan(gan: AnnGan, path: str, meta: dict[str, Any] | None = None) -> None:
    """Write the GAN to an ``.npz`` atomically (temp file + ``os.replace``), no pickle.

    Arrays ``g_w{k}``, ``g_b{k}``, ``d_w{k}``, ``d_b{k}`` (and ``g_ema_w{k}``, ``g_ema_b{k}``
    with a moving average) and a JSON string ``meta`` (format, noise_dim, layer counts, the
    training history and ``meta``).
    """
    arrays: dict[str, np.ndarray] = {}
    nets = [("g", gan.g_weights, gan.g_biases), ("d", gan.d_weights, gan.d_biases)]
    if gan.has_ema:
        nets.append(("g_ema", gan.g_ema_weights, gan.g_ema_biases))
    for name, ws, bs in nets:
        for k, (w, b) in enumerate(zip(ws, bs)):
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"refusing to save non-finite weights {name} layer {k}")
            arrays[f"{name}_w{k}"] = np.asarray(w, np.float32)
            arrays[f"{name}_b{k}"] = np.asarray(b, np.float32)
    info = dict(meta or {}, format=ANN_GAN_FORMAT, noise_dim=int(gan.noise_dim),
                n_g=len(gan.g_weights), n_d=len(gan.d_weights), history=gan.history)
    if gan.has_ema:
        info["n_g_ema"] = len(gan.g_ema_weights)
    for name, geoms in (("g", gan.g_geoms), ("d", gan.d_geoms)):
        if geoms is not None:
            info[f"{name}_geoms"] = [None if g is None else dataclasses.asdict(g) for g in geoms]
    save_npz(path, arrays, info)


def load_ann_gan(path: str) -> AnnGan:
    """Read a GAN written by :func:`save_ann_gan` (``allow_pickle=False``).

    Raises
    ------
    ValueError
        Missing, corrupt or foreign file, inconsistent layer shapes, NaN/inf weights.
    """
    where = f"ANN GAN file {path}"
    stored, meta = load_npz(path, "ANN GAN file", meta_required=True)
    try:
        if meta.get("format") != ANN_GAN_FORMAT:
            raise KeyError("format")
        names = ("g", "d", "g_ema") if "n_g_ema" in meta else ("g", "d")
        nets = {name: tuple([numeric_array(stored, f"{name}_{p}{k}", where, ndim=(1, 2, 4))
                             for k in range(int(meta[f"n_{name}"]))] for p in ("w", "b"))
                for name in names}
        noise_dim = int(meta["noise_dim"])
        geoms = {name: _geometries(meta.get(f"{name}_geoms"), int(meta[f"n_{name}"])) for name in ("g", "d")}
    except (ValueError, KeyError, TypeError) as exc:
        raise FileFormatError(f"{where} is corrupt, unreadable or not an ANN GAN file "
                              f"({type(exc).__name__}: {exc})") from None
    for name, (ws, bs) in nets.items():
        first, last = (N_PIXELS, 1) if name == "d" else (noise_dim, N_PIXELS)
        prev = first
        ok = len(ws) >= 1
        for w, b, geom in zip(ws, bs, geoms["d" if name == "d" else "g"] or [None] * len(ws)):
            if geom is None:
                ok = ok and w.ndim == 2 and w.shape[0] == prev and b.shape == (w.shape[1],)
                n_out = w.shape[1] if w.ndim == 2 else -1
            else:
                ok = ok and w.shape == geom.kernel_shape and geom.shape[0] == prev
                ok = ok and b.shape == (geom.out_shape[0],)
                n_out = geom.shape[1]
            ok = ok and bool(np.all(np.isfinite(w)) and np.all(np.isfinite(b)))
            prev = n_out
        if not ok or prev != last:
            raise FileFormatError(f"ANN GAN file {path}: the {name.upper()} weights are inconsistent "
                                  f"(expected {first} -> ... -> {last}, finite)")
    if "g_ema" in nets and [w.shape for w in nets["g_ema"][0]] != [w.shape for w in nets["g"][0]]:
        raise FileFormatError(f"ANN GAN file {path}: G's weight average does not have G's shapes")
    hist = meta.get("history") or {}
    ema_w, ema_b = nets.get("g_ema", (None, None))
    return AnnGan(noise_dim, nets["g"][0], nets["g"][1], nets["d"][0], nets["d"][1], dict(hist),
                  None if ema_w is None else list(ema_w), None if ema_b is None else list(ema_b),
                  geoms["g"], geoms["d"])


def _geometries(stored, n_layers: int) -> list[ConvGeometry | None] | None:
    """The layer geometries of a file's metadata (None: all dense); a ValueError if malformed."""
    if stored is None:
        return None
    if not isinstance(stored, list) or len(stored) != n_layers:
        raise ValueError(f"expected {n_layers} layer geometries, got {stored!r}")
    out = []
    for g in stored:
        if g is None:
            out.append(None)
            continue
        if not isinstance(g, dict) or set(g) != {"big", "small", "kernel", "stride", "pad", "transposed"}:
            raise ValueError(f"malformed layer geometry {g!r}")
        out.append(ConvGeometry(tuple(int(v) for v in g["big"]), tuple(int(v) for v in g["small"]),
                                int(g["kernel"]), int(g["stride"]), int(g["pad"]), bool(g["transposed"])))
    return out
