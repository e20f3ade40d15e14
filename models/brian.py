"""Brian2 simulator of the layered TTFS network (the reference model).

The network is built from the equations of :mod:`models.neuron`, with units:
membrane potential, threshold and weights in mV, time in ms. A whole batch runs
in one Brian2 run: every layer is one ``NeuronGroup`` holding ``batch`` copies
of the layer, connected by block-diagonal ``Synapses`` (copy ``b`` of a layer
only feeds copy ``b`` of the next).

The code generation target is selectable: ``numpy`` (no compiler), ``cython``
(compiled once, then cached) or ``cpp_standalone`` (a C++ project built in a
directory of its own: a temporary folder, removed after the run, also when the run fails or is
interrupted, unless ``build_dir`` names a folder to keep).

Before a compiling target's first run in a process, one line on stderr says that the
compilation is under way (the first cython build takes about 2 minutes and is silent).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .neuron import IF_NEURON, RAMP_RATE_MV, SYNAPSE_MODEL, THRESHOLD_EPS_MV, NeuronModel, NeuronParams
from .ramp import ConvMap
from .resources import synapse_count

TARGETS = ("numpy", "cython", "cpp_standalone")
#: What a compiling target says before its first (silent) compilation in a process.
COMPILE_NOTES = {"cython": "Brian2: compiling the model's cython code (the first time ~2 min, then cached)",
                 "cpp_standalone": "Brian2: building the C++ standalone project (~15 s per run)"}
_noted: set = set()


def _brian2():
    """``brian2``, imported without the debug log and script copy it leaves in the system temp
    folder (``brian_debug_*.log``, ``brian_script_*.py``: kept there whenever the process ends
    by an exception or a kill); errors still reach the console."""
    import logging

    import brian2
    from brian2.utils.logger import BrianLogger

    if BrianLogger.file_handler is not None:
        BrianLogger.file_handler.close()
        logging.getLogger("brian2").removeHandler(BrianLogger.file_handler)
        BrianLogger.file_handler = None
    for attr in ("tmp_log", "tmp_script"):
        path = getattr(BrianLogger, attr, None)
        if path:
            for p in (path, path + ".1"):
                if os.path.exists(p):
                    os.remove(p)
            setattr(BrianLogger, attr, None)
    return brian2


def _compile_note(target: str) -> None:
    if target in COMPILE_NOTES and target not in _noted:
        _noted.add(target)
        print(COMPILE_NOTES[target], file=sys.stderr, flush=True)


@dataclass
class BrianResult:
    """What a Brian2 run returns.

    Attributes
    ----------
    times : list of int32 arrays (batch, n_k)
        Spike time (steps) of every neuron of layers 1..L, ``t_max`` = no spike.
    spikes : list of (sample, neuron, time_ms) array triples, one per layer 0..L
        The raw ``SpikeMonitor`` content (layer 0 = inputs), unbatched.
    v_trace : dict layer -> float array (batch, n_recorded, n_steps), mV
        Membrane potentials recorded by the ``StateMonitor`` (if asked).
    v_neurons : dict layer -> int array of the recorded neuron indices
    t_ms : float array (n_steps,) of the recording times in ms
    """

    times: list[np.ndarray]
    spikes: list[tuple]
    v_trace: dict[int, np.ndarray] = field(default_factory=dict)
    v_neurons: dict[int, np.ndarray] = field(default_factory=dict)
    t_ms: np.ndarray | None = None


def _block_synapses(b2, pre_group, post_group, w, batch: int, on_pre: str, delay, name: str):
    """Synapses from ``pre_group`` to ``post_group`` with weights ``w`` (n_pre, n_post), mV, block
    diagonal over the batch: copy b of the sources -> copy b of the targets. A
    :class:`models.ramp.ConvMap` (a convolutional layer) connects only the pairs of its index map,
    each synapse holding a copy of its kernel weight (``S.w = K_flat[kernel_index]``)."""
    n_pre, n_post = w.shape
    syn = b2.Synapses(pre_group, post_group, model=SYNAPSE_MODEL, on_pre=on_pre, delay=delay, name=name)
    if isinstance(w, ConvMap):
        pre, post, values = w.synapses()
        offs = np.arange(batch)[:, None]
        syn.connect(i=(offs * n_pre + pre[None]).ravel(), j=(offs * n_post + post[None]).ravel())
        syn.w = np.tile(values, batch) * b2.mV
        return syn
    pre = np.arange(n_pre)[:, None]
    post = np.arange(n_post)[None, :]
    offs = np.arange(batch)[:, None, None]
    syn.connect(i=np.broadcast_to(offs * n_pre + pre[None], (batch, n_pre, n_post)).ravel(),
                j=np.broadcast_to(offs * n_post + post[None], (batch, n_pre, n_post)).ravel())
    syn.w = np.tile(np.asarray(w, dtype=np.float64).ravel(), batch) * b2.mV
    return syn


#: Bytes per synapse and per neuron of a Brian2 network on the numpy target, with a margin
#: (indices, weights, delays and the connection arrays built on the way; the growth of the
#: peak memory of a 784-400-2 network was 51-55 bytes per synapse at batch 8 and 16).
SYNAPSE_BYTES, NEURON_BYTES = 80, 256


def simulate_bytes(sizes: Sequence[int], batch: int) -> int:
    """Peak memory of :func:`simulate` on ``batch`` samples through layers ``sizes`` (bytes):
    every sample is its own copy of the network's neurons and synapses."""
    synapses = synapse_count(sizes)
    return batch * (SYNAPSE_BYTES * synapses + NEURON_BYTES * sum(sizes))


