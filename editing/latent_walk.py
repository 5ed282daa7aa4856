"""Latent walks and interpolation videos (spec §4): between seeds in W (lerp or NVIDIA's looping
cubic spline) or Z (slerp), or along a SeFa direction; one cell or a grid of cells like NVIDIA's
``gen_video.py``; written as an animated GIF (Pillow), MP4 (when ``imageio-ffmpeg`` is installed)
and optionally PNG frames.

Noise is always the stored noise inputs (``randomize_noise=False``): fresh noise per frame would
flicker. Truncation is applied to the keyframes' dlatents before interpolating in W (it is affine,
so lerp commutes with it); in Z it is applied to every frame's mapped dlatents.
"""

import os
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from editing import figures, mixing, mixing_schemes

SPACES = ('w', 'z')
KINDS = ('linear', 'cubic')
FORMATS = ('.gif', '.mp4')
Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Keyframes.

def parse_grid(text: str) -> Tuple[int, int]:
    """``'4x2'`` or ``'4,2'`` -> (columns, rows), as NVIDIA's ``--grid``."""
    parts = str(text).lower().replace(',', 'x').split('x')
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f'--grid: {text!r} is not WxH (e.g. 4x2)') from None
    if w < 1 or h < 1:
        raise ValueError(f'--grid: {text!r} needs at least one column and one row')
    return w, h


