"""Operation counts and energy per sample of a spiking network, and of the same-size ANN.

The one place where the energy accounting of the study is defined; :mod:`analysis.evaluate`
feeds it the spike times of G and D (``spiking-gan evaluate`` writes ``energy.{csv,md,png}``,
``compare-losses`` carries the totals per loss).

Definitions (per sample, per layer ``k`` with ``n_in`` inputs and ``n_out`` neurons)
------------------------------------------------------------------------------------
``acs`` (synaptic operations, accumulates)
    Every input spike times its fan-out: ``n_out * (input spikes of the sample)``. An input
    that fired is one spike (each neuron fires at most once); ``t_max`` = no spike. A
    convolutional layer's inputs have their own fan-outs (``LayerSpec.fan_out``: the synapses
    of its index map, fewer at the borders), and its synapses are those of the index map.
``clock_updates``
    A clock-driven simulator updates every neuron at every step of the interval in which its
    state can change: ``n_out * (steps of that interval)``. The interval of layer ``k`` runs
    from the opening of its inputs' window to the closing of its own
    (``window_start(k - 1) .. window_start(k) + t_max``): ``t_max`` steps for the paper's IF
    model (one shared window), ``2 t_max`` for the windowed ramp model (its inputs' window,
    then its own).
``event_updates``
    An event-driven simulator updates a neuron's state only at the steps at which input spikes
    arrive (all spikes of one step together, as :mod:`models.kernel` does): ``n_out * (distinct
    input steps)``; a layer whose window opens later than its inputs' (the ramp model's
    control current) has one more event per neuron, its window's opening.
``ann_macs``
    The same-size non-spiking layer is a dense product: ``n_in * n_out`` multiply-accumulates,
    whatever the input (a convolutional layer: one per synapse, the same-size ANN convolution).
``energy_pj``, ``ann_energy_pj``
    The 45 nm convention of the spiking generative-model papers (FSVAE, SDDPM, SDM):
    ``acs * E_AC`` and ``ann_macs * E_MAC`` with ``E_AC = 0.9 pJ`` (32-bit float add) and
    ``E_MAC = 4.6 pJ`` (32-bit float multiply 3.7 pJ + add 0.9 pJ), Horowitz, ISSCC 2014.
``spikes_per_synapse``
    ``acs / synapses`` (``n_in * n_out`` for a dense layer: input spikes per input neuron):
    what Dampfhoffer et al. (IEEE TETCI 7(3):731-741, 2023) compare with their break-even of
    0.15-1.38 spikes per synapse per inference (below it, an IF network on event-driven
    hardware beats an ANN accelerator once memory access is counted).

"Up to the decision" counts only what happens at or before a sample's decision step (D's
first output spike, on the network's clock: ``until``); a sample without a decision counts
its whole run. The convention leaves out memory access (fetching weights and membrane
states, often the largest cost), the neuron-state updates (counted here, not priced: their
cost depends on the hardware) and the encoding of the inputs; :data:`NOTES` says so in every
table.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.kernel import distinct_steps

#: Energy of one accumulate (32-bit float add), pJ, 45 nm CMOS (Horowitz, ISSCC 2014).
E_AC_PJ = 0.9
#: Energy of one multiply-accumulate (32-bit float multiply 3.7 pJ + add 0.9 pJ), pJ, 45 nm.
E_MAC_PJ = 4.6
#: Dampfhoffer et al. 2023: spikes per synapse per inference below which an IF network on
#: event-driven hardware beats ANN accelerators, memory access included (by ANN implementation).
BREAK_EVEN_SPIKES_PER_SYNAPSE = (0.15, 1.38)
#: The convention, named once (tables and figures quote it).
CONVENTION = ("45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014): one accumulate (AC) per synaptic "
              f"event at {E_AC_PJ} pJ, one multiply-accumulate (MAC) per ANN synapse at {E_MAC_PJ} pJ")
#: What the convention leaves out, stated under every energy table.
NOTES = (
    f"Energy by the convention of the spiking generative-model papers (FSVAE, SDDPM, SDM): {CONVENTION}.",
    "ACs = every spike times its fan-out; ANN MACs = n_in x n_out of the same-size dense layer.",
    "Left out: memory access (weights, membrane states; often the largest cost on real chips), "
    "the neuron-state updates (counted, not priced: clock-driven = neurons x steps of their "
    "window(s), event-driven = neurons x distinct input steps), and the input encoding.",
    "Dampfhoffer et al. (IEEE TETCI 2023), memory access included, put the break-even of IF "
    f"networks against ANN accelerators at {BREAK_EVEN_SPIKES_PER_SYNAPSE[0]}-"
    f"{BREAK_EVEN_SPIKES_PER_SYNAPSE[1]} spikes per synapse per inference; under the convention "
    f"alone it is {E_MAC_PJ / E_AC_PJ:.1f} (E_MAC / E_AC).",
    "Which of ACs and clock-driven updates dominates depends on the hardware; both are reported.",
)
#: The counts of a layer (per sample), in table order.
COUNTS = ("input_spikes", "acs", "clock_updates", "event_updates", "ann_macs")


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the accounting sees it.

    Attributes
    ----------
    n_in, n_out : int, the weight matrix's shape (inputs, neurons)
    in_start : int, step at which the layer's inputs' window opens (the network's clock)
    start : int, step at which the layer's own window opens (it closes ``t_max`` steps later)
    fan_out : int array (n_in,) or None, synapses leaving each input (a convolutional layer);
        None: every input reaches all ``n_out`` neurons
    """

    n_in: int
    n_out: int
    in_start: int = 0
    start: int = 0
    fan_out: np.ndarray | None = field(default=None, compare=False)

    @property
    def synapses(self) -> int:
        """The layer's synapses: ``n_in * n_out``, or the sum of the fan-outs."""
        return self.n_in * self.n_out if self.fan_out is None else int(np.sum(self.fan_out))

    @property
    def gated(self) -> bool:
        """The layer's window opens after its inputs' (the ramp model's control current)."""
        return self.start > self.in_start


