"""Figures and animations: images to uint8, labelled grids and mixing figures (PNG), GIF through
Pillow, MP4 through imageio-ffmpeg. Every file is written under a temporary name, then renamed."""

from typing import Optional, Sequence

import numpy as np

from dnnlib.util import atomic_path
from editing.mixing_schemes import format_rows

MARK_COLOR = (255, 64, 32)     # frame around the unedited column


def images_to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW [-1, 1] -> NHWC uint8 as ``convert_images_to_uint8``: x*127.5+128, clamp, floor."""
    x = np.asarray(images, dtype=np.float32) * np.float32(127.5) + np.float32(128)
    return np.clip(x, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def to_pil(image_hwc: np.ndarray):
    """``[H, W, C]`` uint8 -> PIL image (C = 1: grey, 3: RGB, 4: RGBA)."""
    from PIL import Image
    mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}.get(image_hwc.shape[2])
    if mode is None:
        raise ValueError(f'cannot draw images with {image_hwc.shape[2]} channels (1, 3 or 4 supported)')
    return Image.fromarray(image_hwc[:, :, 0] if mode == 'L' else image_hwc, mode)


def font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):   # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(cells: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
                  marked_cols: Sequence[int] = (), corner: str = '', marked_rows: Sequence[int] = ()):
    """Draws ``cells`` ``[R, C, H, W, 3]`` uint8 as a grid with a label column and a header row.

    Columns in ``marked_cols`` and rows in ``marked_rows`` get a coloured frame (the unedited
    images of an edit grid).

    Returns:
        A ``PIL.Image`` of size ``((C + 1) * W, (R + 1) * H)`` (labels take one cell's width).
    """
    from PIL import Image, ImageDraw
    rows, cols, h, w, _ = cells.shape
    assert len(row_labels) == rows and len(col_labels) == cols, (cells.shape, row_labels, col_labels)
    label_w = max(w, 96) if any(row_labels) or corner else 0
    size = max(9, min(h // 6, 14))
    f = font(size)
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    head = [probe.multiline_textbbox((0, 0), t, font=f)[3] for t in [corner, *col_labels] if t]
    top = max([h // 3] + [v + 8 for v in head])
    canvas = Image.new('RGB', (label_w + cols * w, top + rows * h), 'white')
    draw = ImageDraw.Draw(canvas)
    for j, text in enumerate(col_labels):
        draw.multiline_text((label_w + j * w + 3, 3), text, font=f, fill=(0, 0, 0))
    draw.multiline_text((3, 3), corner, font=f, fill=(90, 90, 90))
    for i, text in enumerate(row_labels):
        draw.multiline_text((3, top + i * h + 3), text, font=f, fill=(0, 0, 0))
        for j in range(cols):
            canvas.paste(Image.fromarray(cells[i, j]), (label_w + j * w, top + i * h))
    for j in marked_cols:
        x0 = label_w + j * w
        draw.rectangle((x0, top, x0 + w - 1, top + rows * h - 1), outline=MARK_COLOR, width=2)
    for i in marked_rows:
        y0 = top + i * h
        draw.rectangle((label_w, y0, label_w + cols * w - 1, y0 + h - 1), outline=MARK_COLOR, width=2)
    return canvas


def save_png(image, path: str) -> str:
    """Writes a PIL image, or an ``[H, W, C]`` uint8 array (C = 1, 3 or 4), as PNG."""
    if isinstance(image, np.ndarray):
        image = to_pil(image)
    with atomic_path(path) as tmp:
        image.save(tmp, format='PNG')
    return path


def save_gif(frames: np.ndarray, path: str, fps: float, loop: bool = True) -> str:
    """Frames ``[T, H, W, 3]`` uint8 -> animated GIF (Pillow; duration per frame in ms)."""
    from PIL import Image
    pils = [Image.fromarray(f) for f in frames]
    duration = max(20, int(round(1000.0 / fps)))    # browsers clamp shorter GIF delays anyway
    kwargs = dict(save_all=True, append_images=pils[1:], duration=duration, optimize=False)
    if loop:
        kwargs['loop'] = 0                           # 0 = repeat forever; absent = play once
    with atomic_path(path) as tmp:
        pils[0].save(tmp, format='GIF', **kwargs)
    return path


def mp4_available() -> bool:
    """Whether MP4 can be written: ``imageio`` with ``imageio-ffmpeg`` (optional packages)."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def save_mp4(frames: np.ndarray, path: str, fps: float, bitrate: Optional[str] = '12M') -> str:
    """Frames ``[T, H, W, 3]`` uint8 -> H.264 MP4 (NVIDIA's gen_video.py uses 12M bitrate)."""
    import imageio

    with atomic_path(path) as tmp:
        with imageio.get_writer(tmp, mode='I', fps=fps, codec='libx264', bitrate=bitrate) as w:
            for frame in frames:
                w.append_data(frame)
    return path


# ------------------------------------------------------------------------------------------------
# Mixing figures (paper Figure 3 layout).

def _draw_label(draw, xy, text: str, size: int) -> None:
    """White text on a dark box, so that a label reads on any image."""
    f = font(size)
    x0, y0, x1, y1 = draw.multiline_textbbox(xy, text, font=f)
    draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=(0, 0, 0))
    draw.multiline_text(xy, text, font=f, fill=(255, 255, 255))