def assign_keyframes(items: Sequence[int], grid_w: int, grid_h: int,
                     num_keyframes: Optional[int] = None,
                     shuffle_seed: Optional[int] = None) -> np.ndarray:
    """NVIDIA's keyframe layout: ``[H, W, K]`` indices into ``items`` (seeds or file entries).

    Without ``num_keyframes``, ``len(items)`` must be a multiple of ``W*H`` and ``K`` is the
    quotient; items are used cyclically, optionally shuffled with ``RandomState(shuffle_seed)``.
    """
    cells = grid_w * grid_h
    if num_keyframes is None:
        if len(items) % cells != 0:
            raise ValueError(f'{len(items)} seeds do not divide into a {grid_w}x{grid_h} grid; give '
                             f'a multiple of {cells} seeds or --num-keyframes')
        num_keyframes = len(items) // cells
    if num_keyframes < 1:
        raise ValueError('--num-keyframes must be at least 1')
    idx = np.array([i % len(items) for i in range(num_keyframes * cells)])
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(idx)
    return idx.reshape(grid_h, grid_w, num_keyframes)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of latents ``[..., Z]`` at ``t`` ``[T]`` -> ``[T, ..., Z]``.

    On the unit sphere, then scaled to ``sqrt(Z)`` (the typical norm of ``randn(Z)``): linear
    interpolation of z passes near the origin, where no training latent lies.
    """
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(a * b, axis=-1, keepdims=True), -1.0, 1.0))   # [..., 1]
    t = np.asarray(t, np.float64).reshape((-1,) + (1,) * a.ndim)
    so = np.sin(omega)
    safe = np.where(so < 1e-8, 1.0, so)
    mix = np.where(so < 1e-8, (1 - t) * a + t * b,       # (anti)parallel: fall back to lerp
                   (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / safe)
    return mix * np.sqrt(a.shape[-1])


def frame_positions(num_keyframes: int, frames_per_keyframe: int, loop: bool) -> np.ndarray:
    """Keyframe coordinates of every frame: ``f / frames_per_keyframe``.

    Looping: ``K * frames`` frames and the last segment returns to keyframe 0, so the video
    repeats seamlessly; otherwise ``(K-1) * frames + 1`` frames ending on the last keyframe.
    """
    count = num_keyframes * frames_per_keyframe if loop else \
        (num_keyframes - 1) * frames_per_keyframe + 1
    return np.arange(count, dtype=np.float64) / frames_per_keyframe


def interpolate(keys: np.ndarray, pos: np.ndarray, kind: str, loop: bool,
                spherical: bool = False) -> np.ndarray:
    """Values at keyframe coordinates ``pos`` from keyframes ``keys`` ``[K, ...]`` -> ``[T, ...]``.

    ``linear``: lerp (or slerp with ``spherical``) between neighbours. ``cubic``: a cubic spline;
    looping uses NVIDIA's periodic construction (keyframes tiled 5 times, two wraps each side).
    """
    k = keys.shape[0]
    if kind == 'cubic':
        import scipy.interpolate
        if loop:
            x = np.arange(-2 * k, 3 * k)
            y = np.tile(keys, (5,) + (1,) * (keys.ndim - 1))
        else:
            if k < 4:
                raise ValueError('--kind cubic without looping needs at least 4 keyframes')
            x, y = np.arange(k), keys
        return scipy.interpolate.interp1d(x, y, kind='cubic', axis=0)(pos).astype(keys.dtype)
    i0 = np.floor(pos).astype(np.int64)
    t = pos - i0
    if loop:
        i0, i1 = i0 % k, (i0 + 1) % k
    else:
        i0 = np.minimum(i0, k - 1)
        i1 = np.minimum(i0 + 1, k - 1)
    if spherical:
        out = np.stack([slerp(keys[a], keys[b], [tt])[0] for a, b, tt in zip(i0, i1, t)])
    else:
        tt = t.reshape((-1,) + (1,) * (keys.ndim - 1))
        out = keys[i0] + (keys[i1] - keys[i0]) * tt
    return out.astype(keys.dtype)


def walk_positions_along(num_frames: int, max_distance: float, loop: bool) -> np.ndarray:
    """Distances of a direction walk: one sine period (0 -> +max -> -max -> 0) when looping, a
    straight run from ``-max`` to ``+max`` otherwise."""
    if loop:
        return max_distance * np.sin(2 * np.pi * np.arange(num_frames) / num_frames)
    return np.linspace(-max_distance, max_distance, num_frames)


# ------------------------------------------------------------------------------------------------
# Dlatents of every frame and cell: [T, H, W, L, D].

def seed_walk_dlatents(Gs, seeds: Sequence[int], layout: np.ndarray, space: str, kind: str,
                       frames_per_keyframe: int, loop: bool, psi: Optional[float],
                       cutoff: Optional[int], minibatch_size: int = 8) -> np.ndarray:
    """Interpolation between the seeds of ``layout`` ``[H, W, K]`` (indices into ``seeds``)."""
    if space not in SPACES or kind not in KINDS:
        raise ValueError(f'space {space!r} / kind {kind!r}: choose from {SPACES} / {KINDS}')
    if space == 'z' and kind == 'cubic':
        raise ValueError('--space z interpolates by slerp: use --kind linear')
    avg = np.asarray(Gs.get_var('dlatent_avg'), np.float32)
    keys_seeds = np.asarray(seeds)[np.moveaxis(layout, 2, 0)]                   # [K, H, W]
    pos = frame_positions(layout.shape[2], frames_per_keyframe, loop)
    if space == 'w':
        flat = mixing.map_seeds(Gs, keys_seeds.reshape(-1).tolist(), minibatch_size)
        flat = mixing.truncate(flat, avg, psi, cutoff)                            # [K*H*W, L, D]
        keys = flat.reshape(keys_seeds.shape + flat.shape[1:])
        return interpolate(keys, pos, kind, loop)
    z = mixing.latents_from_seeds(keys_seeds.reshape(-1).tolist(), int(Gs.input_shape[1]))
    zs = interpolate(z.reshape(keys_seeds.shape + z.shape[1:]).astype(np.float64), pos,
                     'linear', loop, spherical=True)                             # [T, H, W, Z]
    dl = _batched_mapping(Gs, zs.reshape(-1, zs.shape[-1]).astype(np.float32), minibatch_size)
    dl = mixing.truncate(dl, avg, psi, cutoff)
    return dl.reshape(zs.shape[:3] + dl.shape[1:])


def _batched_mapping(Gs, z: np.ndarray, minibatch_size: int) -> np.ndarray:
    return np.concatenate([np.asarray(Gs.components.mapping.run(z[i:i + minibatch_size], None),
                                      np.float32) for i in range(0, len(z), minibatch_size)])


def direction_walk_dlatents(base: np.ndarray, direction: np.ndarray, rows: Sequence[int],
                            num_frames: int, max_distance: float, loop: bool) -> np.ndarray:
    """Every cell's dlatents ``base`` ``[H, W, L, D]`` moved along one unit direction:
    ``[T, H, W, L, D]``, only ``rows`` move (genforce's edit, spec §1.4)."""
    d = walk_positions_along(num_frames, max_distance, loop).astype(np.float32)
    out = np.repeat(base[None].astype(np.float32), num_frames, axis=0)
    rows = np.asarray(rows, np.int64)
    out[:, :, :, rows, :] += d[:, None, None, None, None] * direction[None, None, None, None, :]
    return out


# ------------------------------------------------------------------------------------------------
# Rendering and writing.

def render_frames(Gs, dlatents: np.ndarray, minibatch_size: int = 8,
                  progress: bool = True) -> Iterator[np.ndarray]:
    """Yields frames ``[H*R, W*R, 3]`` uint8 from ``dlatents`` ``[T, H, W, L, D]``, the grid tiled
    without gaps as NVIDIA's videos, rendering in minibatches (constant noise)."""
    t, gh, gw = dlatents.shape[:3]
    flat = dlatents.reshape((-1,) + dlatents.shape[3:])
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=t, unit='frame', desc='rendering')
    per = gh * gw
    step = max(1, minibatch_size // per) * per       # whole frames per synthesis call
    for start in range(0, flat.shape[0], step):
        imgs = mixing.synthesize(Gs, flat[start:start + step], False, minibatch_size)
        u8 = figures.images_to_uint8(imgs)                                        # [n, R, R, C]
        if u8.shape[-1] == 1:
            u8 = np.repeat(u8, 3, axis=-1)
        frames = u8.reshape((-1, gh, gw) + u8.shape[1:])
        for f in frames:
            yield f.transpose(0, 2, 1, 3, 4).reshape(gh * f.shape[2], gw * f.shape[3], 3)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()


def check_output(path: str, frames_dir: Optional[str] = None) -> None:
    """The output must be .gif or .mp4 (MP4 only with imageio-ffmpeg) in a writable folder."""
    from dnnlib.util import check_output_dir
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f'--output {path}: give a .gif or .mp4 file name')
    if ext == '.mp4' and not figures.mp4_available():
        raise ValueError(f'--output {path}: MP4 needs the optional packages imageio and '
                         'imageio-ffmpeg (pip install imageio imageio-ffmpeg); or write a .gif')
    if os.path.isdir(path):
        raise ValueError(f'--output {path}: is a folder')
    check_output_dir(os.path.dirname(path) or '.')
    if frames_dir is not None:
        check_output_dir(frames_dir)


