"""The neuron models' networks behind one interface (training/networks.py), and keys per model."""
import ast
import os

import numpy as np
import pytest

from models import brian, kernel, ramp
from models.neuron import IF_NEURON, RAMP_NEURON, NeuronModel
from training import config as cm
from training.config import ConfigError, GanConfig
from training.networks import NETWORKS, Network, Trace, network_class, sizes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"generator.noise_dim": 6, "generator.hidden": [8], "discriminator.hidden": [7], "neuron.t_max": 16}


def small(model):
    """A small dense pair of ``model`` (a model with conv layers gets none: the default G has them)."""
    dense = {"generator.conv": []} if "generator.conv" in network_class(model).config_keys() else {}
    return cm.override(GanConfig(), {"neuron.model": model, **SMALL, **dense})


@pytest.mark.parametrize("model", sorted(NETWORKS))
def test_every_model_follows_the_interface(model):
    """Each registered network builds from a config, runs forward / backward / update, and its
    checkpoint state loads back into a fresh network to the same forward pass."""
    cfg = small(model)
    cls = network_class(model)
    net = cls.init(cfg, "d", sizes(cfg)["d"], np.random.default_rng(0))
    assert isinstance(net, Network) and isinstance(net.neuron, NeuronModel)
    rng = np.random.default_rng(1)
    t_in = rng.integers(0, cfg.neuron.t_max + 1, (5, 784)).astype(np.int32)
    trace = net.trace(t_in)
    assert isinstance(trace, Trace)
    np.testing.assert_array_equal(trace.t_in, t_in)  # spike times in, whatever the model's units
    for a, b in zip(trace.times, net.times(t_in)):
        np.testing.assert_array_equal(a, b)
    labels = np.array([0, 1, 0, 1, 0])
    e = rng.standard_normal((5, 2)).astype(np.float32)
    g_out = net.loss_gradient(trace, labels, e, "d")
    grads, e_in = net.backward(trace, g_out, gate_output=False), net.input_error(trace, g_out)
    assert e_in.shape == t_in.shape and len(grads) == len(net.layers)
    before = [a.copy() for a in net.state()["weights"]]
    net.update(net.regularise(trace, grads, 2))
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.state()["weights"]))
    net.observe(trace)
    assert set(net.end_epoch(np.random.default_rng(2))) <= {"revived"}
    fresh = cls.init(cfg, "d", sizes(cfg)["d"], np.random.default_rng(9))
    fresh.load_state({k: [a.copy() for a in v] for k, v in net.state().items()}, net.counters())
    assert fresh.counters() == net.counters()
    for a, b in zip(fresh.times(t_in), net.times(t_in)):
        np.testing.assert_array_equal(a, b)
    assert len(net.window_starts()) == len(net.layers)


@pytest.mark.brian2
@pytest.mark.parametrize("model", sorted(NETWORKS))
def test_brian_layers_simulate_the_network(model):
    """What a network hands Brian2 (weights, per-neuron thresholds, its neuron model) fires at the
    spike times of the network's own NumPy forward pass."""
    cfg = small(model)
    net = network_class(model).init(cfg, "g", sizes(cfg)["g"], np.random.default_rng(3))
    z = np.random.default_rng(4).integers(0, cfg.neuron.t_max, (3, 6)).astype(np.int32)
    w, th = net.brian_layers()
    got = brian.simulate([np.asarray(a, np.float64) for a in w], z, net.params, neuron=net.neuron,
                         thresholds=th).times
    want = (ramp.forward(w, th, z, cfg.neuron.t_max) if net.neuron is RAMP_NEURON
            else kernel.forward(w, z, net.params, dtype=np.float64))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_neuron_models_windows():
    assert [IF_NEURON.window_start(k, 64) for k in range(3)] == [0, 0, 0]
    assert [RAMP_NEURON.window_start(k, 64) for k in range(3)] == [0, 64, 128]
    assert (IF_NEURON.run_steps(2, 64), RAMP_NEURON.run_steps(2, 64)) == (64, 192)
    assert (IF_NEURON.synaptic_delay_steps(3), RAMP_NEURON.synaptic_delay_steps(3)) == (2, 0)


def _model_names_in_code(path):
    """String constants equal to a registered model's name, outside docstrings."""
    tree = ast.parse(open(path).read())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and n.value in NETWORKS and id(n) not in docs]


@pytest.mark.parametrize("path", ["training/gan.py", "training/trainer.py", "analysis/inspect.py",
                                  "models/brian.py", "analysis/evaluate.py", "spiking_gan/cli.py"])
def test_callers_never_ask_which_model(path):
    assert _model_names_in_code(os.path.join(ROOT, path)) == []


# ------------------------------------------------------------------ keys per model
@pytest.mark.parametrize("key, value, model", [("generator.lr", [1.0, 1.0], "ramp"),
                                               ("train.l2", 0.1, "ramp"),
                                               ("neuron.latency", 2, "ramp"),
                                               ("per_class", True, "ramp"),
                                               ("ramp.lr_g", 0.1, "if")])
def test_a_key_the_model_ignores_is_refused(key, value, model):
    with pytest.raises(ConfigError) as exc:
        cm.override(GanConfig(), {"neuron.model": model, key: value})
    msg = str(exc.value)
    assert msg.startswith(f"{key}: read only by the") and f"neuron.model is {model!r}" in msg
    assert "\n" not in msg


def test_ignored_keys_in_a_file_and_on_the_if_model(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[neuron]\nmodel = "ramp"\n[discriminator]\nthresholds = [50.0, 50.0]\n')
    with pytest.raises(ConfigError, match="discriminator.thresholds: read only by the 'if' model"):
        cm.load(str(path))
    s4nn = cm.load(os.path.join(ROOT, "configs", "s4nn_single.toml"), GanConfig, {"generator.lr": [1.0, 1.0]})
    assert s4nn.generator.lr == [1.0, 1.0]
    # at its default an ignored key is harmless (run folders recorded before the check hold every key)
    assert cm.override(GanConfig(), {"generator.lr": [0.2, 0.2]}) == GanConfig()


def test_the_record_holds_only_the_models_keys():
    import tomllib

    for cfg in (GanConfig(), cm.load(os.path.join(ROOT, "configs", "s4nn_single.toml"))):
        text = cm.to_toml(cfg)
        assert cm.from_dict(GanConfig, tomllib.loads(text)) == cfg
        for key in cm.ignored_keys(cfg):
            section, _, leaf = key.rpartition(".")
            table = tomllib.loads(text).get(section, {}) if section else tomllib.loads(text)
            assert leaf not in table, key
    assert "[ramp]" not in cm.to_toml(cm.load(os.path.join(ROOT, "configs", "s4nn_single.toml")))
    # the ramp model's layer lists need no IF thresholds or learning rates
    deep = cm.override(GanConfig(), {"generator.hidden": [64, 32]})
    assert deep.generator.hidden == [64, 32]
