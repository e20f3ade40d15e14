"""The trained networks as NIR graphs (Neuromorphic Intermediate Representation), and back into Brian2.

NIR (``pip install nir``; the optional extra ``nir``) is how snnTorch, Norse, SpikingJelly,
Sinabs, Lava and Rockpool exchange networks with each other and with neuromorphic chips. Its
nodes are continuous-time equations without units; this module reads them with spikes as
Dirac deltas of unit area, potentials (weights, thresholds) in mV and time in s.

Export (:func:`network_graph`, :func:`to_graph`)
-------------------------------------------------
One chain ``Input -> [Linear -> (I ->) IF] per layer -> Output``; the weights are
``Linear.weight`` (n_out, n_in), i.e. this project's (n_in, n_out) transposed.

* The paper's IF neuron (:data:`models.neuron.IF_NEURON`, jump synapses) is ``Linear -> IF``
  with ``r = 1``: a spike through weight ``w`` raises ``v`` by ``w``; exact. A latency of
  ``L > 1`` steps adds a ``Delay`` of ``(L - 1) dt``.
* The windowed ramp neuron (:data:`models.neuron.RAMP_NEURON`, current synapses) is
  ``Linear -> I -> IF``: the integrator ``I`` (``r = 1``) holds the synaptic current, a step of
  ``w`` per input spike, and the IF node (``r = 1 / dt``) integrates it, ``w`` mV per step.
  What NIR cannot say is in the IF node's metadata: its window (it may fire only in
  ``window_from_steps < t / dt < window_until_steps``) and the control current that replaces
  the synaptic one from ``window_on_steps`` on (slope ``control_rate_mV_per_step``).
* NIR's IF fires on ``v > v_threshold``; this project fires on ``v >= theta - EPS`` (EPS =
  1e-6 mV, :mod:`models.neuron`), exported as ``v_threshold = theta - EPS`` (the two differ only
  on a potential exactly equal to it); the strict S4NN test ``v > theta`` as ``theta + EPS``,
  as the project's Brian2 model has it.
* NIR has no refractory period and no "at most one spike" (a proposal, NIR #138, is open):
  ``v_reset`` lies below the threshold by more than the potential can rise in the whole run,
  so a neuron fires once at most.
* NIR leaves the time step to the importer: the spike times are exact only on the exported
  grid (``dt_ms`` and ``t_max_steps`` in the graph's metadata).

Import (:func:`read_chain`, :func:`simulate_graph`)
---------------------------------------------------
A chain of ``Affine``/``Linear``, optional ``Delay``, optional ``I``, then ``IF`` or ``LIF``,
per layer, becomes Brian2 equations with units (one ``NeuronGroup`` per spiking node, a batch
as block-diagonal copies, as in :mod:`models.brian`); an IF node with window metadata gets the
window's gate and control current. Any other node is a :class:`NirError` naming it.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import nir
import numpy as np

from .brian import TARGETS, _block_synapses, _brian2, _compile_note
from .errors import SpikingGanError
from .files import atomic_write
from .neuron import RAMP_RATE_MV, THRESHOLD_EPS_MV, NeuronModel, NeuronParams
from .ramp import ConvMap

#: Node types :func:`read_chain` reads.
SUPPORTED = ("Input", "Affine", "Linear", "Delay", "I", "IF", "LIF", "Output")
#: ``format`` of the graphs this project writes.
FORMAT = "spiking-gan TTFS network"
#: What NIR cannot say, in every exported graph's metadata and in the README.
LIMITS = ("NIR has no refractory period or at-most-one-spike primitive: v_reset lies below the "
          "threshold by more than the potential can rise in the run, so each neuron fires once at most. "
          "Spike times are exact only on the time grid dt_ms / t_max_steps of this metadata (NIR "
          "leaves the step to the importer).")
RAMP_LIMITS = ("The ramp neuron's window has no NIR node: layer k fires only in its own window "
               "(IF metadata window_from_steps < t/dt < window_until_steps), and from window_on_steps "
               "on a control current replaces the synaptic one (slope control_rate_mV_per_step); an "
               "importer that ignores this metadata simulates Linear -> I -> IF without them.")


class NirError(SpikingGanError):
    """A NIR graph this project cannot write or read (reported as one line)."""


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _reset_below(theta: np.ndarray, w: np.ndarray, rise_steps: int, rate: float) -> np.ndarray:
    """``v_reset`` (mV, (n_out,)) from which no neuron reaches its threshold again: below
    ``theta`` by 1 mV more than the largest rise of its potential, every excitatory input once
    (``rise_steps`` = 0: a jump each) or as a current for ``rise_steps`` steps, plus a slope of
    ``rate`` mV per step."""
    up = np.clip(np.asarray(w, np.float64), 0, None).sum(axis=0)
    rise = up if rise_steps == 0 else rise_steps * (up + rate)
    return np.asarray(theta, np.float64) - rise - 1.0


def to_graph(weights: Sequence[np.ndarray], thresholds: Sequence[np.ndarray], params: NeuronParams,
             neuron: NeuronModel, role: str = "", bias_times: Sequence[int] = ()) -> nir.NIRGraph:
    """A feed-forward TTFS network as a NIR graph (see module docstring).

    Parameters
    ----------
    weights : arrays (n_k, n_{k+1}), mV (per input spike, or per step of earliness: ramp)
    thresholds : arrays (n_{k+1},), per-neuron thresholds in mV
    params : NeuronParams (``t_max``, ``dt_ms``, ``latency``, ``strict``)
    neuron : the neuron model (:data:`models.neuron.IF_NEURON` or ``RAMP_NEURON``)
    role : "generator" or "discriminator" (metadata)
    bias_times : steps at which the last ``len(bias_times)`` input neurons fire on every sample
        (bias neurons: not data; the importer adds them)

    Returns
    -------
    nir.NIRGraph
    """
    T, L = params.t_max, len(weights)
    ramp = bool(neuron.window_constants(1, T))
    dt_s = params.dt_ms * 1e-3
    eps = THRESHOLD_EPS_MV if params.strict else -THRESHOLD_EPS_MV
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([weights[0].shape[0]])})}
    chain = ["input"]
    delay = neuron.synaptic_delay_steps(params.latency)
    for k, (w, theta) in enumerate(zip(weights, thresholds), start=1):
        w = np.asarray(w, np.float32)
        n_out = w.shape[1]
        ones = np.ones(n_out)
        nodes[f"linear_{k}"] = nir.Linear(weight=np.ascontiguousarray(w.T))
        chain.append(f"linear_{k}")
        if delay:
            nodes[f"delay_{k}"] = nir.Delay(delay=np.full(n_out, delay * dt_s))
            chain.append(f"delay_{k}")
        meta = {"window_start_steps": int(neuron.window_start(k, T))}
        if ramp:
            nodes[f"current_{k}"] = nir.I(r=ones.copy())
            chain.append(f"current_{k}")
            meta.update({f"window_{name[2:]}_steps": float(v)
                         for name, v in neuron.window_constants(k, T).items()})
            meta["control_rate_mV_per_step"] = RAMP_RATE_MV
            r, v_reset = ones / dt_s, _reset_below(theta, w, neuron.run_steps(L, T), RAMP_RATE_MV)
        else:
            r, v_reset = ones.copy(), _reset_below(theta, w, 0, 0.0)
        nodes[f"layer_{k}"] = nir.IF(r=r, v_threshold=np.asarray(theta, np.float64) + eps, v_reset=v_reset,
                                     metadata=meta)
        chain.append(f"layer_{k}")
    nodes["output"] = nir.Output(output_type={"output": np.array([weights[-1].shape[1]])})
    chain.append("output")
    metadata = {
        "format": FORMAT, "role": role, "neuron_model": neuron.name,
        "dt_ms": float(params.dt_ms), "dt_s": dt_s, "t_max_steps": int(T), "window_ms": T * params.dt_ms,
        "run_steps": int(neuron.run_steps(L, T)), "latency_steps": int(params.latency),
        "threshold_test": "v > v_threshold = theta " + ("+" if params.strict else "-") + " 1e-6 mV",
        "units": "weights, thresholds and potentials in mV; time in s; spikes are Dirac deltas of unit "
                 "area (Linear -> IF: r = 1, a jump of w; I -> IF: r = 1/dt, w mV per step)",
        "spike_times": "integer steps of dt_ms; t_max_steps = no spike; each layer's times relative to "
                       "its IF node's window_start_steps",
        "bias_input_times_steps": np.asarray(list(bias_times), np.int64),
        "limits": LIMITS + (" " + RAMP_LIMITS if ramp else ""),
    }
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])), metadata=metadata)


def network_graph(net, n_data: int, role: str) -> nir.NIRGraph:
    """:func:`to_graph` of a trained network (:class:`training.networks.Network`: what Brian2
    simulates of it, :meth:`brian_layers`, and its bias neurons from :meth:`brian_inputs`).

    Raises :class:`NirError` for what NIR cannot hold: a weight bank (one network per class) or
    an input computed from the batch (a minibatch statistic).
    """
    if np.asarray(net.state()["weights"][0]).ndim == 3:
        raise NirError(f"the {role} is a bank of per-class networks (per_class); NIR export takes a "
                       "single G/D pair")
    first, extra = net.brian_inputs(np.full((1, n_data), net.params.t_max, np.int32))
    if extra:
        raise NirError(f"the {role} has input neurons computed from the batch (s4nn.minibatch_std), "
                       "which a NIR graph cannot compute")
    weights, thresholds = net.brian_layers()
    # a convolutional layer travels as its weight matrix (zero where it has no synapse): NIR's
    # Conv2d node is not written, so that every importer of Linear chains reads the graph
    weights = [w.dense() if isinstance(w, ConvMap) else w for w in weights]
    return to_graph(weights, thresholds, net.params, net.neuron, role, first[0, n_data:].tolist())


def write_graph(path: str, graph: nir.NIRGraph) -> None:
    """Write ``graph`` as a NIR (HDF5) file, atomically."""
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_write(path, buf.getvalue())


def read_graph(path: str) -> nir.NIRGraph:
    """``nir.read``, a file it cannot read reported as a :class:`NirError` naming the file."""
    try:
        return nir.read(path)
    except OSError as exc:
        raise NirError(f"{path}: not a NIR (HDF5) file ({exc})") from None
    except (KeyError, ValueError, TypeError, AssertionError) as exc:
        raise NirError(f"{path}: not a NIR graph this nir version reads ({exc})") from None


@dataclass
class ChainLayer:
    """One spiking layer of a NIR chain, as :func:`simulate_graph` builds it.

    Attributes
    ----------
    name : the spiking node's name
    kind : "IF" or "LIF"
    w : float64 (n_in, n_out), mV: the jump of ``v`` (or of ``I``, with ``current``) per input spike
    bias : float64 (n_out,), mV / s: a constant input (Affine's bias, times ``r``)
    current : r of the neuron fed by an ``I`` node (1 / s), or None (the synapses jump ``v``)
    v_threshold, v_reset : float64 (n_out,), mV
    tau_s, v_leak : LIF only: time constant (s) and leak potential (mV)
    delay_s : synaptic delay (s)
    window : the ramp window from the IF node's metadata (steps), or None
    start : step at which the layer's window opens (its spike times are counted from it)
    """

    name: str
    kind: str
    w: np.ndarray
    bias: np.ndarray
    current: float | None
    v_threshold: np.ndarray
    v_reset: np.ndarray
    tau_s: np.ndarray | None = None
    v_leak: np.ndarray | None = None
    delay_s: float = 0.0
    window: dict | None = None
    start: int = 0


def _uniform(values, what: str) -> float:
    v = np.unique(np.asarray(values, np.float64))
    if v.size != 1:
        raise NirError(f"{what} differs between neurons; the Brian2 import takes one value per node")
    return float(v[0])


def read_chain(graph: nir.NIRGraph, where: str = "graph") -> tuple[int, list[ChainLayer]]:
    """The number of inputs and the layers of a feed-forward NIR chain (see module docstring).

    Raises
    ------
    NirError
        A node of an unsupported type (named), or a graph that is not one chain
        ``Input -> (Affine | Linear) -> [Delay] -> [I] -> (IF | LIF) -> ... -> Output``.
    """
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise NirError(f"{where}: node {name!r} is a {kind}, which the Brian2 import does not support "
                           f"(it reads {', '.join(SUPPORTED)})")
    nxt: dict[str, list[str]] = {}
    for a, b in graph.edges:
        nxt.setdefault(a, []).append(b)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NirError(f"{where}: {len(inputs)} Input nodes; the Brian2 import reads a chain with one")
    order, name = [], inputs[0]
    while not isinstance(graph.nodes[name], nir.Output):
        after = nxt.get(name, [])
        if len(after) != 1 or after[0] in order:
            raise NirError(f"{where}: node {name!r} has {len(after)} successors; the Brian2 import reads "
                           "one feed-forward chain")
        name = after[0]
        order.append(name)
    n_in = int(np.prod(graph.nodes[inputs[0]].output_type["output"]))
    layers, pending = [], {}
    for name in order[:-1]:
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind in ("Affine", "Linear"):
            if pending:
                raise NirError(f"{where}: node {name!r} follows another weight node; a spiking node must come between")
            w = np.asarray(node.weight, np.float64).T
            bias = np.asarray(node.bias, np.float64) if kind == "Affine" else np.zeros(w.shape[1])
            pending = {"w": w, "bias": bias}
        elif not pending:
            raise NirError(f"{where}: node {name!r} ({kind}) has no Affine/Linear node before it")
        elif kind == "Delay":
            pending["delay_s"] = _uniform(node.delay, f"{where}: the delay of {name!r}")
        elif kind == "I":
            r = np.asarray(node.r, np.float64)
            pending.update(w=pending["w"] * r, bias=pending["bias"] * r, via_i=True)
        else:  # IF, LIF
            meta = {k: v for k, v in (node.metadata or {}).items()}
            r = np.asarray(node.r, np.float64)
            w, bias = pending["w"], pending["bias"]
            tau = np.asarray(node.tau, np.float64) if kind == "LIF" else None
            current = None
            if pending.get("via_i"):
                current = _uniform(r / (tau if tau is not None else 1.0), f"{where}: r of {name!r}")
            else:
                scale = r if tau is None else r / tau  # a Dirac input: a jump of r w (IF), r w / tau (LIF)
                w, bias = w * scale, bias * scale
            window = None
            if "window_on_steps" in meta and current is None:
                raise NirError(f"{where}: node {name!r} has window metadata but no I node before it")
            if "window_on_steps" in meta:
                window = {k: float(meta[f"window_{k}_steps"]) for k in ("on", "from", "until")}
                window["rate"] = float(meta.get("control_rate_mV_per_step", RAMP_RATE_MV))
            layers.append(ChainLayer(name, kind, w, bias, current, np.asarray(node.v_threshold, np.float64),
                                     np.asarray(node.v_reset, np.float64), tau,
                                     None if tau is None else np.asarray(node.v_leak, np.float64),
                                     pending.get("delay_s", 0.0), window, int(meta.get("window_start_steps", 0))))
            pending = {}
    if pending or not layers:
        raise NirError(f"{where}: the chain must end in a spiking node (IF or LIF) before its Output")
    return n_in, layers


def graph_metadata(graph: nir.NIRGraph) -> dict:
    """The graph's metadata with strings decoded and numpy scalars as Python numbers."""
    out = {}
    for k, v in (graph.metadata or {}).items():
        v = _text(v) if isinstance(v, (bytes, str)) else v
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def _equations(layer: ChainLayer) -> tuple[str, str, str | tuple[str, ...]]:
    """Brian2 equations, threshold and integration method of one spiking layer (units: see module).

    Names follow :mod:`models.neuron` (``v``, ``I``, ``tau``, ``r``, ``t_on``...), so that a graph
    exported from this project is simulated by the same arithmetic as its own Brian2 model."""
    bias = bool(np.any(layer.bias))
    lines, drive = [], "b" if bias else ""
    if layer.current is not None:  # the synapses step the current I, which drives v
        lines.append("dI/dt = b : volt" if bias else "I : volt")
        drive = "I / tau"
    threshold = "v > v_th"
    if layer.window is not None:  # the ramp window: a control current from t_on, firing only inside
        drive = "((1 - int(t > t_on)) * I + int(t > t_on) * r) / tau"
        lines += [f"{name} : second (constant, shared)" for name in ("t_on", "t_from", "t_until")]
        threshold += " and t > t_from and t < t_until"
    if layer.kind == "LIF":
        lines.insert(0, "dv/dt = (v_leak - v) / tau_m" + (f" + {drive}" if drive else "") + " : volt")
        lines += ["tau_m : second (constant)", "v_leak : volt (constant)"]
    else:
        lines.insert(0, f"dv/dt = {drive} : volt" if drive else "v : volt")
    if bias:
        lines.append("b : volt/second (constant)")
    lines += ["v_th : volt (constant)", "v_reset : volt (constant)"]
    return "\n".join(lines) + "\n", threshold, "euler" if layer.window is not None else ("exact", "euler")


def simulate_graph(graph: nir.NIRGraph, t_in: np.ndarray, dt_ms: float | None = None,
                   t_max: int | None = None, target: str = "numpy", where: str = "graph") -> list[np.ndarray]:
    """Run a NIR chain in Brian2 on input spike times; the first spike time of every layer.

    Parameters
    ----------
    graph : a NIR graph of the nodes :data:`SUPPORTED` (:func:`read_chain`)
    t_in : int array (batch, n) of input spike times in steps (``t_max`` = none); ``n`` may
        leave out the bias inputs named in the metadata (``bias_input_times_steps``)
    dt_ms, t_max : the time grid, when the graph's metadata has none (this project's graphs do)
    target : Brian2 code-generation target
    where : the graph's name in messages

    Returns
    -------
    times : list of int32 arrays (batch, n_k), layers 1..L, steps from each layer's window start
        (``t_max`` = no spike in the window)
    """
    b2 = _brian2()
    if target not in TARGETS or target == "cpp_standalone":
        raise NirError(f"the Brian2 import runs on the numpy or cython target, not {target!r}")
    meta = graph_metadata(graph)
    dt_ms = float(meta.get("dt_ms", dt_ms if dt_ms is not None else 1.0))
    T = int(meta.get("t_max_steps", t_max if t_max is not None else 256))
    n_in, layers = read_chain(graph, where)
    t_in = np.asarray(t_in)
    bias = np.asarray(meta.get("bias_input_times_steps", []), np.int64).ravel()
    if t_in.ndim == 2 and bias.size and t_in.shape[1] == n_in - bias.size:
        t_in = np.concatenate([t_in, np.broadcast_to(bias, (len(t_in), bias.size))], axis=1)
    if t_in.ndim != 2 or t_in.shape[1] != n_in:
        raise NirError(f"{where} has {n_in} inputs, the input spike times are {t_in.shape}")
    batch = len(t_in)
    run_steps = int(meta.get("run_steps", T))
    b2.prefs.codegen.target = target
    dt = dt_ms * b2.ms
    b2.defaultclock.dt = dt
    b_idx, i_idx = np.nonzero(t_in < T)
    groups = [b2.SpikeGeneratorGroup(batch * n_in, b_idx * n_in + i_idx, t_in[b_idx, i_idx] * dt, name="nir_input")]
    objects = list(groups)
    for k, layer in enumerate(layers, start=1):
        n_out = layer.w.shape[1]
        eqs, threshold, method = _equations(layer)
        ns = {} if layer.current is None else {"tau": (1.0 / layer.current) * b2.second}
        if layer.window is not None:
            ns["r"] = layer.window["rate"] * b2.mV
        g = b2.NeuronGroup(batch * n_out, eqs, threshold=threshold, reset="v = v_reset", method=method,
                           namespace=ns, name=f"nir_layer_{k}")
        g.v_th = np.tile(layer.v_threshold, batch) * b2.mV
        g.v_reset = np.tile(layer.v_reset, batch) * b2.mV
        if np.any(layer.bias):
            g.b = np.tile(layer.bias, batch) * b2.mV / b2.second
        if layer.kind == "LIF":
            g.tau_m = np.tile(layer.tau_s, batch) * b2.second
            g.v_leak = np.tile(layer.v_leak, batch) * b2.mV
            g.v = g.v_leak
        if layer.window is not None:
            for name in ("on", "from", "until"):
                setattr(g, f"t_{name}", layer.window[name] * dt)
        on_pre = "I_post += w" if layer.current is not None else "v_post += w"
        objects += [g, _block_synapses(b2, groups[-1], g, layer.w, batch, on_pre, layer.delay_s * b2.second,
                                       f"nir_synapses_{k}")]
        groups.append(g)
    monitors = [b2.SpikeMonitor(g, name=f"nir_spikes_{k}") for k, g in enumerate(groups[1:], start=1)]
    net = b2.Network(*objects, *monitors)
    _compile_note(target)
    net.run(run_steps * dt, namespace={})
    times = []
    for layer, mon in zip(layers, monitors):
        n = layer.w.shape[1]
        first = np.full(batch * n, np.iinfo(np.int64).max, np.int64)
        steps = np.rint(np.asarray(mon.t[:] / b2.ms) / dt_ms).astype(np.int64) - layer.start
        np.minimum.at(first, np.asarray(mon.i[:], np.int64), steps)  # the first spike (TTFS)
        times.append(np.where((first >= 0) & (first < T), first, T).reshape(batch, n).astype(np.int32))
    return times
