"""NIR export (spiking-gan export) and the import into Brian2 (simulate --nir): models/nirgraph.py."""
import nir
import numpy as np
import pytest
from helpers import MODELS, one_line, run_cli, tiny

from models import nirgraph
from training.gan import Gan
from training.networks import sizes
from training.trainer import load_gan

pytestmark = pytest.mark.brian2


@pytest.mark.parametrize("model", MODELS)
def test_exported_g_and_d_read_back_give_the_runs_spike_times(model, tiny_run, tmp_path, capsys):
    run = tiny_run(model)
    out = tmp_path / "nir"
    code, stdout, err = run_cli(["export", "--run", run, "--out", out], capsys)
    assert code == 0, err
    gan, cfg, _ = load_gan(str(run))
    T = cfg.neuron.t_max
    g_graph, d_graph = nir.read(str(out / "generator.nir")), nir.read(str(out / "discriminator.nir"))
    for graph in (g_graph, d_graph):
        meta = nirgraph.graph_metadata(graph)
        assert meta["dt_ms"] == cfg.neuron.dt_ms and meta["t_max_steps"] == T
        assert meta["neuron_model"] == model and "at-most-one-spike" in meta["limits"]
        assert ("window" in meta["limits"]) == (model == "ramp")
        kinds = [type(n).__name__ for n in graph.nodes.values()]
        assert kinds.count("IF") == 2 and kinds.count("I") == (2 if model == "ramp" else 0)
    # trained weights, transposed into NIR's (n_out, n_in)
    np.testing.assert_array_equal(g_graph.nodes["linear_1"].weight, gan.g.brian_layers()[0][0].T)
    # G read back into Brian2 on the noise `sample --seed 2` draws, then D on its images
    code, _, err = run_cli(["sample", "--run", run, "--n", 5, "--seed", 2, "--out", tmp_path / "s.npz"], capsys)
    assert code == 0, err
    code, stdout, err = run_cli(["simulate", "--nir", out / "generator.nir", "--backend", "brian2", "--batch", 5,
                                 "--seed", 2, "--out", tmp_path / "g.npz"], capsys)
    assert code == 0, err
    g_sim, sample = np.load(tmp_path / "g.npz"), np.load(tmp_path / "s.npz")
    z = gan.g_input(np.random.default_rng(2), 5)
    np.testing.assert_array_equal(g_sim["input_times"], z)
    for k, t in enumerate(gan.g_times(z), start=1):
        np.testing.assert_array_equal(g_sim[f"times_{k}"], t)
    np.testing.assert_array_equal(g_sim["times_2"], sample["spike_times"])
    assert (g_sim["times_2"] < T).any()
    code, _, err = run_cli(["simulate", "--nir", out / "discriminator.nir", "--inputs", tmp_path / "s.npz",
                            "--out", tmp_path / "d.npz"], capsys)
    assert code == 0, err
    d_sim = np.load(tmp_path / "d.npz")
    for k, t in enumerate(gan.d_times(sample["spike_times"]), start=1):
        np.testing.assert_array_equal(d_sim[f"times_{k}"], t)


def test_bias_neurons_and_latency_travel_and_what_nir_cannot_hold_is_refused(rng):
    # a bias neuron (metadata: the importer adds its spikes) and a latency of 2 steps (Delay nodes)
    cfg = tiny("if", **{"s4nn.d_bias_time": 3, "s4nn.d_bias_weight": 20.0, "neuron.latency": 2})
    gan = Gan.init(cfg, rng)
    graph = nirgraph.network_graph(gan.d, 784, "discriminator")
    assert graph.nodes["linear_1"].weight.shape == (sizes(cfg)["d"][1], 785)
    assert isinstance(graph.nodes["delay_1"], nir.Delay)
    t_in = rng.integers(0, cfg.neuron.t_max + 1, (4, 784)).astype(np.int32)
    times = nirgraph.simulate_graph(graph, t_in)
    for got, want in zip(times, gan.d_times(t_in)):
        np.testing.assert_array_equal(got, want)
    assert (times[0] < cfg.neuron.t_max).any()
    gan = Gan.init(tiny("if", **{"s4nn.minibatch_std": 1.0}), rng)
    with pytest.raises(nirgraph.NirError, match="minibatch_std"):
        nirgraph.network_graph(gan.d, 784, "discriminator")
    gan = Gan.init(tiny("if", per_class=True), rng)
    with pytest.raises(nirgraph.NirError, match="per_class"):
        nirgraph.network_graph(gan.g, gan.noise_dim, "generator")


def _graph(*nodes):
    return nir.NIRGraph.from_list(*nodes)


def test_lif_and_affine_nodes_by_hand():
    one = np.ones(1)
    # LIF, tau 10 ms, r 1: a spike through w = 0.012 raises v by r w / tau = 1.2 mV, which then
    # decays by exp(-steps / 10); the threshold is tested one step's decay after the jump: two
    # spikes 2 steps apart give (1.2 exp(-0.2) + 1.2) exp(-0.1) = 1.97 mV > 1.9, 5 steps apart 1.74
    lif = nir.LIF(tau=one * 0.01, r=one.copy(), v_leak=np.zeros(1), v_threshold=one * 1.9, v_reset=one * -1e3)
    graph = _graph(nir.Linear(weight=np.full((1, 2), 0.012)), lif)
    times = nirgraph.simulate_graph(graph, np.array([[0, 2], [0, 5]]), dt_ms=1.0, t_max=20)[0]
    assert times[:, 0].tolist() == [3, 20]  # integrated at step 2, tested at step 3 (latency 1)
    # IF with an Affine bias of 100 mV/s (0.1 mV per 1 ms step) and no input spike
    graph = _graph(nir.Affine(weight=np.zeros((1, 1)), bias=one * 100.0),
                   nir.IF(r=one.copy(), v_threshold=one * 0.45, v_reset=one * -1e3))
    assert nirgraph.simulate_graph(graph, np.array([[20]]), dt_ms=1.0, t_max=20)[0].tolist() == [[4]]


def test_an_unsupported_node_is_one_line_naming_it(tmp_path, capsys):
    n = np.ones(3)
    graph = _graph(nir.Linear(weight=np.ones((3, 2))),
                   nir.CubaLIF(tau_syn=n, tau_mem=n, r=n, v_leak=0 * n, v_threshold=n))
    nir.write(str(tmp_path / "cuba.nir"), graph)
    code, _, err = run_cli(["simulate", "--nir", tmp_path / "cuba.nir", "--out", tmp_path / "x.npz"], capsys)
    assert code == 2 and one_line(err)
    assert "'cubalif' is a CubaLIF" in err
    (tmp_path / "bad.nir").write_text("not hdf5")
    code, _, err = run_cli(["simulate", "--nir", tmp_path / "bad.nir", "--out", tmp_path / "x.npz"], capsys)
    assert code == 2 and one_line(err) and "bad.nir" in err
    code, _, err = run_cli(["simulate", "--nir", tmp_path / "cuba.nir", "--backend", "numpy",
                            "--out", tmp_path / "x.npz"], capsys)
    assert code == 2 and "--backend brian2" in err