def simulate(weights: Sequence[np.ndarray], t_in: np.ndarray, params: NeuronParams,
             target: str = "numpy", record_v: dict[int, Sequence[int]] | None = None,
             build_dir: str | None = None, neuron: NeuronModel = IF_NEURON,
             thresholds: Sequence[np.ndarray] | None = None,
             extra_inputs: dict[int, np.ndarray] | None = None) -> BrianResult:
    """Run a batch through the network in Brian2.

    Parameters
    ----------
    weights : sequence of arrays (n_k, n_{k+1}), mV, or :class:`models.ramp.ConvMap` (a
        convolutional layer: sparse synapses from its index map)
    t_in : int array (batch, n_0), input spike times in steps (``t_max`` = none)
    params : NeuronParams
    target : {"numpy", "cython", "cpp_standalone"}
    record_v : dict {layer (1..L): neuron indices}, optional
        Record the membrane potential of these neurons (every sample of the
        batch) with a ``StateMonitor``.
    build_dir : str, optional
        Project directory for ``cpp_standalone``, kept after the run (default: a fresh
        temporary folder, removed when the run ends, fails or is interrupted).
    neuron : NeuronModel
        The neuron's equations and windows (:data:`models.neuron.IF_NEURON`, the paper's, or
        :data:`models.neuron.RAMP_NEURON`, whose layer ``k`` fires in its own window; spike
        times are returned relative to each layer's window).
    thresholds : sequence of arrays (n_k,), mV, optional
        Per-neuron thresholds of every layer (default: ``params.thresholds``, one per layer).
    extra_inputs : dict {layer (1..L): int array (batch, m)}, optional
        Spike times of ``m`` more input neurons of that layer beside the layer below (a batch
        statistic computed outside the network); their weights are the last ``m`` rows of
        the layer's matrix.

    Returns
    -------
    BrianResult
    """
    b2 = _brian2()
    if target not in TARGETS:
        raise ValueError(f"unknown Brian2 target {target!r}; choose one of {', '.join(TARGETS)}")
    if thresholds is None:
        if len(weights) != params.n_layers:
            raise ValueError(f"{len(weights)} weight matrices but {params.n_layers} thresholds")
        thresholds = [np.full(w.shape[1], th) for w, th in zip(weights, params.thresholds)]
    if len(weights) != len(thresholds):
        raise ValueError(f"{len(weights)} weight matrices but {len(thresholds)} threshold vectors")
    t_in = np.asarray(t_in)
    batch, n0 = t_in.shape
    extra = {int(k): np.asarray(v) for k, v in (extra_inputs or {}).items()}
    for k, v in extra.items():
        if not 1 <= k <= len(weights) or v.ndim != 2 or len(v) != batch:
            raise ValueError(f"extra_inputs[{k}] must be (batch, m) spike times of a layer in 1..{len(weights)}")
    sizes = [n0] + [w.shape[1] for w in weights]
    record_v = dict(record_v or {})
    for layer, neurons in record_v.items():
        if not 1 <= layer <= len(weights):
            raise ValueError(f"record_v layer {layer} outside 1..{len(weights)}")
        neurons = np.asarray(neurons, dtype=int)
        if neurons.size and (neurons.min() < 0 or neurons.max() >= sizes[layer]):
            raise ValueError(f"record_v neurons out of range for layer {layer} of size {sizes[layer]}")

    standalone = target == "cpp_standalone"
    temporary = standalone and build_dir is None
    if standalone:
        build_dir = build_dir or tempfile.mkdtemp(prefix="spiking_gan_cpp_")
    try:
        if standalone:
            b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
        else:
            b2.prefs.codegen.target = target
        dt = params.dt_ms * b2.ms
        b2.defaultclock.dt = dt
        ns = {"eps": THRESHOLD_EPS_MV * b2.mV, "tau": dt, "r": RAMP_RATE_MV * b2.mV}
        T = params.t_max
        # --- layer 0: input spike generators --------------------------------
        b_idx, i_idx = np.nonzero(t_in < params.t_max)
        inputs = b2.SpikeGeneratorGroup(batch * n0, b_idx * n0 + i_idx,
                                        t_in[b_idx, i_idx] * dt, name="layer_0")
        groups = [inputs]
        objects = [inputs]
        L = len(weights)
        for k, (w, theta) in enumerate(zip(weights, thresholds), start=1):
            n_pre, n_post = w.shape
            g = b2.NeuronGroup(batch * n_post, neuron.equations, threshold=neuron.threshold_condition(params.strict),
                               refractory=neuron.refractory_steps(L, T) * dt, method=neuron.method,
                               namespace=ns, name=f"layer_{k}")
            for name, steps in neuron.window_constants(k, T).items():  # the layer's window
                setattr(g, name, steps * dt)
            g.theta = np.tile(np.asarray(theta, dtype=np.float64), batch) * b2.mV
            delay = neuron.synaptic_delay_steps(params.latency) * dt
            more = extra.get(k)
            n_main = n_pre - (0 if more is None else more.shape[1])
            objects += [g, _block_synapses(b2, groups[-1], g, w if more is None else w[:n_main], batch,
                                           neuron.on_pre, delay,
                                           f"synapses_{k}")]
            if more is not None:  # extra input neurons of layer k (a batch statistic), one set per copy
                m = more.shape[1]
                eb, ei = np.nonzero(more < params.t_max)
                gen = b2.SpikeGeneratorGroup(batch * m, eb * m + ei, more[eb, ei] * dt, name=f"extra_{k}")
                objects += [gen, _block_synapses(b2, gen, g, w[n_main:], batch, neuron.on_pre, delay,
                                                 f"extra_synapses_{k}")]
            groups.append(g)
        monitors = [b2.SpikeMonitor(g, name=f"spikes_{k}") for k, g in enumerate(groups)]
        objects += monitors
        states = {}
        for layer, neurons in record_v.items():
            neurons = np.asarray(neurons, dtype=int)
            idx = (np.arange(batch)[:, None] * sizes[layer] + neurons[None, :]).ravel()
            states[layer] = (neurons, b2.StateMonitor(groups[layer], "v", record=idx,
                                                       name=f"v_{layer}"))
            objects.append(states[layer][1])
        net = b2.Network(*objects)
        _compile_note(target)
        net.run(neuron.run_steps(L, T) * dt, namespace={})
        if standalone:
            b2.device.build(directory=build_dir, compile=True, run=True, with_output=False)

        times, spikes = [], []
        for k, mon in enumerate(monitors):
            idx = np.asarray(mon.i[:], dtype=np.int64)
            t_ms = np.asarray(mon.t[:] / b2.ms, dtype=np.float64)
            n = sizes[k]
            spikes.append((idx // n, idx % n, t_ms))
            if k == 0:
                continue
            out = np.full((batch, n), params.t_max, dtype=np.int32)
            offset = neuron.window_start(k, T)  # relative to the layer's window
            out[idx // n, idx % n] = np.rint(t_ms / params.dt_ms).astype(np.int32) - offset
            times.append(out)
        result = BrianResult(times=times, spikes=spikes)
        for layer, (neurons, mon) in states.items():
            v = np.asarray(mon.v[:] / b2.mV)  # (batch * n_rec, n_steps)
            result.v_trace[layer] = v.reshape(batch, len(neurons), -1)
            result.v_neurons[layer] = neurons
            result.t_ms = np.asarray(mon.t[:] / b2.ms)
        return result
    finally:
        if standalone:
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
        if temporary:
            shutil.rmtree(build_dir, ignore_errors=True)