def write_video(frames: Iterator[np.ndarray], path: str, fps: float, loop: bool,
                frames_dir: Optional[str] = None) -> Tuple[str, int]:
    """Writes frames as GIF or MP4 (by extension) and optionally ``frames_dir/frameNNNNNN.png``.

    Returns:
        ``(path, number of frames)``.
    """
    from PIL import Image

    def tee():
        for i, frame in enumerate(frames):
            if frames_dir is not None:
                os.makedirs(frames_dir, exist_ok=True)
                figures.save_png(Image.fromarray(frame), os.path.join(frames_dir, f'frame{i:06d}.png'))
            yield frame
    if path.lower().endswith('.mp4'):
        count = [0]

        def counted():                       # MP4 streams: frames are never all in memory
            for frame in tee():
                count[0] += 1
                yield frame
        figures.save_mp4(counted(), path, fps)
        return path, count[0]
    stack = np.stack(list(tee()))
    figures.save_gif(stack, path, fps, loop)
    return path, stack.shape[0]


def run_latent_walk(network_pkl: str, output: str, seeds: Optional[Sequence[int]] = None,
                    dlatents_npz: Optional[str] = None, grid: str = '1x1',
                    num_keyframes: Optional[int] = None, shuffle_seed: Optional[int] = None,
                    space: str = 'w', kind: str = 'cubic', frames_per_keyframe: int = 120,
                    fps: float = 60, loop: bool = True, truncation_psi: Optional[float] = None,
                    truncation_cutoff: Optional[int] = None, directions_npz: Optional[str] = None,
                    index: int = 0, max_distance: float = 5.0, edit_layers: Optional[str] = None,
                    num_frames: int = 120, frames_dir: Optional[str] = None, impl: str = 'tf2',
                    minibatch_size: int = 8, progress: bool = True,
                    log: Optional[Log] = print) -> Dict:
    """``latent_walk.py``: everything is checked before the video is written.

    Seed walks use ``seeds`` (keyframes, NVIDIA's layout) or the entries of ``dlatents_npz``
    (interpolated in W, used as they are). With ``directions_npz``, every cell instead walks along
    direction ``index`` from its one seed / entry (``num_frames`` frames, ``max_distance``).

    Returns:
        Dict with ``output``, ``frames`` and ``size`` (width, height).
    """
    from editing import dlatents_io, sefa
    if (seeds is None) == (dlatents_npz is None) or (seeds is not None and not len(seeds)):
        raise ValueError('give exactly one of --seeds (non-empty) and --dlatents')
    if frames_per_keyframe < 1 or num_frames < 1 or not fps > 0:
        raise ValueError('--frames-per-keyframe, --num-frames and --fps must be positive')
    if space == 'z' and dlatents_npz is not None:
        raise ValueError('--space z needs --seeds (a dlatents file has no z)')
    check_output(output, frames_dir)
    gw, gh = parse_grid(grid)
    items = list(seeds) if seeds is not None else None
    Gs = mixing.load_gs(network_pkl, impl)
    num_rows, dsize = (int(x) for x in Gs.components.synthesis.input_shape[1:])
    if dlatents_npz is not None:
        file_dl, _ = dlatents_io.load_dlatents(dlatents_npz, num_rows, dsize)
        items = list(range(file_dl.shape[0]))
    psi, cutoff = (truncation_psi, truncation_cutoff) if truncation_psi is not None else \
        ((None, None) if dlatents_npz is not None else sefa.default_truncation(Gs))
    avg = np.asarray(Gs.get_var('dlatent_avg'), np.float32)
    if directions_npz is not None:
        directions, _ = sefa.load_directions(directions_npz, dsize)
        sefa.check_indices([index], directions.shape[0], '--index')
        rows = _edit_rows(directions_npz, edit_layers, num_rows, log)
        layout = assign_keyframes(items, gw, gh, num_keyframes or 1, shuffle_seed)[:, :, 0]
        base = _cell_dlatents(Gs, items, layout, file_dl if dlatents_npz else None, avg, psi,
                              cutoff, minibatch_size)                           # [H, W, L, D]
        dl = direction_walk_dlatents(base, directions[index], rows, num_frames, max_distance, loop)
        what = f'direction {index} of {directions_npz}, rows {mixing_schemes.format_rows(rows)}, ' \
               f'distance up to {max_distance:g}'
    else:
        layout = assign_keyframes(items, gw, gh, num_keyframes, shuffle_seed)
        if dlatents_npz is not None:
            keys = mixing.truncate(file_dl, avg, psi, cutoff)[np.moveaxis(layout, 2, 0)]
            dl = interpolate(keys, frame_positions(layout.shape[2], frames_per_keyframe, loop),
                             kind, loop)
        else:
            dl = seed_walk_dlatents(Gs, items, layout, space, kind, frames_per_keyframe, loop,
                                    psi, cutoff, minibatch_size)
        what = f'{layout.shape[2]} keyframes per cell, {kind} in {space.upper()}'
    if log is not None:
        log(f'{network_pkl}: {gw}x{gh} grid, {dl.shape[0]} frames, {what}, '
            f'{"looping" if loop else "not looping"}, truncation '
            f'{"none" if psi is None or psi == 1 else f"psi {psi:g}"}')
    frames = render_frames(Gs, dl, minibatch_size, progress)
    path, count = write_video(frames, output, fps, loop, frames_dir)
    res = int(Gs.output_shape[-1])
    if log is not None:
        log(f'wrote {path} ({count} frames, {gw * res}x{gh * res}, {fps:g} fps)')
    return dict(output=path, frames=count, size=(gw * res, gh * res))


