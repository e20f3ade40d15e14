"""Typed configs: validation, parent defaults, and the defaults ARE the shipped recipes."""
import os
import sys
from operator import attrgetter

import pytest
from helpers import IF_ONLY_KEYS, ROOT, TINY, TINY_RAMP, one_line, run_cli, tiny

from spiking_gan.cli import main
from training import config as cm
from training.config import ClassifierConfig, ConfigError, GanConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("text,msg", [
    ("[generator]\nhiden = [4]\n", "unknown config key generator.hiden"),
    ("[loss]\nkind = 'mse'\n", "loss.kind"),
    ("[train]\nepochs = 'many'\n", "train.epochs: expected an integer"),
    ("[train]\nbatch_size = 0\n", "train.batch_size: 0 is below the minimum 1"),
    ("[neuron]\nt_max = 2.5\n", "neuron.t_max: expected an integer"),
    ("[neuron]\nmodel = 'if'\n[generator]\nhidden = [8, 8]\n", "generator.thresholds: needs 3 values"),
    ("[loss]\ngamma = nan\n", "loss.gamma: NaN"),
    ("seed = -1\n", "seed: -1 is below"),
    ("[train\n", "not valid TOML"),
    ("[train]\naverage_from = 3\n", "unknown config key train.average_from"),  # classifier only
    ("per_class = true\n[neuron]\nmodel = 'ramp'\n", "per_class: read only by the 'if' model"),
    ("per_class = true\n[neuron]\nmodel = 'if'\n[generator]\nhidden = [8]\n[data]\nclasses = [3]\n",
         "per_class: .* leave data.classes empty"),
        ("[neuron]\nmodel = 'if'\n", "generator.thresholds: needs 1 values .* generator.hidden is empty"),
    ("per_class = 1\n", "per_class: expected"),
    ("[train]\nthreads = 0\n", "train.threads: 0 is below the minimum 1"),
    ("[train]\nthreads = 1.5\n", "train.threads: expected an integer"),
])
def test_bad_config_names_the_key(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[")):
        cm.load(str(p), GanConfig)


def test_config_roundtrip_and_shipped_configs(tmp_path):
    cfg = tiny()
    p = tmp_path / "c.toml"
    p.write_text(cm.to_toml(cfg))
    assert cm.load(str(p), GanConfig) == cfg
    for name in ("s4nn_per_class.toml", "s4nn_single.toml", "quick_digit.toml", "mnist.toml"):
        assert cm.load(os.path.join(ROOT, "configs", name), GanConfig).neuron.model == "if"
    ref = cm.load(os.path.join(ROOT, "configs", "s4nn_reference.toml"), ClassifierConfig)
    assert ref.train.rule == "reference" and ref.neuron.strict_threshold
    # the reference is S4NN's published code: its learning rates, batch 1, no averaging
    assert (ref.network.lr, ref.train.batch_size, ref.train.average_from) == ([0.2, 0.2], 1, 0)


def test_cli_config_error_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text("[train]\nepocs = 3\n")
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key train.epocs" in err and err.count("\n") == 1


def test_defaults_are_the_shipped_recipes():
    """`train` / `classify` without --config run exactly configs/quick_single.toml / classify.toml."""
    for name, cls in (("quick_single.toml", GanConfig), ("classify.toml", ClassifierConfig)):
        shipped = cm.load(os.path.join(ROOT, "configs", name), cls)
        diff = cm.config_diff(cm.to_dict(shipped), cm.to_dict(cls()))
        assert not diff, f"configs/{name} and the {cls.__name__} defaults differ in {diff}"
    assert GanConfig().neuron.model == "ramp" and ClassifierConfig().neuron.model == "if"


def test_dense_pair_is_the_main_job_with_dense_layers():
    """configs/dense_single.toml = the main job with DENSE_RECIPE's changes (dense G 100-512-784, no
    weight average, 120 epochs); nothing else drifts; the main job itself is the conv pair."""
    cfg = cm.load(os.path.join(ROOT, "configs", "dense_single.toml"), GanConfig)
    assert cfg == cm.override(GanConfig(), cm.DENSE_RECIPE)
    diff = cm.config_diff(cm.to_dict(cfg), cm.to_dict(GanConfig()))
    assert diff == ["generator.conv", "generator.hidden", "ramp.g_ema", "train.epochs"], diff
    assert (cfg.generator.conv, cfg.generator.hidden, cfg.ramp.g_ema, cfg.train.epochs) == ([], [512], 0.0, 120)
    main = GanConfig()
    assert (main.generator.conv, main.generator.hidden, main.ramp.g_ema, main.train.epochs) == (
        [32, 16], [], 0.999, cm.MAIN_JOB_EPOCHS)


def test_a_section_defaults_to_its_parents_default(tmp_path):
    """A key left out of a section takes the value of the parent config's default section."""
    p = tmp_path / "c.toml"
    p.write_text("[neuron]\nt_max = 32\n[train]\nepochs = 3\n")
    cfg = cm.load(str(p), GanConfig)
    assert (cfg.neuron.t_max, cfg.neuron.model, cfg.train.epochs) == (32, "ramp", 3)
    assert (cfg.generator.hidden, cfg.generator.conv) == (GanConfig().generator.hidden, [32, 16]) == ([], [32, 16])
    p.write_text("[train]\nepochs = 30\n")
    c = cm.load(str(p), ClassifierConfig)
    assert (c.train.epochs, c.train.batch_size, c.train.average_from) == (30, 10, 15)
    with pytest.raises(ConfigError, match="classifier is the S4NN network"):
        cm.from_dict(ClassifierConfig, {"neuron": {"model": "ramp"}})


def _toml_keys(path):
    """The dotted keys a TOML file sets."""
    def keys(d, prefix=""):
        for k, v in d.items():
            yield from keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    with open(path, "rb") as fh:
        return set(keys(tomllib.load(fh)))


def test_tiny_configs_set_only_keys_their_model_reads():
    """tests/data/tiny_ramp.toml sets no key only the IF model reads, tiny_gan.toml no [ramp] key;
    both have the same sizes."""
    assert sorted(_toml_keys(TINY_RAMP) & set(IF_ONLY_KEYS)) == []
    assert sorted(k for k in _toml_keys(TINY) if k.startswith("ramp.")) == []
    ramp, if_ = tiny("ramp"), tiny("if")
    assert ramp.neuron.model == "ramp" and if_.neuron.model == "if"
    same = attrgetter("seed", "neuron.t_max", "generator.noise_dim", "generator.hidden", "discriminator.hidden",
                      "train.epochs", "train.batch_size", "train.sample_grid", "data.max_train")
    assert same(ramp) == same(if_) == (3, 32, 10, [16], [16], 3, 20, 16, 200)


def test_an_unknown_set_key_lists_the_section_keys(capsys):
    code, _, err = run_cli(["train", "--set", "train.epocs=3", "--out", "unused"], capsys)
    assert code == 2 and one_line(err)
    assert "unknown config key train.epocs (known in [train]: batch_size, d_steps" in err and "epochs" in err
    with pytest.raises(cm.ConfigError, match=r"unknown config key foo \(known at the top: data\.\*, .*seed"):
        cm.override(GanConfig(), {"foo": 1})
    with pytest.raises(cm.ConfigError, match=r"unknown config key s4nn\.r1\.x \(known in \[s4nn\]: .*r1"):
        cm.override(GanConfig(), {"s4nn.r1.x": 1})


def test_a_schedule_shorter_than_the_average_says_what_to_change(tmp_path, capsys):
    code, _, err = run_cli(["classify", "--epochs", "2", "--out", tmp_path / "c"], capsys)
    assert code == 2 and one_line(err)
    assert "--set train.average_from=2" in err and "train 15 epochs or more" in err
    assert not (tmp_path / "c").exists()


def test_a_run_recorded_before_the_conv_default_loads_as_it_ran(tmp_path, tiny_run, capsys):
    """A ramp run's config.toml without generator.conv / ramp.g_ema (recorded before those keys
    existed) loads, samples and resumes as the dense, unaveraged pair it was, not as today's
    defaults (conv G, weight average); an IF record is untouched."""
    import shutil

    from training import exact
    from training.trainer import load_gan

    run = tmp_path / "old"
    shutil.copytree(tiny_run("ramp", 1), run)
    text = (run / "config.toml").read_text()
    assert "conv = []" in text and "g_ema = 0.0" in text
    old = "\n".join(line for line in text.splitlines()
                    if not line.startswith(("conv = ", "g_ema = "))) + "\n"
    (run / "config.toml").write_text(old)
    cfg = cm.load_record(str(run / "config.toml"))
    assert cfg == tiny("ramp", **{"train.epochs": 1})
    assert cm.load(str(run / "config.toml")).generator.conv == [32, 16]  # what a plain load would make of it
    gan, loaded, _ = load_gan(str(run))
    assert loaded == cfg and not any(isinstance(layer, exact.ConvLayer) for layer in gan.g.layers)
    assert gan.g.ema == 0.0
    code, _, err = run_cli(["train", "--out", run, "--resume", "--epochs", "2", "--quiet"], capsys)
    assert code == 0, err
    assert cm.load_record(str(run / "config.toml")).train.epochs == 2
    if_record = tmp_path / "if.toml"
    if_record.write_text(cm.to_toml(tiny("if")))
    assert "conv" not in if_record.read_text() and cm.load_record(str(if_record)) == tiny("if")
