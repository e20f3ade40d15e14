"""The collapse controls (experiments/controls.py) on the tiny networks and real digits."""
import json

import numpy as np
import pytest
from helpers import MODELS, tiny

from experiments.controls import CONTROLS, run_controls, train_control
from training.data import load_dataset


@pytest.mark.parametrize("model", MODELS)
def test_every_control_trains_and_logs_the_error_cosine(model):
    cfg = tiny(model, **{"train.epochs": 2})
    data = load_dataset(cfg.data)
    for kind in CONTROLS:
        res = train_control(kind, cfg, data)
        assert len(res["error_cosine"]) == 2 and all(-1 <= c <= 1 for c in res["error_cosine"]), kind
        assert res["images"].shape == (1000, 28, 28)
        assert 0 <= res["images"].min() and res["images"].max() <= 1


def test_run_controls_writes_json_and_figures(tmp_path):
    cfg = tiny(**{"train.epochs": 1})
    run_controls(cfg, str(tmp_path), kinds=("spiking", "ann_g_spiking_d"), progress=False)
    summary = json.load(open(tmp_path / "controls.json"))
    assert set(summary["controls"]) == {"spiking", "ann_g_spiking_d"}
    assert "git" in summary["record"] and summary["config"]["seed"] == summary["seed"]
    assert summary["dataset"] == "digits"
    for res in summary["controls"].values():
        assert np.isfinite(res["classifier_fid"]) and 0 <= res["within_class_diversity"]
    for name in ("controls.png", "spiking.png", "ann_g_spiking_d.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    with pytest.raises(ValueError, match="unknown control"):
        train_control("both_ann", cfg, load_dataset(cfg.data))


def test_controls_with_bias_neurons_give_the_ann_halves_the_data_only():
    """A bias neuron is an input of the spiking networks only: the ANN D still reads 784 pixels
    and the ANN G still draws noise_dim numbers."""
    cfg = tiny(**{"train.epochs": 1, "s4nn.d_bias_time": 24, "s4nn.d_bias_weight": 60.0, "s4nn.g_bias_time": 2})
    data = load_dataset(cfg.data)
    for kind in CONTROLS:
        assert train_control(kind, cfg, data)["images"].shape == (1000, 28, 28), kind
