"""experiments.gradient_check: D's pixel error against random steps (the descent test)."""
import json

import pytest
from helpers import MODELS

from experiments import gradient_check
from training.trainer import load_gan


@pytest.mark.parametrize("model", MODELS)
def test_ds_error_raises_the_margin_more_than_a_random_step(model, tiny_run):
    gan, cfg, _ = load_gan(str(tiny_run(model)))
    result = gradient_check.descent_test(gan, cfg, n=200)
    for name in gradient_check.DIRECTIONS:
        assert set(result[name]) == {str(s) for s in gradient_check.STEPS}
    step = str(gradient_check.STEPS[-1])
    assert result["d_error"][step]["margin_change"] > result["random"][step]["margin_change"] + 1.0
    if model == "ramp":  # the exact gradient: nearly every fake moves towards "real"
        assert result["d_error"]["1.0"]["improved"] > 0.9


def test_cli_writes_json_and_refuses_bad_input(tiny_run, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert gradient_check.main(["--run", str(tiny_run("if")), "--n", "50", "--out", str(out)]) == 0
    assert "| d_error |" in capsys.readouterr().out
    assert json.loads(out.read_text())["epoch"] == 1
    assert gradient_check.main(["--run", str(tmp_path / "nothing"), "--n", "50"]) == 2
    assert gradient_check.main(["--run", str(tiny_run("if")), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err
