"""The command line: one-line errors for damaged files and bad options, help, version (issue 13)."""
import argparse
import json
import os
import shutil

import numpy as np
import pytest
from helpers import MODELS, PNG_MAGIC, ROOT, TINY, TINY_CLS, one_line, run_cli, snapshot

from spiking_gan import cli
from spiking_gan.cli import build_parser, main
from training import config as cm
from training.config import ClassifierConfig, ConfigError

PNG = PNG_MAGIC + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture(params=MODELS)
def model_run(request, tiny_run):
    """(model, folder): a finished 1-epoch run of the tiny GAN of each neuron model, shared by the
    session (copy it before changing it)."""
    return request.param, tiny_run(request.param, 1)


# ------------------------------------------------------------------ damaged files, every reader
def _npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _rewrite_checkpoint(path, change):
    """Rewrite a checkpoint with ``change(arrays, meta)`` applied (meta None = no meta entry)."""
    with np.load(path) as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta = change(arrays, meta)
    if meta is not None:
        arrays["meta"] = meta if isinstance(meta, np.ndarray) else np.array(json.dumps(meta))
    _npz(path, **arrays)


def _pop(d, k):
    d.pop(k)
    return d


#: The array families of each model's checkpoint (``{family}_{k}`` arrays; the metadata's
#: ``networks`` counts them): IF, the weights; ramp, also the biases and Adam moments.
FAMILIES = {"if": ("g", "d"),
            "ramp": ("g", "d", "g_bias", "d_bias", "g_adam_m", "g_adam_v", "d_adam_m", "d_adam_v")}


def _change_array(family, which, change):
    """Damage that replaces array ``which`` (0 = first, -1 = last) of ``family`` by ``change(a)``
    (None: the array is removed)."""
    def damage(p):
        def edit(arrays, meta):
            key = f"{family}_{meta['networks'][family] - 1 if which == -1 else which}"
            new = change(arrays.pop(key))
            if new is not None:
                arrays[key] = new
            return meta
        _rewrite_checkpoint(p, edit)
    return damage


#: What can be wrong with one array of a checkpoint (which array of the family, the change).
ARRAY_DAMAGE = {
    "missing": (-1, lambda a: None),
    "wrong dtype": (0, lambda a: a.astype(str)),
    "wrong rank": (0, lambda a: a.ravel() if a.ndim > 1 else a[None]),
    "wrong shape": (0, lambda a: a[:5]),
    "NaN": (-1, lambda a: a * np.nan),
    "pickled": (0, lambda a: np.array([{"w": 1}], dtype=object)),
}
CHECKPOINT_DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "png": lambda p: p.write_bytes(PNG),
    "meta not an object": lambda p: _rewrite_checkpoint(p, lambda a, m: [m]),
    "meta not JSON": lambda p: _rewrite_checkpoint(p, lambda a, m: np.array("{epoch: 1")),
    "meta missing": lambda p: _rewrite_checkpoint(p, lambda a, m: None),
    "no epoch": lambda p: _rewrite_checkpoint(p, lambda a, m: _pop(m, "epoch")),
    "epoch not a count": lambda p: _rewrite_checkpoint(p, lambda a, m: dict(m, epoch="two")),
    "no networks": lambda p: _rewrite_checkpoint(p, lambda a, m: _pop(m, "networks")),
}
#: Damage that only a resumed run notices (sampling does not need the generator state).
RESUME_DAMAGE = {
    "no rng_state": lambda p: _rewrite_checkpoint(p, lambda a, m: _pop(m, "rng_state")),
    "rng_state not a state": lambda p: _rewrite_checkpoint(p, lambda a, m: dict(m, rng_state={"x": 1})),
    "rng_state a list": lambda p: _rewrite_checkpoint(p, lambda a, m: dict(m, rng_state=[1, 2])),
    "no step": lambda p: _rewrite_checkpoint(p, lambda a, m: _pop(m, "step")),
}


def _checkpoint_cases():
    """(model, damage name, damage) of every model: the file-level damage, each kind of array
    damage on every array family of the model's checkpoint, and the resume-only damage."""
    for model in MODELS:
        cases = dict(CHECKPOINT_DAMAGE)
        cases.update({f"{family}: {kind}": _change_array(family, which, change)
                      for family in FAMILIES[model] for kind, (which, change) in ARRAY_DAMAGE.items()})
        cases.update(RESUME_DAMAGE)
        for name, damage in cases.items():
            yield pytest.param(model, name, damage, id=f"{model}-{name}")


