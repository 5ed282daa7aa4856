"""Mask-based local editing inside the synthesis network (spec §5.5, option 1: spatial feature
blending), for StyleGAN (v1) and StyleGAN2 networks loaded with the tf2 implementation.

Source and reference run through the synthesis network side by side (one batch). After the block
that produces resolution ``r`` (for every chosen ``r``), the source's features are replaced inside
the mask: ``x_src <- m_r * x_ref + (1 - m_r) * x_src``, with ``m_r`` the mask area-resized to
``r x r`` (the mean over each block of pixels, so a soft mask stays soft). For the StyleGAN2 skip
generator the RGB skip image ``y`` is blended at the same point, after that resolution's ToRGB.
From there on the blended half keeps the **source** dlatents. Noise is the stored noise inputs
(``randomize_noise=False``), identical for both halves, so it needs no blending.

Low resolutions (8-16) transfer shape, higher ones (32-64) appearance with seams hidden by the
later layers. A zero mask returns the source; a mask of ones makes the features at the blended
resolution the reference's (and, at the last resolution, the image the reference's).

Only the tf2 implementation: the blend needs the synthesis network block by block, which the tf2
Keras models provide (``ProgressiveSynthesis``: ``_run_block(r, ...)`` / ``_rgb(r, ...)``, and
StyleGAN2's ``blocks`` / ``torgb`` / ``skips``); the legacy TF1 graph only exposes whole networks.
"""

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from editing import figures, mixing

Log = Callable[[str], None]
MASK_HALVES = ('left', 'right', 'top', 'bottom')


# ------------------------------------------------------------------------------------------------
# Masks.

def load_mask(path: str, resolution: int) -> np.ndarray:
    """A grayscale (or RGB, converted) image of exactly ``resolution x resolution`` -> ``[R, R]``
    float64 in [0, 1] (255 = take the reference)."""
    from PIL import Image
    if not os.path.isfile(path):
        raise ValueError(f'{path} (--mask): mask image not found')
    try:
        with Image.open(path) as img:
            mask = np.asarray(img.convert('L'), dtype=np.float64) / 255.0
    except Exception as e:   # noqa: BLE001 - anything Pillow cannot read is "not an image"
        raise ValueError(f'{path} (--mask): not a readable image ({e})') from e
    if mask.shape != (resolution, resolution):
        raise ValueError(f'{path} (--mask): mask size {mask.shape[1]}x{mask.shape[0]} does not '
                         f'match the network\'s {resolution}x{resolution} images')
    return mask


def half_mask(which: str, resolution: int) -> np.ndarray:
    """StyleMapGAN's AFHQ masks: one half of the image from the reference."""
    if which not in MASK_HALVES:
        raise ValueError(f'--mask-half: {which!r}; choose one of {MASK_HALVES}')
    mask = np.zeros([resolution, resolution])
    half = resolution // 2
    {'left': lambda: mask.__setitem__((slice(None), slice(None, half)), 1),
     'right': lambda: mask.__setitem__((slice(None), slice(half, None)), 1),
     'top': lambda: mask.__setitem__((slice(None, half), slice(None)), 1),
     'bottom': lambda: mask.__setitem__((slice(half, None), slice(None)), 1)}[which]()
    return mask


def feather_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Softens the mask's edge with a Gaussian of ``sigma`` image pixels (0: unchanged), so that
    the blend fades in instead of leaving a seam."""
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f'--feather must be a number >= 0, got {sigma}')
    if sigma == 0:
        return mask
    import scipy.ndimage
    return np.clip(scipy.ndimage.gaussian_filter(mask, sigma, mode='nearest'), 0.0, 1.0)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Area resize ``[R, R]`` -> ``[size, size]``: the mean over each ``R/size`` block."""
    k = mask.shape[0] // size
    assert k * size == mask.shape[0], (mask.shape, size)
    return mask.reshape(size, k, size, k).mean(axis=(1, 3))


def parse_resolutions(text: str, resolution: int) -> List[int]:
    """``'16,32'`` -> ``[16, 32]``: powers of two from 4 to the network's resolution."""
    try:
        values = sorted(set(int(t) for t in str(text).split(',') if t.strip()))
    except ValueError:
        raise ValueError(f'--layer-res: {text!r} is not a list of resolutions such as 16,32') from None
    valid = [2 ** r for r in range(2, int(np.log2(resolution)) + 1)]
    bad = [v for v in values if v not in valid]
    if not values or bad:
        raise ValueError(f'--layer-res: {text!r}: blend resolutions must be among '
                         f'{",".join(map(str, valid))} for this {resolution}x{resolution} network')
    return values


# ------------------------------------------------------------------------------------------------
# The blended synthesis pass.

def synthesis_model(Gs):
    """The tf2 Keras synthesis model of ``Gs``; a clear error for other implementations."""
    model = getattr(Gs.components.synthesis, 'model', None)
    if model is None or not hasattr(model, '_run_block'):
        raise ValueError('local editing runs the synthesis network block by block, which only '
                         'the tf2 implementation offers: use --impl tf2')
    if hasattr(model, 'lod') and float(np.asarray(model.lod)) != 0:
        raise ValueError(f'local editing needs a fully grown network (lod 0), this one has lod '
                         f'{float(np.asarray(model.lod)):g}')
    return model


