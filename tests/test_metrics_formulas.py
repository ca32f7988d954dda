"""Formula tests for the metrics against independent computations: FID (Heusel et al. 2017), KID
(Binkowski et al. 2018), improved precision/recall and realism score (Kynkäänniemi et al. 2019, the
realism score as used by Choi et al., 004_738a47e1aec6d700.txt Section 4.2) and the Inception Score
(Salimans et al. 2016); cross-checked with torch-fidelity where its functions take raw features."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from lightning_stylegan.metrics.frechet import frechet_distance
from lightning_stylegan.metrics.inception_score import inception_score
from lightning_stylegan.metrics.kid import kernel_inception_distance
from lightning_stylegan.metrics.precision_recall import knn_radii, precision_recall, realism_score


def random_gaussian(rng, d):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- FID

def test_frechet_distance_matches_the_symmetric_scipy_form_on_known_gaussians():
    """FID (Heusel et al. 2017, Eq. 6 / TTUR): ||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), against
    the same quantity written with the symmetric root Tr((S1^1/2 S2 S1^1/2)^1/2), by scipy."""
    rng = np.random.default_rng(0)
    for d in (1, 5, 32):
        (mu1, s1), (mu2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
        root1 = scipy.linalg.sqrtm(s1).real
        expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                    - 2 * np.trace(scipy.linalg.sqrtm(root1 @ s2 @ root1).real))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-9)


def test_frechet_distance_of_commuting_covariances_has_the_closed_form():
    """Heusel et al. 2017 Eq. 6 for S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T (and diagonal ones, Q = I):
    ||mu1 - mu2||^2 + sum(a + b - 2 sqrt(a b)); in 1-D the 2-Wasserstein (m1-m2)^2 + (s1-s2)^2."""
    rng = np.random.default_rng(1)
    d = 16
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(closed, rel=1e-10)
    assert frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T) == pytest.approx(closed, rel=1e-8)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(2.0 ** 2 + (2 - 3) ** 2)


def test_frechet_distance_of_identical_statistics_is_zero_and_agrees_with_torch_fidelity():
    """FID(N, N) = 0; and the value equals torch-fidelity's eigenvalue form of the same formula."""
    rng = np.random.default_rng(2)
    mu, sigma = random_gaussian(rng, 64)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    mu2, sigma2 = random_gaussian(rng, 64)
    theirs = fid_statistics_to_metric(dict(mu=mu, sigma=sigma), dict(mu=mu2, sigma=sigma2), verbose=False)
    assert frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-8)
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(mu, sigma, mu2[:3], sigma2)


# ---------------------------------------------------------------- KID

def poly_kernel(x, y):
    return (sum(a * b for a, b in zip(x, y)) / len(x) + 1) ** 3


