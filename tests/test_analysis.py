import json
import os

import numpy as np
import pytest
from helpers import PNG_MAGIC, TINY

from analysis import plots, stats
from analysis.evaluate import Activity, activity_measures
from experiments import compare, report
from models.coding import decide
from models.spikes import completion_times, decision_ties, firing_probability, last_spike_times, sparsity, spikes_before
from spiking_gan.cli import main


def test_sparsity_hand_made_raster():
    T = 10
    layer1 = np.array([[0, 3, T], [T, 5, T]])        # neuron 2 silent in both samples
    layer2 = np.array([[2, T], [T, T]])
    s = sparsity([layer1, layer2], T)
    assert s["spikes_per_sample"] == [1.5, 0.5]
    np.testing.assert_allclose(s["spikes_per_neuron"], [3 / 6, 1 / 4])
    np.testing.assert_allclose(s["silent_fraction"], [1 / 3, 1 / 2])


def test_decision_and_completion():
    T = 10
    out = np.array([[4, 2], [T, T], [3, 3]])
    win, t = decide(out, T)
    np.testing.assert_array_equal(t, [2, T, 3])
    np.testing.assert_array_equal(win, [1, -1, 0])
    np.testing.assert_array_equal(completion_times(np.array([[1, 5], [2, T]]), T), [5, T])


def test_spikes_before_decision():
    T = 10
    hidden = np.array([[0, 1, 6], [2, T, T]])
    out = np.array([[2, 7], [T, 3]])
    _, t = decide(out, T)
    np.testing.assert_array_equal(spikes_before([hidden, out], t, T), [2 + 1, 1 + 1])


def test_spikes_before_decision_in_windows():
    """Ramp model: the hidden layer fires in the window before the output layer's, so every
    hidden spike precedes the decision, however late in its own window."""
    T = 10
    hidden = np.array([[0, 1, 6], [2, T, 9]])
    out = np.array([[2, 7], [T, 0]])
    _, t = decide(out, T)
    np.testing.assert_array_equal(spikes_before([hidden, out], t, T, [0, T]), [3 + 1, 2 + 1])


# ------------------------------------------------------------------ more hand-made rasters
def test_spikes_before_ignores_silent_neurons_without_decision():
    T = 10
    hidden = np.array([[T, 4, T]])                   # one spike, two silent neurons
    out = np.array([[T, T]])                         # no decision: t_decision = t_max
    _, t = decide(out, T)
    np.testing.assert_array_equal(spikes_before([hidden, out], t, T), [1])


def test_decision_ties():
    T = 10
    out = np.array([[3, 3], [T, T], [2, 5], [4, 4]])
    np.testing.assert_array_equal(decision_ties(out, T), [True, False, False, True])
    assert decide(out, T)[0][0] == 0                      # a tie goes to neuron 0 ("real")


def test_firing_probability_and_last_spike():
    T = 10
    layer = np.array([[0, T, 3], [T, T, 9], [1, T, T]])
    p = firing_probability([layer], T)[0]
    np.testing.assert_allclose(p, [2 / 3, 0, 2 / 3])
    np.testing.assert_array_equal(last_spike_times(layer, T), [3, 9, 1])
    np.testing.assert_array_equal(last_spike_times(np.array([[T, T]]), T), [0])


