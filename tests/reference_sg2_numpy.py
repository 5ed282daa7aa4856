"""An independent, plain-NumPy StyleGAN2 forward pass written from the spec (section 4).

It exists to check the TensorFlow implementations on networks the fixtures do not cover (the
'orig' and 'resnet' generators, the 'orig' and 'skip' discriminators, other sizes): it shares no
code with them. Slow but exact enough (float64 internally). NCHW everywhere, weights HWIO.

Functions take the official variable dicts (name -> array) of a NetworkState and the static kwargs.
"""

import numpy as np

SQRT2 = np.sqrt(2.0)


# ------------------------------------------------------------------------------------------------
# Primitives.

def lrelu_act(x, b):
    """fused_bias_act(x, b, 'lrelu') = sqrt(2) * leaky_relu(x + b, 0.2), bias along axis 1."""
    x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    return np.where(x >= 0, x, 0.2 * x) * SQRT2


def conv2d_same(x, w):
    """Cross-correlation, stride 1, TF 'SAME' padding; x [N,C,H,W], w [kh,kw,I,O]."""
    kh, kw = w.shape[:2]
    ph, pw = kh - 1, kw - 1
    xp = np.pad(x, [(0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)])
    H, W = x.shape[2:]
    out = np.zeros((x.shape[0], w.shape[3], H, W))
    for a in range(kh):
        for b in range(kw):
            out += np.einsum('nchw,co->nohw', xp[:, :, a:a + H, b:b + W], w[a, b])
    return out


def conv2d_valid_stride2(x, w):
    kh, kw = w.shape[:2]
    H = (x.shape[2] - kh) // 2 + 1
    W = (x.shape[3] - kw) // 2 + 1
    out = np.zeros((x.shape[0], w.shape[3], H, W))
    for a in range(kh):
        for b in range(kw):
            out += np.einsum('nchw,co->nohw', x[:, :, a:a + 2 * H - 1:2, b:b + 2 * W - 1:2], w[a, b])
    return out


def upfirdn2d(x, k, up=1, down=1, pad0=0, pad1=0):
    """Spec 4.1: zero-insert upsample, pad (negative crops), true convolution, downsample."""
    N, C, H, W = x.shape
    k = np.asarray(k, np.float64)
    if up > 1:
        u = np.zeros((N, C, H * up, W * up))
        u[:, :, ::up, ::up] = x
        x = u[:, :, :(H - 1) * up + 1 + (up - 1), :(W - 1) * up + 1 + (up - 1)]
    x = np.pad(x, [(0, 0), (0, 0), (max(pad0, 0), max(pad1, 0)), (max(pad0, 0), max(pad1, 0))])
    x = x[:, :, max(-pad0, 0):x.shape[2] - max(-pad1, 0), max(-pad0, 0):x.shape[3] - max(-pad1, 0)]
    kf = k[::-1, ::-1]
    kh, kw = k.shape
    Ho, Wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = np.zeros((N, C, Ho, Wo))
    for a in range(kh):
        for b in range(kw):
            out += x[:, :, a:a + Ho, b:b + Wo] * kf[a, b]
    return out[:, :, ::down, ::down]


def setup_kernel(k):
    k = np.asarray(k, np.float64)
    if k.ndim == 1:
        k = np.outer(k, k)
    return k / k.sum()


def upsample_2d(x, k=(1, 3, 3, 1), factor=2):
    K = setup_kernel(k) * factor ** 2
    p = K.shape[0] - factor
    return upfirdn2d(x, K, up=factor, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2)


def downsample_2d(x, k=(1, 3, 3, 1), factor=2):
    K = setup_kernel(k)
    p = K.shape[0] - factor
    return upfirdn2d(x, K, down=factor, pad0=(p + 1) // 2, pad1=p // 2)


def upsample_conv_2d(x, w, k=(1, 3, 3, 1), factor=2):
    """Transposed stride-2 conv with w, then the [1,3,3,1] filter (spec 4.1)."""
    K = setup_kernel(k) * factor ** 2
    kh, kw = w.shape[:2]
    p = (K.shape[0] - factor) - (kw - 1)
    N, C, H, W = x.shape
    out = np.zeros((N, w.shape[3], (H - 1) * 2 + kh, (W - 1) * 2 + kw))
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + 2 * H - 1:2, b:b + 2 * W - 1:2] += np.einsum(
                'nchw,co->nohw', x, w[kh - 1 - a, kw - 1 - b])
    return upfirdn2d(out, K, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2 + 1)


