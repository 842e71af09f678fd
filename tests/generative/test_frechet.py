"""The Fréchet distance against closed forms and SciPy's matrix square root."""

import numpy as np
import pytest
import scipy.linalg

from cs231n_tf.errors import ShapeError
from cs231n_tf.generative.frechet import frechet_distance, gaussian_frechet_distance


def test_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert gaussian_frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)
    assert gaussian_frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0.0, abs=1e-12)


def test_full_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2)))
        assert gaussian_frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_feature_sets_and_shape_errors():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(500, 4)), rng.normal(size=(400, 4)) * 2 + 1
    ref = gaussian_frechet_distance(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    assert frechet_distance(x, y) == pytest.approx(ref) and frechet_distance(x, x) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ShapeError):
        frechet_distance(x, y[:, :3])
