"""Does D's error tell G where to go? A descent test of the G step's pixel error.

For ``n`` fakes of a trained GAN, every fake's pixel intensities are moved a step of L2 length
``eps`` (intensity units; a pixel spans 0..1, so ``eps = 1`` is one pixel from black to white)
against D's gradient on them (``gan.d.intensity_gradient`` of :func:`training.gan.pixel_error`,
what the G step follows), re-encoded to spike times, and shown to the frozen D again. D's
margin ``m = t_fake - t_real`` (output spike times in steps; ``m > 0``: D says *real*) is
measured before and after. Two baselines take the same step along a random direction and
along "every pixel brighter". An error that points where D's verdict improves raises the
margin more than the baselines; the IF model's S4NN error and the ramp model's exact gradient
are compared this way in docs/experiments.md.

``python -m experiments.gradient_check --run RUN [--n 500] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from analysis.evaluate import EVAL_SEED
from models.errors import SpikingGanError
from training.gan import FAKE, REAL, Gan, pixel_error
from training.runinfo import atomic_json
from training.trainer import load_gan

#: Step lengths (L2 norm in intensity units) of the descent test.
STEPS = (1.0, 2.0, 4.0)
DIRECTIONS = ("d_error", "random", "brighter")


def margin(gan: Gan, times: np.ndarray, labels=None) -> np.ndarray:
    """D's margin ``t_fake - t_real`` (float, steps) on images given as spike times (n, 784)."""
    out = gan.d_times(times, labels)[-1].astype(np.float64)
    return out[:, FAKE] - out[:, REAL]


def descent_test(gan: Gan, cfg, n: int = 500, steps: Sequence[float] = STEPS,
                 seed: int = EVAL_SEED) -> dict[str, dict[str, dict[str, float]]]:
    """The descent test (module docstring) on ``n`` fresh fakes.

    Returns
    -------
    dict direction -> str(step) -> {``margin_change`` (mean, steps), ``improved`` and
    ``worse`` (fractions of fakes whose margin rose / fell), ``says_real_after``}, plus
    ``"before"``: {``says_real``, ``margin``} of the unmoved fakes.
    """
    rng = np.random.default_rng(seed)
    T = gan.d_params.t_max
    labels = gan.default_labels(n)
    t = gan.generate_times(rng, n, labels).output
    _, _, err = pixel_error(gan, cfg, t, labels)
    grad = np.asarray(gan.d.intensity_gradient(err), np.float64)
    directions = {"d_error": -grad, "random": rng.standard_normal(grad.shape),
                  "brighter": np.ones(grad.shape)}
    m0 = margin(gan, t, labels)
    out: dict = {"before": {"says_real": float(np.mean(m0 >= 0)), "margin": float(m0.mean())}}
    for name, d in directions.items():
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        unit = np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)
        out[name] = {}
        for eps in steps:
            # intensity x = 1 - t / T: a step dx is a shift of -T dx steps (silent pixels can light up)
            moved = np.clip(np.rint(t - T * eps * unit), 0, T).astype(np.int32)
            m1 = margin(gan, moved, labels)
            out[name][str(eps)] = {"margin_change": float(np.mean(m1 - m0)),
                                   "improved": float(np.mean(m1 > m0)), "worse": float(np.mean(m1 < m0)),
                                   "says_real_after": float(np.mean(m1 >= 0))}
    return out


def format_table(result: dict) -> str:
    """A Markdown table of :func:`descent_test`'s result."""
    lines = [f"fakes D calls real before the step: {result['before']['says_real']:.3f}, "
             f"mean margin {result['before']['margin']:.2f} steps", "",
             "| direction | step (L2, intensity) | margin change (steps) | improved | worse | D says real after |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in DIRECTIONS:
        for eps, r in result[name].items():
            lines.append(f"| {name} | {eps} | {r['margin_change']:+.2f} | {r['improved']:.3f} | "
                         f"{r['worse']:.3f} | {r['says_real_after']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.gradient_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a run folder of `spiking-gan train`")
    ap.add_argument("--n", type=int, default=500, help="fakes (default: 500)")
    ap.add_argument("--out", help="also write the result as JSON to this file")
    args = ap.parse_args(argv)
    try:
        if not 2 <= args.n <= 100_000:
            raise SpikingGanError(f"--n must be in 2..100000, got {args.n}")
        gan, cfg, meta = load_gan(args.run)
        result = descent_test(gan, cfg, args.n)
        result["run"], result["epoch"] = args.run, int(meta["epoch"])
    except SpikingGanError as exc:
        print(f"gradient_check: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.out:
        atomic_json(args.out, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
