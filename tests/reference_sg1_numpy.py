"""An independent, plain-NumPy StyleGAN (v1) forward pass written from the spec (section 3).

Like reference_sg2_numpy, it shares no code with the TensorFlow implementations and checks them
where the fixtures cannot: fused up/down-scaling at >= 128 px, networks without noise, other
sizes. float64 inside; NCHW; weights HWIO. Supports the 'linear' lod semantics of spec 3.3/3.4.
"""

import numpy as np

from reference_sg2_numpy import conv2d_same, minibatch_stddev

SQRT2 = np.sqrt(2.0)
BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16.0


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def _nf(stage, kw):
    return min(int(kw.get('fmap_base', 8192) / 2.0 ** (stage * kw.get('fmap_decay', 1.0))),
               kw.get('fmap_max', 512))


def _fused(kw, res):
    fs = kw.get('fused_scale', 'auto')
    return res >= 128 if fs == 'auto' else bool(fs)


def _wscale(w, gain, lrmul=1.0):
    return w.astype(np.float64) * gain / np.sqrt(np.prod(w.shape[:-1])) * lrmul


def blur(x):
    """Depthwise [1,2,1]^2/16, stride 1, zero padding 1 (symmetric kernel: conv == correlation)."""
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    H, W = x.shape[2:]
    return sum(xp[:, :, a:a + H, b:b + W] * BLUR[a, b] for a in range(3) for b in range(3))


def upscale2d(x, factor=2):
    return x.repeat(factor, axis=2).repeat(factor, axis=3)


def downscale2d(x):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5))


def fused_upconv(x, w):
    """Spec 3.3: 4x4 summed kernel, transposed conv stride 2, out[2i+k-1] += x[i] * W4[k]."""
    wp = np.pad(w, [(1, 1), (1, 1), (0, 0), (0, 0)])
    w4 = wp[1:, 1:] + wp[:-1, 1:] + wp[1:, :-1] + wp[:-1, :-1]          # [4,4,I,O]
    N, C, H, W = x.shape
    out = np.zeros((N, w.shape[3], 2 * H + 2, 2 * W + 2))               # index shifted by +1
    for a in range(4):
        for b in range(4):
            out[:, :, a:a + 2 * H:2, b:b + 2 * W:2] += np.einsum('nchw,co->nohw', x, w4[a, b])
    return out[:, :, 1:2 * H + 1, 1:2 * W + 1]