def conv_downsample_2d(x, w, k=(1, 3, 3, 1), factor=2):
    K = setup_kernel(k)
    kw = w.shape[1]
    p = (K.shape[0] - factor) + (kw - 1)
    x = upfirdn2d(x, K, pad0=(p + 1) // 2, pad1=p // 2)
    return conv2d_valid_stride2(x, w)


def minibatch_stddev(x, group_size=4, num_new_features=1):
    N, C, H, W = x.shape
    G = min(group_size, N)
    M = N // G
    n = num_new_features
    y = x.reshape(G, M, n, C // n, H, W)
    y = y - y.mean(axis=0)
    y = np.sqrt((y ** 2).mean(axis=0) + 1e-8)          # [M, n, C/n, H, W]
    y = y.mean(axis=(2, 3, 4))                          # [M, n]
    y = np.tile(y[:, :, None, None], (G, 1, H, W))      # row g*M+m gets group m
    return np.concatenate([x, y], axis=1)


# ------------------------------------------------------------------------------------------------
# Networks.

def _nf(stage, kw):
    fmap_base = kw.get('fmap_base', 16 << 10)
    return int(np.clip(int(fmap_base / 2.0 ** (stage * kw.get('fmap_decay', 1.0))),
                       kw.get('fmap_min', 1), kw.get('fmap_max', 512)))


def mapping(v, latents, kw, num_rows):
    x = np.asarray(latents, np.float64)
    x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    lrmul = kw.get('mapping_lrmul', 0.01)
    for i in range(kw.get('mapping_layers', 8)):
        w = v[f'Dense{i}/weight'].astype(np.float64)
        x = lrelu_act(x @ (w * lrmul / np.sqrt(w.shape[0])), v[f'Dense{i}/bias'] * lrmul)
    return np.repeat(x[:, None], num_rows, axis=1)


def modconv(x, style, v, scope, demodulate=True, up=False, kernel=(1, 3, 3, 1)):
    w = v[f'{scope}/weight'].astype(np.float64)
    kh, kw_, I, O = w.shape
    wr = w / np.sqrt(kh * kw_ * I)
    mw = v[f'{scope}/mod_weight'].astype(np.float64)
    s = style @ (mw / np.sqrt(mw.shape[0])) + v[f'{scope}/mod_bias'] + 1.0   # [N, I]
    out = []
    for n in range(x.shape[0]):
        ww = wr * s[n][None, None, :, None]
        if demodulate:
            ww = ww / np.sqrt(np.sum(ww ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        xn = x[n:n + 1]
        out.append(upsample_conv_2d(xn, ww, kernel) if up else conv2d_same(xn, ww))
    return np.concatenate(out)


def synthesis(v, dlatents, kw):
    """G_synthesis_stylegan2 with randomize_noise=False (the stored noiseN)."""
    R = kw.get('resolution', 1024)
    rl = int(np.log2(R))
    arch = kw.get('architecture', 'skip')
    kernel = kw.get('resample_kernel', [1, 3, 3, 1])
    dl = np.asarray(dlatents, np.float64)
    N = dl.shape[0]

    def layer(x, row, scope, up=False):
        x = modconv(x, dl[:, row], v, scope, up=up, kernel=kernel)
        x = x + v[f'noise{row}'] * v[f'{scope}/noise_strength']
        return lrelu_act(x, v[f'{scope}/bias'])

    def torgb(x, row, scope):
        return modconv(x, dl[:, row], v, scope, demodulate=False) + \
            v[f'{scope}/bias'].reshape(1, -1, 1, 1)

    x = np.tile(v['4x4/Const/const'].astype(np.float64), (N, 1, 1, 1))
    x = layer(x, 0, '4x4/Conv')
    y = torgb(x, 1, '4x4/ToRGB') if arch == 'skip' else None
    for r in range(3, rl + 1):
        res = f'{2 ** r}x{2 ** r}'
        t = x
        x = layer(x, 2 * r - 5, f'{res}/Conv0_up', up=True)
        x = layer(x, 2 * r - 4, f'{res}/Conv1')
        if arch == 'resnet':
            sw = v[f'{res}/Skip/weight'].astype(np.float64)
            x = (x + upsample_conv_2d(t, sw / np.sqrt(sw.shape[2]), kernel)) / SQRT2
        if arch == 'skip':
            y = upsample_2d(y, kernel) + torgb(x, 2 * r - 3, f'{res}/ToRGB')
        elif r == rl:
            y = torgb(x, 2 * r - 3, f'{res}/ToRGB')
    return y


def G_main(Gs_state, latents, truncation_psi=1.0, truncation_cutoff=None):
    kw = Gs_state.static_kwargs
    rl = int(np.log2(kw['resolution']))
    num_rows = 2 * rl - 2
    syn = Gs_state.components['synthesis'].variables
    mp = Gs_state.components['mapping'].variables
    dl = mapping(mp, latents, Gs_state.components['mapping'].static_kwargs, num_rows)
    if truncation_psi is not None and truncation_psi != 1:
        avg = Gs_state.variables['dlatent_avg']
        rows = np.arange(num_rows)
        cutoff = num_rows if truncation_cutoff is None else truncation_cutoff
        coefs = np.where(rows < cutoff, truncation_psi, 1.0)[None, :, None]
        dl = avg + (dl - avg) * coefs
    return synthesis(syn, dl, Gs_state.components['synthesis'].static_kwargs), dl


def D_stylegan2(D_state, images):
    v = D_state.variables
    kw = D_state.static_kwargs
    R = kw.get('resolution', 1024)
    rl = int(np.log2(R))
    arch = kw.get('architecture', 'resnet')
    kernel = kw.get('resample_kernel', [1, 3, 3, 1])

    def conv(x, scope, act=True):
        w = v[f'{scope}/weight'].astype(np.float64)
        x = conv2d_same(x, w / np.sqrt(np.prod(w.shape[:3])))
        return lrelu_act(x, v[f'{scope}/bias']) if act else x

    y = np.asarray(images, np.float64)
    x = None
    for r in range(rl, 2, -1):
        res = f'{2 ** r}x{2 ** r}'
        if arch == 'skip' or r == rl:
            t = conv(y, f'{res}/FromRGB')
            x = t if x is None else x + t
        t = x
        x = conv(x, f'{res}/Conv0')
        w = v[f'{res}/Conv1_down/weight'].astype(np.float64)
        x = lrelu_act(conv_downsample_2d(x, w / np.sqrt(np.prod(w.shape[:3])), kernel),
                      v[f'{res}/Conv1_down/bias'])
        if arch == 'resnet':
            sw = v[f'{res}/Skip/weight'].astype(np.float64)
            x = (x + conv_downsample_2d(t, sw / np.sqrt(sw.shape[2]), kernel)) / SQRT2
        if arch == 'skip':
            y = downsample_2d(y, kernel)
    if arch == 'skip':
        x = x + conv(y, '4x4/FromRGB')
    x = minibatch_stddev(x, kw.get('mbstd_group_size', 4), kw.get('mbstd_num_features', 1))
    x = conv(x, '4x4/Conv')
    x = x.reshape(x.shape[0], -1)
    w = v['4x4/Dense0/weight'].astype(np.float64)
    x = lrelu_act(x @ (w / np.sqrt(w.shape[0])), v['4x4/Dense0/bias'])
    w = v['Output/weight'].astype(np.float64)
    return x @ (w / np.sqrt(w.shape[0])) + v['Output/bias']