def mmd2_loops(x, y, unbiased=True):
    """MMD^2 (Gretton et al. 2012, Eq. 2 unbiased / Eq. 5 biased) by explicit double loops."""
    m = len(x)
    pairs = [(i, j) for i in range(m) for j in range(m) if i != j or not unbiased]
    within = sum(poly_kernel(x[i], x[j]) + poly_kernel(y[i], y[j]) for i, j in pairs) / len(pairs)
    between = sum(poly_kernel(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return within - 2 * between


def test_kid_equals_an_explicit_double_loop_mmd_on_a_tiny_set():
    """KID (Binkowski et al. 2018, Section 4 / Appendix D): unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3.
    With one subset as large as the sets, the subset is a permutation of them and the estimate is exact."""
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5
    expected = mmd2_loops(fake.tolist(), real.tolist())
    assert kernel_inception_distance(real, fake, num_subsets=1, max_subset_size=6) == pytest.approx(expected, rel=1e-10)
    assert kernel_inception_distance(torch.from_numpy(real), torch.from_numpy(fake), num_subsets=3,
                                     max_subset_size=100) == pytest.approx(expected, rel=1e-10)


def test_kid_is_unbiased_where_the_v_statistic_is_not():
    """Binkowski et al. 2018 Section 4: the unbiased MMD^2 estimator has expectation 0 for two
    samples of one distribution, while the biased V-statistic (Gretton et al. Eq. 5) is positive."""
    rng = np.random.default_rng(4)
    m, d, repeats = 20, 4, 400
    unbiased, biased = [], []
    for seed in range(repeats):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(kernel_inception_distance(x, y, num_subsets=1, max_subset_size=m, seed=seed))
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append((kxx.sum() + kyy.sum() - 2 * kxy.sum()) / m ** 2)
    unbiased, biased = np.array(unbiased), np.array(biased)
    standard_error = unbiased.std() / math.sqrt(repeats)
    assert abs(unbiased.mean()) < 3 * standard_error
    assert biased.mean() > 20 * standard_error and biased.mean() > 10 * abs(unbiased.mean())


def test_kid_draws_the_subsets_of_nvlabs_and_torch_fidelity():
    """Same seed, same subsets (generated first, then real, from np.random.RandomState): the
    value equals torch-fidelity's KID mean, whose subsets are drawn the same way."""
    rng = np.random.default_rng(5)
    real = torch.from_numpy(rng.normal(size=(60, 8)).astype(np.float32))
    fake = torch.from_numpy((rng.normal(size=(50, 8)) * 1.2 + 0.2).astype(np.float32))
    ours = kernel_inception_distance(real, fake, num_subsets=7, max_subset_size=30, seed=11)
    theirs = kid_features_to_metric(fake, real, kid_subsets=7, kid_subset_size=30, rng_seed=11, verbose=False)
    assert ours == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
    assert ours > 0


# ---------------------------------------------------------------- precision / recall

def radii_loop(points, k):
    """NND_k (Kynkäänniemi et al. 2019, Eq. 1-2): distance to the k-th nearest other sample."""
    return [sorted(math.dist(p, q) for j, q in enumerate(points) if j != i)[k - 1] for i, p in enumerate(points)]


def precision_recall_loop(real, fake, k):
    """Eq. 3-4 by loops: f(phi, Phi) = 1 iff ||phi - phi'|| <= NND_k(phi') for some phi' in Phi."""
    def inside(probe, manifold, radii):
        return any(math.dist(probe, p) <= r for p, r in zip(manifold, radii))
    real_radii, fake_radii = radii_loop(real, k), radii_loop(fake, k)
    precision = sum(inside(f, real, real_radii) for f in fake) / len(fake)
    recall = sum(inside(r, fake, fake_radii) for r in real) / len(real)
    return precision, recall


def test_precision_recall_equal_explicit_loops_and_torch_fidelity_in_small_blocks():
    """Kynkäänniemi et al. 2019 Eq. 1-4 by loops; distances computed in 7 x 5 blocks must not
    change anything; torch-fidelity's precision/recall on the same features agree."""
    rng = np.random.default_rng(6)
    real = rng.normal(size=(40, 5)).astype(np.float32)
    fake = (rng.normal(size=(31, 5)) * 1.3 + 0.4).astype(np.float32)
    for k in (1, 3, 5):
        expected = precision_recall_loop(real.tolist(), fake.tolist(), k)
        assert knn_radii(real, k, row_batch=7, col_batch=5).numpy() == pytest.approx(radii_loop(real.tolist(), k),
                                                                                    rel=1e-5)
        assert precision_recall(real, fake, k=k, row_batch=7, col_batch=5) == pytest.approx(expected)
        theirs = calculate_precision_recall_full(torch.from_numpy(fake), torch.from_numpy(real), k, 1000)
        assert precision_recall(real, fake, k=k) == pytest.approx(theirs)


def clusters(rng, centers, per_cluster):
    return np.concatenate([rng.normal(size=(per_cluster, len(c))) + c for c in centers]).astype(np.float32)


def test_precision_recall_known_answers_on_point_clouds():
    """Kynkäänniemi et al. 2019 Fig. 1/Section 2: identical sets -> (1, 1); disjoint far sets ->
    (0, 0); generated samples from half of the real modes -> precision 1, recall 1/2 (exactly for
    copies of those real samples, approximately for new samples of those modes)."""
    rng = np.random.default_rng(7)
    centers = [(100, 0), (0, 100), (-100, 0), (0, -100)]
    real = clusters(rng, centers, 100)
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 1000) == (0.0, 0.0)
    half = real[:200]  # the real samples of modes 0 and 1 exactly
    assert precision_recall(real, half) == (1.0, 0.5)
    fresh = clusters(rng, centers[:2], 200)  # new samples of modes 0 and 1
    precision, recall = precision_recall(real, fresh)
    assert precision > 0.9 and 0.45 < recall <= 0.5


# ---------------------------------------------------------------- realism score

def realism_loop(real, fake, k):
    """Kynkäänniemi et al. 2019 Section 5: R(phi_g) = max_r NND_k(phi_r) / ||phi_r - phi_g|| over the
    real samples whose radius is at most the median radius (numpy's percentile 50)."""
    radii = radii_loop(real, k)
    median = np.percentile(radii, 50)
    kept = [(p, r) for p, r in zip(real, radii) if r <= median]
    return [max(r / (math.dist(p, g) + 1e-5) for p, r in kept) for g in fake]


def test_realism_score_equals_an_explicit_loop_in_small_blocks():
    """Realism score (Kynkäänniemi et al. 2019 Sec. 5, as used with k = 3 by Choi et al. Table 2)."""
    rng = np.random.default_rng(8)
    real = rng.normal(size=(41, 6)).astype(np.float32)
    fake = (rng.normal(size=(23, 6)) * 1.5).astype(np.float32)
    scores = realism_score(real, fake, k=3, row_batch=4, col_batch=6)
    assert scores.shape == (23,) and scores.dtype == torch.float32
    assert scores.numpy() == pytest.approx(realism_loop(real.tolist(), fake.tolist(), 3), rel=1e-4)


def test_realism_score_known_answers():
    """R >= 1 when the sample lies in a kept real hypersphere: a copy of a real sample with the
    smallest radius scores >= 1, a point at 0.9 of that radius from it > 1, a far point about 0."""
    rng = np.random.default_rng(9)
    real = rng.normal(size=(60, 4)).astype(np.float32)
    radii = knn_radii(real, 3)
    small = int(radii.argmin())
    direction = rng.normal(size=4).astype(np.float32)
    direction /= np.linalg.norm(direction)
    fake = np.stack([real[small], real[small] + 0.9 * float(radii[small]) * direction, real[0] + 1e4])
    scores = realism_score(real, fake, k=3)
    assert scores[0] >= 1 and scores[1] > 1 and scores[2] < 1e-3


# ---------------------------------------------------------------- Inception Score

def test_inception_score_limits():
    """Salimans et al. 2016 Section 4: IS = exp(E KL(p(y|x) || p(y))): uniform predictions give 1;
    confident predictions spread evenly over K classes give K (each of the splits holds every class)."""
    assert inception_score(torch.zeros(50, 7)) == pytest.approx((1.0, 0.0))
    k, splits = 5, 10
    logits = torch.full((splits * k * 2, 1008), -50.0)
    logits[torch.arange(len(logits)), torch.arange(len(logits)) % k] = 50.0
    mean, std = inception_score(logits, num_splits=splits)
    assert mean == pytest.approx(k, rel=1e-9) and std < 1e-9


def test_inception_score_equals_explicit_sums_and_torch_fidelity():
    """IS per split by explicit sums over samples and classes; torch-fidelity (no shuffling) agrees."""
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(30, 6)) * 2
    expected = []
    for part in np.split(logits, 3):
        p = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in part.tolist()]
        marginal = [sum(row[c] for row in p) / len(p) for c in range(6)]
        kl = [sum(pc * math.log(pc / mc) for pc, mc in zip(row, marginal)) for row in p]
        expected.append(math.exp(sum(kl) / len(kl)))
    assert inception_score(torch.from_numpy(logits), num_splits=3) == pytest.approx((np.mean(expected),
                                                                                      np.std(expected)))
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=3, shuffle=False)
    assert inception_score(logits, num_splits=3) == pytest.approx(
        (theirs["inception_score_mean"], theirs["inception_score_std"]))
    with pytest.raises(ValueError, match="num_splits"):
        inception_score(logits[:2], num_splits=3)

