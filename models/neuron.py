"""The integrate-and-fire neuron of Spiking-GAN, defined once.

This module is *what the model is*: the equations (as Brian2 strings, with
physical units), the parameters, and the discrete-time semantics that every
simulator of this project follows exactly. How the model is simulated lives in
:mod:`models.brian` (Brian2, the reference) and :mod:`models.kernel` (a
vectorised NumPy kernel used for training).

Discrete-time semantics (the contract)
--------------------------------------
Time advances in steps of ``dt``; a simulation window holds ``t_max`` steps,
``0 .. t_max - 1``. A spike time is an integer step; the value ``t_max`` means
"no spike in the window".

For neuron ``j`` of a layer with presynaptic neurons ``i`` (weights ``w_ij`` in
mV, instantaneous non-leaky synapses)::

    V_j(t) = sum_i w_ij * [t_i + latency - 1 <= t]
    t_j    = min { t : V_j(t - 1) >= theta - EPS }      (first crossing, + latency)
    t_j    = t_max  if that time is >= t_max             (no spike)

With the default ``latency = 1`` this is the S4NN reference's timing
(``argmax(V > thr) + 1``): an input spike arriving at step ``t`` is integrated
during step ``t`` and the threshold is tested at the start of step ``t + 1``. The
reference's test is strict (``V > thr``); this project's default is ``V >= theta - EPS``,
which differs only when a potential lands exactly on the threshold (with integer weights:
often). ``NeuronParams.strict`` (config ``neuron.strict_threshold``) switches both
simulators to the reference's strict test: the kernel fires on ``V > theta`` exactly in its
dtype, Brian2 (potentials in volt) on ``v > theta + EPS``; the two agree wherever no
potential lies within EPS above the threshold.
Brian2's default schedule (``thresholds`` before ``synapses``) has exactly this
one-step delay; a latency of ``L > 1`` is a synaptic delay of ``(L - 1) * dt``.

After its spike a neuron is refractory for longer than the window, so it
fires at most once (time-to-first-spike coding).

Windowed ramp neuron (``neuron.model = "ramp"``, beyond the paper)
------------------------------------------------------------------
Also non-leaky IF with at most one spike, but with *current* synapses: an input
spike adds ``w`` to a synaptic current ``I`` that stays on, so the potential
ramps (``dv/dt = I / tau``, ``tau = dt``; ReL-PSP). Each layer owns a window of
``T = t_max`` steps: layer ``k`` (inputs are layer 0) collects its inputs during
window ``k - 1`` and may fire only during window ``k`` (global steps
``k T .. (k + 1) T - 1``). When its window opens, a control current replaces
the synaptic one and drives ``v`` at the fixed rate ``r = 1 mV`` per step (the
extra current of Stanojevic et al., Nat. Commun. 2024). Per neuron threshold
``theta_j`` (mV). In discrete time (Brian2's schedule: state update, threshold,
then synapses) an input spike at step ``k_i`` raises ``I`` after step ``k_i``'s
update, so::

    V_j(k T + s) = sum_i w_ij x_i + s * r,        x_i = k T - k_i  (the input's earliness)
    t_j = first s in 0 .. T - 1 with V_j >= theta_j - EPS  (relative to the window)

which is ``x_j = T - t_j = clip(floor(T - theta_j + sum_i w_ij x_i), 0, T)``:
exactly a ReLU layer clipped at ``T``, quantised to whole steps (Brian2 fires at
the ceiling of the continuous crossing time). :mod:`models.ramp` simulates it
in closed form; :mod:`training.exact` trains it with its exact gradient.

``EPS`` is a numerical guard of 1e-6 mV: Brian2 stores potentials in volt
(float64), the kernel in mV (float32 or float64), so a potential that lands
*exactly* on the threshold could otherwise round to either side in one of
them. Physically it is far below any weight resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Numerical guard on the threshold test, in mV (see module docstring).
THRESHOLD_EPS_MV = 1e-6

#: Brian2 model equations of the non-leaky IF neuron. ``v`` only changes through
#: instantaneous synaptic jumps, so it has no differential equation.
NEURON_EQUATIONS = """
v : volt
theta : volt (constant)
"""

#: Brian2 threshold condition (``eps`` is :data:`THRESHOLD_EPS_MV` in mV).
THRESHOLD_CONDITION = "v >= theta - eps"
#: The S4NN reference's strict test ``V > thr`` (``NeuronParams.strict``).
STRICT_THRESHOLD_CONDITION = "v > theta + eps"

#: Brian2 synapse model: a presynaptic spike adds ``w`` to the membrane.
SYNAPSE_MODEL = "w : volt"
SYNAPSE_ON_PRE = "v_post += w"

#: Brian2 equations of the windowed ramp neuron (see module docstring). ``I`` is
#: the synaptic current (a step per input spike, as a potential per ``tau``);
#: from ``t_on`` on, the control current holds the slope at ``r``.
RAMP_EQUATIONS = """
dv/dt = ((1 - int(t > t_on)) * I + int(t > t_on) * r) / tau : volt
I : volt
theta : volt (constant)
t_on : second (constant, shared)
t_from : second (constant, shared)
t_until : second (constant, shared)
"""

#: The ramp neuron may fire only inside its window ``[t_from, t_until]``.
RAMP_THRESHOLD_CONDITION = "v >= theta - eps and t > t_from and t < t_until"

#: Ramp synapse: a presynaptic spike steps the synaptic current up by ``w``.
RAMP_SYNAPSE_ON_PRE = "I_post += w"

#: Slope of the potential in the output window, mV per step (the unit of ``x``).
RAMP_RATE_MV = 1.0



@dataclass(frozen=True)
class NeuronParams:
    """Parameters shared by both simulators.

    Parameters
    ----------
    thresholds : tuple of float
        Firing threshold of each layer, in mV (one entry per weight matrix).
    t_max : int
        Window length in steps; also the "no spike" time. Default 256.
    dt_ms : float
        Step length in ms. Default 1 ms.
    latency : int
        Steps from an input spike to the earliest output spike it can cause
        (>= 1; 1 is the S4NN / Brian2 default convention).
    strict : bool
        Fire on ``V > theta`` (the S4NN reference's test) instead of ``V >= theta - EPS``.
    """

    thresholds: tuple[float, ...] = (100.0, 100.0)
    t_max: int = 256
    dt_ms: float = 1.0
    latency: int = 1
    strict: bool = False

    def __post_init__(self):
        th = tuple(float(x) for x in np.atleast_1d(self.thresholds))
        object.__setattr__(self, "thresholds", th)
        if not th or not all(np.isfinite(x) and x > 0 for x in th):
            raise ValueError(f"thresholds must be finite and > 0 mV, got {th}")
        if int(self.t_max) != self.t_max or self.t_max < 2:
            raise ValueError(f"t_max must be an integer >= 2 steps, got {self.t_max}")
        object.__setattr__(self, "t_max", int(self.t_max))
        if not (np.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms}")
        if int(self.latency) != self.latency or not 1 <= self.latency < self.t_max:
            raise ValueError(f"latency must be an integer in [1, t_max), got {self.latency}")
        object.__setattr__(self, "latency", int(self.latency))

    @property
    def n_layers(self) -> int:
        return len(self.thresholds)


class NeuronModel:
    """What a simulator needs to know of a neuron model: its Brian2 equations and its windows.

    Thresholds are per neuron (``theta``, mV) in both models. ``window_start`` says when a
    layer may fire; a simulation of ``L`` layers runs until the last layer's window has closed,
    and a neuron is refractory for longer than that (at most one spike).

    Attributes
    ----------
    name : the config's ``neuron.model``
    equations, threshold, on_pre : Brian2 strings (``eps``, ``tau`` and ``r`` in the namespace)
    method : Brian2 integration method
    """

    def __init__(self, name: str, equations: str, threshold: str, on_pre: str, method: str,
                 strict_threshold: str | None = None):
        self.name, self.equations, self.threshold, self.on_pre, self.method = (
            name, equations, threshold, on_pre, method)
        self.strict_threshold = strict_threshold

    def threshold_condition(self, strict: bool = False) -> str:
        """The Brian2 threshold string: ``threshold``, or the strict test of the S4NN reference."""
        if not strict:
            return self.threshold
        if self.strict_threshold is None:
            raise ValueError(f"the {self.name!r} neuron model has no strict threshold test")
        return self.strict_threshold

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def window_start(self, layer: int, t_max: int) -> int:
        """Global step at which layer ``layer`` (0 = the inputs) opens its window."""
        raise NotImplementedError

    def window_constants(self, layer: int, t_max: int) -> dict[str, float]:
        """Constants (in steps; the simulator multiplies by ``dt``) that gate layer ``layer``."""
        return {}

    def synaptic_delay_steps(self, latency: int) -> int:
        """Synaptic delay in steps for a network of ``latency`` steps per layer."""
        raise NotImplementedError

    def run_steps(self, n_layers: int, t_max: int) -> int:
        """Steps simulated for a network of ``n_layers`` layers: until its last window closes."""
        return self.window_start(n_layers, t_max) + t_max

    def refractory_steps(self, n_layers: int, t_max: int) -> int:
        """A refractory period longer than the whole run: at most one spike per neuron."""
        return self.run_steps(n_layers, t_max) + t_max


class IfNeuron(NeuronModel):
    """The paper's IF neuron: jump synapses, every layer in one window of ``t_max`` steps."""

    def window_start(self, layer: int, t_max: int) -> int:
        return 0

    def synaptic_delay_steps(self, latency: int) -> int:
        return latency - 1


class RampNeuron(NeuronModel):
    """The windowed ramp neuron: current synapses, layer ``k`` fires in window ``k``
    (global steps ``k T .. (k + 1) T - 1``), no synaptic delay."""

    def window_start(self, layer: int, t_max: int) -> int:
        return layer * t_max

    def window_constants(self, layer: int, t_max: int) -> dict[str, float]:
        # half-step margins: the tests ``t > t_from`` / ``t < t_until`` hold exactly on the window
        start = self.window_start(layer, t_max)
        return {"t_on": start + 0.5, "t_from": start - 0.5, "t_until": start + t_max - 0.5}

    def synaptic_delay_steps(self, latency: int) -> int:
        return 0


#: The two neuron models (their networks: :data:`training.networks.NETWORKS`).
IF_NEURON = IfNeuron("if", NEURON_EQUATIONS, THRESHOLD_CONDITION, SYNAPSE_ON_PRE, "exact",
                     STRICT_THRESHOLD_CONDITION)
RAMP_NEURON = RampNeuron("ramp", RAMP_EQUATIONS, RAMP_THRESHOLD_CONDITION, RAMP_SYNAPSE_ON_PRE, "euler")


def causal_mask(t_in: np.ndarray, t_out: np.ndarray, latency: int = 1) -> np.ndarray:
    """Whether an input spike could have contributed to an output spike.

    ``[t_i + latency <= t_j]``, i.e. ``[t_i < t_j]`` for the default latency:
    the input arrived before the output's threshold test. For an output that
    never fired (``t_j = t_max``) every input spike inside the window counts.
    This is ``dV_j / dw_ij`` of the S4NN learning rule.

    Parameters
    ----------
    t_in : array (batch, n_in), int
    t_out : array (batch, n_out), int
    latency : int

    Returns
    -------
    mask : bool array (batch, n_in, n_out)
    """
    return (t_in[:, :, None] + latency) <= t_out[:, None, :]
