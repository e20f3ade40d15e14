"""What if D's output window opened before its hidden window closes? (ramp model, a measurement)

In the windowed ramp model every hidden neuron of D fires in its own window before D's output
window opens, so an early verdict (Aggressive TTFS) saves no spike. Here the output layer's
threshold test is switched on ``overlap`` steps before its window (``t_from`` earlier in
:data:`models.neuron.RAMP_EQUATIONS`; the control current still starts at the window): during
the overlap an output neuron's potential is the ramp of the hidden spikes that have arrived,
``V(s) = sum_j w_j (s - u_j)_+`` (``u_j`` a hidden spike's step relative to the output window,
``s < 0``), and it may fire there; a verdict inside the overlap makes the hidden spikes after
it unnecessary. The trained D is unchanged (trained without overlap, with the exact gradient of
the closed form), so this measures what the overlap would do at inference: decision time,
D's verdicts, D's spikes up to its decision, and the fraction of output spike times the closed
form (and so the exact gradient) no longer describes. :func:`output_times` follows Brian2
(a test runs both).

``python -m experiments.overlap --run RUN [--run RUN2 ...] [--overlaps 0,8,16,32,64] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from analysis.evaluate import EVAL_SEED
from models import ramp
from models.coding import decide
from models.errors import SpikingGanError
from models.neuron import RAMP_NEURON, THRESHOLD_EPS_MV, RampNeuron
from models.spikes import spikes_per_sample
from training.data import load_dataset
from training.gan import FAKE, REAL
from training.runinfo import atomic_json
from training.trainer import load_gan

OVERLAPS = (0, 8, 16, 32, 64)


class OverlapRampNeuron(RampNeuron):
    """The ramp neuron with the last layer's threshold test switched on ``overlap`` steps early
    (Brian2's view of :func:`output_times`)."""

    def __init__(self, overlap: int, n_layers: int):
        base = RAMP_NEURON
        super().__init__(base.name, base.equations, base.threshold, base.on_pre, base.method)
        self.overlap, self.n_layers = int(overlap), int(n_layers)

    def window_constants(self, layer, t_max):
        out = super().window_constants(layer, t_max)
        if layer == self.n_layers:
            out["t_from"] -= self.overlap
        return out


def output_times(t_hidden: np.ndarray, w: np.ndarray, theta: np.ndarray, t_max: int, overlap: int,
                 chunk: int = 256) -> np.ndarray:
    """Output spike times (relative to the output window; ``-overlap .. -1`` inside the overlap,
    ``t_max`` = none) of a ramp output layer whose threshold test starts ``overlap`` steps early.

    Parameters
    ----------
    t_hidden : int array (batch, n_hidden), hidden spike times relative to their window
    w : array (n_hidden, n_out), mV per step; theta : array (n_out,), mV
    t_max, overlap : int, steps (``0 <= overlap <= t_max``)
    """
    T = int(t_max)
    if not 0 <= overlap <= T:
        raise ValueError(f"overlap must be in 0..{T} steps, got {overlap}")
    t_hidden = np.asarray(t_hidden)
    x = ramp.earliness(t_hidden, T)
    t_out = (T - ramp.layer_forward(x, w, theta, T, np.float64)[0]).astype(np.int32)  # closed form, s >= 0
    if overlap:
        s = np.arange(-overlap, 0, dtype=np.float64)
        u = t_hidden.astype(np.float64) - T  # hidden spike steps relative to the output window (silent: 0)
        w64, th = np.asarray(w, np.float64), np.asarray(theta, np.float64)
        for a in range(0, len(u), chunk):  # V(s) = sum_j w_j relu(s - u_j): (chunk, overlap, n_out)
            v = np.maximum(s[None, :, None] - u[a:a + chunk, None, :], 0.0) @ w64
            crossed = v >= th - THRESHOLD_EPS_MV
            hit = crossed.any(axis=1)
            first = s[np.argmax(crossed, axis=1)].astype(np.int32)
            t_out[a:a + chunk] = np.where(hit, first, t_out[a:a + chunk])
    return t_out


def measure(gan, data, overlaps: Sequence[int] = OVERLAPS, n: int = 1000, seed: int = EVAL_SEED) -> list[dict]:
    """D's decisions on ``n`` fakes and ``n`` real test images for every overlap (one row each)."""
    if len(gan.d.layers) != 2:
        raise SpikingGanError("the overlap measurement is written for a D with one hidden layer")
    T = gan.d_params.t_max
    rng = np.random.default_rng(seed)
    g_times = gan.generate_times(rng, n).times
    fake = g_times[-1]
    real = gan.encode_real(data.test_images[:n])
    w, theta = gan.d.brian_layers()
    rows = []
    for kind, images in (("fake", fake), ("real", real)):
        t_h, t_closed = gan.d_times(images)
        for o in overlaps:
            t_out = output_times(t_h, w[-1], theta[-1], T, o)
            winner, t_dec = decide(np.where(t_out < T, t_out + T, 2 * T), 2 * T)  # shift: steps may be < 0
            t_dec = np.where(winner >= 0, t_dec - T, T)
            hidden_used = ((t_h - T <= t_dec[:, None]) & (t_h < T)).sum(axis=1)  # hidden spikes by the verdict
            out_used = ((t_out <= t_dec[:, None]) & (t_out < T)).sum(axis=1)
            right = REAL if kind == "real" else FAKE
            rows.append({"images": kind, "overlap": int(o),
                         "decision_ms": float(np.mean(t_dec) * gan.d_params.dt_ms),
                         "decision_latency_ms": float(np.mean(t_dec + T) * gan.d_params.dt_ms),
                         "d_accuracy": float(np.mean(winner == right)),
                         "d_spikes_to_decision": float(np.mean(hidden_used + out_used)),
                         "d_spikes_all": float(spikes_per_sample([t_h, t_closed], T)),
                         "g_spikes": float(spikes_per_sample(g_times, T)) if kind == "fake" else 0.0,
                         "output_times_changed": float(np.mean(np.any(t_out != t_closed, axis=1))),
                         "verdicts_changed": float(np.mean(winner != decide(t_closed, T)[0]))})
    return rows


def format_table(rows: list[dict], label: str = "") -> str:
    lines = ["| run | images | overlap (steps) | decision (ms, from the output window) | D accuracy | "
             "D spikes to decision | G spikes | output times changed | verdicts changed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {label} | {r['images']} | {r['overlap']} | {r['decision_ms']:.1f} | {r['d_accuracy']:.3f} | "
                     f"{r['d_spikes_to_decision']:.1f} | {r['g_spikes']:.0f} | {r['output_times_changed']:.3f} | "
                     f"{r['verdicts_changed']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.overlap", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", required=True, help="a ramp run folder (repeatable)")
    ap.add_argument("--overlaps", default=",".join(map(str, OVERLAPS)), help="steps, comma-separated")
    ap.add_argument("--n", type=int, default=1000, help="fakes and real test images (default: 1000)")
    ap.add_argument("--out", help="also write every row as JSON to this file")
    args = ap.parse_args(argv)
    try:
        try:
            overlaps = [int(v) for v in args.overlaps.split(",")]
        except ValueError:
            raise SpikingGanError(f"--overlaps must be comma-separated integers, got {args.overlaps!r}") from None
        if not 1 <= args.n <= 100_000:
            raise SpikingGanError(f"--n must be in 1..100000, got {args.n}")
        result = []
        for run in args.run:
            gan, cfg, _ = load_gan(run)
            if not isinstance(gan.d.neuron, RampNeuron):
                raise SpikingGanError(f"{run}: the overlap is a property of the windowed ramp model "
                                      f"(neuron.model = {cfg.neuron.model!r})")
            if max(overlaps) > cfg.neuron.t_max or min(overlaps) < 0:
                raise SpikingGanError(f"--overlaps must lie in 0..{cfg.neuron.t_max} (neuron.t_max)")
            rows = measure(gan, load_dataset(cfg.data), overlaps, args.n)
            for r in rows:
                r.update(run=run, loss=cfg.loss.kind)
            print(format_table(rows, f"{run} ({cfg.loss.kind})"))
            result += rows
    except SpikingGanError as exc:
        print(f"overlap: {exc}", file=sys.stderr)
        return 2
    if args.out:
        atomic_json(args.out, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
