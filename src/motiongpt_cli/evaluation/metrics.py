"""The standard text-to-motion metrics, computed as the T2M evaluation code does (Guo et al. 2022; MDM is the same).

All functions take embeddings from an evaluator: ``text (N, D)`` and ``motion (N, D)`` with row ``i`` of each a
pair. Constants are the field's: batches of 32 for R-precision and the matching score (incomplete last batch
dropped), 300 pairs for Diversity, 10 pairs per text for MultiModality, and a 95% interval of
``1.96 * std / sqrt(R)`` over ``R`` replications with the population standard deviation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg

from ..errors import MotionGPTError

BATCH_SIZE = 32
TOP_K = 3
DIVERSITY_TIMES = 300
MM_TIMES = 10


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``D[i, j] = |a_i - b_j|`` via ``sqrt(-2 a.b + |a|^2 + |b|^2)`` (negatives from rounding clipped to 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d2 = -2 * a @ b.T + np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def _batches(n: int, batch_size: int) -> list[slice]:
    if n < batch_size:
        raise MotionGPTError(f"R-precision needs at least {batch_size} pairs, got {n}")
    return [slice(i, i + batch_size) for i in range(0, n - batch_size + 1, batch_size)]


def r_precision(text: np.ndarray, motion: np.ndarray, *, batch_size: int = BATCH_SIZE, top_k: int = TOP_K
                ) -> np.ndarray:  # fmt: skip
    """Top-1..top_k retrieval accuracy of each text's own motion among the ``batch_size`` motions of its batch."""
    _check_pairs(text, motion)
    hits = np.zeros(top_k)
    count = 0
    for sl in _batches(len(text), batch_size):
        d = euclidean_distance_matrix(text[sl], motion[sl])
        order = np.argsort(d, axis=1, kind="stable")[:, :top_k]
        correct = order == np.arange(d.shape[0])[:, None]
        hits += np.cumsum(correct, axis=1).sum(axis=0)
        count += d.shape[0]
    return hits / count


def matching_score(text: np.ndarray, motion: np.ndarray, *, batch_size: int = BATCH_SIZE) -> float:
    """MM-Dist: the mean distance between each text and its own motion, over the same batches as R-precision."""
    _check_pairs(text, motion)
    total, count = 0.0, 0
    for sl in _batches(len(text), batch_size):
        total += float(np.trace(euclidean_distance_matrix(text[sl], motion[sl])))
        count += sl.stop - sl.start
    return total / count


def activation_statistics(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``) of ``(N, D)`` embeddings."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise MotionGPTError(f"FID needs at least 2 embeddings of shape (N, D), got {e.shape}")
    return e.mean(axis=0), np.cov(e, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))``; retried with ``eps * I`` on both when not finite."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MotionGPTError("FID: the two sets of statistics have different dimensions")
    diff = mu1 - mu2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products are handled just below
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MotionGPTError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    return frechet_distance(*activation_statistics(real), *activation_statistics(generated))


def diversity(embeddings: np.ndarray, rng: np.random.Generator, *, times: int = DIVERSITY_TIMES) -> float:
    """Mean distance between ``times`` random pairs: two index sets drawn without replacement."""
    e = np.asarray(embeddings, dtype=np.float64)
    if len(e) < times:
        raise MotionGPTError(f"Diversity needs at least {times} motions, got {len(e)}")
    first = rng.choice(len(e), times, replace=False)
    second = rng.choice(len(e), times, replace=False)
    return float(np.linalg.norm(e[first] - e[second], axis=1).mean())


def multimodality(embeddings: np.ndarray, rng: np.random.Generator, *, times: int = MM_TIMES) -> float:
    """``(texts, repeats, D)`` embeddings of several motions per text: the mean distance between ``times`` pairs of
    motions of the same text (the same index pairs for every text)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 3 or e.shape[1] < times:
        raise MotionGPTError(f"MultiModality needs (texts, >= {times} repeats, D) embeddings, got {e.shape}")
    first = rng.choice(e.shape[1], times, replace=False)
    second = rng.choice(e.shape[1], times, replace=False)
    return float(np.linalg.norm(e[:, first] - e[:, second], axis=2).mean())


def mean_ci(values) -> tuple[float, float]:
    """Mean and 95% half-interval over replications: ``1.96 * std / sqrt(R)`` (population std, as T2M)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise MotionGPTError("no replications")
    return float(v.mean(axis=0)), float(1.96 * v.std(axis=0) / math.sqrt(len(v)))


def _check_pairs(text: np.ndarray, motion: np.ndarray) -> None:
    if np.shape(text) != np.shape(motion) or np.ndim(text) != 2:
        raise MotionGPTError(f"text and motion embeddings must be paired (N, D) arrays, got {np.shape(text)} and "
                             f"{np.shape(motion)}")  # fmt: skip
