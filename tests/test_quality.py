"""Sample-quality metrics (analysis/quality.py) and the non-spiking reference GAN (analysis/ann_gan.py)."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import ann_gan, quality

# ---------------------------------------------------------------------------------- FID / KID


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 8)) * np.arange(1, 9)
    assert quality.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)


def test_fid_same_gaussian_near_zero_and_mean_shift_matches_analytic():
    rng = np.random.default_rng(1)
    d = 4
    a = rng.normal(size=(20000, d))
    b = rng.normal(size=(20000, d))
    shift = np.array([3.0, 0.0, -4.0, 0.0])            # ||shift||^2 = 25
    assert quality.frechet_distance(a, b) < 0.01
    # equal covariances: FID = ||mu1 - mu2||^2 (up to sampling noise)
    assert quality.frechet_distance(a, b + shift) == pytest.approx(25.0, rel=0.01)
    # an exact check without sampling noise: the same set, shifted
    assert quality.frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-6)


def test_fid_scale_change_matches_analytic():
    # N(0, I) vs N(0, s^2 I) in d dims: d (1 - s)^2; exact for a set and its scaled copy
    a = np.random.default_rng(2).normal(size=(3000, 5))
    a -= a.mean(axis=0)                                 # equal means: only the covariances differ
    assert quality.frechet_distance(a, 2.0 * a) == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-6)


def test_fid_rejects_bad_input():
    with pytest.raises(ValueError):
        quality.frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError):
        quality.frechet_distance(np.zeros((1, 3)), np.zeros((10, 3)))


def test_kid_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    same = quality.kernel_distance(a, b, n_subsets=20, subset_size=200)
    shifted = quality.kernel_distance(a, b + 1.0, n_subsets=20, subset_size=200)
    assert abs(same) < 0.05
    assert shifted > 1.0
    assert shifted > 20 * abs(same)
    # deterministic given the seed, and the seed draws the subsets
    seven = quality.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=7)
    assert quality.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=7) == seven
    assert quality.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=8) != seven
    mean, std = quality.kernel_distance(a, b + 1.0, n_subsets=5, subset_size=100, return_std=True)
    assert std >= 0 and mean > 0


def test_kid_matches_direct_formula():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5
    k = lambda u, v: (u @ v / 3 + 1) ** 3       # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    # subset_size = n: every subset is the whole set (in another order)
    assert quality.kernel_distance(x, y, n_subsets=3, subset_size=6) == pytest.approx(xx + yy - 2 * xy)


# ---------------------------------------------------------------------------------- probabilities


def test_scores_on_hand_made_probabilities():
    eye = np.eye(10)
    uniform_onehot = np.repeat(eye, 5, axis=0)                     # 50 samples, 5 per class
    assert quality.inception_score(uniform_onehot) == pytest.approx(10.0)
    assert quality.class_coverage(uniform_onehot) == 1.0
    assert quality.mean_confidence(uniform_onehot) == pytest.approx(1.0)

    one_class = np.tile(eye[3], (50, 1))
    assert quality.inception_score(one_class) == pytest.approx(1.0)
    assert quality.class_coverage(one_class) == pytest.approx(0.1)

    flat = np.full((20, 10), 0.1)                                   # no confidence at all
    assert quality.inception_score(flat) == pytest.approx(1.0)
    assert quality.mean_confidence(flat) == pytest.approx(0.1)

    # two classes, equally often, with certainty: IS = 2
    two = np.concatenate([np.tile(eye[0], (10, 1)), np.tile(eye[7], (10, 1))])
    assert quality.inception_score(two) == pytest.approx(2.0)
    assert quality.class_coverage(two) == pytest.approx(0.2)

    mixed = np.array([[0.7, 0.3] + [0] * 8, [0.2, 0.8] + [0] * 8])
    assert quality.mean_confidence(mixed) == pytest.approx(0.75)


def test_class_coverage_threshold():
    eye = np.eye(10)
    # 99 samples of digit 0 and one of digit 1: digit 1 has a 1 % share
    p = np.concatenate([np.tile(eye[0], (99, 1)), eye[1:2]])
    assert quality.class_coverage(p, min_share=0.02) == pytest.approx(0.1)
    assert quality.class_coverage(p, min_share=0.01) == pytest.approx(0.2)
    assert quality.class_coverage(p, min_share=0.0) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        quality.class_coverage(np.full((3, 10), 0.5))              # rows do not sum to 1


# ---------------------------------------------------------------------------------- classifier


def test_classifier_accuracy_and_determinism(digits, clf):
    acc = clf.accuracy(digits.test_images / 255.0, digits.test_labels)
    assert acc >= 0.92
    again = quality.train_classifier(digits.train_images[:500], digits.train_labels[:500], epochs=1)
    again2 = quality.train_classifier(digits.train_images[:500], digits.train_labels[:500], epochs=1)
    np.testing.assert_array_equal(again.W1, again2.W1)
    x = digits.test_images[:7] / 255.0
    assert clf.features(x).shape == (7, 256)
    assert clf.features(x.reshape(7, 784)).shape == (7, 256)
    p = clf.predict_proba(x)
    assert p.shape == (7, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError):
        clf.features(np.full((2, 28, 28), 255.0))                  # floats not in [0, 1]


def test_classifier_save_load_roundtrip_and_corrupt_file(tmp_path, clf, digits):
    path = str(tmp_path / "clf.npz")
    quality.save_classifier(clf, path)
    back = quality.load_classifier(path)
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(getattr(back, k), getattr(clf, k))
        assert getattr(back, k).dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["clf.npz"]    # no temp file left behind

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not an npz file")
    with pytest.raises(ValueError, match="corrupt"):
        quality.load_classifier(str(bad))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(path, "rb").read()[:1000])
    with pytest.raises(ValueError):
        quality.load_classifier(str(truncated))
    with pytest.raises(ValueError, match="does not exist"):
        quality.load_classifier(str(tmp_path / "missing.npz"))
    other = tmp_path / "other.npz"
    np.savez(other, W1=np.zeros((784, 4)))
    with pytest.raises(ValueError):
        quality.load_classifier(str(other))
    mismatched = tmp_path / "mismatched.npz"
    quality.save_classifier(quality.Classifier(clf.W1, clf.b1, clf.W2, clf.b2), str(mismatched))
    with np.load(mismatched) as z:
        arrays = dict(z)
    arrays["W2"] = arrays["W2"][:, :5]
    np.savez(mismatched, **arrays)
    with pytest.raises(ValueError, match="shape"):
        quality.load_classifier(str(mismatched))


def test_get_classifier_caches(tmp_path, digits):
    small = SimpleNamespace(train_images=digits.train_images[:300], train_labels=digits.train_labels[:300])
    path = str(tmp_path / "sub" / "clf.npz")
    first = quality.get_classifier(path, small, epochs=1)
    mtime = (tmp_path / "sub" / "clf.npz").stat().st_mtime_ns
    second = quality.get_classifier(path, small, epochs=1)
    np.testing.assert_array_equal(first.W1, second.W1)
    assert (tmp_path / "sub" / "clf.npz").stat().st_mtime_ns == mtime     # loaded, not retrained
    (tmp_path / "sub" / "clf.npz").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning):
        third = quality.get_classifier(path, small, epochs=1)
    np.testing.assert_array_equal(first.W1, third.W1)
    quality.load_classifier(path)                                       # rewritten, valid
    # other training data or settings: retrained, not loaded
    other = SimpleNamespace(train_images=digits.train_images[300:600],
                            train_labels=digits.train_labels[300:600])
    assert not np.array_equal(quality.get_classifier(path, other, epochs=1).W1, first.W1)
    assert not np.array_equal(quality.get_classifier(path, other, epochs=2).W1, first.W1)


# ---------------------------------------------------------------------------------- ANN GAN


def test_ann_gan_short_run_and_roundtrip(tmp_path, digits):
    gan = ann_gan.train_ann_gan(digits.train_images[:300], noise_dim=20, g_hidden=[32, 16],
                                d_hidden=(24,), epochs=1, batch_size=64, seed=0)
    assert gan.g_sizes == [20, 32, 16, 784] and gan.d_sizes == [784, 24, 1]
    x = gan.generate(5, np.random.default_rng(0))
    assert x.shape == (5, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert gan.discriminate(x).shape == (5,)
    assert len(gan.history["d_loss"]) == 1 and np.isfinite(gan.history["g_loss"][0])
    # deterministic given the seed
    gan2 = ann_gan.train_ann_gan(digits.train_images[:300], noise_dim=20, g_hidden=[32, 16],
                                 d_hidden=(24,), epochs=1, batch_size=64, seed=0)
    np.testing.assert_array_equal(gan2.generate(5, np.random.default_rng(0)), x)

    path = str(tmp_path / "gan.npz")
    ann_gan.save_ann_gan(gan, path)
    back = ann_gan.load_ann_gan(path)
    np.testing.assert_array_equal(back.generate(5, np.random.default_rng(0)), x)
    assert back.history == gan.history
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError):
        ann_gan.load_ann_gan(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError):
        quality.load_classifier(path)                                   # not a classifier file


def test_ann_gan_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    ws, bs = ann_gan.init_mlp(rng, [5, 7, 6, 1])
    ws = [w.astype(np.float64) for w in ws]
    bs = [b.astype(np.float64) + 0.1 for b in bs]
    x = rng.normal(size=(4, 5))

    def loss(ws, x):
        out, _ = ann_gan.mlp_forward(ws, bs, x)
        return np.logaddexp(0, -out[:, 0]).sum()

    out, inputs = ann_gan.mlp_forward(ws, bs, x)
    delta = (-1.0 / (1.0 + np.exp(out[:, 0])))[:, None]
    gws, _, dx = ann_gan.mlp_backward(ws, inputs, delta, need_input_grad=True)
    e = 1e-6
    for (i, j) in [(0, 0), (3, 5), (6, 2)]:
        wp = [w.copy() for w in ws]
        wm = [w.copy() for w in ws]
        wp[1][i, j] += e
        wm[1][i, j] -= e
        assert (loss(wp, x) - loss(wm, x)) / (2 * e) == pytest.approx(gws[1][i, j], rel=1e-5, abs=1e-8)
    xp, xm = x.copy(), x.copy()
    xp[2, 3] += e
    xm[2, 3] -= e
    assert (loss(ws, xp) - loss(ws, xm)) / (2 * e) == pytest.approx(dx[2, 3], rel=1e-5, abs=1e-8)


def test_ann_gan_step_functions():
    """The shared GAN step of analysis.ann_gan (also used by experiments.controls): the pixel
    gradient is that of G's loss mean softplus(-D(x)) (finite differences), a D step lowers D's
    loss on its batch, and a G step raises D's verdict on G's next fakes from the same noise."""
    rng = np.random.default_rng(2)
    d = ann_gan.Mlp.init(rng, [12, 9, 1])
    g = ann_gan.Mlp.init(rng, [4, 8, 12])
    fake = rng.random((6, 12)).astype(np.float32)
    grad, logit = ann_gan.pixel_grad(d, fake)
    assert grad.shape == fake.shape and logit.shape == (6,)

    def g_loss(x):
        out, _ = ann_gan.mlp_forward([w.astype(np.float64) for w in d.w], d.b, x)
        return np.logaddexp(0, -out[:, 0]).mean()

    e = 1e-4
    for i, j in [(0, 0), (3, 7), (5, 11)]:
        xp, xm = fake.astype(np.float64), fake.astype(np.float64)
        xp[i, j] += e
        xm[i, j] -= e
        assert (g_loss(xp) - g_loss(xm)) / (2 * e) == pytest.approx(grad[i, j], rel=1e-3, abs=1e-7)

    real = rng.random((6, 12)).astype(np.float32)

    def d_loss():
        out, _ = d.forward(np.concatenate([real, fake]))
        return float(ann_gan.softplus(-out[:6, 0]).mean() + ann_gan.softplus(out[6:, 0]).mean())

    before = d_loss()
    for _ in range(5):
        ann_gan.d_step(d, real, fake, 1e-2, 0.5, 0.999)
    assert d_loss() < before
    z = ann_gan.centre_noise(rng.random((6, 4), dtype=np.float32))
    logit_g, g_in = g.forward(z)
    fake = ann_gan.sigmoid(logit_g)
    before = ann_gan.pixel_grad(d, fake)[1].mean()
    ann_gan.g_step(g, g_in, fake, ann_gan.pixel_grad(d, fake)[0], 1e-2, 0.5, 0.999)
    assert ann_gan.pixel_grad(d, ann_gan.sigmoid(g.forward(z)[0]))[1].mean() > before


def test_evaluate_samples_noise_worse_than_real(digits, clf):
    ref = digits.test_images[:500] / 255.0
    real = digits.test_images[500:] / 255.0
    noise = np.random.default_rng(0).random((500, 28, 28))
    r_real = quality.evaluate_samples(real, clf, ref, kid_subsets=10, kid_subset_size=200)
    r_noise = quality.evaluate_samples(noise, clf, ref, kid_subsets=10, kid_subset_size=200)
    assert set(r_real) == {"classifier_fid", "kid", "class_coverage", "mean_confidence",
                           "inception_score", "n_samples", "within_class_diversity", "speckle",
                           "speckle_real", "isolated", "isolated_real", "readable", "readable_real"}
    # the real-digit values are those of the reference images, whatever the samples
    assert r_noise["readable_real"] == r_real["readable_real"] > 0.8
    assert r_noise["isolated_real"] == r_real["isolated_real"] < 0.001
    assert r_noise["isolated"] > 10 * r_real["isolated"] and r_noise["readable"] < r_real["readable"]
    assert r_noise["classifier_fid"] > 10 * r_real["classifier_fid"]
    assert r_noise["kid"] > r_real["kid"]
    assert r_real["class_coverage"] == 1.0 and r_real["inception_score"] > 8
    assert r_real["n_samples"] == 500
    json.dumps(r_real)
    for k, v in r_real.items():
        assert type(v) in (float, int), k


def test_evaluate_samples_of_a_short_ann_gan_run(digits, clf):
    gan = ann_gan.train_ann_gan(digits.train_images[:300], noise_dim=100, g_hidden=(64,),
                                d_hidden=(64,), epochs=1, seed=0)
    fake = gan.generate(300, np.random.default_rng(1))
    ref = digits.test_images / 255.0
    r_fake = quality.evaluate_samples(fake, clf, ref, kid_subsets=5, kid_subset_size=200)
    r_real = quality.evaluate_samples(digits.train_images[:300] / 255.0, clf, ref,
                                      kid_subsets=5, kid_subset_size=200)
    assert r_fake["n_samples"] == 300
    assert r_fake["classifier_fid"] > r_real["classifier_fid"]


def test_speckle_counts_lit_pixels_that_stand_alone(digits):
    from analysis.speckle import speckle
    real = digits.test_images / 255.0
    assert speckle(real) < 0.01  # pen strokes are connected
    img = np.zeros((1, 28, 28))
    img[0, 5, 5:15] = 1.0  # a stroke of 10 pixels: the two ends have one neighbour each
    assert speckle(img) == pytest.approx(2 / 10)
    img[0, 20, 20] = img[0, 20, 24] = 1.0  # two lone pixels
    assert speckle(img) == pytest.approx(4 / 12)
    assert speckle(np.zeros((3, 784))) == 0.0
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(real[:200].shape) < 0.03, 1.0, real[:200])  # 3 % salt
    assert speckle(noisy) > 10 * speckle(real[:200])


def test_isolated_counts_lit_pixels_without_a_lit_neighbour(digits):
    from analysis.speckle import isolated, speckle
    img = np.zeros((2, 28, 28))
    img[0, 5, 5:15] = 1.0                  # a stroke: its ends have one neighbour, none is alone
    assert isolated(img) == 0.0 and speckle(img) == pytest.approx(2 / 10)
    img[1, 20, 20] = img[1, 20, 24] = 0.9  # two lone pixels in the second image
    img[1, 0, 0] = 0.5                      # not lit (the threshold is > 0.5)
    assert isolated(img) == pytest.approx(2 / 12)
    assert isolated(img) == speckle(img, max_neighbours=0)
    diag = np.zeros((1, 28, 28))
    diag[0, [3, 4], [3, 4]] = 1.0           # diagonal neighbours count (8-neighbourhood)
    assert isolated(diag) == 0.0
    assert isolated(digits.test_images / 255.0) < 0.001 < speckle(digits.test_images / 255.0)
    with pytest.raises(ValueError):
        speckle(img, max_neighbours=9)


def test_readable_share_counts_confident_samples():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert quality.readable_share(probs) == pytest.approx(0.5)       # 0.95 and 0.9 reach 0.9
    assert quality.readable_share(probs, threshold=0.75) == pytest.approx(0.75)
    assert quality.readable_share(probs, threshold=0.0) == 1.0
    with pytest.raises(ValueError):
        quality.readable_share(probs, threshold=1.5)


def test_nearest_distances_and_the_real_ratio(digits):
    rng = np.random.default_rng(0)
    bank = rng.random((50, 784)).astype(np.float32)
    x = rng.random((7, 784)).astype(np.float32)
    brute = np.sqrt(((x[:, None, :].astype(np.float64) - bank[None]) ** 2).sum(axis=2)).min(axis=1)
    np.testing.assert_allclose(quality.nearest_distances(x, bank, batch=3), brute, rtol=1e-4)
    assert np.all(quality.nearest_distances(bank[:5], bank) < 1e-2)   # (float32 rounding of 0)
    train, test = digits.train_images / 255.0, digits.test_images / 255.0
    # real held-out digits are 1 by definition; copies of training digits are 0; noise is far
    assert quality.nearest_real_ratio(test, train, test) == pytest.approx(1.0)
    assert quality.nearest_real_ratio(train[:100], train, test) < 0.01
    assert quality.nearest_real_ratio(rng.random((100, 784)), train, test) > 2
    # digits with 3 % salt lie farther from every training digit than real ones; blurred ones
    # lie closer (the Euclidean distance rewards an average: the docstring's caveat)
    from scipy.ndimage import uniform_filter
    salted = np.where(rng.random(test[:200].shape) < 0.03, 1.0, test[:200])
    assert quality.nearest_real_ratio(salted, train, test) > 1.3
    blurred = uniform_filter(test[:200].reshape(-1, 28, 28), size=(1, 3, 3))
    assert quality.nearest_real_ratio(blurred, train, test) < 0.95


def test_evaluate_samples_with_training_images_has_nearest_real(digits, clf):
    ref = digits.test_images / 255.0
    r = quality.evaluate_samples(ref[:300], clf, ref, kid_subsets=2, kid_subset_size=100,
                                 train_images01=digits.train_images / 255.0)
    assert r["nearest_real"] == pytest.approx(1.0, abs=0.1)   # the first 300 of the same digits
    assert "nearest_real" not in quality.evaluate_samples(ref[:300], clf, ref, kid_subsets=2,
                                                          kid_subset_size=100)


def test_r1_penalty_matches_finite_differences():
    """R1 = gamma/2 mean ||dD/dx||^2 of a leaky-ReLU MLP and its weight gradient, against
    central differences of the input gradient computed by mlp_backward (float64)."""
    rng = np.random.default_rng(7)
    ws, bs = ann_gan.init_mlp(rng, [6, 9, 5, 1])
    ws = [w.astype(np.float64) * 2 for w in ws]
    bs = [rng.normal(size=b.shape) for b in bs]
    x = rng.normal(size=(4, 6))
    gamma = 3.0

    def penalty(ws):
        out, inputs = ann_gan.mlp_forward(ws, bs, x)
        _, _, dx = ann_gan.mlp_backward(ws, inputs, np.ones((len(x), 1)), need_input_grad=True)
        return 0.5 * gamma * np.mean((dx ** 2).sum(axis=1))

    _, inputs = ann_gan.mlp_forward(ws, bs, x)
    value, gws = ann_gan.r1_penalty(ws, inputs, gamma)
    assert value == pytest.approx(penalty(ws), rel=1e-10)
    e = 1e-6
    for k, (i, j) in [(0, (0, 0)), (0, (5, 8)), (1, (3, 2)), (2, (4, 0))]:
        wp, wm = [w.copy() for w in ws], [w.copy() for w in ws]
        wp[k][i, j] += e
        wm[k][i, j] -= e
        assert (penalty(wp) - penalty(wm)) / (2 * e) == pytest.approx(gws[k][i, j], rel=1e-5, abs=1e-9)


def test_ann_gan_r1_and_weight_average(tmp_path, digits):
    """R1 changes D's steps (and flattens D at real images); the weight average follows its
    recurrence, is what generate() samples from, and survives a save and load."""
    kw = dict(noise_dim=20, g_hidden=[32], d_hidden=(24,), epochs=2, batch_size=64, seed=0)
    x = digits.train_images[:300]
    plain = ann_gan.train_ann_gan(x, **kw)
    r1 = ann_gan.train_ann_gan(x, r1=10.0, **kw)
    assert not plain.has_ema and not np.array_equal(plain.d_weights[0], r1.d_weights[0])

    def slope(gan):
        logit, inputs = ann_gan.mlp_forward(gan.d_weights, gan.d_biases, quality.as_unit_images(x[:200]))
        return ann_gan.r1_penalty(gan.d_weights, inputs, 1.0)[0]

    assert slope(r1) < slope(plain)
    avg = ann_gan.train_ann_gan(x, ema=0.9, **kw)
    init = ann_gan.train_ann_gan(x, ema=0.9, **dict(kw, epochs=0))
    assert avg.has_ema and init.has_ema
    np.testing.assert_array_equal(init.g_ema_weights[1], init.g_weights[1])  # starts at the initial G
    np.testing.assert_array_equal(avg.g_weights[0], plain.g_weights[0])      # the average only watches
    # it trails G: between the initial and the last weights (ema 0.9 over 10 G steps)
    last, start, mean = avg.g_weights[1], init.g_weights[1], avg.g_ema_weights[1]
    span = np.linalg.norm(start - last)
    assert 0.1 * span < np.linalg.norm(mean - last) < 0.9 * span and np.linalg.norm(mean - start) < span
    z = np.random.default_rng(1).random((4, 20), dtype=np.float32)
    assert not np.array_equal(avg.generate_from(z), avg.generate_from(z, ema=False))
    np.testing.assert_array_equal(avg.generate_from(z, ema=False), plain.generate_from(z))
    path = str(tmp_path / "ema.npz")
    ann_gan.save_ann_gan(avg, path)
    back = ann_gan.load_ann_gan(path)
    assert back.has_ema
    np.testing.assert_array_equal(back.generate_from(z), avg.generate_from(z))
    with pytest.raises(ValueError):
        ann_gan.train_ann_gan(x, ema=1.0, **kw)
