"""Fréchet Inception Distance (Heusel et al. 2017), as NVIDIA's StyleGAN/StyleGAN2 code computes it.

    FID = |mu_f - mu_r|^2 + Tr(sigma_f + sigma_r - 2 sqrtm(sigma_f sigma_r))

Means and covariances are float64; covariances use `np.cov` (divide by N - 1), as SG1/SG2 do
for reals and fakes alike (spec 3.2). `sqrtm` enters only through its trace, computed here as
the sum of square roots of the eigenvalues of sqrt(sigma_1) sigma_2 sqrt(sigma_1), a symmetric
positive semi-definite matrix with the same eigenvalues as sigma_1 sigma_2. Symmetric `eigh`
cannot return complex parts, and tiny negative eigenvalues (round-off of singular covariances,
the rule with fewer images than 2048 features) are clipped to 0. `impl='scipy'` is the readable
twin: `scipy.linalg.sqrtm(sigma_1 @ sigma_2)` and its real part, as the official code did.

With fewer images than features on one side, `compute_fid` takes the same trace from the
features themselves (`trace_sqrtm_from_features`): with centred features X_i and
sigma_i = X_i^T X_i / (N_i - 1), the non-zero eigenvalues of sigma_1 sigma_2 are the squared
singular values of X_1 X_2^T / sqrt((N_1 - 1)(N_2 - 1)), an N x N problem instead of a 2048 x 2048
one (seconds instead of tens of seconds on a busy 2-core machine). The tests hold all three together.
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


def trace_sqrtm_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Tr sqrtm(sigma1 @ sigma2) for the np.cov covariances of two [N_i, D] feature arrays."""
    x1 = np.asarray(features1, np.float64)
    x2 = np.asarray(features2, np.float64)
    x1, x2 = x1 - x1.mean(axis=0), x2 - x2.mean(axis=0)
    scale = np.sqrt((len(x1) - 1) * (len(x2) - 1))
    if len(x1) > len(x2):
        x1, x2 = x2, x1
    m = x1 @ x2.T                                                        # [N_small, N_large]
    eigenvalues = np.linalg.eigvalsh(m @ m.T)                           # singular values squared
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum() / scale)


def fid_from_features(features1: np.ndarray, features2: np.ndarray, stats1=None, stats2=None) -> float:
    """FID of two feature arrays; the trace comes from the features when one side has fewer
    images than dimensions (see the module docstring), else from the covariances (`eigh`)."""
    mu1, sigma1 = stats1 if stats1 is not None else feature_statistics(features1)
    mu2, sigma2 = stats2 if stats2 is not None else feature_statistics(features2)
    if min(len(features1), len(features2)) >= np.shape(features1)[1]:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    covmean_trace = trace_sqrtm_from_features(features1, features2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * covmean_trace)


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
    """metric_base hook: FID between the reference and the compared features."""
    return {ctx.name: fid_from_features(ctx.compared_features(), ctx.reference_features(),
                                        ctx.compared_statistics(), ctx.reference_statistics())}