def draw_mixing_figure(result: dict, scheme: Optional[str] = None, cell_size: Optional[int] = None):
    """Draws one scheme's mixes in the paper's layout.

    Sources along the top, destinations down the left, mixes in the grid; labels give the seeds,
    the top-left cell the scheme name and its rows.

    Args:
        result: from ``style_mixing`` / ``cross_mixing`` / ``cross_mixing_from_dlatents``.
        scheme: scheme name (a key of ``result['schemes']``); None: the only one.
        cell_size: pixel size of a cell; None: the destination network's resolution.

    Returns:
        A ``PIL.Image``.
    """
    from PIL import Image, ImageDraw
    if scheme is None:
        if len(result['schemes']) != 1:
            raise ValueError(f'result holds schemes {list(result["schemes"])}; say which to draw')
        scheme = next(iter(result['schemes']))
    mix = result['schemes'][scheme]
    images = mix['images']                                           # [Nd, Ns, C, H, W]
    nd, ns, channels, h, w = images.shape
    if cell_size is not None:
        h = w = int(cell_size)
    canvas = Image.new('RGB', (w * (ns + 1), h * (nd + 1)), 'white')   # grey images drawn as RGB
    draw = ImageDraw.Draw(canvas)
    size = max(10, h // 16)

    def paste(img_chw, col, row, label):
        pil = to_pil(images_to_uint8(img_chw[None])[0]).convert('RGB')
        if pil.size != (w, h):
            pil = pil.resize((w, h), Image.LANCZOS)
        canvas.paste(pil, (col * w, row * h))
        if label:
            _draw_label(draw, (col * w + 4, row * h + 4), label, size)

    for j in range(ns):
        paste(result['src_images'][j], j + 1, 0, result['src_labels'][j])
    for i in range(nd):
        paste(result['dst_images'][i], 0, i + 1, result['dst_labels'][i])
        for j in range(ns):
            paste(images[i, j], j + 1, i + 1, '')
    corner = [scheme, f'rows {format_rows(mix["rows"])}']
    f = font(size)
    draw.multiline_text((4, 4), '\n'.join(_wrap(draw, line, f, w - 8) for line in corner),
                        font=f, fill=(0, 0, 0))
    return canvas


def _wrap(draw, text: str, font, width: int) -> str:
    """Breaks ``text`` into lines at most ``width`` px wide, by character (names have no spaces)."""
    lines = ['']
    for ch in text:
        if lines[-1] and draw.textlength(lines[-1] + ch, font=font) > width:
            lines.append('')
        lines[-1] += ch
    return '\n'.join(lines)
