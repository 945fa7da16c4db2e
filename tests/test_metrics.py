"""The evaluation metrics on cases computable by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.evaluation.metrics import (
    activation_statistics,
    diversity,
    euclidean_distance_matrix,
    fid,
    frechet_distance,
    matching_score,
    mean_ci,
    multimodality,
    r_precision,
)


def test_distance_matrix():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(euclidean_distance_matrix(a, b), [[0, 1, 5], [5, math.sqrt(18), 0]], atol=1e-12)


def test_frechet_distance_closed_forms():
    d = 8
    assert frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(0, abs=1e-9)
    shift = np.arange(d, dtype=float)
    assert frechet_distance(np.zeros(d), np.eye(d), shift, np.eye(d)) == pytest.approx(shift @ shift)
    # N(0, I) vs N(0, 4I): tr(I + 4I - 2 * 2I) = d
    assert frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(d)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # a singular covariance still gives a finite, correct value
    s = np.diag([1.0, 0.0])
    assert frechet_distance(np.zeros(2), s, np.ones(2), s) == pytest.approx(2.0, abs=1e-5)
    with pytest.raises(MotionGPTError, match="dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_of_samples():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20000, 4)), rng.standard_normal((20000, 4))
    assert fid(a, b) == pytest.approx(0, abs=0.01)
    assert fid(a, b + np.array([1.0, 0, 0, 0])) == pytest.approx(1.0, abs=0.03)
    assert fid(a, 2 * b) == pytest.approx(4.0, rel=0.03)  # d * (2 - 1)^2
    mu, sigma = activation_statistics(a)
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False))
    with pytest.raises(MotionGPTError):
        activation_statistics(a[:1])


def test_r_precision_perfect_and_worst():
    rng = np.random.default_rng(1)
    text = rng.standard_normal((96, 16)) * 10
    assert r_precision(text, text).tolist() == [1.0, 1.0, 1.0]
    # text i = 10 e_i, motion i = 10 e_(i+1) + e_i: every text's nearest motion is the previous pair's (distance 1),
    # its own comes second (sqrt(181) < sqrt(201) for all others): top-1 never, top-2 always
    eye = np.eye(32)
    t = 10 * eye
    m = 10 * np.roll(eye, -1, axis=0) + eye
    assert r_precision(t, m).tolist() == [0.0, 1.0, 1.0]


def test_r_precision_random_is_chance_and_drops_the_last_batch():
    rng = np.random.default_rng(2)
    text, motion = rng.standard_normal((32 * 200, 8)), rng.standard_normal((32 * 200, 8))
    np.testing.assert_allclose(r_precision(text, motion), [1 / 32, 2 / 32, 3 / 32], atol=0.006)
    # 40 pairs: only the first 32 count
    t = rng.standard_normal((40, 8))
    m = t.copy()
    m[32:] = rng.standard_normal((8, 8))
    assert r_precision(t, m)[0] == 1.0
    with pytest.raises(MotionGPTError, match="at least 32"):
        r_precision(t[:31], m[:31])
    with pytest.raises(MotionGPTError, match="paired"):
        r_precision(t, m[:39])


def test_matching_score():
    rng = np.random.default_rng(3)
    text = rng.standard_normal((64, 5))
    assert matching_score(text, text) == pytest.approx(0, abs=1e-6)
    offset = np.array([3.0, 4.0, 0, 0, 0])
    assert matching_score(text, text + offset) == pytest.approx(5.0)


def test_diversity_and_multimodality():
    rng = np.random.default_rng(4)
    e = rng.standard_normal((1000, 6))
    d = diversity(e, np.random.default_rng(0))
    assert diversity(e, np.random.default_rng(0)) == d  # seeded
    assert diversity(3 * e + 7, np.random.default_rng(0)) == pytest.approx(3 * d)  # scale, not translation
    assert diversity(np.ones((400, 6)), np.random.default_rng(0)) == 0
    # two standard normals in 6-d: E|x - y| = 2 * Gamma(3.5) / Gamma(3) = 3.32...
    assert d == pytest.approx(2 * math.gamma(3.5) / math.gamma(3), rel=0.06)
    with pytest.raises(MotionGPTError, match="at least 300"):
        diversity(e[:299], rng)
    # every text's motions identical -> 0; motions spread by a known distance -> that distance
    same = np.repeat(rng.standard_normal((5, 1, 4)), 30, axis=1)
    assert multimodality(same, rng) == 0
    two = np.zeros((5, 30, 4))
    two[:, 1::2, 0] = 2.0  # half the repeats 2 apart
    mm = multimodality(two, np.random.default_rng(5))
    assert 0 < mm <= 2.0
    with pytest.raises(MotionGPTError):
        multimodality(same[:, :5], rng)


def test_mean_ci_uses_the_population_std():
    values = [1.0, 2.0, 3.0, 4.0]
    mean, ci = mean_ci(values)
    assert mean == 2.5 and ci == pytest.approx(1.96 * np.std(values) / 2)