def _blend(a, b, m):
    """``m * b + (1 - m) * a``: m = 0 gives a, m = 1 gives b, both exactly."""
    return m * b + (1.0 - m) * a


def blended_synthesis(Gs, src_dlatents: np.ndarray, ref_dlatents: np.ndarray, mask: np.ndarray,
                      resolutions: Sequence[int], return_features: bool = False):
    """Source images with the reference's features inside ``mask`` at ``resolutions``.

    Args:
        Gs: a tf2 network (StyleGAN ``G_style`` or StyleGAN2 ``G_main``).
        src_dlatents, ref_dlatents: ``[N, L, D]`` each (the reference may be ``[1, L, D]``).
        mask: ``[R, R]`` in [0, 1] at image resolution; 1 = reference.
        resolutions: where to blend (e.g. ``[32]``); empty = the plain source pass.
        return_features: also return ``{r: features after block r (and its blend)}``, NCHW
            numpy ``[2N, C, r, r]``: the blended source half, then the reference half; and
            ``'images'``: both halves' images ``[2N, C, R, R]``. Both halves come from the same
            batch, so they can be compared bit for bit (a sample's last bits may depend on its
            position in a batch).

    Returns:
        ``images [N, C, R, R]`` float32 NCHW (and the features dict if asked).
    """
    import tensorflow as tf
    from tf2 import layers as L
    model = synthesis_model(Gs)
    src = np.asarray(src_dlatents, np.float32)
    ref = np.broadcast_to(np.asarray(ref_dlatents, np.float32), src.shape)
    n, df = src.shape[0], model.data_format
    dl = tf.constant(np.concatenate([src, ref]))                           # [2N, L, D]
    masks = {r: tf.constant(L.from_nchw(resize_mask(mask, r)[None, None].astype(np.float32), df))
             for r in resolutions}
    features: Dict[int, np.ndarray] = {}

    def blend_point(log2_res, x, y=None):
        # x (and y): [2N, r, r, C] features of block log2_res (internal layout)
        res = 2 ** log2_res
        if res in masks:
            x = tf.concat([_blend(x[:n], x[n:], masks[res]), x[n:]], axis=0)
            if y is not None:
                y = tf.concat([_blend(y[:n], y[n:], masks[res]), y[n:]], axis=0)
        if return_features:
            features[res] = L.to_nchw(x, df).numpy()
        return x, y

    if hasattr(model, 'architecture'):
        img = _stylegan2_pass(model, dl, blend_point)
    else:
        img = _progressive_pass(model, dl, blend_point)
    images = L.to_nchw(img, df).numpy()
    features['images'] = images
    return (images[:n], features) if return_features else images[:n]


def _progressive_pass(model, dl, blend_point):
    """StyleGAN (and StyleGAN2's revised progressive synthesis) at lod 0: blocks, then ToRGB."""
    inp = model._input_block if hasattr(model, '_input_block') else model._input   # noqa: SLF001
    x, _ = blend_point(2, inp(dl, False, None))                           # [2N, 4, 4, C]
    for r in range(3, model.resolution_log2 + 1):
        x, _ = blend_point(r, model._run_block(r, x, dl, False, None))    # noqa: SLF001
    return model._rgb(model.resolution_log2, x, dl)                       # noqa: SLF001


def _stylegan2_pass(model, dl, blend_point):
    """``SynthesisStyleGAN2.call`` (skip / orig / resnet) with the blend after each resolution."""
    from tf2 import ops
    from tf2 import networks_stylegan2 as nets2
    cfg, df, arch = model.cfg, model.data_format, model.architecture
    impl = cfg.impl or nets2.DEFAULT_IMPL
    x = model._input(dl, False, None)                                     # noqa: SLF001
    y = model.torgb[2](x, dl) if 2 in model.torgb else None
    x, y = blend_point(2, x, y)
    for r in range(3, model.resolution_log2 + 1):
        t = x
        x = model._run_block(r, x, dl, False, None)                       # noqa: SLF001
        if arch == 'resnet':
            x = (x + model.skips[r](t)) * (1.0 / np.sqrt(2))
        if arch == 'skip':
            y = ops.upsample_2d(y, k=cfg.resample_kernel, data_format=df, impl=impl)
        if r in model.torgb:
            t = model.torgb[r](x, dl)
            y = t if y is None else y + t
        x, y = blend_point(r, x, y)
    return y


# ------------------------------------------------------------------------------------------------
# A whole local_editing.py run.