def _counted(t_in: np.ndarray, t_max: int, in_start: int, until: np.ndarray | None) -> np.ndarray:
    """Spike times (batch, n_in) with the spikes after ``until`` (batch,) set to ``t_max``."""
    t_in = np.asarray(t_in)
    if until is None:
        return t_in
    late = t_in + in_start > np.asarray(until)[:, None]
    return np.where(late, t_max, t_in)


def layer_counts(t_in: np.ndarray, spec: LayerSpec, t_max: int,
                 until: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The counts of the module docstring for one layer, per sample.

    Parameters
    ----------
    t_in : int array (batch, n_in)
        The layer's input spike times, steps relative to the inputs' window (``t_max`` = none).
    spec : LayerSpec
    t_max : int
        Window length in steps.
    until : int array (batch,), optional
        Last step counted, on the network's clock (D's decision); default: the whole run.

    Returns
    -------
    dict of int64 arrays (batch,): :data:`COUNTS`
    """
    t_in = np.asarray(t_in)
    if t_in.ndim != 2 or t_in.shape[1] != spec.n_in:
        raise ValueError(f"input spike times {t_in.shape} do not match a layer of {spec.n_in} inputs")
    t = _counted(t_in, t_max, spec.in_start, until)
    spikes = (t < t_max).sum(axis=1).astype(np.int64)
    first, last = spec.in_start, spec.start + t_max  # the steps in which the state can change
    if until is None:
        steps = np.full(len(t), last - first, np.int64)
        opened = np.full(len(t), spec.gated, np.int64)
    else:
        u = np.asarray(until, np.int64)
        steps = np.clip(np.minimum(last, u + 1) - first, 0, last - first)
        opened = (spec.gated & (spec.start <= u)).astype(np.int64)
    events = distinct_steps(t, t_max) + opened
    acs = (spikes * spec.n_out if spec.fan_out is None
           else (t < t_max).astype(np.int64) @ np.asarray(spec.fan_out, np.int64))
    return {"input_spikes": spikes, "acs": acs, "clock_updates": steps * spec.n_out,
            "event_updates": events * spec.n_out,
            "ann_macs": np.full(len(t), spec.synapses, np.int64)}


def network_specs(shapes: Sequence[tuple[int, int]], window_starts: Sequence[int],
                  fan_outs: Sequence[np.ndarray | None] | None = None) -> list[LayerSpec]:
    """The :class:`LayerSpec` of every layer of a feed-forward network.

    Parameters
    ----------
    shapes : (n_in, n_out) of each weight matrix, layers 1..L
    window_starts : step at which each layer's window opens, layers 0 (the inputs) .. L
    fan_outs : per layer, the synapses leaving each input (n_in,) of a convolutional layer, or
        None (dense); default: every layer dense
    """
    if len(window_starts) != len(shapes) + 1:
        raise ValueError(f"{len(shapes)} layers need {len(shapes) + 1} window starts, got {len(window_starts)}")
    fan_outs = list(fan_outs) if fan_outs is not None else [None] * len(shapes)
    return [LayerSpec(int(a), int(b), int(window_starts[k]), int(window_starts[k + 1]), fan_outs[k])
            for k, (a, b) in enumerate(shapes)]


def energy_pj(acs, macs=0):
    """Energy by the convention: ``acs * E_AC + macs * E_MAC``, pJ (numbers or arrays)."""
    return np.asarray(acs) * E_AC_PJ + np.asarray(macs) * E_MAC_PJ


def layer_summary(counts: dict[str, np.ndarray], spec: LayerSpec) -> dict[str, float]:
    """Means over samples of a layer's counts, its energies and its spikes per synapse."""
    out = {k: float(np.mean(counts[k])) for k in COUNTS}
    out["energy_pj"] = float(energy_pj(out["acs"]))
    out["ann_energy_pj"] = float(energy_pj(0, out["ann_macs"]))
    out["spikes_per_synapse"] = out["acs"] / spec.synapses
    return out


