"""Energy accounting (analysis/energy.py): counts against counts done by hand."""
import csv
import os

import numpy as np
import pytest
from helpers import MODELS

from analysis import energy
from analysis.evaluate import energy_tables, evaluate_run
from experiments.report import run_report
from training.trainer import load_gan


def test_layer_counts_worked_by_hand():
    T = 8
    t_in = np.array([[0, 5, T], [T, T, T], [2, 2, 7]])  # 2, 0 and 3 input spikes
    spec = energy.LayerSpec(3, 2)  # the IF model: inputs and layer share one window
    c = energy.layer_counts(t_in, spec, T)
    assert c["input_spikes"].tolist() == [2, 0, 3]
    assert c["acs"].tolist() == [4, 0, 6]  # spikes x fan-out 2
    assert c["clock_updates"].tolist() == [16, 16, 16]  # 2 neurons x 8 steps
    assert c["event_updates"].tolist() == [4, 0, 4]  # 2 neurons x distinct steps {0,5}, {}, {2,7}
    assert c["ann_macs"].tolist() == [6, 6, 6]
    c = energy.layer_counts(t_in, spec, T, until=np.array([3, 3, 2]))  # up to steps 3, 3, 2
    assert c["acs"].tolist() == [2, 0, 4]
    assert c["clock_updates"].tolist() == [8, 8, 6]  # steps 0..3, 0..3, 0..2
    assert c["event_updates"].tolist() == [2, 0, 2]
    ramp = energy.LayerSpec(3, 2, in_start=0, start=T)  # collects in window 0, fires in window 1
    c = energy.layer_counts(t_in, ramp, T)
    assert c["clock_updates"].tolist() == [32, 32, 32]  # 2 neurons x 2 windows
    assert c["event_updates"].tolist() == [6, 2, 6]  # + the window's opening
    c = energy.layer_counts(t_in, ramp, T, until=np.array([10, 6, 7]))
    assert c["clock_updates"].tolist() == [22, 14, 16]
    assert c["event_updates"].tolist() == [6, 0, 4]  # the window opens at step 8: after steps 6 and 7
    row = energy.layer_summary(energy.layer_counts(t_in, spec, T), spec)
    assert row["energy_pj"] == pytest.approx(10 / 3 * 0.9)
    assert row["ann_energy_pj"] == pytest.approx(6 * 4.6)
    assert row["spikes_per_synapse"] == pytest.approx(10 / 3 / 6)
    with pytest.raises(ValueError, match="3 inputs"):
        energy.layer_counts(t_in[:, :2], spec, T)


def _hand_acs(inputs, shapes, T, until=None, starts=None):
    """ACs per sample counted spike by spike: every input spike adds its layer's fan-out."""
    n = len(inputs[0])
    total = np.zeros(n)
    for k, (t, (_, n_out)) in enumerate(zip(inputs, shapes)):
        for b in range(n):
            for time in t[b]:
                if time < T and (until is None or time + starts[k] <= until[b]):
                    total[b] += n_out
    return total


@pytest.mark.parametrize("model", MODELS)
def test_synaptic_operations_equal_a_count_by_hand(model, tiny_run):
    run = tiny_run(model)
    metrics, act = evaluate_run(str(run), 12, with_quality=False, return_activity=True)
    gan, _, _ = load_gan(str(run))
    T = act.t_max
    g_shapes = [w.shape for w in gan.g.brian_layers()[0]]
    d_shapes = [w.shape for w in gan.d.brian_layers()[0]]
    g_in = [act.z] + act.g[:-1]
    d_in = [np.concatenate([a, b]) for a, b in zip([act.real_in] + act.d_real[:-1], [act.g[-1]] + act.d_fake[:-1])]
    acs_g, acs_d = _hand_acs(g_in, g_shapes, T), _hand_acs(d_in, d_shapes, T)
    # D's decision: its first output spike, on its clock (the ramp's output window opens at 2 T)
    out_start = len(d_shapes) * T if model == "ramp" else 0
    starts = [k * T for k in range(len(d_shapes))] if model == "ramp" else [0] * len(d_shapes)
    until = act.d_all[-1].min(axis=1) + out_start
    acs_dd = _hand_acs(d_in, d_shapes, T, until, starts)
    assert metrics["acs_g"] == pytest.approx(acs_g.mean())
    assert metrics["acs_d"] == pytest.approx(acs_d.mean())
    assert metrics["acs_d_to_decision"] == pytest.approx(acs_dd.mean())
    assert metrics["energy_total_pj"] == pytest.approx(0.9 * (acs_g.mean() + acs_dd.mean()))
    macs = sum(a * b for a, b in g_shapes + d_shapes)
    assert metrics["ann_energy_total_pj"] == pytest.approx(4.6 * macs)
    tables = energy_tables(gan, act)
    neurons = sum(b for _, b in g_shapes)
    window = T if model == "if" else 2 * T
    assert energy.totals(tables["G"])["clock_updates"] == neurons * window


def test_evaluate_writes_the_energy_table(tiny_run, tmp_path):
    out = tmp_path / "ev"
    rep = run_report(str(tiny_run("if")), str(out), n_samples=8, with_quality=False, brian=False)
    for name in ("energy.csv", "energy.md", "energy.png"):
        assert os.path.getsize(out / name) > 0 and name in rep["files"]
    with open(out / "energy.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    g_layers = [r for r in rows if r["network"] == "G" and r["layer"] != "all"]
    assert float(next(r for r in rows if r["network"] == "G" and r["layer"] == "all")["acs"]) == \
        pytest.approx(sum(float(r["acs"]) for r in g_layers))
    both = next(r for r in rows if r["network"] == "G + D to decision")
    assert float(both["energy_pj"]) == pytest.approx(rep["metrics"]["energy_total_pj"])
    text = (out / "energy.md").read_text()
    assert "Horowitz, ISSCC 2014" in text and "memory access" in text and "0.15-1.38" in text