def _pick(Gs, seed: Optional[int], npz: Optional[str], index: int, what: str, psi, cutoff):
    """One dlatent ``[1, L, D]`` and its label from a seed (truncated) or a file entry (as is)."""
    from editing import dlatents_io
    if (seed is None) == (npz is None):
        raise ValueError(f'give exactly one of --{what}-seed and --{what}-dlatents')
    if seed is not None:
        w = mixing.map_seeds(Gs, [seed])
        return mixing.truncate(w, Gs.get_var('dlatent_avg'), psi, cutoff), f'{what} seed {seed}'
    num_rows, dsize = (int(v) for v in Gs.components.synthesis.input_shape[1:])
    dl, seeds = dlatents_io.load_dlatents(npz, num_rows, dsize, f'--{what}-dlatents')
    if not 0 <= index < dl.shape[0]:
        raise ValueError(f'--{what}-index {index} out of range: {npz} holds {dl.shape[0]} dlatents')
    label = f'{what} seed {seeds[index]}' if seeds is not None else f'{what} item {index}'
    return dl[index:index + 1], label


def edit_figure(src_img, ref_img, mask, result_img, labels: Sequence[str]):
    """Source, reference, mask and result side by side, labelled."""
    imgs = figures.images_to_uint8(np.concatenate([src_img, ref_img, result_img]))
    if imgs.shape[-1] == 1:
        imgs = np.repeat(imgs, 3, axis=-1)
    mask_u8 = np.repeat(np.round(mask * 255).astype(np.uint8)[:, :, None], 3, axis=-1)
    cells = np.stack([imgs[0], imgs[1], mask_u8, imgs[2]])[None]
    fig = figures.labelled_grid(cells, [''], list(labels), corner='')
    from PIL import ImageDraw
    h, w = mask.shape
    top = fig.size[1] - h
    # A grey frame, so that the mask's white part does not melt into the page.
    ImageDraw.Draw(fig).rectangle((2 * w, top, 3 * w - 1, top + h - 1), outline=(128, 128, 128))
    return fig


def run_local_editing(network_pkl: str, outdir: str, resolutions: str,
                      mask_path: Optional[str] = None, mask_half: Optional[str] = None,
                      src_seed: Optional[int] = None, src_dlatents: Optional[str] = None,
                      src_index: int = 0, ref_seed: Optional[int] = None,
                      ref_dlatents: Optional[str] = None, ref_index: int = 0,
                      truncation_psi: Optional[float] = None,
                      truncation_cutoff: Optional[int] = None, impl: str = 'tf2',
                      log: Optional[Log] = print, feather: float = 0.0) -> Dict[str, str]:
    """``local_editing.py``: checks everything, then writes ``local-edit.png`` (source,
    reference, mask, result) and ``local-edit-result.png``.

    Returns:
        Written paths (``figure``, ``result``).
    """
    from dnnlib.util import check_output_dir
    from editing import sefa
    if impl != 'tf2':
        raise ValueError(f'--impl {impl}: local editing needs --impl tf2 (it runs the synthesis '
                         'network block by block, which the legacy graph does not expose)')
    if (mask_path is None) == (mask_half is None):
        raise ValueError('give exactly one of --mask and --mask-half')
    feather_mask(np.zeros([1, 1]), feather)         # a bad --feather fails before any loading
    check_output_dir(outdir)
    Gs = mixing.load_gs(network_pkl, impl)
    model = synthesis_model(Gs)
    res = int(Gs.output_shape[-1])
    blend_res = parse_resolutions(resolutions, res)
    mask = load_mask(mask_path, res) if mask_path is not None else half_mask(mask_half, res)
    mask = feather_mask(mask, feather)
    psi, cutoff = (truncation_psi, truncation_cutoff) if truncation_psi is not None else \
        sefa.default_truncation(Gs)
    src, src_label = _pick(Gs, src_seed, src_dlatents, src_index, 'src', psi, cutoff)
    ref, ref_label = _pick(Gs, ref_seed, ref_dlatents, ref_index, 'ref', psi, cutoff)
    result = blended_synthesis(Gs, src, ref, mask, blend_res)
    plain = blended_synthesis(Gs, np.concatenate([src, ref]), np.concatenate([src, ref]), mask, [])
    at = ','.join(map(str, blend_res))
    fig = edit_figure(plain[:1], plain[1:], mask, result,
                      [src_label.replace('src ', 'source\n'), ref_label.replace('ref ', 'reference\n'),
                       f'mask\nblend @ {at}', 'result'])
    os.makedirs(outdir, exist_ok=True)
    from PIL import Image
    out = dict(figure=figures.save_png(fig, os.path.join(outdir, 'local-edit.png')),
               result=figures.save_png(Image.fromarray(_rgb(figures.images_to_uint8(result)[0])),
                                       os.path.join(outdir, 'local-edit-result.png')))
    if log is not None:
        log(f'{network_pkl}: {type(model).__name__}, blended at {at} px, mask covers '
            f'{mask.mean():.0%}; wrote {out["figure"]}, {out["result"]}')
    return out


def _rgb(img_hwc: np.ndarray) -> np.ndarray:
    return np.repeat(img_hwc, 3, axis=-1) if img_hwc.shape[-1] == 1 else img_hwc
