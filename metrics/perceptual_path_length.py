"""Perceptual Path Length (Karras et al. 2019), as StyleGAN/StyleGAN2's code computes it (spec 3.5).

Per minibatch of B pairs:

1. z0, z1 ~ N(0, I); labels drawn once per pair; t ~ U(0, 1) ('full') or t = 0 ('end');
2. 'w': map both and lerp the dlatents (all rows) to t and t + epsilon; 'z': slerp z0, z1 to
   t and t + epsilon (unit-norm results, fine for mappings that normalise their latents) and map;
3. synthesise both images of every pair in one batch with randomize_noise=False after drawing
   fresh N(0, 1) values for the noise inputs, so the two images of a pair share their noise
   (the network's own noise values are restored afterwards);
4. crop to the face region (rows [3c, 7c), columns [2c, 6c), c = H // 8) when `crop`;
   box-downsample by (cropped size) // 256 when that is above 1 (StyleGAN2's rule);
5. [-1, 1] -> [0, 255] without clamping; distance = LPIPS / epsilon^2.

The PPL is the mean of the distances between the 1st percentile ('lower') and the 99th
('higher'). The distances are cut to the requested number of samples (as stylegan2-ada-pytorch).
"""

import re

import numpy as np

EPSILON = 1e-4
DEFAULT_NUM_SAMPLES = 50000
MINIBATCH_SIZE = 4          # StyleGAN2's per-GPU minibatch for PPL


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(np.sum(np.square(v), axis=-1, keepdims=True))


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of the directions of a and b; unit-norm rows (official formula)."""
    a, b = normalize(a), normalize(b)
    d = np.sum(a * b, axis=-1, keepdims=True)
    p = t * np.arccos(np.clip(d, -1, 1))
    c = normalize(b - d * a)
    return normalize(a * np.cos(p) + c * np.sin(p))


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t


def crop_and_downsample(images: np.ndarray, crop: bool) -> np.ndarray:
    """Face crop and StyleGAN2's box downsample of NCHW images."""
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, c * 3:c * 7, c * 2:c * 6]
    factor = images.shape[2] // 256
    if factor > 1:
        n, ch, h, w = images.shape
        images = images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(axis=(3, 5))
    return images


def filtered_mean(distances: np.ndarray) -> float:
    """Mean of the values between the 1st percentile ('lower') and the 99th ('higher')."""
    lo = np.percentile(distances, 1, method='lower')
    hi = np.percentile(distances, 99, method='higher')
    return float(np.extract(np.logical_and(distances >= lo, distances <= hi), distances).mean())


def _noise_names(synthesis) -> list:
    return [name for name in synthesis.vars if re.fullmatch(r'(.*/)?noise\d+', name)]


class _FreshNoise:
    """Draws new values for the noise inputs per minibatch; restores the originals on exit."""

    def __init__(self, synthesis, rng: np.random.RandomState):
        self.synthesis, self.rng = synthesis, rng
        self.names = _noise_names(synthesis)
        self.saved = {}

    def __enter__(self):
        self.saved = {name: np.array(self.synthesis.get_var(name)) for name in self.names}
        return self

    def redraw(self) -> None:
        for name, value in self.saved.items():
            self.synthesis.set_var(name, self.rng.randn(*value.shape).astype(np.float32))

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            self.synthesis.set_var(name, value)


def pair_distances(Gs, lpips, rng: np.random.RandomState, n: int, space: str, sampling: str,
                   crop: bool, labels, noise: _FreshNoise, epsilon: float = EPSILON) -> np.ndarray:
    """Distances of n interpolation pairs: LPIPS(img(t), img(t + eps)) / eps^2, float64 [n]."""
    mapping, synthesis = Gs.components.mapping, Gs.components.synthesis
    z = rng.randn(2 * n, *Gs.input_shape[1:]).astype(np.float32)        # [z0_0, z1_0, z0_1, ...]
    pair_labels = labels.draw(rng, n)
    lab = np.repeat(pair_labels, 2, axis=0)                             # shared within a pair
    t = rng.uniform(size=[n, 1]).astype(np.float32) if sampling == 'full' else np.zeros([n, 1], np.float32)
    z0, z1 = z[0::2], z[1::2]
    if space == 'w':
        w = mapping.run(z, lab)                                         # [2n, L, D]
        w0, w1 = w[0::2], w[1::2]
        tt = t[:, :, None]
        dlat = np.stack([lerp(w0, w1, tt), lerp(w0, w1, tt + epsilon)], axis=1).reshape(w.shape)
    else:
        zt = np.stack([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)], axis=1).reshape(z.shape)
        dlat = mapping.run(zt.astype(np.float32), lab)
    noise.redraw()
    images = synthesis.run(dlat.astype(np.float32), randomize_noise=False)     # [2n, C, H, W]
    images = (crop_and_downsample(np.asarray(images, np.float32), crop) + 1) * (255 / 2)
    d = lpips.distance(images[0::2], images[1::2])
    return np.asarray(d, np.float64) / (epsilon ** 2)


def check(ctx) -> None:
    """metric_base hook: the network has the components PPL uses; the LPIPS weights load."""
    from metrics import metric_base, vgg16
    Gs = ctx.compared
    if 'mapping' not in Gs.components or 'synthesis' not in Gs.components:
        raise metric_base.MetricError(f'{ctx.name}: the network has no mapping/synthesis components')
    space = metric_base.PPL_METRICS[ctx.base]['space']
    if space == 'z' and not Gs.components.mapping.static_kwargs.get('normalize_latents', True):
        raise metric_base.MetricError(f'{ctx.name}: z-space PPL feeds unit-norm latents, which only a '
                                      'mapping with normalize_latents=True treats like N(0, I) samples')
    arg = ctx.vgg16_arg
    try:
        if hasattr(arg, 'distance'):         # an LPIPS, or any object with its distance() and weights
            ctx.lpips = arg
        elif isinstance(arg, (tuple, list)):
            ctx.lpips = vgg16.load_lpips(*arg, what=ctx.name)
        else:
            ctx.lpips = vgg16.load_lpips(arg, what=ctx.name)
    except vgg16.LPIPSWeightsError as e:
        raise metric_base.MetricError(str(e)) from None
    ctx.ppl_samples = ctx.num or DEFAULT_NUM_SAMPLES


def compute_ppl(ctx, space: str, sampling: str, crop: bool) -> dict:
    """metric_base hook: the PPL of ctx.compared (Gs) with ctx.lpips."""
    from metrics.metric_base import Labels, _progress, label_size
    Gs, num = ctx.compared, ctx.ppl_samples
    rng = np.random.RandomState(ctx.seed)
    labels = Labels(label_size(Gs), ctx.reference)
    batch = max(1, ctx.minibatch_size // 2) if ctx.minibatch_size else MINIBATCH_SIZE
    distances = []
    with _FreshNoise(Gs.components.synthesis, rng) as noise, \
            _progress(num, f'{ctx.name} samples', ctx.progress) as bar:
        while sum(map(len, distances)) < num:
            n = min(batch, num - sum(map(len, distances)))
            distances.append(pair_distances(Gs, ctx.lpips, rng, n, space, sampling, crop, labels, noise))
            bar.update(n)
    return {ctx.name: filtered_mean(np.concatenate(distances)[:num])}
