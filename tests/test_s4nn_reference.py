"""S4NN exactly as published: ``train.rule = "reference"`` against numbers of the published code.

``tests/data/s4nn_published_weights.npz`` holds weights that the published S4NN code
(SRKH/S4NN ``S4NN.py``, commit 4e7a86f, run on the CPU) reached from the initial weights and
images of a ``replay.npz`` written by ``spiking-gan classify --config
configs/s4nn_reference.toml``: the code itself, with only its data loader, epoch count,
thresholds, dead-neuron rate and initial weights set from the replay (docs/experiments.md,
"S4NN exactly as published"). Per scenario: 2,000 sampled input weights (``_w0_index`` into
the flattened (784, 400) matrix, ``_w0_values``), the input weights summed per input and per
hidden neuron, and every output weight.
"""
import json
import os

import numpy as np
import pytest
from helpers import DATA, ROOT, one_line, run_cli

from models.coding import decide, s4nn_readout_correct
from models.kernel import forward
from models.neuron import NeuronParams
from training import config as cm
from training.config import ClassifierConfig, ConfigError
from training.s4nn_reference import init_weights

REFERENCE = os.path.join(ROOT, "configs", "s4nn_reference.toml")
PUBLISHED = np.load(os.path.join(DATA, "s4nn_published_weights.npz"))


def _check_against_published(run, tag):
    with np.load(os.path.join(run, "weights.npz")) as z:
        w0, w1 = z["w_0"], z["w_1"]
    assert w0.dtype == w1.dtype == np.float64
    np.testing.assert_allclose(w0.ravel()[PUBLISHED[f"{tag}_w0_index"]], PUBLISHED[f"{tag}_w0_values"],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w0.sum(axis=1), PUBLISHED[f"{tag}_w0_input_sums"], rtol=1e-12)
    np.testing.assert_allclose(w0.sum(axis=0), PUBLISHED[f"{tag}_w0_neuron_sums"], rtol=1e-12)
    np.testing.assert_allclose(w1, PUBLISHED[f"{tag}_w1"], rtol=1e-12, atol=1e-12)


def test_reference_run_ends_on_the_published_codes_weights(tmp_path, capsys):
    """The issue's command: 20 images, one epoch, no dead-neuron rule."""
    run = tmp_path / "ref"
    code, out, err = run_cli(["classify", "--config", REFERENCE, "--set", "data.max_train=20",
                              "--set", "train.epochs=1", "--set", "train.dead_min_rate=0",
                              "--out", run, "--quiet"], capsys)
    assert code == 0, err
    _check_against_published(run, "one_epoch")
    with np.load(run / "replay.npz") as r:
        assert sorted(r.files) == ["initial_weights_0", "initial_weights_1", "input_times", "labels"]
        assert r["initial_weights_0"].shape == (784, 400) and r["initial_weights_1"].shape == (400, 10)
        assert r["input_times"].shape == (20, 784) and r["labels"].shape == (20,)
        # the reference's own initialisation: np.random.seed(0), hidden then output matrix
        rs = np.random.RandomState(0)
        np.testing.assert_array_equal(r["initial_weights_0"], (5.0 * rs.random_sample((400, 784))).T)
        np.testing.assert_array_equal(r["initial_weights_1"], (48.0 * rs.random_sample((10, 400))).T)
    metrics = (run / "metrics.json").read_text()
    assert '"rule": "reference"' in metrics and "test_accuracy_s4nn_readout" in metrics


def test_reference_dead_neuron_redraws_follow_the_published_code(tmp_path, capsys):
    """Three epochs of 50 images with hidden threshold 550 mV: 23 and then 2 hidden neurons are
    dead after epochs 1 and 2 and re-drawn from the legacy generator, as the published code does."""
    run = tmp_path / "dead"
    code, _, err = run_cli(["classify", "--config", REFERENCE, "--set", "data.max_train=50",
                            "--set", "train.epochs=3", "--set", "network.thresholds=[550.0, 100.0]",
                            "--out", run, "--quiet"], capsys)
    assert code == 0, err
    revived = [json.loads(line)["revived"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert revived == [[23], [2], [0]]
    _check_against_published(run, "dead_rule")


def test_reference_rule_needs_one_unshifted_image_per_update():
    for key, value in (("train.batch_size", 10), ("train.augment_shift", 2)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*reference rule"):
            cm.load(REFERENCE, ClassifierConfig, {key: value})


def test_reference_init_layout():
    w, _ = init_weights(3, [6, 4, 2], [(0.0, 5.0), (1.0, 2.0)])
    rs = np.random.RandomState(3)
    np.testing.assert_array_equal(w[0], (5.0 * rs.random_sample((4, 6))).T)
    np.testing.assert_array_equal(w[1], (1.0 * rs.random_sample((2, 4)) + 1.0).T)


def test_strict_threshold_differs_exactly_at_ties():
    """Integer weights put potentials exactly on the threshold: ``>=`` fires there, ``>`` one
    input later (or never)."""
    w = np.array([[50.0], [50.0], [1.0]])
    t_in = np.array([[0, 0, 3]])
    loose = forward([w], t_in, NeuronParams((100.0,), t_max=16))[0]
    strict = forward([w], t_in, NeuronParams((100.0,), t_max=16, strict=True))[0]
    assert loose[0, 0] == 1 and strict[0, 0] == 4
    strict64 = forward([w], t_in, NeuronParams((100.0,), t_max=16, strict=True), dtype=np.float64)[0]
    assert strict64[0, 0] == 4


def test_s4nn_readout_scores_ties_and_silent_outputs_like_the_published_code():
    t_max = 16
    t_out = np.array([[3, 3, 9],      # a tie: label 1 is among the first -> S4NN: correct
                      [3, 3, 9],      # label 0 wins the tie in decide too
                      [16, 16, 16],   # silent: read by the potential at t_max - 3
                      [16, 16, 16],
                      [5, 2, 16]])    # plain win of label 1
    labels = np.array([1, 0, 2, 2, 0])
    t_hidden = np.array([[0, 0], [0, 0], [12, 14], [14, 14], [0, 0]])  # hidden spike at 12 counts, 14 not
    w_out = np.array([[1.0, 2.0, 3.0], [9.0, 9.0, 9.0]])
    got = s4nn_readout_correct(t_out, t_hidden, w_out, labels, t_max)
    assert got.tolist() == [True, True, True, False, False]
    strict = decide(t_out, t_max)[0] == labels
    assert strict.tolist() == [False, True, False, False, False]


def test_reference_run_is_refused_with_one_line_for_a_wrong_key(tmp_path, capsys):
    code, _, err = run_cli(["classify", "--config", REFERENCE, "--set", "train.batch_size=4",
                            "--out", tmp_path / "x"], capsys)
    assert code != 0 and one_line(err) and not (tmp_path / "x").exists()