CONFIG_DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3] + b"[gen"),
    "png": lambda p: p.write_bytes(PNG),
    "empty folder": lambda p: (p.unlink(), p.mkdir()),
    "wrong type": lambda p: p.write_text(p.read_text().replace("epochs = 1", "epochs = 'one'")),
    "not a table": lambda p: p.write_text("neuron = 3\n"),
    "unknown key": lambda p: p.write_text(p.read_text() + "\n[extra]\nx = 1\n"),
}
READERS = {
    "sample": lambda run, out: ["sample", "--run", run, "--n", "4", "--out", out / "s.npz", "--grid", out / "g.png"],
    "inspect": lambda run, out: ["inspect", "--run", run, "--out", out / "inspect"],
    "evaluate": lambda run, out: ["evaluate", "--run", run, "--out", out / "ev", "--n", "10", "--no-brian"],
    "train --resume": lambda run, out: ["train", "--out", run, "--resume", "--quiet"],
    "train --resume --epochs": lambda run, out: ["train", "--out", run, "--resume", "--epochs", "4", "--quiet"],
}


def _check_one_line_and_nothing_changed(argv, tmp_path, capsys):
    before = snapshot(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert code == 2, (argv, err)
    assert one_line(err), err
    assert snapshot(tmp_path) == before, argv
    return err


@pytest.mark.parametrize("model", MODELS)
def test_damage_covers_every_array_family(tiny_run, model):
    """The damaged-checkpoint cases name every array family a checkpoint of the model holds."""
    with np.load(tiny_run(model, 1) / "checkpoint.npz") as z:
        meta = json.loads(str(z["meta"]))
        files = set(z.files)
    assert tuple(sorted(meta["networks"])) == tuple(sorted(FAMILIES[model]))
    assert files == {"meta"} | {f"{f}_{k}" for f, n in meta["networks"].items() for k in range(n)}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("model,damage,apply", list(_checkpoint_cases()))
def test_damaged_checkpoint(tiny_run, tmp_path, capsys, reader, model, damage, apply):
    if damage in RESUME_DAMAGE and not reader.startswith("train"):
        pytest.skip("only a resumed run needs the generator state")
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run(model, 1), run_dir)
    apply(run_dir / "checkpoint.npz")
    err = _check_one_line_and_nothing_changed(READERS[reader](run_dir, tmp_path), tmp_path, capsys)
    assert "checkpoint" in err and str(run_dir) in err


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE))
def test_damaged_run_config(model_run, tmp_path, capsys, reader, damage):
    run_dir = tmp_path / "run"
    shutil.copytree(model_run[1], run_dir)
    CONFIG_DAMAGE[damage](run_dir / "config.toml")
    _check_one_line_and_nothing_changed(READERS[reader](run_dir, tmp_path), tmp_path, capsys)


CONFIG_READERS = {
    "train": lambda cfg, out: ["train", "--config", cfg, "--out", out / "o", "--quiet"],
    "classify": lambda cfg, out: ["classify", "--config", cfg, "--out", out / "o", "--quiet"],
    "compare-losses": lambda cfg, out: ["compare-losses", "--config", cfg, "--out", out / "o", "--quiet"],
    "figures": lambda cfg, out: ["figures", "--config", cfg, "--out", out / "o", "--runs-dir", out / "r",
                                 "--quiet"],
}


@pytest.mark.parametrize("reader", list(CONFIG_READERS))
@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE))
def test_damaged_config_option(tmp_path, capsys, reader, damage):
    cfg = tmp_path / "c.toml"
    shutil.copy(TINY_CLS if reader == "classify" else TINY, cfg)
    cfg.write_text(cfg.read_text().replace("epochs = 3", "epochs = 1"))
    CONFIG_DAMAGE[damage](cfg)
    err = _check_one_line_and_nothing_changed(CONFIG_READERS[reader](cfg, tmp_path), tmp_path, capsys)
    assert str(cfg) in err


WEIGHTS_DAMAGE = {
    "1-D": dict(weights_0=np.ones(5)),
    "strings": dict(weights_0=np.array([["1", "2"], ["3", "4"]])),
    "booleans": dict(weights_0=np.ones((3, 2), bool)),
    "3-D": dict(weights_0=np.ones((2, 3, 2))),
    "gap": dict(weights_0=np.ones((5, 3)), weights_2=np.ones((3, 2))),
    "no weights": dict(w=np.ones((5, 3))),
    "sizes differ": dict(weights_0=np.ones((5, 3)), weights_1=np.ones((4, 2))),
    "NaN": dict(weights_0=np.full((5, 3), np.nan)),
    "pickled": dict(weights_0=np.array([{"w": 1}], dtype=object)),
    "not an npz": PNG,
    "truncated": "truncated",
}


