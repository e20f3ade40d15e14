"""The convolutional ANN reference (analysis/ann_gan.py with conv layers; training.config.ANN_CONV)."""
import dataclasses
import json

import numpy as np
import pytest
from helpers import TINY

from analysis import ann_gan
from experiments import compare
from models.files import FileFormatError
from spiking_gan.cli import main
from training import config as cm

# a small conv D and G on 28x28: D 784 -> 2x14x14 -> 3x7x7 -> 1, G 5 -> 3x7x7 -> 2x14x14 -> 784
G_SIZES, G_GEOMS, D_SIZES, D_GEOMS = ann_gan.layout(5, [], [], g_conv=[3, 2], d_conv=[2, 3])


def _float64(rng, sizes, geoms, scale=1.0):
    ws, bs = ann_gan.init_mlp(rng, sizes, geoms)
    return ([w.astype(np.float64) * scale for w in ws], [rng.normal(size=b.shape) * 0.1 for b in bs])


def test_layout_is_the_spiking_models_conv_stack():
    assert G_SIZES == [5, 147, 392, 784] and D_SIZES == [784, 392, 147, 1]
    assert G_GEOMS[0] is None and all(g.transposed for g in G_GEOMS[1:])
    assert D_GEOMS[-1] is None and not any(g.transposed for g in D_GEOMS[:-1])
    # dense hidden layers stay dense, around the convolutions
    g_sizes, g_geoms, d_sizes, d_geoms = ann_gan.layout(5, [7], [9], g_conv=[3], d_conv=[2])
    assert g_sizes == [5, 7, 3 * 14 * 14, 784] and [g is None for g in g_geoms] == [True, True, False]
    assert d_sizes == [784, 2 * 14 * 14, 9, 1] and [g is None for g in d_geoms] == [False, True, True]


def test_conv_gradients_match_finite_differences():
    """Weights, channel biases and the input of a conv D, float64 central differences."""
    rng = np.random.default_rng(3)
    ws, bs = _float64(rng, D_SIZES, D_GEOMS, scale=2.0)
    x = rng.random((3, 784))
    c = rng.normal(size=(3, 1))

    def loss(ws, bs, x):
        out, _ = ann_gan.mlp_forward(ws, bs, x, D_GEOMS)
        return float((out * c).sum())

    out, inputs = ann_gan.mlp_forward(ws, bs, x, D_GEOMS)
    gws, gbs, dx = ann_gan.mlp_backward(ws, inputs, c, need_input_grad=True, geoms=D_GEOMS)
    assert [g.shape for g in gws] == [w.shape for w in ws] and [g.shape for g in gbs] == [b.shape for b in bs]
    e = 1e-6
    for k, idx in [(0, (1, 0, 2, 3)), (1, (2, 1, 0, 1)), (2, (100, 0))]:
        wp, wm = [w.copy() for w in ws], [w.copy() for w in ws]
        wp[k][idx] += e
        wm[k][idx] -= e
        assert (loss(wp, bs, x) - loss(wm, bs, x)) / (2 * e) == pytest.approx(gws[k][idx], rel=1e-5, abs=1e-9)
    for k, i in [(0, 1), (1, 2)]:
        bp, bm = [b.copy() for b in bs], [b.copy() for b in bs]
        bp[k][i] += e
        bm[k][i] -= e
        assert (loss(ws, bp, x) - loss(ws, bm, x)) / (2 * e) == pytest.approx(gbs[k][i], rel=1e-5, abs=1e-9)
    for i in (0, 400, 783):
        xp, xm = x.copy(), x.copy()
        xp[1, i] += e
        xm[1, i] -= e
        assert (loss(ws, bs, xp) - loss(ws, bs, xm)) / (2 * e) == pytest.approx(dx[1, i], rel=1e-5, abs=1e-9)


def test_conv_r1_penalty_matches_finite_differences():
    """R1 of a conv D: its value is gamma/2 mean ||dD/dx||^2 and its kernel gradients are exact."""
    rng = np.random.default_rng(5)
    ws, bs = _float64(rng, D_SIZES, D_GEOMS, scale=2.0)
    x = rng.random((4, 784))
    gamma = 3.0

    def penalty(ws):
        out, inputs = ann_gan.mlp_forward(ws, bs, x, D_GEOMS)
        _, _, dx = ann_gan.mlp_backward(ws, inputs, np.ones((len(x), 1)), need_input_grad=True, geoms=D_GEOMS)
        return 0.5 * gamma * np.mean((dx ** 2).sum(axis=1))

    _, inputs = ann_gan.mlp_forward(ws, bs, x, D_GEOMS)
    value, gws = ann_gan.r1_penalty(ws, inputs, gamma, D_GEOMS)
    assert value == pytest.approx(penalty(ws), rel=1e-10)
    e = 1e-6
    for k, idx in [(0, (0, 0, 1, 1)), (1, (2, 1, 3, 0)), (2, (50, 0))]:
        wp, wm = [w.copy() for w in ws], [w.copy() for w in ws]
        wp[k][idx] += e
        wm[k][idx] -= e
        assert (penalty(wp) - penalty(wm)) / (2 * e) == pytest.approx(gws[k][idx], rel=1e-5, abs=1e-9)