def test_activity_measures_hand_made():
    T, dt = 10, 0.5
    g = [np.array([[1, T], [2, 3]]),                  # G hidden: 1 and 2 spikes
         np.array([[4, T, 5], [6, 7, 8]])]            # G output: pixel 1 black in sample 0
    d_real = [np.array([[1, 2], [T, 3]]), np.array([[4, 6], [T, T]])]      # real wins at 4; no decision
    d_fake = [np.array([[2, T], [2, 2]]), np.array([[5, 3], [7, 8]])]      # fake wins at 3; real at 7
    act = Activity(np.zeros((2, 3), np.int32), g, d_real, d_fake, np.zeros((2, 784), np.int32), T, dt)
    m = activity_measures(act)
    assert m["decision_time_real_ms"] == pytest.approx((4 + 10) / 2 * dt)
    assert m["decision_time_fake_ms"] == pytest.approx((3 + 7) / 2 * dt)
    assert m["decision_time_ms"] == pytest.approx((4 + 10 + 3 + 7) / 4 * dt)
    assert m["no_decision_rate"] == pytest.approx(0.25)
    assert m["d_accuracy_real"] == 0.5 and m["d_accuracy_fake"] == 0.5 and m["d_tie_rate"] == 0.0
    assert m["g_completion_ms"] == pytest.approx((T + 8) / 2 * dt)
    assert m["g_last_spike_ms"] == pytest.approx((5 + 8) / 2 * dt)
    assert m["g_pixels_on"] == pytest.approx(5 / 6)
    assert m["spikes_g"] == pytest.approx(1.5 + 2.5)
    # D over 4 images: hidden 2 + 1 + 1 + 2 = 6, output 2 + 0 + 2 + 2 = 6
    assert m["spikes_d"] == pytest.approx(12 / 4)
    assert m["spikes_total"] == pytest.approx(4 + 3)
    # up to the decision: real0 (t 4): 2 + 1; real1 (none, t_max): 1; fake0 (t 3): 1 + 1; fake1 (t 7): 2 + 1
    assert m["spikes_d_to_decision"] == pytest.approx((3 + 1 + 2 + 3) / 4)
    assert m["g_silent_fraction"] == [0.0, 0.0] and m["d_silent_fraction"] == [0.0, 0.0]
    json.dumps(m)


# ------------------------------------------------------------------ comparison statistics
ROWS = [{"loss": "ttfs", "seed": 0, "decision_time_ms": 20.0, "spikes_total": 100.0},
        {"loss": "ttfs", "seed": 1, "decision_time_ms": 30.0, "spikes_total": 100.0},
        {"loss": "aggressive", "seed": 0, "decision_time_ms": 10.0, "spikes_total": 90.0},
        {"loss": "aggressive", "seed": 1, "decision_time_ms": 15.0, "spikes_total": ""}]


def test_mean_std_and_relative_change():
    assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    assert np.isnan(stats.mean_std([])[0])
    ch = compare.relative_change(ROWS, "aggressive", "decision_time_ms")
    assert ch["of_means"] == pytest.approx((12.5 - 25.0) / 25.0)
    assert ch["paired_mean"] == pytest.approx(-0.5) and ch["paired_std"] == pytest.approx(0.0)
    assert ch["n_pairs"] == 2
    sp = compare.relative_change(ROWS, "aggressive", "spikes_total")    # a missing value is skipped
    assert sp["of_means"] == pytest.approx(-0.1) and sp["n_pairs"] == 1
    s = compare.summarise(ROWS, ["decision_time_ms"])
    assert s["ttfs"]["decision_time_ms"] == (25.0, pytest.approx(np.sqrt(50.0)), 2)


def test_claim_verdict():
    assert compare.claim_verdict(-0.40, -0.20) == "reaches both of the paper's numbers"
    assert "not its spike" in compare.claim_verdict(-0.40, -0.05)
    assert "not its inference-time" in compare.claim_verdict(-0.10, -0.20)
    assert compare.claim_verdict(0.1, 0.0) == "reaches neither of the paper's numbers"
    md = compare.comparison_markdown(ROWS)
    assert ("| D decision time (ms from the opening of D's output window), real + generated |  | 25 +- 7.07 "
            "| 12.5 +- 3.54 | -50.0 %") in md                 # (no real-digit value: an empty cell)
    assert "reaches the paper's inference-time number but not its spike number" in md


