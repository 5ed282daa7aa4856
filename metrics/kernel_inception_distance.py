"""Kernel Inception Distance (Bińkowski et al. 2018), as stylegan2-ada computes it (spec 3.4).

Kernel k(a, b) = (a.b / n + 1)^3 over n-dimensional features. Each of `num_subsets` subsets draws
m = min(n_real, n_fake, max_subset_size) fakes x and reals y without replacement and takes the
unbiased MMD^2 estimate

    t = [sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2

KID is the mean of t over the subsets. Upstream draws the subsets from NumPy's unseeded global
generator; here a seeded RandomState makes the result reproducible.
"""

import numpy as np

NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000


def kernel_inception_distance(real_features: np.ndarray, fake_features: np.ndarray,
                              num_subsets: int = NUM_SUBSETS, max_subset_size: int = MAX_SUBSET_SIZE,
                              seed: int = 0) -> float:
    """KID of two [N, n] feature arrays (float64 arithmetic)."""
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    assert real.ndim == fake.ndim == 2 and real.shape[1] == fake.shape[1], 'feature shapes differ'
    n = real.shape[1]
    m = min(len(real), len(fake), max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 images in each set, got {len(real)} and {len(fake)}')
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m * (m - 1)) - 2 * b.sum() / (m * m)
    return float(t / num_subsets)


def compute_kid(ctx) -> dict:
    """metric_base hook: KID between the reference and the compared features."""
    return {ctx.name: kernel_inception_distance(ctx.reference_features(), ctx.compared_features(),
                                                seed=ctx.seed)}