def fused_conv_down(x, w):
    """Spec 3.4: W4 = 0.25 * sum of 4 shifted padded copies, conv stride 2, SAME (pad 1)."""
    wp = np.pad(w, [(1, 1), (1, 1), (0, 0), (0, 0)])
    w4 = (wp[1:, 1:] + wp[:-1, 1:] + wp[1:, :-1] + wp[:-1, :-1]) * 0.25
    N, C, H, W = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    out = np.zeros((N, w.shape[3], H // 2, W // 2))
    for a in range(4):
        for b in range(4):
            out += np.einsum('nchw,co->nohw', xp[:, :, a:a + H:2, b:b + W:2], w4[a, b])
    return out


def mapping(v, latents, kw, num_rows):
    x = np.asarray(latents, np.float64)
    if kw.get('normalize_latents', True):
        x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    lrmul = kw.get('mapping_lrmul', 0.01)
    for i in range(kw.get('mapping_layers', 8)):
        x = lrelu(x @ _wscale(v[f'Dense{i}/weight'], SQRT2, lrmul) + v[f'Dense{i}/bias'] * lrmul)
    return np.repeat(x[:, None], num_rows, axis=1)


def synthesis(v, dlatents, kw, lod=0.0):
    """G_synthesis with randomize_noise=False (stored noiseN), 'linear' lod semantics."""
    R = kw.get('resolution', 1024)
    rl = int(np.log2(R))
    use_noise = kw.get('use_noise', True)
    use_styles = kw.get('use_styles', True)
    dl = np.asarray(dlatents, np.float64)
    N = dl.shape[0]

    def epilogue(x, idx, scope):
        if use_noise:
            x = x + v[f'noise{idx}'] * v[f'{scope}/Noise/weight'].reshape(1, -1, 1, 1)
        x = lrelu(x + v[f'{scope}/bias'].reshape(1, -1, 1, 1))
        if kw.get('use_pixel_norm', False):
            x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
        if kw.get('use_instance_norm', True):
            x = x - x.mean(axis=(2, 3), keepdims=True)
            x = x / np.sqrt(np.mean(x ** 2, axis=(2, 3), keepdims=True) + 1e-8)
        if use_styles:
            C = x.shape[1]
            s = dl[:, idx] @ _wscale(v[f'{scope}/StyleMod/weight'], 1.0) + v[f'{scope}/StyleMod/bias']
            x = x * (s[:, :C, None, None] + 1) + s[:, C:, None, None]
        return x

    def torgb(x, lod_idx):
        return conv2d_same(x, _wscale(v[f'ToRGB_lod{lod_idx}/weight'], 1.0)) + \
            v[f'ToRGB_lod{lod_idx}/bias'].reshape(1, -1, 1, 1)

    if kw.get('const_input_layer', True):
        x = np.tile(v['4x4/Const/const'].astype(np.float64), (N, 1, 1, 1))
        x = epilogue(x, 0, '4x4/Const')
    else:
        w = _wscale(v['4x4/Dense/weight'], SQRT2 / 4)
        x = (dl[:, 0] @ w).reshape(N, -1, 4, 4)
        x = epilogue(x, 0, '4x4/Dense')
    x = epilogue(conv2d_same(x, _wscale(v['4x4/Conv/weight'], SQRT2)), 1, '4x4/Conv')
    img = torgb(x, rl - 2)
    for r in range(3, rl + 1):
        res = f'{2 ** r}x{2 ** r}'
        w = _wscale(v[f'{res}/Conv0_up/weight'], SQRT2)
        x = fused_upconv(x, w) if _fused(kw, 2 ** r) else conv2d_same(upscale2d(x), w)
        x = epilogue(blur(x), 2 * r - 4, f'{res}/Conv0_up')
        x = epilogue(conv2d_same(x, _wscale(v[f'{res}/Conv1/weight'], SQRT2)), 2 * r - 3, f'{res}/Conv1')
        t = np.clip(lod - (rl - r), 0, 1)
        new = torgb(x, rl - r)
        img = new + (upscale2d(img) - new) * t
    return img


def G_style(Gs_state, latents, truncation_psi=0.7, truncation_cutoff=8):
    kw = Gs_state.static_kwargs
    rl = int(np.log2(kw['resolution']))
    num_rows = 2 * rl - 2
    syn = Gs_state.components['synthesis']
    mp = Gs_state.components['mapping']
    dl = mapping(mp.variables, latents, mp.static_kwargs, num_rows)
    if truncation_psi is not None and truncation_cutoff is not None and truncation_psi != 1:
        avg = Gs_state.variables['dlatent_avg']
        coefs = np.where(np.arange(num_rows) < truncation_cutoff, truncation_psi, 1.0)[None, :, None]
        dl = avg + (dl - avg) * coefs
    lod = float(Gs_state.variables['lod'])
    return synthesis(syn.variables, dl, syn.static_kwargs, lod), dl


def D_basic(D_state, images):
    v = D_state.variables
    kw = D_state.static_kwargs
    R = kw.get('resolution', 32)
    rl = int(np.log2(R))
    lod = float(v['lod'])

    def conv(x, scope, gain=SQRT2):
        return lrelu(conv2d_same(x, _wscale(v[f'{scope}/weight'], gain)) + v[f'{scope}/bias'].reshape(1, -1, 1, 1))

    def fromrgb(img, lod_idx):
        return conv(img, f'FromRGB_lod{lod_idx}')

    img = np.asarray(images, np.float64)
    x = fromrgb(img, 0)
    for r in range(rl, 2, -1):
        res = f'{2 ** r}x{2 ** r}'
        x = conv(x, f'{res}/Conv0')
        x = blur(x)
        w = _wscale(v[f'{res}/Conv1_down/weight'], SQRT2)
        x = fused_conv_down(x, w) if _fused(kw, 2 ** r) else downscale2d(conv2d_same(x, w))
        x = lrelu(x + v[f'{res}/Conv1_down/bias'].reshape(1, -1, 1, 1))
        img = downscale2d(img)
        y = fromrgb(img, rl - r + 1)
        x = x + (y - x) * np.clip(lod - (rl - r), 0, 1)
    x = minibatch_stddev(x, kw.get('mbstd_group_size', 4), kw.get('mbstd_num_features', 1))
    x = conv(x, '4x4/Conv')
    x = x.reshape(x.shape[0], -1)
    x = lrelu(x @ _wscale(v['4x4/Dense0/weight'], SQRT2) + v['4x4/Dense0/bias'])
    return x @ _wscale(v['4x4/Dense1/weight'], 1.0) + v['4x4/Dense1/bias']
