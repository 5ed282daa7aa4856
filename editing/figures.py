"""Figures and animations: labelled grids (PNG), GIF through Pillow, MP4 through imageio-ffmpeg."""

import os
from typing import Optional, Sequence

import numpy as np

MARK_COLOR = (255, 64, 32)     # frame around the unedited column


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


def _atomic(path: str, write) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    base, ext = os.path.splitext(path)
    tmp = f'{base}.tmp-{os.getpid()}{ext}'      # keep the extension: writers pick formats by it
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_png(image, path: str) -> str:
    """Writes a PIL image via a temporary name and a rename."""
    return _atomic(path, lambda tmp: image.save(tmp, format='PNG'))


def save_gif(frames: np.ndarray, path: str, fps: float, loop: bool = True) -> str:
    """Frames ``[T, H, W, 3]`` uint8 -> animated GIF (Pillow; duration per frame in ms)."""
    from PIL import Image
    pils = [Image.fromarray(f) for f in frames]
    duration = max(20, int(round(1000.0 / fps)))    # browsers clamp shorter GIF delays anyway
    kwargs = dict(save_all=True, append_images=pils[1:], duration=duration, optimize=False)
    if loop:
        kwargs['loop'] = 0                           # 0 = repeat forever; absent = play once
    return _atomic(path, lambda tmp: pils[0].save(tmp, format='GIF', **kwargs))


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

    def write(tmp):
        with imageio.get_writer(tmp, mode='I', fps=fps, codec='libx264', bitrate=bitrate) as w:
            for frame in frames:
                w.append_data(frame)
    return _atomic(path, write)
