"""Fréchet Inception Distance (Heusel et al. 2017), as NVIDIA's StyleGAN/StyleGAN2 code computes it.

    FID = |mu_f - mu_r|^2 + Tr(sigma_f + sigma_r - 2 sqrtm(sigma_f sigma_r))

Means and covariances are float64; covariances use `np.cov` (divide by N - 1), as SG1/SG2 do
for reals and fakes alike (spec 3.2). `sqrtm` enters only through its trace, computed here as
the sum of square roots of the eigenvalues of sqrt(sigma_1) sigma_2 sqrt(sigma_1), a symmetric
positive semi-definite matrix with the same eigenvalues as sigma_1 sigma_2. Symmetric `eigh`
cannot return complex parts, and tiny negative eigenvalues (round-off of singular covariances,
the rule with fewer images than 2048 features) are clipped to 0. `impl='scipy'` is the readable
twin: `scipy.linalg.sqrtm(sigma_1 @ sigma_2)` and its real part, as the official code did.
"""

from typing import Tuple

import numpy as np

IMPLS = ('eigh', 'scipy')


def feature_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of [N, D] features in float64; sigma divides by N - 1 as np.cov does."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f'FID needs at least 2 feature vectors, got shape {features.shape}')
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, impl: str = 'eigh') -> float:
    """Tr sqrtm(sigma1 @ sigma2) for covariance matrices (symmetric, positive semi-definite)."""
    if impl == 'scipy':
        import scipy.linalg
        return float(np.trace(scipy.linalg.sqrtm(sigma1 @ sigma2)).real)
    if impl != 'eigh':
        raise ValueError(f'unknown impl {impl!r}; choose one of {IMPLS}')
    root = _sqrt_psd(sigma1)
    m = root @ sigma2 @ root
    eigenvalues = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     impl: str = 'eigh') -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape == mu1.shape * 2, 'shape mismatch'
    covmean_trace = trace_sqrtm_product(sigma1, sigma2, impl)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * covmean_trace)


def compute_fid(ctx) -> dict:
    """metric_base hook: FID between the reference and the compared statistics."""
    mu_r, sigma_r = ctx.reference_statistics()
    mu_f, sigma_f = ctx.compared_statistics()
    return {ctx.name: frechet_distance(mu_f, sigma_f, mu_r, sigma_r)}
