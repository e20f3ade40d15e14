import numpy as np
import pytest
from helpers import run_cli

from spiking_gan.cli import main


@pytest.mark.brian2
@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_simulate_digits_writes_npz_and_raster(backend, tmp_path, capsys):
    out, raster = tmp_path / "s.npz", tmp_path / "r.png"
    code, stdout, err = run_cli(["simulate", "--layers", "784,50,2", "--digits", "--batch", "4",
                                 "--backend", backend, "--out", str(out), "--raster", str(raster)], capsys)
    assert code == 0, err
    z = np.load(out)
    assert z["input_times"].shape == (4, 784)
    assert z["weights_0"].shape == (784, 50) and z["weights_1"].shape == (50, 2)
    assert z["times_1"].shape == (4, 50) and z["times_2"].shape == (4, 2)
    assert int(z["t_max"]) == 256 and float(z["dt_ms"]) == 1.0
    assert list(z["thresholds"]) == [100.0, 100.0]
    assert raster.stat().st_size > 10_000


@pytest.mark.brian2
def test_simulate_backends_agree_and_reload(tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run_cli(["simulate", "--layers", "30,20,3", "--threshold", "40,30", "--batch", "5",
                    "--t-max", "64", "--out", str(a)], capsys)[0] == 0
    assert run_cli(["simulate", "--weights", str(a), "--threshold", "40,30", "--batch", "5", "--t-max", "64",
                    "--backend", "brian2", "--out", str(b)], capsys)[0] == 0
    za, zb = np.load(a), np.load(b)
    for k in ("input_times", "times_1", "times_2"):
        np.testing.assert_array_equal(za[k], zb[k])


@pytest.mark.parametrize("argv,msg", [
    (["--layers", "784,x,2"], "layer sizes"),
    (["--layers", "784"], "at least two"),
    (["--layers", "100,10", "--digits"], "784 input"),
    (["--threshold", "1,2,3"], "3 thresholds"),
    (["--threshold", "-5"], "thresholds must be"),
    (["--target", "cython"], "--target only applies"),
])
def test_simulate_bad_input_one_line(argv, msg, tmp_path, capsys):
    code, _, err = run_cli(["simulate", "--out", str(tmp_path / "s.npz")] + argv, capsys)
    assert code == 2 and msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_simulate_missing_folder_and_nan_weights(tmp_path, capsys):
    code, _, err = run_cli(["simulate", "--layers", "20,5", "--out", str(tmp_path / "new" / "s.npz")], capsys)
    assert code == 0 and (tmp_path / "new" / "s.npz").exists()   # a missing folder is created
    w = np.ones((5, 3))
    w[1, 2] = np.nan
    np.savez(tmp_path / "w.npz", weights_0=w)
    code, _, err = run_cli(["simulate", "--weights", str(tmp_path / "w.npz"), "--out", str(tmp_path / "s.npz")], capsys)
    assert code == 2 and "NaN" in err
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    code, _, err = run_cli(["simulate", "--weights", tmp_path / "bad.npz", "--out", tmp_path / "s.npz"], capsys)
    assert code == 2 and "corrupt or not an .npz file" in err


def test_unknown_backend_is_a_usage_error(tmp_path, capsys):
    assert main(["simulate", "--backend", "nest", "--out", str(tmp_path / "s.npz")]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_random_networks_of_any_size_fire(tmp_path):
    """Simulate's random init scales with each layer's fan-in (S4NN's ranges at 784-400-2)."""
    from models.network import fan_in_ranges
    assert fan_in_ranges([784, 400, 2]) == [(0.0, 5.0), (0.0, 48.0)]
    out = tmp_path / "small.npz"
    assert main(["simulate", "--layers", "50,30,20,5", "--batch", "8", "--seed", "0", "--out", str(out)]) == 0
    z = np.load(out)
    for k in (1, 2, 3):
        assert (z[f"times_{k}"] < z["t_max"]).any(), f"layer {k} is silent"