def _edit_rows(directions_npz: str, edit_layers: Optional[str], num_rows: int,
               log: Optional[Log]) -> np.ndarray:
    """Rows a direction walk moves: ``--edit-layers``, else the file's factorized ``layers``."""
    from editing import sefa
    if edit_layers is not None:
        return sefa.parse_layers(edit_layers, num_rows, log)
    with np.load(directions_npz, allow_pickle=False) as f:
        rows = f['layers'] if 'layers' in f.files else np.arange(num_rows)
    if rows.size == 0 or rows.max() >= num_rows:
        raise ValueError(f'{directions_npz} (--directions): its layers '
                         f'{mixing_schemes.format_rows(rows)} do not fit this {num_rows}-row network; '
                         'give --edit-layers')
    return rows.astype(np.int64)


def _cell_dlatents(Gs, items, layout, file_dl, avg, psi, cutoff, minibatch_size) -> np.ndarray:
    """One truncated dlatent per grid cell ``[H, W, L, D]`` from seeds or file entries."""
    chosen = np.asarray(items)[layout].reshape(-1)
    dl = file_dl[chosen] if file_dl is not None else \
        mixing.map_seeds(Gs, chosen.tolist(), minibatch_size)
    dl = mixing.truncate(dl, avg, psi, cutoff)
    return dl.reshape(layout.shape + dl.shape[1:])