def network_table(inputs: Sequence[np.ndarray], specs: Sequence[LayerSpec], t_max: int,
                  until: np.ndarray | None = None) -> list[dict[str, float]]:
    """:func:`layer_summary` of every layer, given each layer's input spike times (batch, n_in)."""
    if len(inputs) != len(specs):
        raise ValueError(f"{len(inputs)} input arrays for {len(specs)} layers")
    return [layer_summary(layer_counts(t, s, t_max, until), s) for t, s in zip(inputs, specs)]


def totals(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The sum over layers of every count and energy (spikes per synapse: ACs over synapses)."""
    out = {k: float(sum(r[k] for r in rows)) for k in (*COUNTS, "energy_pj", "ann_energy_pj")}
    synapses = sum(r["ann_macs"] for r in rows)
    out["spikes_per_synapse"] = out["acs"] / synapses if synapses else 0.0
    return out


#: Columns of ``energy.csv`` (per sample; energies in pJ).
CSV_COLUMNS = ("network", "layer", "n_in", "n_out", *COUNTS, "energy_pj", "ann_energy_pj", "spikes_per_synapse")


def table_rows(tables: dict[str, list[dict[str, float]]]) -> list[dict[str, float | str]]:
    """Rows of ``energy.csv``: every layer of every network (``layer`` 1..L), then each
    network's total (``layer`` "all"), then ``"G + D to decision"`` (one sample made and judged)."""
    rows: list[dict[str, float | str]] = []
    for name, layers in tables.items():
        rows += [dict(r, network=name, layer=str(k)) for k, r in enumerate(layers, start=1)]
        rows.append(dict(totals(layers), network=name, layer="all", n_in="", n_out=""))
    if "G" in tables and "D to decision" in tables:
        g, d = totals(tables["G"]), totals(tables["D to decision"])
        both = {k: g[k] + d[k] for k in (*COUNTS, "energy_pj")}
        both["ann_energy_pj"] = g["ann_energy_pj"] + totals(tables["D"])["ann_energy_pj"]
        both["spikes_per_synapse"] = both["acs"] / both["ann_macs"]
        rows.append(dict(both, network="G + D to decision", layer="all", n_in="", n_out=""))
    return rows


def _cell(v) -> str:
    if isinstance(v, str):
        return v
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"


def markdown(rows: Sequence[dict], title: str) -> str:
    """``energy.md``: the rows of :func:`table_rows` (energies in nJ) and :data:`NOTES`."""
    head = ["network", "layer", "n_in x n_out", "input spikes", "ACs", "clock-driven updates",
            "event-driven updates", "ANN MACs", "SNN energy (nJ)", "ANN energy (nJ)", "spikes / synapse"]
    lines = [f"# {title}", "", "Per sample (mean over the evaluation samples; D: real and generated "
             "images together).", "", "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in rows:
        shape = f"{r['n_in']} x {r['n_out']}" if r["n_in"] != "" else ""
        cells = [r["network"], r["layer"], shape, *(_cell(r[k]) for k in COUNTS),
                 f"{r['energy_pj'] / 1e3:.1f}", f"{r['ann_energy_pj'] / 1e3:.1f}", f"{r['spikes_per_synapse']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Notes:", ""] + [f"- {n}" for n in NOTES]
    return "\n".join(lines) + "\n"
