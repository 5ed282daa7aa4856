"""Projection of images into the dlatent space of a StyleGAN / StyleGAN2 network (spec §2).

The StyleGAN2 projector (Karras et al. 2020, ``projector.py`` of the TF release), reimplemented
from the spec for the ``tf2`` port: for each target image, optimise a dlatent and the synthesis
network's noise inputs so that the generated image matches the target.

* **Start.** ``dlatent_avg`` and the scalar ``dlatent_std`` come from mapping
  ``RandomState(123).randn(10000, latent_size)`` (row 0 of the mapping output): the mean, and
  ``sqrt(sum((w - avg)^2) / N)`` (divides by N only, so it is the RMS *norm* of the deviation).
  The dlatent starts at the mean; every noise input ``noise0, noise1, ...`` starts as fresh
  N(0, 1) (from the projection seed).
* **Space.** ``'w'``: one row ``[1, 1, D]`` used for every layer (the paper); ``'w+'``: one row
  per layer ``[1, L, D]``, all starting at the mean (rosinality's ``--w_plus``).
* **Step** ``i`` of ``num_steps`` (``t = i / num_steps``):
  ``noise_strength = dlatent_std * 0.05 * max(0, 1 - t / 0.75)^2`` times fresh N(0, 1) is added
  to the dlatent for this step only; the learning rate is
  ``0.1 * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))) * min(1, t / 0.05)`` (0 at step 0, ramp
  up over 5 %, cosine ramp down over the last 25 %); one Adam step (beta 0.9 / 0.999, epsilon
  1e-8 in the TF1 "epsilon hat" place; the step is skipped if a gradient is not finite); then
  every noise map is normalised to zero mean and unit (population) standard deviation.
* **Loss.** The image ``(x + 1) * 127.5`` (no clamp), box-averaged down to 256 px when larger;
  ``'lpips'``: LPIPS-VGG16 to the target (target features computed once; the paper's loss);
  ``'pixel'``: mean squared error in [0, 255] units (a fallback when no VGG16 weights are at
  hand, not the paper's). Plus ``1e5 *`` the noise regularisation: for every noise map, the sum
  over octaves (halving by 2x2 box averaging until 8x8 or smaller) of the squared lag-1
  autocorrelations along W and along H, with wrap-around.

The results are the noise-free dlatents ``[N, L, D]`` (a W projection repeats its row) and the
optimised noise maps: rendering a projection needs both (``render``), since with other noise the
reconstruction degrades noticeably. Only the ``tf2`` implementation: the step differentiates
through the Keras synthesis model (``Gs.components.synthesis.model``) with ``tf.GradientTape``;
the legacy TF1 graph would need a second, graph-mode optimiser for no gain.
"""

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

SPACES = ('w', 'w+')
LOSSES = ('lpips', 'pixel')
VIDEO_FORMATS = ('gif', 'mp4')
LOSS_RESOLUTION = 256       # images larger than this are box-averaged down to it for the loss
MIN_LPIPS_RESOLUTION = 16   # VGG16 pools four times before its last tap
VIDEO_FRAMES = 100          # about this many progress frames, whatever num_steps
VIDEO_CELL = 256            # progress frames show each image at most this large
Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Schedules (spec §2.1, step()).

def learning_rate(t: float, initial_learning_rate: float = 0.1, lr_rampdown_length: float = 0.25,
                  lr_rampup_length: float = 0.05) -> float:
    """Learning rate at progress ``t = step / num_steps`` (0 at t = 0)."""
    ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    ramp = ramp * min(1.0, t / lr_rampup_length)
    return float(initial_learning_rate * ramp)


def noise_strength(t: float, dlatent_std: float, initial_noise_factor: float = 0.05,
                   noise_ramp_length: float = 0.75) -> float:
    """Standard deviation of the noise added to the dlatent at progress ``t``."""
    return float(dlatent_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2)


# ------------------------------------------------------------------------------------------------
# Noise maps: regularisation and normalisation (spec §2.1, 7 and 2).

