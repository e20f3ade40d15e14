"""Sizes checked before any work (issue 21): absurd sizes end in one line and write nothing."""
import os

import numpy as np
import pytest
from helpers import TINY, TINY_CLS, TINY_RAMP, one_line, run_cli, snapshot

from models.files import write_npz_stream
from models.resources import SizeError, check_disk, check_memory, format_bytes, training_bytes
from training.trainer import load_gan

HUGE = 10**12


def test_format_and_checks(tmp_path):
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2**30) == "3 GiB" and format_bytes(12) == "12 B"
    check_memory(1000, "--n 1", "x")
    with pytest.raises(SizeError, match=r"--n 9: x would need about .* of memory"):
        check_memory(2**70, "--n 9", "x")
    check_disk(10, str(tmp_path / "new" / "f.npz"), "--n 1", "x")  # a folder to be made: its parent's disk
    with pytest.raises(SizeError, match="on disk"):
        check_disk(2**70, str(tmp_path / "f.npz"), "--n 9", "x")
    # one weight matrix of 10 x 20, batch 3: 6 float64 copies per weight, 16 per neuron and sample
    assert training_bytes([[10, 20]], 3) == 8 * (6 * 200 + 16 * 3 * 30)


def test_npz_stream_is_an_npz(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 9, (7, 5)).astype(np.int32), rng.random((7, 2, 2)).astype(np.float32)
    path = str(tmp_path / "s.npz")
    write_npz_stream(path, {"a": (a.shape, a.dtype), "b": (b.shape, b.dtype)},
                     [(a[:3], b[:3]), (a[3:], b[3:])], {"t": np.array(4)})
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["a", "b", "t"]
        np.testing.assert_array_equal(z["a"], a)
        np.testing.assert_array_equal(z["b"], b)
        assert z["t"] == 4
    with pytest.raises(ValueError, match="the chunks hold 3 values"):
        write_npz_stream(path, {"a": ((2, 2), np.int32)}, [(np.zeros(3, np.int32),)])
    with pytest.raises(ValueError, match="dtype"):
        write_npz_stream(path, {"a": ((2,), np.int32)}, [(np.zeros(2),)])


def test_sample_streams_the_same_samples(tiny_run, tmp_path, capsys):
    run = tiny_run("ramp")
    out = tmp_path / "s.npz"
    code, _, err = run_cli(["sample", "--run", run, "--n", 1234, "--seed", 5, "--out", out], capsys)
    assert code == 0, err
    gan, cfg, meta = load_gan(run)
    images, times = gan.generate(np.random.default_rng(5), 1234)
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["images"], images)
        np.testing.assert_array_equal(z["spike_times"], times)
        assert z["t_max"] == cfg.neuron.t_max and z["epoch"] == meta["epoch"]


def test_inspect_draws_the_noise_of_sample_k(tiny_run):
    gan = load_gan(tiny_run("if"))[0]
    z = gan.g_input(np.random.default_rng(3), 25)
    for k in (0, 7, 24):
        np.testing.assert_array_equal(gan.g_input_at(np.random.default_rng(3), k, chunk=4), z[k:k + 1])


@pytest.mark.slow
def test_absurd_sizes_end_in_one_line_and_write_nothing(tiny_run, tmp_path, capsys):
    run = tiny_run("if")
    before = snapshot(run)
    out = tmp_path / "out"
    cases = [
        (["simulate", "--batch", HUGE, "--out", out / "x.npz"], "--batch"),
        (["simulate", "--layers", f"784,{10**9},2", "--out", out / "x.npz"], "--batch 32 with --layers"),
        (["simulate", "--batch", 10**6, "--backend", "brian2", "--out", out / "x.npz"], "--batch"),
        (["sample", "--run", run, "--n", HUGE, "--out", out / "s.npz"], f"--n {HUGE}"),
        (["inspect", "--run", run, "--sample", HUGE, "--out", out / "i"], f"--sample {HUGE}"),
        (["inspect", "--run", run, "--neurons", "1,99999999", "--out", out / "i"], "--neurons"),
        (["evaluate", "--run", run, "--n", HUGE, "--out", out / "e"], f"--n {HUGE}"),
        (["compare-losses", "--config", TINY, "--n", HUGE, "--out", out / "c", "--quiet"], f"--n {HUGE}"),
        (["figures", "--config", TINY, "--n", HUGE, "--out", out / "f", "--runs-dir", out / "r", "--quiet"],
         f"--n {HUGE}"),
        (["train", "--config", TINY_RAMP, "--set", "generator.hidden=[100000,100000]", "--out", out / "t"],
         "layer sizes"),
        (["train", "--config", TINY, "--set", "train.batch_size=100000", "--set", "data.max_train=0",
          "--out", out / "t"], "train.batch_size"),
        (["classify", "--config", TINY_CLS, "--set", "network.hidden=[100000]", "--set", "train.batch_size=100000",
          "--out", out / "k"],
         "network.hidden"),
    ]
    for argv, option in cases:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and one_line(err) and option in err, (argv, err)
        assert not out.exists(), (argv, os.listdir(out))
    assert snapshot(run) == before