def test_loss_arms_and_config_diff():
    assert [a.label for a in compare.loss_arms()] == ["ttfs", "aggressive"]
    arms = compare.loss_arms(["B", "C"])
    assert [a.label for a in arms] == ["ttfs", "aggressive-B", "aggressive-C"]
    assert arms[1].overrides == {"loss.kind": "aggressive", "loss.variant": "B"}
    with pytest.raises(ValueError, match="variant"):
        compare.loss_arms(["D"])
    assert compare.config_diff({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5, "d": 3}}) == ["b.c"]


# ------------------------------------------------------------------ plots on synthetic data
def _png(path, min_kb=15):
    assert os.path.getsize(path) > min_kb * 1000, path
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC


def test_activity_plots_and_training_curves(tmp_path):
    rng = np.random.default_rng(0)
    T = 64
    g = [rng.integers(0, T + 1, (50, 30)), rng.integers(0, T + 1, (50, 784))]
    d_real = [rng.integers(0, T + 1, (50, 20)), rng.integers(0, T + 1, (50, 2))]
    d_fake = [rng.integers(0, T + 1, (50, 20)), rng.integers(0, T + 1, (50, 2))]
    act = Activity(rng.integers(0, T, (50, 10)), g, d_real, d_fake, rng.integers(0, T + 1, (50, 784)), T, 1.0)
    paths = report.plot_activity(act, str(tmp_path), "synthetic")
    assert sorted(paths) == ["inference_time.png", "samples.png", "sparsity.png", "spike_times.png"]
    for p in paths.values():
        _png(p)
    log = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"epoch": e, "step": 3 * (e - 1) + k, "d_loss": 0.1 / (k + 1), "g_loss": 0.2,
                         "d_acc_real": 0.9, "decision_time_ms": 20.0 - e, "g_spikes": 100.0})
             for e in (1, 2) for k in (1, 2, 3)]
    lines.insert(3, json.dumps({"kind": "epoch", "epoch": 1, "step": 3, "d_loss": 0.05, "g_loss": 0.2}))
    log.write_text("\n".join(lines) + '\n{"epoch": 2, "st')                 # a line cut short
    steps, epochs = report.read_metrics(str(log))
    assert len(steps) == 6 and len(epochs) == 1
    np.testing.assert_allclose(plots.fractional_epochs(steps), [1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    plots.plot_training_curves(steps, epochs, str(tmp_path / "curves.png"), title="synthetic")
    _png(str(tmp_path / "curves.png"))
    with pytest.raises(ValueError, match="no known training metrics"):
        plots.plot_training_curves([{"epoch": 1, "step": 1, "foo": 1.0}], [], str(tmp_path / "x.png"))
    rows = [dict(r, classifier_fid=50.0 + r["seed"]) for r in ROWS]
    plots.plot_loss_comparison(rows, str(tmp_path / "cmp.png"),
                               reference_rows=[{"loss": "ANN GAN", "seed": 0, "classifier_fid": 30.0}])
    _png(str(tmp_path / "cmp.png"))


# ------------------------------------------------------------------ end to end on the tiny config
TINY_ARGS = ["--config", TINY, "--epochs", "1", "--n-seeds", "2", "--n", "200", "--ann-epochs", "3"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """compare-losses on the tiny config, 2 seeds x 1 epoch, one run left interrupted beforehand."""
    from training import config as cm
    from training.config import GanConfig
    from training.trainer import prepare_run

    out = tmp_path_factory.mktemp("compare")
    # the state of a run killed during its first epoch: config.toml and run.json, no checkpoint
    cfg = cm.load(TINY, GanConfig, {"train.epochs": 1, "loss.kind": "aggressive", "seed": 4})
    os.makedirs(out / "runs")
    prepare_run(cfg, str(out / "runs" / "aggressive_seed4"), resume=False)
    assert main(["compare-losses", *TINY_ARGS, "--out", str(out), "--quiet"]) == 0
    return out


def test_compare_losses_end_to_end(compared, capsys):
    out = compared
    rows = compare.read_csv(str(out / "loss_comparison.csv"))
    assert list(rows[0]) == compare.COLUMNS
    assert [(r["loss"], r["seed"]) for r in rows] == [("ttfs", "3"), ("ttfs", "4"),
                                                      ("aggressive", "3"), ("aggressive", "4")]
    for r in rows:
        for k in ("decision_time_ms", "spikes_total", "classifier_fid", "spikes_g", "spikes_d",
                  "spikes_d_to_decision", "kid", "class_coverage", "mean_confidence",
                  "d_accuracy_real", "d_accuracy_fake", "g_completion_ms", "readable", "nearest_real",
                  "isolated", "readable_real", "isolated_real"):
            assert np.isfinite(float(r[k])), k
        assert 0 <= float(r["readable"]) <= 1 and 0 < float(r["readable_real"]) <= 1 and float(r["nearest_real"]) > 0
        assert float(r["spikes_total"]) == pytest.approx(float(r["spikes_g"]) + float(r["spikes_d"]))
        assert os.path.exists(os.path.join(r["run"], "summary.json"))
    assert rows[2]["kind"] == "aggressive" and rows[2]["variant"] == "A" and rows[0]["variant"] == ""
    assert {r["dataset"] for r in rows} == {"digits"}                     # every table names its data set
    md = (out / "loss_comparison.md").read_text()
    assert "Data set: **digits**" in md
    assert ("| measure | real test images | ttfs | aggressive | aggressive vs ttfs | ANN GAN, untuned (ann) "
            "| ANN GAN, tuned (ann_tuned) | conv ANN GAN, tuned (ann_conv) |") in md
    assert "reach" in md and "33 %" in md
    # the real digits' values stand beside the measures that have one (nearest-real: 1 by definition)
    readable_line = next(line for line in md.splitlines() if line.startswith("| readable"))
    assert f"| {compare._fmt(float(rows[0]['readable_real']))} |" in readable_line
    assert next(line for line in md.splitlines() if line.startswith("| nearest-real")).split(" | ")[1] == "1"
    ann = compare.read_csv(str(out / "ann_reference.csv"))
    assert [(r["loss"], r["seed"]) for r in ann] == [("ann", "3"), ("ann", "4"), ("ann_tuned", "3"), ("ann_tuned", "4"),
                                                     ("ann_conv", "3"), ("ann_conv", "4")]
    assert ann[0]["g_sizes"] == "10-16-784" and list(ann[0]) == compare.ANN_COLUMNS and ann[0]["dataset"] == "digits"
    # the untuned reference: the spiking run's epochs and batch size, no help; the tuned one: R1 and EMA
    assert (ann[0]["epochs"], ann[0]["batch_size"], ann[0]["r1"], ann[0]["ema"]) == ("1", "20", "0.0", "0.0")
    assert (ann[2]["epochs"], ann[2]["batch_size"], ann[2]["r1"], ann[2]["ema"]) == ("3", "64", "10.0", "0.999")
    assert "R1 gamma 10" in md and "weight average (EMA 0.999)" in md
    # the conv reference: a small DCGAN (no dense hidden layers), trained --ann-epochs epochs
    assert (ann[4]["epochs"], ann[4]["g_sizes"], ann[4]["d_sizes"]) == ("3", "10-1568-3136-784", "784-3136-1568-1")
    assert all(np.isfinite(float(r[k])) for r in ann for k in ("classifier_fid", "readable", "isolated"))
    _png(str(out / "loss_comparison.png"), 30)
    _png(str(out / "quality_grids.png"), 50)
    assert (out / "quality_classifier.npz").exists()
    # a second call reuses every run and evaluation
    ckpt = out / "runs" / "ttfs_seed3" / "checkpoint.npz"
    mtime = ckpt.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["compare-losses", *TINY_ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(reused)") == 4 and printed.count("reusing") == 6
    assert ckpt.stat().st_mtime_ns == mtime
    # another config on the same folders: one clear line
    assert main(["compare-losses", *TINY_ARGS, "--out", str(out), "--set", "loss.gamma=5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a run of another config (differs in loss.gamma)" in err and len(err.strip().splitlines()) == 1


@pytest.mark.brian2
def test_compare_losses_workers_train_the_same_runs(compared, tmp_path):
    """--workers 2 trains the runs and the ANN references in parallel processes: the same
    checkpoints, bit for bit, and the same measures."""
    out = tmp_path / "parallel"
    assert main(["compare-losses", *TINY_ARGS, "--out", str(out), "--quiet", "--ann", "ann,ann_tuned",
                 "--workers", "2"]) == 0
    for name in ("ttfs_seed3", "ttfs_seed4", "aggressive_seed3", "aggressive_seed4"):
        assert (compare.file_sha256(str(out / "runs" / name / "checkpoint.npz"))
                == compare.file_sha256(str(compared / "runs" / name / "checkpoint.npz"))), name
    for name in ("ann_seed3", "ann_seed4", "ann_tuned_seed3", "ann_tuned_seed4"):
        with np.load(out / "runs" / "ann" / f"{name}.npz") as a, \
                np.load(compared / "runs" / "ann" / f"{name}.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for k in set(a.files) - {"meta"}:  # (meta holds the training history's seconds)
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")
    serial = compare.read_csv(str(compared / "ann_reference.csv"))[:4]
    parallel = compare.read_csv(str(out / "ann_reference.csv"))
    assert [{k: v for k, v in r.items() if k != "train_seconds"} for r in parallel] == \
           [{k: v for k, v in r.items() if k != "train_seconds"} for r in serial]


def test_figures_command_reuses_runs(compared, tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["figures", "--out", str(out), "--runs-dir", str(compared / "runs"), "--config", TINY,
                 "--set", "train.epochs=1", "--n-seeds", "2", "--n", "200", "--quiet"]) == 0
    for f in ("loss_comparison.csv", "loss_comparison.md", "ann_reference.csv", "README.md"):
        assert (out / f).stat().st_size > 300, f
    _png(str(out / "loss_comparison.png"), 30)
    _png(str(out / "samples.png"), 50)
    for loss in ("ttfs", "aggressive"):
        for f in report.REPORT_FILES:
            if f.endswith(".png"):
                _png(str(out / loss / f))
        assert json.loads((out / loss / "metrics.json").read_text())["loss"] == loss
    index = (out / "README.md").read_text()
    assert "spiking-gan figures --out" in index and "[`ttfs/raster.png`](ttfs/raster.png)" in index
    # runs reused, not retrained
    assert len(compare.read_csv(str(out / "loss_comparison.csv"))) == 4


def test_evaluate_cli(compared, tmp_path, capsys):
    run = compared / "runs" / "ttfs_seed3"
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(run), "--n", "100", "--out", str(out), "--no-brian"]) == 0
    printed = capsys.readouterr().out
    assert "decision_time_ms" in printed and "classifier_fid" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_samples"] == 100 and m["loss"] == "ttfs" and m["epoch"] == 1 and m["dataset"] == "digits"
    for f in ("samples.png", "sparsity.png", "inference_time.png", "spike_times.png", "training_curves.png"):
        _png(str(out / f))
    assert main(["evaluate", "--run", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run), "--n", "1"]) == 2


def test_the_loss_panel_draws_zero_losses_on_its_log_axis(tmp_path):
    assert plots.log_floor(np.array([0.0, 1e-3, np.nan, 0.2])) == pytest.approx(1e-4)
    assert plots.log_floor(np.array([0.0, 0.0])) is None and plots.log_floor(np.array([-1.0, 1.0])) is None
    steps = [{"epoch": 1, "step": s + 1, "d_loss": 0.0 if s % 2 else 0.1 / (s + 1), "g_loss": 0.2} for s in range(8)]
    epochs = [{"kind": "epoch", "epoch": 1, "d_loss": 0.02, "g_loss": 0.2}]
    path = tmp_path / "curves.png"
    plots.plot_training_curves(steps, epochs, str(path))
    assert path.read_bytes().startswith(PNG_MAGIC)
