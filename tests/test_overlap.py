"""experiments.overlap: D's output window opened early, measured on a trained ramp run."""
import json

from experiments import overlap


def test_overlap_measurement_on_a_ramp_run(tiny_run, tmp_path, capsys):
    out = tmp_path / "o.json"
    assert overlap.main(["--run", str(tiny_run("ramp")), "--overlaps", "0,8,32", "--n", "40",
                         "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["images"], r["overlap"]) for r in rows] == [(k, o) for k in ("fake", "real") for o in (0, 8, 32)]
    for r in rows:
        if r["overlap"] == 0:  # no overlap: the closed form itself
            assert r["output_times_changed"] == 0 and r["verdicts_changed"] == 0
        assert r["d_spikes_to_decision"] <= r["d_spikes_all"] + 1e-9
    by = {(r["images"], r["overlap"]): r for r in rows}
    for kind in ("fake", "real"):  # an earlier test can only bring decisions forward
        assert by[kind, 32]["decision_ms"] <= by[kind, 8]["decision_ms"] <= by[kind, 0]["decision_ms"]
    assert "| fake | 8 |" in capsys.readouterr().out


def test_overlap_refuses_the_if_model_and_bad_overlaps(tiny_run, capsys):
    assert overlap.main(["--run", str(tiny_run("if")), "--n", "10"]) == 2
    assert overlap.main(["--run", str(tiny_run("ramp")), "--overlaps", "0,99", "--n", "10"]) == 2
    assert overlap.main(["--run", str(tiny_run("ramp")), "--overlaps", "a", "--n", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err and "windowed ramp" in err