def test_conv_ann_gan_trains_saves_and_refuses_a_damaged_file(tmp_path, digits):
    kw = dict(noise_dim=5, g_hidden=[], d_hidden=[], epochs=1, batch_size=64, seed=0, r1=10.0, ema=0.9,
              g_conv=[3, 2], d_conv=[2, 3])
    gan = ann_gan.train_ann_gan(digits.train_images[:200], **kw)
    assert gan.g_sizes == G_SIZES and gan.d_sizes == D_SIZES and gan.has_ema
    assert gan.g_weights[1].shape == G_GEOMS[1].kernel_shape and gan.g_biases[1].shape == (2,)
    x = gan.generate(4, np.random.default_rng(0))
    assert x.shape == (4, 28, 28) and np.all((x >= 0) & (x <= 1)) and np.all(np.isfinite(gan.discriminate(x)))
    assert np.isfinite(gan.history["d_loss"][0]) and np.isfinite(gan.history["g_loss"][0])
    again = ann_gan.train_ann_gan(digits.train_images[:200], **kw)          # deterministic given the seed
    np.testing.assert_array_equal(again.generate(4, np.random.default_rng(0)), x)

    path = str(tmp_path / "conv.npz")
    ann_gan.save_ann_gan(gan, path)
    back = ann_gan.load_ann_gan(path)
    assert back.g_geoms == gan.g_geoms and back.d_geoms == gan.d_geoms
    np.testing.assert_array_equal(back.generate(4, np.random.default_rng(0)), x)
    # a geometry that does not fit the stored kernels, and a malformed one: one clear error each
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    for damage in ({"kernel": 5}, {"small": "x"}):
        bad = dict(meta, d_geoms=[dict(meta["d_geoms"][0], **damage), *meta["d_geoms"][1:]])
        np.savez(tmp_path / "bad.npz", meta=np.array(json.dumps(bad)), **arrays)
        with pytest.raises(FileFormatError, match="ANN GAN file"):
            ann_gan.load_ann_gan(str(tmp_path / "bad.npz"))


def test_ann_conv_config_keys_are_validated():
    shipped = cm.ANN_REFERENCES["ann_conv"]
    assert shipped is cm.ANN_CONV and shipped.g_conv and shipped.d_conv and not shipped.dense_hidden
    assert cm.from_dict(cm.AnnGanConfig, dataclasses.asdict(shipped)) == shipped
    with pytest.raises(cm.ConfigError, match="d_conv: 6 layers"):
        cm.from_dict(cm.AnnGanConfig, {"d_conv": [4] * 6})
    with pytest.raises(cm.ConfigError, match="conv_stride"):
        cm.from_dict(cm.AnnGanConfig, {"g_conv": [4], "conv_kernel": 2, "conv_stride": 3})
    with pytest.raises(cm.ConfigError):
        cm.from_dict(cm.AnnGanConfig, {"g_conv": [0]})


def test_mlp_budgets_keep_their_cache_keys():
    """Adding the conv keys changed no MLP reference's budget (their caches in figures/ stay valid);
    the conv reference's budget names its layout and has no dense hidden layers."""
    cfg = cm.GanConfig()
    for ref in (cm.ANN_UNTUNED, cm.ANN_TUNED):
        budget = compare.ann_budget(cfg, ref)
        assert not set(compare.CONV_KEYS) & set(budget) and budget["g_hidden"] == [512]
    conv = compare.ann_budget(cfg, cm.ANN_CONV)
    assert conv["g_hidden"] == [] and conv["d_hidden"] == [] and conv["g_conv"] == [32, 16]


def test_mlp_references_of_a_conv_spiking_pair_keep_their_hidden_layers():
    """A spiking G whose hidden layers are convolutional gets the dense recipe's MLP reference
    (G 100-512-784), not an MLP without a hidden layer; a dense spiking layer is copied as is."""
    cfg = cm.override(cm.GanConfig(), {"generator.hidden": [], "generator.conv": [32, 16],
                                       "discriminator.hidden": [128]})
    for ref in (cm.ANN_UNTUNED, cm.ANN_TUNED):
        budget = compare.ann_budget(cfg, ref)
        assert budget["g_hidden"] == [512] and budget["d_hidden"] == [128]
    assert compare.ann_budget(cm.override(cfg, {"generator.conv": []}), cm.ANN_TUNED)["g_hidden"] == []


def test_compare_losses_names_an_unknown_ann_reference(tmp_path, capsys):
    assert main(["compare-losses", "--config", TINY, "--out", str(tmp_path / "o"), "--ann", "ann,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--ann ann,nope: 'nope' is not an ANN reference" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