def noise_regularization(noises):
    """Sum over noise maps ``[1, 1, H, W]`` and octaves of the squared lag-1 autocorrelations.

    Per octave: ``mean(v * roll(v, 1, W))^2 + mean(v * roll(v, 1, H))^2``; then, unless the map is
    8x8 or smaller, it is halved by 2x2 box averaging. Returns a scalar tensor.
    """
    import tensorflow as tf
    reg = tf.constant(0.0)
    for v in noises:
        v = tf.convert_to_tensor(v, tf.float32)                       # [1, 1, H, W]
        size = int(v.shape[2])
        while True:
            reg += tf.reduce_mean(v * tf.roll(v, 1, axis=3)) ** 2
            reg += tf.reduce_mean(v * tf.roll(v, 1, axis=2)) ** 2
            if size <= 8:
                break
            v = tf.reduce_mean(tf.reshape(v, [1, 1, size // 2, 2, size // 2, 2]), axis=[3, 5])
            size //= 2
    return reg


def normalize_noise(v):
    """``(v - mean) / sqrt(mean((v - mean)^2))`` over the whole tensor (population std)."""
    import tensorflow as tf
    v = tf.convert_to_tensor(v, tf.float32)
    v = v - tf.reduce_mean(v)
    return v * tf.math.rsqrt(tf.reduce_mean(tf.square(v)))


def loss_images(images):
    """NCHW images in nominal [-1, 1] -> [0, 255] (no clamp), box-averaged down to 256 px."""
    import tensorflow as tf
    x = (tf.convert_to_tensor(images, tf.float32) + 1.0) * 127.5
    n, c, h, w = x.shape
    if h > LOSS_RESOLUTION:
        f = h // LOSS_RESOLUTION
        x = tf.reduce_mean(tf.reshape(x, [-1, c, h // f, f, w // f, f]), axis=[3, 5])
    return x


# ------------------------------------------------------------------------------------------------
# The network side.

def synthesis_of(Gs):
    """The tf2 synthesis ``Network`` of ``Gs``; a clear error for the legacy implementation."""
    syn = Gs.components.synthesis
    if getattr(syn, 'model', None) is None:
        raise ValueError('projection differentiates through the tf2 Keras synthesis network; '
                         'the legacy implementation cannot: use --impl tf2')
    return syn


def noise_names(synthesis) -> List[str]:
    """``noise0, noise1, ...`` of a synthesis network, up to the first missing index."""
    names = []
    while f'noise{len(names)}' in synthesis.vars:
        names.append(f'noise{len(names)}')
    return names


def dlatent_statistics(Gs, num_samples: int = 10000, seed: int = 123, minibatch_size: int = 1000):
    """``(dlatent_avg [1, 1, D] float32, dlatent_std float)`` from ``num_samples`` mapped z."""
    z = np.random.RandomState(seed).randn(num_samples, Gs.input_shape[1])
    w = Gs.components.mapping.run(z, None, minibatch_size=minibatch_size)[:, :1, :]   # [N, 1, D]
    w = w.astype(np.float64)
    avg = np.mean(w, axis=0, keepdims=True)                                    # [1, 1, D]
    std = float(np.sqrt(np.sum((w - avg) ** 2) / num_samples))
    return avg.astype(np.float32), std


def apply_noises(Gs, noises: Sequence[np.ndarray]) -> None:
    """Sets the synthesis noise inputs ``noise0..`` of ``Gs`` (either implementation)."""
    syn = Gs.components.synthesis
    names = noise_names(syn)
    if len(noises) != len(names):
        raise ValueError(f'{len(noises)} noise maps for a network with {len(names)} noise inputs')
    for name, value in zip(names, noises):
        syn.set_var(name, np.reshape(value, syn.get_var(name).shape))


def render(Gs, dlatents: np.ndarray, noises: Optional[Sequence[np.ndarray]] = None,
           minibatch_size: int = 8) -> np.ndarray:
    """Images ``[N, C, H, W]`` float of dlatents ``[N, L, D]`` with the stored noise inputs.

    Args:
        noises: per noise input an array ``[N, 1, 1, r, r]`` (entry n's maps, as written to
            ``projected.npz``), set before entry n is rendered; ``None`` keeps the network's.
    """
    syn = Gs.components.synthesis
    if noises is None:
        return syn.run(dlatents, randomize_noise=False, minibatch_size=minibatch_size)
    names = noise_names(syn)
    saved = [syn.get_var(n) for n in names]
    try:
        out = []
        for i in range(dlatents.shape[0]):
            apply_noises(Gs, [n[i] for n in noises])
            out.append(syn.run(dlatents[i:i + 1], randomize_noise=False))
        return np.concatenate(out)
    finally:
        apply_noises(Gs, saved)


# ------------------------------------------------------------------------------------------------
# Targets.

def load_target(path: str, resolution: int, num_channels: int, log: Optional[Log] = print,
                flag: str = '--target') -> np.ndarray:
    """An image file -> ``[C, R, R]`` uint8: centre-cropped to a square, resized to the network's
    resolution with Lanczos (as StyleGAN2-ADA), grayscale or RGB as the network.

    Raises:
        ValueError naming the file: missing, unreadable, transparent pixels, an unsupported
        mode (16-bit, float) or a short side below ``max(16, resolution / 4)``.
    """
    from PIL import Image, ImageOps
    where = f'{path} ({flag})'
    if not os.path.isfile(path):
        raise ValueError(f'{where}: target image not found')
    try:
        with Image.open(path) as f:
            f.load()
            img = ImageOps.exif_transpose(f)
    except Exception as e:   # noqa: BLE001 - anything Pillow cannot read is "not an image"
        raise ValueError(f'{where}: not a readable image ({type(e).__name__}: {e})') from None
    if img.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or 'transparency' in img.info:
        alpha = np.asarray(img.convert('RGBA'))[..., 3]
        if np.any(alpha < 255):
            raise ValueError(f'{where}: has transparent pixels (alpha channel, mode {img.mode}); '
                             'flatten it onto a background first')
    elif img.mode not in ('1', 'L', 'P', 'RGB', 'CMYK', 'YCbCr'):
        raise ValueError(f'{where}: image mode {img.mode} is not supported; save it as 8-bit '
                         'RGB or grayscale')
    w, h = img.size
    s = min(w, h)
    min_side = max(16, resolution // 4)
    if s < min_side:
        raise ValueError(f'{where}: {w}x{h} is too small: the short side must be at least '
                         f'{min_side} px for this {resolution}x{resolution} network')
    img = img.convert('L' if num_channels == 1 else 'RGB')
    if w != h:
        img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    if s != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    if log is not None:
        steps = ([f'centre crop {s}x{s}'] if w != h else []) + \
                ([f'resized to {resolution}x{resolution} (Lanczos)'] if s != resolution else [])
        log(f'{path}: {w}x{h} -> ' + (', '.join(steps) if steps else 'used as is')
            + (', grayscale' if num_channels == 1 else ''))
    arr = np.asarray(img, np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


# ------------------------------------------------------------------------------------------------
# The projector.

class Projector:
    """Projects targets, one at a time, into a tf2 ``Gs`` (StyleGAN ``G_style`` or ``G_main``).

    The network is cloned (the caller's noise inputs stay as they were), the step is traced
    once per projector and reused for every target.

    Args:
        Gs: a tf2 generator network.
        space: ``'w'`` or ``'w+'``.
        loss: ``'lpips'`` (needs ``lpips``) or ``'pixel'``.
        lpips: a ``metrics.vgg16.LPIPS`` (with ``loss='lpips'``).
        seed: seeds the noise-map initialisation and the per-step dlatent noise.
        The remaining arguments are the StyleGAN2 projector's hyper-parameters (spec §2.1).
    """

    def __init__(self, Gs, space: str = 'w', loss: str = 'lpips', lpips=None, seed: int = 303,
                 num_steps: int = 1000,                # optimisation steps per target
                 dlatent_avg_samples: int = 10000,     # mapped z for the W mean and std
                 initial_learning_rate: float = 0.1,   # Adam step size at the top of the ramp
                 initial_noise_factor: float = 0.05,   # dlatent noise at t=0, in units of dlatent_std
                 lr_rampdown_length: float = 0.25,     # cosine ramp down over the last 25 % of steps
                 lr_rampup_length: float = 0.05,       # linear ramp up over the first 5 %
                 noise_ramp_length: float = 0.75,      # dlatent noise reaches 0 at t = 0.75
                 regularize_noise_weight: float = 1e5,  # weight of the noise autocorrelation term
                 adam_epsilon: float = 1e-8):           # TF1 AdamOptimizer's (Keras 3 has 1e-7)
        import keras
        import tensorflow as tf
        if space not in SPACES:
            raise ValueError(f'--space: {space!r}; choose one of {SPACES}')
        if loss not in LOSSES:
            raise ValueError(f'--loss: {loss!r}; choose one of {LOSSES}')
        if loss == 'lpips' and lpips is None:
            raise ValueError('--loss lpips needs VGG16 weights (--vgg16); or use --loss pixel')
        if num_steps < 1:
            raise ValueError(f'--num-steps must be at least 1, got {num_steps}')
        self.space, self.loss, self.num_steps = space, loss, int(num_steps)
        self.hparams = dict(initial_learning_rate=initial_learning_rate,
                            lr_rampdown_length=lr_rampdown_length, lr_rampup_length=lr_rampup_length)
        self.noise_hparams = dict(initial_noise_factor=initial_noise_factor,
                                  noise_ramp_length=noise_ramp_length)
        self.regularize_noise_weight = float(regularize_noise_weight)
        self.synthesis = synthesis_of(Gs).clone()
        model = self.synthesis.model
        _, self.num_rows, self.dlatent_size = self.synthesis.input_shape
        self.num_channels, self.resolution = self.synthesis.output_shape[1:3]
        if loss == 'lpips' and self.resolution < MIN_LPIPS_RESOLUTION:
            raise ValueError(f'--loss lpips needs images of at least {MIN_LPIPS_RESOLUTION} px; '
                             f'this network makes {self.resolution} px: use --loss pixel')
        self.dlatent_avg, self.dlatent_std = dlatent_statistics(Gs, dlatent_avg_samples)
        self.noise_vars = [self.synthesis.find_var(n) for n in noise_names(self.synthesis)]
        rows = 1 if space == 'w' else self.num_rows
        self.dlatent_var = keras.Variable(np.zeros([1, rows, self.dlatent_size], np.float32),
                                          name='dlatents', trainable=True)
        self.variables = [self.dlatent_var] + self.noise_vars
        self.optimizer = keras.optimizers.Adam(learning_rate=0.0, beta_1=0.9, beta_2=0.999,
                                               epsilon=adam_epsilon)
        self.optimizer.build(self.variables)        # slots exist before the first traced step
        self.lpips = lpips if loss == 'lpips' else None
        h = min(self.resolution, LOSS_RESOLUTION)
        if self.lpips is None:
            self.target = tf.Variable(tf.zeros([1, self.num_channels, h, h]), trainable=False)
        else:
            feats = self.lpips.features(tf.zeros([1, 3, h, h]))
            self.target = [tf.Variable(tf.zeros_like(f), trainable=False) for f in feats]
        self._rnd = np.random.RandomState(seed)
        self._step = 0
        self._compute = tf.function(self._loss_and_grads, autograph=False)
        self._apply = tf.function(self._apply_grads, autograph=False)
        self._forward = tf.function(lambda dl: self._image_and_distance(model, dl), autograph=False)
        self._normalize = tf.function(self._normalize_noises, autograph=False)

    # Graph pieces. --------------------------------------------------------------------------

    def _full_dlatents(self, dlatents):                                     # [1, 1 or L, D]
        import tensorflow as tf
        return tf.broadcast_to(dlatents, [1, self.num_rows, self.dlatent_size])

    def _distance(self, images):                       # images: [1, C, h, h] in [0, 255]
        import tensorflow as tf
        if self.lpips is None:
            return tf.reduce_mean(tf.square(images - self.target))
        if self.num_channels == 1:
            images = tf.tile(images, [1, 3, 1, 1])
        taps = self.lpips.features(images)
        return tf.add_n([tf.reduce_sum(tf.reduce_mean(tf.reduce_sum(tf.square(a - b) * w, axis=-1),
                                                      axis=[1, 2]))
                         for a, b, w in zip(taps, self.target, self.lpips.lins)])

    def _image_and_distance(self, model, dlatents):
        images = model(self._full_dlatents(dlatents), randomize_noise=False)   # [1, C, R, R]
        return images, self._distance(loss_images(images))

    def _loss_and_grads(self, unit_noise, strength):
        import tensorflow as tf
        model = self.synthesis.model
        with tf.GradientTape() as tape:
            for v in self.variables:
                tape.watch(v.value)                     # the noise inputs are non-trainable
            _, dist = self._image_and_distance(model, self.dlatent_var + unit_noise * strength)
            reg = noise_regularization([v.value for v in self.noise_vars])
            loss = dist + self.regularize_noise_weight * reg
        grads = tape.gradient(loss, [v.value for v in self.variables])
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return dist, reg, grads, finite

    def _apply_grads(self, grads):
        self.optimizer.apply(grads, self.variables)
        self._normalize_noises()

    def _normalize_noises(self):
        for v in self.noise_vars:
            v.assign(normalize_noise(v))

    # Use. -----------------------------------------------------------------------------------

    def set_seed(self, seed: int) -> None:
        """Restarts the random stream (noise-map initialisation and dlatent noise) at ``seed``."""
        self._rnd = np.random.RandomState(seed)

    def start(self, target: np.ndarray) -> None:
        """Begins a projection of ``target`` ``[C, R, R]`` uint8 (or float in [0, 255])."""
        import tensorflow as tf
        target = np.asarray(target, np.float32)
        if target.shape != (self.num_channels, self.resolution, self.resolution):
            raise ValueError(f'target of shape {list(target.shape)}, the network makes '
                             f'{[self.num_channels, self.resolution, self.resolution]}')
        x = loss_images(tf.constant(target[None] / 127.5 - 1.0))
        if self.lpips is None:
            self.target.assign(x)
        else:
            x = tf.tile(x, [1, 3, 1, 1]) if self.num_channels == 1 else x
            for var, f in zip(self.target, self.lpips.features(x)):
                var.assign(f)
        self.dlatent_var.assign(np.broadcast_to(self.dlatent_avg, self.dlatent_var.shape))
        for v in self.noise_vars:
            v.assign(self._rnd.randn(*v.shape).astype(np.float32))
        for v in self.optimizer.variables:             # fresh Adam: moments and step count 0
            v.assign(tf.zeros_like(v))
        self._step = 0

    def step(self) -> Dict[str, float]:
        """One optimisation step; returns this step's ``dist`` (with dlatent noise) and ``reg``."""
        import tensorflow as tf
        t = self._step / self.num_steps
        self.optimizer.learning_rate.assign(learning_rate(t, **self.hparams))
        strength = noise_strength(t, self.dlatent_std, **self.noise_hparams)
        unit = self._rnd.randn(*self.dlatent_var.shape).astype(np.float32)
        dist, reg, grads, finite = self._compute(tf.constant(unit), tf.constant(strength, tf.float32))
        if bool(finite):
            self._apply(grads)                          # Adam, then the noise normalisation
        else:
            self._normalize()
        self._step += 1
        return dict(dist=float(dist), reg=float(reg), skipped=not bool(finite))

    @property
    def dlatents(self) -> np.ndarray:
        """The current noise-free dlatents ``[1, L, D]``."""
        return np.broadcast_to(self.dlatent_var.numpy(), [1, self.num_rows, self.dlatent_size]).copy()

    @property
    def noises(self) -> List[np.ndarray]:
        """The current noise maps, each ``[1, 1, r, r]``."""
        return [v.numpy() for v in self.noise_vars]

    def images_and_distance(self):
        """``(images [1, C, R, R] float, dist)`` of the current noise-free dlatents."""
        images, dist = self._forward(self.dlatent_var.value)
        return images.numpy(), float(dist)


# ------------------------------------------------------------------------------------------------
# Projecting a list of targets.

def to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW float in [-1, 1] -> NHWC uint8 (the official rounding)."""
    x = np.asarray(images, np.float32) * 127.5 + 128.0
    return np.clip(np.floor(x), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _strip(images_nhwc: Sequence[np.ndarray]) -> np.ndarray:
    """Images ``[H, W, C]`` side by side -> ``[H, n*W, 3]`` (grayscale tiled to RGB)."""
    row = np.concatenate(list(images_nhwc), axis=1)
    return np.repeat(row, 3, axis=2) if row.shape[2] == 1 else row


def _video_frame(target_hwc: np.ndarray, image_hwc: np.ndarray) -> np.ndarray:
    """``[target | current]`` at most VIDEO_CELL px high."""
    frame = _strip([target_hwc, image_hwc])
    f = max(1, frame.shape[0] // VIDEO_CELL)
    if f > 1:
        h, w = frame.shape[0] // f, frame.shape[1] // f
        frame = frame[:h * f, :w * f].reshape(h, f, w, f, 3).mean(axis=(1, 3)).astype(np.uint8)
    return frame


def project(projector: Projector, targets: np.ndarray, snapshot_steps: Sequence[int] = (),
            video: bool = False, progress: bool = True, names: Optional[Sequence[str]] = None) -> dict:
    """Projects ``targets`` ``[N, C, R, R]`` uint8 one after another.

    Returns:
        dict with ``dlatents [N, L, D]`` float32, ``noises`` (per noise input ``[N, 1, 1, r, r]``),
        ``dist [N]`` (noise-free, after the last step), ``images [N, C, R, R]`` float (final),
        ``snapshots`` (step -> ``[N, C, R, R]`` float) and, with ``video``, ``frames``
        (``[T, H, W, 3]`` uint8: every target's ``[target | current]``, stacked vertically).
    """
    from tqdm import tqdm
    steps = sorted(set(int(s) for s in snapshot_steps))
    every = max(1, projector.num_steps // VIDEO_FRAMES)
    video_steps = set(range(0, projector.num_steps + 1, every)) | {projector.num_steps}
    dlatents, noises, dists, images = [], [], [], []
    snapshots: Dict[int, list] = {s: [] for s in steps}
    frames: List[List[np.ndarray]] = []
    targets_hwc = np.asarray(targets).transpose(0, 2, 3, 1)
    for i, target in enumerate(targets):
        projector.start(target)
        own_frames = []
        label = names[i] if names else f'target {i}'
        bar = tqdm(total=projector.num_steps, desc=label, disable=not progress, leave=True,
                   dynamic_ncols=True)
        for k in range(projector.num_steps + 1):       # k = steps done so far
            if (video and k in video_steps) or k in snapshots:
                img, _ = projector.images_and_distance()
                if k in snapshots:
                    snapshots[k].append(img[0])
                if video and k in video_steps:
                    own_frames.append(_video_frame(targets_hwc[i], to_uint8(img)[0]))
            if k == projector.num_steps:
                break
            out = projector.step()
            bar.set_postfix(dist=f'{out["dist"]:.4g}', reg=f'{out["reg"]:.3g}', refresh=False)
            bar.update(1)
        bar.close()
        img, dist = projector.images_and_distance()
        dlatents.append(projector.dlatents[0])
        noises.append(projector.noises)
        dists.append(dist)
        images.append(img[0])
        frames.append(own_frames)
    result = dict(
        dlatents=np.stack(dlatents).astype(np.float32),
        noises=[np.stack([n[j] for n in noises]) for j in range(len(noises[0]))],
        dist=np.asarray(dists, np.float32), images=np.stack(images),
        snapshots={s: np.stack(v) for s, v in snapshots.items()})
    if video:
        result['frames'] = np.stack([np.concatenate([f[t] for f in frames], axis=0)
                                     for t in range(len(frames[0]))])
    return result


# ------------------------------------------------------------------------------------------------
# projector.py.

def parse_snapshot_steps(text: Optional[str], num_steps: int) -> List[int]:
    """``'100,500,1000'`` -> steps within 1..num_steps (``None`` or ``''``: none)."""
    if not text:
        return []
    try:
        steps = sorted(set(int(t) for t in str(text).split(',') if t.strip()))
    except ValueError:
        raise ValueError(f'--snapshot-steps: {text!r} is not a list of steps such as 100,500') from None
    bad = [s for s in steps if not 1 <= s <= num_steps]
    if bad:
        raise ValueError(f'--snapshot-steps: {bad[0]} is outside 1..{num_steps} (--num-steps)')
    return steps


def save_projection(path: str, result: dict, space: str, loss: str,
                    target_names: Optional[Sequence[str]] = None) -> str:
    """``projected.npz`` (spec §2.5): ``dlatents [N, L, D]``, ``seeds`` 0..N-1, ``noises_{i}``
    ``[N, 1, 1, r, r]``, ``space``, ``loss``, ``dist [N]`` and ``target_names``."""
    from editing import dlatents_io
    n = result['dlatents'].shape[0]
    arrays = dict(dlatents=result['dlatents'], seeds=np.arange(n, dtype=np.int64),
                  space=np.array(space), loss=np.array(loss), dist=result['dist'])
    arrays.update({f'noises_{i}': v.astype(np.float32) for i, v in enumerate(result['noises'])})
    if target_names is not None:
        arrays['target_names'] = np.array([str(t) for t in target_names])
    return dlatents_io.save_npz(path, **arrays)


def load_noises(path: str, Gs, num_items: int, flag: str = '--dlatents') -> Optional[List[np.ndarray]]:
    """The ``noises_{i}`` arrays of a dlatents file, checked against ``Gs``'s noise inputs;
    ``None`` if the file has none (then the network's own noise inputs are used).

    Raises:
        ValueError naming the file and flag when the maps do not fit the network.
    """
    from dnnlib.util import read_npz
    where = f'{path} ({flag})'
    data = read_npz(path, where, 'dlatents')
    keys = sorted((k for k in data if k.startswith('noises_')), key=lambda k: int(k[7:]) if k[7:].isdigit() else -1)
    if not keys:
        return None
    syn = Gs.components.synthesis
    names = noise_names(syn)
    if keys != [f'noises_{i}' for i in range(len(names))]:
        raise ValueError(f'{where}: noise maps {keys} do not match the network\'s {len(names)} '
                         f'noise inputs (noises_0..noises_{len(names) - 1})')
    out = []
    for key, name in zip(keys, names):
        want = (num_items,) + tuple(syn.get_var(name).shape)
        if data[key].shape != want or not np.all(np.isfinite(data[key])):
            raise ValueError(f'{where}: "{key}" has shape {list(data[key].shape)}, expected '
                             f'{list(want)} (finite) for {name}')
        out.append(data[key].astype(np.float32))
    return out


def image_shape_of_pickle(network_pkl: str):
    """``(num_channels, resolution)`` of a pickle's Gs, read as plain data (no TensorFlow).

    Both official generators (``G_style``, ``G_main``) default to ``resolution=1024`` and
    ``num_channels=3`` when the pickle's kwargs leave them out.
    """
    from dnnlib import legacy_pickle
    from editing import impl as impl_lib
    if not os.path.isfile(network_pkl):
        raise ValueError(f'{network_pkl}: network pickle not found' if not os.path.exists(network_pkl)
                         else f'{network_pkl}: not a file')
    nets = legacy_pickle.load(network_pkl)
    impl_lib.check_generator_pickle(nets, network_pkl)
    kwargs = nets[2].static_kwargs
    return int(kwargs.get('num_channels', 3)), int(kwargs.get('resolution', 1024))


def run_projector(network_pkl: str, target_paths: Sequence[str], outdir: str, space: str = 'w',
                  loss: str = 'lpips', vgg16: Optional[str] = None, lpips_lin: Optional[str] = None,
                  num_steps: int = 1000, seed: int = 303, save_video: Optional[str] = None,
                  snapshot_steps: Optional[str] = None, impl: str = 'tf2',
                  log: Optional[Log] = print, progress: bool = True, lpips=None) -> Dict[str, str]:
    """``projector.py``: project image files, write ``projected.npz`` and the pictures.

    Everything is checked (arguments, weights, the pickle, every target) before anything is
    written; the files are written when all targets are done. ``target.png`` / ``proj.png`` and
    ``step%04d.png`` hold the targets' images side by side; ``proj.gif`` / ``proj.mp4`` show
    ``[target | projection]`` per target, stacked, about 100 frames.

    Returns:
        Written paths by kind.
    """
    from editing import figures
    from dnnlib.util import check_output_dir
    if impl != 'tf2':
        raise ValueError('--impl legacy: projection differentiates through the tf2 Keras synthesis '
                         'network; the legacy TF1 graph cannot (use --impl tf2)')
    if space not in SPACES:
        raise ValueError(f'--space: {space!r}; choose one of {SPACES}')
    if loss not in LOSSES:
        raise ValueError(f'--loss: {loss!r}; choose one of {LOSSES}')
    if num_steps < 1:
        raise ValueError(f'--num-steps must be at least 1, got {num_steps}')
    if save_video is not None and save_video not in VIDEO_FORMATS:
        raise ValueError(f'--save-video: {save_video!r}; choose one of {VIDEO_FORMATS}')
    if save_video == 'mp4' and not figures.mp4_available():
        raise ValueError('--save-video mp4 needs imageio and imageio-ffmpeg; or use --save-video gif')
    if not target_paths:
        raise ValueError('--target: no target images given')
    steps = parse_snapshot_steps(snapshot_steps, num_steps)
    check_output_dir(outdir)
    if loss == 'lpips' and lpips is None:
        from metrics import vgg16 as vgg16_lib
        if vgg16 is None:
            raise ValueError(f'--vgg16: --loss lpips {vgg16_lib.NEEDS_WEIGHTS}; or use --loss pixel '
                             '(MSE, a fallback that is not the paper\'s loss)')
        lpips = vgg16_lib.load_lpips(vgg16, lpips_lin, what='--loss lpips')
    channels, resolution = image_shape_of_pickle(network_pkl)      # no TensorFlow yet: fails fast
    if channels not in (1, 3):
        raise ValueError(f'{network_pkl}: makes {channels}-channel images; projection needs RGB or grayscale')
    targets = np.stack([load_target(p, resolution, channels, log) for p in target_paths])
    from editing import impl as impl_lib
    _G, _D, Gs = impl_lib.load_network(network_pkl, impl)
    assert list(Gs.output_shape[1:]) == [channels, resolution, resolution], Gs.output_shape
    projector = Projector(Gs, space, loss, lpips, seed=seed, num_steps=num_steps)
    if log is not None:
        what = ('LPIPS-VGG16 (' + lpips.weights + ')' if loss == 'lpips' else
                'pixel MSE in [0, 255] (fallback, not the paper\'s LPIPS)')
        log(f'projecting {len(targets)} image(s) into {space.upper()} of {network_pkl} '
            f'({resolution}x{resolution}); loss {what}; {num_steps} steps, seed {seed}')
    names = [os.path.basename(p) for p in target_paths]
    result = project(projector, targets, steps, video=save_video is not None, progress=progress,
                     names=names)
    os.makedirs(outdir, exist_ok=True)
    written = {'npz': save_projection(os.path.join(outdir, 'projected.npz'), result, space, loss,
                                      list(target_paths))}
    from PIL import Image
    png = lambda images, name: figures.save_png(Image.fromarray(_strip(images)), os.path.join(outdir, name))
    written['target'] = png(targets.transpose(0, 2, 3, 1), 'target.png')
    written['proj'] = png(to_uint8(result['images']), 'proj.png')
    for s, images in result['snapshots'].items():
        written[f'step{s:04d}'] = png(to_uint8(images), f'step{s:04d}.png')
    if save_video == 'gif':
        written['video'] = figures.save_gif(result['frames'], os.path.join(outdir, 'proj.gif'), fps=20)
    elif save_video == 'mp4':
        written['video'] = figures.save_mp4(result['frames'], os.path.join(outdir, 'proj.mp4'), fps=20)
    if log is not None:
        log('final distance: ' + ', '.join(f'{n} {d:.4g}' for n, d in zip(names, result['dist'])))
        log(f'wrote {", ".join(os.path.basename(p) for p in written.values())} to {outdir}')
    return written