@pytest.mark.parametrize("damage", list(WEIGHTS_DAMAGE))
def test_damaged_weights_file(tmp_path, capsys, damage):
    path = tmp_path / "w.npz"
    content = WEIGHTS_DAMAGE[damage]
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncated":
        _npz(path, weights_0=np.ones((50, 30)), weights_1=np.ones((30, 2)))
        path.write_bytes(path.read_bytes()[:700])
    else:
        _npz(path, **content)
    err = _check_one_line_and_nothing_changed(["simulate", "--weights", path, "--out", tmp_path / "o.npz"],
                                              tmp_path, capsys)
    assert str(path) in err and "pickle" not in err.replace("(pickled arrays)", "")


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("argv,option", [
    (["simulate", "--threshold", "abc", "--out", "x.npz"], "--threshold"),
    (["simulate", "--seed", "-1", "--out", "x.npz"], "--seed"),
    (["simulate", "--batch", "0", "--out", "x.npz"], "--batch"),
    (["simulate", "--t-max", "1", "--out", "x.npz"], "--t-max"),
    (["simulate", "--dt", "-1", "--out", "x.npz"], "--dt"),
    (["simulate", "--layers", "3,x", "--out", "x.npz"], "--layers"),
    (["inspect", "--run", "r", "--sample", "-1"], "--sample"),
    (["sample", "--run", "r", "--n", "0", "--out", "x.npz"], "--n"),
    (["evaluate", "--run", "r", "--n", "1"], "--n"),
    (["train", "--config", "c.toml", "--out", "o", "--seed", "-1"], "--seed"),
    (["train", "--config", "c.toml", "--out", "o", "--epochs", "0"], "--epochs"),
    (["sweep", "s.toml", "--out", "o", "--workers", "0"], "--workers"),
])
def test_bad_option_values_name_the_option(tmp_path, capsys, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and option in err.splitlines()[-1] and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_inspect_neurons_out_of_range(tiny_run, tmp_path, capsys):
    code, _, err = run_cli(["inspect", "--run", tiny_run("if", 1), "--neurons", "3,784", "--out", tmp_path / "i"],
                           capsys)
    assert code == 2 and one_line(err) and "0..783" in err and not (tmp_path / "i").exists()


def test_png_as_config_and_average_from_above_epochs(tmp_path, capsys):
    png = tmp_path / "c.png"
    png.write_bytes(PNG)
    code, _, err = run_cli(["classify", "--config", png, "--out", tmp_path / "o"], capsys)
    assert code == 2 and one_line(err) and f"config file {png} is not a text (TOML) file" in err
    with pytest.raises(ConfigError, match="train.average_from: 15 is above train.epochs"):
        cm.from_dict(ClassifierConfig, {"train": {"epochs": 10, "average_from": 15}})
    code, _, err = run_cli(["classify", "--config", os.path.join(ROOT, "configs", "classify.toml"),
                            "--epochs", "3", "--out", tmp_path / "o"], capsys)
    assert code == 2 and one_line(err) and "average_from" in err and not (tmp_path / "o").exists()


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    """Only user errors become one line; anything else is a bug and must look like one."""
    def broken(args):  # e.g. a shape mismatch inside the library: a ValueError that is a bug
        raise ValueError("operands could not be broadcast together")
    monkeypatch.setattr(cli, "cmd_simulate", broken)
    with pytest.raises(ValueError, match="broadcast"):
        main(["simulate", "--out", str(tmp_path / "x.npz")])


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("spiking-gan ")
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert p.description, f"{name} has no description"
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default is not None and action.default is not False and action.option_strings:
                helper = cli._HelpFormatter(name)._get_help_string(action)
                assert "default" in helper, f"{name} {action.option_strings[0]} does not state its default"
        if "--target" in text:
            assert "default: numpy" in text, name
    assert "simulator: the NumPy kernel" in " ".join(sub.choices["simulate"].format_help().split())


def test_compare_losses_seed_and_seeds_are_unambiguous(capsys):
    parser = build_parser()
    args = parser.parse_args(["compare-losses", "--config", "c", "--out", "o", "--seed", "5", "--n-seeds", "2"])
    assert args.seed == 5 and cli._n_seeds(args) == 2
    args = parser.parse_args(["compare-losses", "--config", "c", "--out", "o", "--seeds", "4"])
    assert cli._n_seeds(args) == 4 and "--n-seeds" in capsys.readouterr().err  # the old name still works
    args = parser.parse_args(["figures", "--out", "o", "--seeds", "4", "--n-seeds", "2"])
    with pytest.raises(cli.UserError, match="--n-seeds only"):
        cli._n_seeds(args)
    assert cli._n_seeds(parser.parse_args(["figures", "--out", "o"])) == 3


def test_sweep_seed_plot_is_not_a_line():
    """The sweep's per-seed plot joined seeds with lines as if seed were an axis."""
    from experiments.sweep_report import group_key, is_categorical
    assert is_categorical([0, 1, 2], "seed") and is_categorical([0, 1, 2], "base.seed")
    assert not is_categorical([0.1, 0.2], "loss.alpha")
    rows = [{"seed": s, "loss.kind": k} for s in (0, 1) for k in ("ttfs", "aggressive")]
    assert group_key(rows, "loss.kind", ["loss.kind", "seed"]) is None  # seeds are averaged, not coloured
