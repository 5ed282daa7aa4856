"""StyleGAN2 networks as Keras models: ``G_main``, ``G_mapping``, ``G_synthesis_stylegan2``,
``G_synthesis_stylegan_revised``, ``D_stylegan2``, ``D_stylegan``.

A port of the official ``training/networks_stylegan2.py`` written from the spec (sections 4.1-4.5
of ``official-stylegan.md``). Every build function takes every official kwarg with the official
default and ignores unknown ones (``**_kwargs``). The variables carry the official names, shapes,
order and trainable flags on purpose: they are the checkpoint format (``tf2/checkpoint.py``, name
tables registered at the end of this module).

StyleGAN2 differs from StyleGAN (v1, ``tf2/networks_stylegan.py``) in ways a loader must not
blur: every layer has gain 1 and the activation carries the sqrt(2) (``fused_bias_act``), so the
v2 ``G_mapping`` (same name and variables as v1) computes something else; convolutions of G are
modulated/demodulated (``mod_weight``, ``mod_bias`` + 1); noise has one scalar
``noise_strength`` per layer and one noise input fewer; resampling uses the [1,3,3,1] FIR filter.

Images are NCHW float32 at every model boundary; inside, ``data_format`` (``'NHWC'`` default, the
fast layout on CPU). The custom ops (``tf2/ops``) run with :data:`DEFAULT_IMPL` (``'auto'``:
the compiled kernel when available) unless a model was built with ``impl='ref'|'cpp'|...``; the
implementation is chosen when a forward pass is traced.

``G_synthesis_stylegan_revised`` / ``D_stylegan`` (configs b-d) grow progressively like v1: a
``lod`` variable, ``ToRGB_lod*`` / ``FromRGB_lod*`` at every resolution (the 'linear' template
structure's variables), evaluated with the 'recursive' ``tf.cond`` structure.
"""

import types

import numpy as np
import tensorflow as tf

from tf2 import checkpoint
from tf2 import layers as L
from tf2 import ops
from tf2 import networks_stylegan as v1

_SQRT2 = float(np.sqrt(2))
UNSET = v1.UNSET   # the same "not given" marker as the v1 models

# Implementation of the custom ops for models built without ``impl=``; read when a forward pass
# is traced, so set it before the first call (tests switch between 'ref' and 'cpp' this way).
DEFAULT_IMPL = 'auto'

ARCHITECTURES_G = ('orig', 'skip', 'resnet')
ARCHITECTURES_D = ('orig', 'skip', 'resnet')


# ------------------------------------------------------------------------------------------------
# Helpers.

def _nf_v2(fmap_base, fmap_decay, fmap_min, fmap_max):
    """Feature maps of a stage: ``clip(int(fmap_base / 2**(stage*decay)), fmap_min, fmap_max)``."""
    return lambda stage: int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))),
                                     fmap_min, fmap_max))


def _check_act(name, where):
    if name not in ops.ACTIVATIONS:
        raise ValueError(f'{where}: unknown nonlinearity {name!r}; expected one of '
                         f'{sorted(ops.ACTIVATIONS)}')
    return name


def _check_architecture(arch, allowed, where):
    if arch not in allowed:
        raise ValueError(f'{where}: unknown architecture {arch!r}; expected one of {allowed}')
    return arch


def _config(data_format, impl, **extra):
    """Shared settings of a model's layers; ``impl`` None means :data:`DEFAULT_IMPL`."""
    return types.SimpleNamespace(data_format=data_format, impl=impl, **extra)


def _impl(cfg):
    return cfg.impl or DEFAULT_IMPL


def _bias_act(x, b, act, cfg):
    """``fused_bias_act`` along the channel axis of ``x`` (or the last axis of a matrix)."""
    axis = L.channel_axis(cfg.data_format) if len(x.shape) == 4 else 1
    return ops.fused_bias_act(x, b, axis=axis, act=act, impl=_impl(cfg))


# ------------------------------------------------------------------------------------------------
# Layers with official variable names.

class _DenseBiasAct(L.OfficialLayer):
    """``<scope>/weight [in, out]`` and ``<scope>/bias [out]``, then ``fused_bias_act`` (gain 1
    weights: the activation's own gain, sqrt(2) for lrelu, applies). Flattens NCHW like the
    official ``dense_layer`` (pass NCHW tensors)."""

    def __init__(self, scope, in_features, fmaps, act, cfg, lrmul=1.0):
        super().__init__(scope)
        self.act, self.cfg, self.lrmul = act, cfg, lrmul
        shape = [in_features, fmaps]
        init_std, self.coef = L.weight_scales(shape, 1.0, True, lrmul)
        self.weight = self.add_official_variable('weight', shape, L._normal(init_std))
        self.bias = self.add_official_variable('bias', [fmaps], 'zeros')
        self.built = True

    def call(self, x):
        if len(x.shape) > 2:
            x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
        x = tf.matmul(x, self.weight * self.coef)
        b = self.bias * self.lrmul if self.lrmul != 1 else self.bias
        return ops.fused_bias_act(x, b, axis=1, act=self.act, impl=_impl(self.cfg))


class _Conv(L.OfficialLayer):
    """Equalized-lr conv ``<scope>/weight [k, k, in, out]`` (gain 1), optional ``bias`` + act.

    ``resample``: None ('SAME' conv), ``'down'`` (``conv_downsample_2d`` with the FIR filter) or
    ``'up'`` (``upsample_conv_2d``, used by G's resnet ``Skip``).
    """

    def __init__(self, scope, kernel, in_channels, fmaps, cfg, act='linear', use_bias=True,
                 resample=None):
        super().__init__(scope)
        self.cfg, self.act, self.resample = cfg, act, resample
        shape = [kernel, kernel, in_channels, fmaps]
        init_std, self.coef = L.weight_scales(shape, 1.0, True, 1.0)
        self.weight = self.add_official_variable('weight', shape, L._normal(init_std))
        self.bias = self.add_official_variable('bias', [fmaps], 'zeros') if use_bias else None
        self.built = True

    def call(self, x):
        cfg, df = self.cfg, self.cfg.data_format
        w = self.weight * self.coef
        if self.resample == 'down':
            x = ops.conv_downsample_2d(x, w, k=cfg.resample_kernel, data_format=df,
                                       impl=_impl(cfg))
        elif self.resample == 'up':
            x = ops.upsample_conv_2d(x, w, k=cfg.resample_kernel, data_format=df,
                                     impl=_impl(cfg))
        else:
            x = L.conv2d(x, w, df)
        if self.bias is None:
            return x
        return _bias_act(x, self.bias, self.act, cfg)


class _ModConv(L.OfficialLayer):
    """Modulated conv layer of G (spec 4.4), official variables in official order:
    ``weight [k,k,I,O]``, ``mod_weight [D, I]``, ``mod_bias [I]``, ``noise_strength []`` (conv
    layers only, not ToRGB), ``bias [O]``.

    Conv layers: ``fused_bias_act(modconv(x) + noise * noise_strength, bias, act)``.
    ToRGB layers (``demodulate=False``, no noise): ``modconv(x) + bias`` (linear).
    """

    def __init__(self, scope, kernel, in_channels, fmaps, dlatent_size, row, cfg, up=False,
                 demodulate=True, use_noise=True, act='lrelu'):
        super().__init__(scope)
        self.cfg, self.row, self.up, self.demodulate = cfg, row, up, demodulate
        self.use_noise, self.act, self.fmaps = use_noise, act, fmaps
        shape = [kernel, kernel, in_channels, fmaps]
        _, self.coef = L.weight_scales(shape, 1.0, True, 1.0)
        _, self.mod_coef = L.weight_scales([dlatent_size, in_channels], 1.0, True, 1.0)
        self.weight = self.add_official_variable('weight', shape, L._normal(1.0))
        self.mod_weight = self.add_official_variable('mod_weight', [dlatent_size, in_channels],
                                                     L._normal(1.0))
        self.mod_bias = self.add_official_variable('mod_bias', [in_channels], 'zeros')
        if use_noise:
            self.noise_strength = self.add_official_variable('noise_strength', [], 'zeros')
        self.bias = self.add_official_variable('bias', [fmaps], 'zeros')
        self.built = True

    def call(self, x, dlatents, noise_var=None, randomize_noise=True, rng=None):
        # x: [N, H, W, I] (or NCHW); dlatents: [N, L, D]
        cfg, df = self.cfg, self.cfg.data_format
        styles = tf.matmul(dlatents[:, self.row], self.mod_weight * self.mod_coef)
        styles = styles + self.mod_bias + 1.0                                   # [N, I]
        x = modulated_conv2d(x, self.weight * self.coef, styles, demodulate=self.demodulate,
                             up=self.up, fused_modconv=cfg.fused_modconv,
                             resample_kernel=cfg.resample_kernel, data_format=df,
                             impl=_impl(cfg))
        if self.use_noise:
            if randomize_noise:
                shape = tf.shape(x)
                noise_shape = ([shape[0], shape[1], shape[2], 1] if df == 'NHWC'
                               else [shape[0], 1, shape[2], shape[3]])
                noise = v1.random_normal(noise_shape, rng, dtype=x.dtype)
            else:
                noise = L.from_nchw(noise_var, df)    # [1, 1, H, W] -> [1, H, W, 1]
            x = x + noise * self.noise_strength
        return _bias_act(x, self.bias, self.act, cfg)


def modulated_conv2d(x, w, styles, demodulate=True, up=False, fused_modconv=True,
                     resample_kernel=(1, 3, 3, 1), data_format='NHWC', impl='auto'):
    """Official modulated convolution (spec 4.4), stride 1 'SAME' or upsampling by 2.

    Args:
        x: ``[N, H, W, I]`` (or NCHW).
        w: runtime weight ``[k, k, I, O]`` (stored weight times ``1/sqrt(k*k*I)``).
        styles: ``[N, I]`` per-sample input-channel scales (``s`` of the spec, the +1 included).
        demodulate: scale each output channel by ``rsqrt(sum(ww^2) + 1e-8)``.
        up: upsample by 2 with ``upsample_conv_2d`` and ``resample_kernel``.
        fused_modconv: one grouped convolution with per-sample weights (official default);
            False scales the activations instead. Both give the same values.
        resample_kernel: FIR filter of the upsampling.
        data_format: ``'NHWC'`` or ``'NCHW'``.
        impl: implementation of the ``upfirdn2d`` step.

    Returns:
        ``[N, H', W', O]`` (or NCHW), ``H' = 2H`` when ``up``.
    """
    if fused_modconv and not grouped_conv_supported():
        fused_modconv = False
    ww = w[tf.newaxis] * styles[:, tf.newaxis, tf.newaxis, :, tf.newaxis]     # [N, k, k, I, O]
    if demodulate:
        dcoefs = tf.math.rsqrt(tf.reduce_sum(tf.square(ww), axis=[1, 2, 3]) + 1e-8)   # [N, O]
        ww = ww * dcoefs[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
    cshape = lambda t: ([-1, 1, 1, t.shape[-1]] if data_format == 'NHWC'     # noqa: E731
                        else [-1, t.shape[-1], 1, 1])
    if not fused_modconv:
        x = x * tf.reshape(styles, cshape(styles))
        if up:
            x = ops.upsample_conv_2d(x, w, k=resample_kernel, data_format=data_format, impl=impl)
        else:
            x = L.conv2d(x, w, data_format)
        if demodulate:
            x = x * tf.reshape(dcoefs, cshape(dcoefs))
        return x
    return _grouped_conv(x, ww, up, resample_kernel, data_format, impl)


def grouped_conv_supported() -> bool:
    """True where the fused modulated conv's grouped convolution can run: on a GPU.

    TensorFlow's CPU kernels without oneDNN (the default on CPUs without AVX-512) have no
    gradient of a grouped convolution and no grouped transposed convolution, and with oneDNN
    the transposed one still fails. On a CPU ``fused_modconv=True`` is therefore computed as the
    equal scaled-activation form (spec 4.4), which agrees to float32 rounding.
    """
    return bool(tf.config.list_logical_devices('GPU'))


def _grouped_conv(x, ww, up, resample_kernel, data_format, impl):
    """The fused modulated conv: the batch becomes groups of one grouped convolution.

    Works with a dynamic batch size (the grouped channel count is then unknown while tracing,
    which is why the upsampling steps are spelled out here rather than calling
    ``ops.upsample_conv_2d``: the FIR filter runs after the groups are back in the batch axis).
    """
    n = tf.shape(x)[0]
    k, in_c, out_c = ww.shape[1], ww.shape[3], ww.shape[4]
    nhwc = data_format == 'NHWC'
    h, w_ = (x.shape[1], x.shape[2]) if nhwc else (x.shape[2], x.shape[3])
    # [N, H, W, I] -> [1, H, W, N*I] (NCHW: [1, N*I, H, W]); sample-major channel groups.
    xg = (tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w_, -1]) if nhwc
          else tf.reshape(x, [1, -1, h, w_]))
    wg = tf.transpose(ww, [1, 2, 3, 0, 4])                                   # [k, k, I, N, O]
    if not up:
        y = tf.nn.conv2d(xg, tf.reshape(wg, [k, k, in_c, -1]), 1, 'SAME',
                         data_format=data_format)
        oh, ow = h, w_
    else:
        # Transposed stride-2 conv with the flipped, regrouped weight [k, k, O, N*I] (spec 4.1).
        wt = tf.reshape(tf.transpose(wg[::-1, ::-1], [0, 1, 4, 3, 2]), [k, k, out_c, -1])
        oh, ow = (h - 1) * 2 + k, (w_ - 1) * 2 + k
        out_shape = (tf.stack([1, oh, ow, n * out_c]) if nhwc
                     else tf.stack([1, n * out_c, oh, ow]))
        strides = [1, 2, 2, 1] if nhwc else [1, 1, 2, 2]
        y = tf.nn.conv2d_transpose(xg, wt, out_shape, strides, 'VALID', data_format=data_format)
    y = (tf.transpose(tf.reshape(y, [oh, ow, n, out_c]), [2, 0, 1, 3]) if nhwc
         else tf.reshape(y, [n, out_c, oh, ow]))
    if up:
        fir = ops.setup_kernel(resample_kernel) * 4                  # gain factor**2
        p = (fir.shape[0] - 2) - (k - 1)
        y = _fir(y, fir, (p + 1) // 2 + 1, p // 2 + 1, data_format, impl)
    return y


def _fir(x, kernel, pad0, pad1, data_format, impl):
    """``upfirdn2d`` without resampling on a 4-D tensor (same pads on both axes)."""
    if data_format == 'NHWC':
        return ops.upfirdn2d(x, kernel, padx0=pad0, padx1=pad1, pady0=pad0, pady1=pad1,
                             impl=impl)
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    y = ops.upfirdn2d(tf.reshape(x, [-1, h, w, 1]), kernel, padx0=pad0, padx1=pad1,
                      pady0=pad0, pady1=pad1, impl=impl)
    return tf.reshape(y, [-1, c, y.shape[1], y.shape[2]])


class _Const(L.OfficialLayer):
    """``4x4/Const/const [1, C, 4, 4]`` (init N(0, 1) in v2), tiled over the batch."""

    def __init__(self, channels, data_format):
        super().__init__('4x4/Const')
        self.data_format = data_format
        self.const = self.add_official_variable('const', [1, channels, 4, 4], L._normal(1.0))
        self.built = True

    def call(self, n):
        return tf.tile(L.from_nchw(self.const, self.data_format), [n, 1, 1, 1])


# ------------------------------------------------------------------------------------------------
# Mapping network (spec 4.2).

class MappingV2(L.OfficialModel):
    """v2 mapping z (+labels) -> w: same variables as v1 (``LabelConcat/weight``,
    ``Dense{i}/weight``, ``Dense{i}/bias``, names official on purpose) but gain 1 weights and the
    activation's gain after the bias: ``x = sqrt(2) * lrelu(x @ W/sqrt(fan_in)*lrmul + b*lrmul)``.
    """

    build_func_name = 'G_mapping'

    def __init__(self, name='G_mapping', data_format='NHWC', impl=None,
                 latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                 mapping_nonlinearity='lrelu', normalize_latents=True, dtype='float32',
                 static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        v1.check_dtype(dtype, name)
        self.impl = impl
        self.cfg = cfg = _config(data_format, impl)
        act = _check_act(mapping_nonlinearity, name)
        self.latent_size, self.label_size = latent_size, label_size
        self.dlatent_size, self.dlatent_broadcast = dlatent_size, dlatent_broadcast
        self.normalize_latents = normalize_latents
        if label_size:
            self.label_concat = self.track_layer(
                v1.LabelConcat(label_size, latent_size))  # the same layer as v1
        fan_in = latent_size * 2 if label_size else latent_size
        self.dense_layers = []
        for i in range(mapping_layers):
            fmaps = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
            self.dense_layers.append(self.track_layer(_DenseBiasAct(
                f'Dense{i}', fan_in, fmaps, act, cfg, lrmul=mapping_lrmul)))
            fan_in = fmaps
        self.finish_mapping_init(latent_size, label_size, dlatent_broadcast, dlatent_size)

    def call(self, latents, labels=None, **_kwargs):
        # latents: [N, latent_size] -> dlatents [N, dlatent_broadcast, dlatent_size]
        x = tf.cast(latents, tf.float32)
        if self.label_size:
            labels = v1.labels_or_zeros(labels, tf.shape(x)[0], self.label_size)
            x = tf.concat([x, self.label_concat(labels)], axis=1)
        if self.normalize_latents:
            x = L.pixel_norm(x, axis=1)
        for dense in self.dense_layers:
            x = dense(x)
        if self.dlatent_broadcast is not None:
            x = tf.tile(x[:, tf.newaxis], [1, self.dlatent_broadcast, 1])
        return x


# ------------------------------------------------------------------------------------------------
# Synthesis networks (spec 4.4).

class _SynthesisBase(L.OfficialModel):
    """Shared parts of the two v2 synthesis networks: noise inputs, 4x4 input, conv layers."""

    def _setup(self, name, impl, dlatent_size, num_channels, resolution, fmap_base, fmap_decay,
               fmap_min, fmap_max, randomize_noise, nonlinearity, dtype, resample_kernel,
               fused_modconv):
        v1.check_dtype(dtype, name)
        self.impl = impl
        self.cfg = _config(self.data_format, impl, fused_modconv=bool(fused_modconv),
                           resample_kernel=list(resample_kernel))
        self.act = _check_act(nonlinearity, name)
        self.resolution_log2 = v1.resolution_log2(resolution)
        self.nf = _nf_v2(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.num_layers = self.resolution_log2 * 2 - 2
        self.dlatent_size, self.num_channels = dlatent_size, num_channels
        self.resolution, self.randomize_noise = resolution, randomize_noise

    def _add_noise_vars(self):
        self.noise_vars = []
        for idx in range(self.num_layers - 1):
            r = (idx + 5) // 2
            self.noise_vars.append(self.add_official_variable(
                f'noise{idx}', [1, 1, 2 ** r, 2 ** r], L._normal(1.0), trainable=False))

    def _conv(self, scope, kernel, cin, cout, row, up=False):
        return self.track_layer(_ModConv(scope, kernel, cin, cout, self.dlatent_size, row,
                                         self.cfg, up=up, act=self.act))

    def _torgb_layer(self, scope, cin, row):
        return self.track_layer(_ModConv(scope, 1, cin, self.num_channels, self.dlatent_size,
                                         row, self.cfg, demodulate=False, use_noise=False,
                                         act='linear'))

    def _add_input_block(self):
        self.const = self.track_layer(_Const(self.nf(1), self.data_format))
        self.conv4 = self._conv('4x4/Conv', 3, self.nf(1), self.nf(1), 0)

    def _add_block(self, r):
        s, nf = f'{2 ** r}x{2 ** r}', self.nf
        return (self._conv(f'{s}/Conv0_up', 3, nf(r - 2), nf(r - 1), 2 * r - 5, up=True),
                self._conv(f'{s}/Conv1', 3, nf(r - 1), nf(r - 1), 2 * r - 4))

    def _layer(self, layer, x, dlatents, randomize_noise, rng):
        return layer(x, dlatents=dlatents, noise_var=self.noise_vars[layer.row],
                     randomize_noise=randomize_noise, rng=rng)

    def _input(self, dlatents, randomize_noise, rng):
        # dlatents: [N, L, D] -> x: [N, 4, 4, nf(1)]
        x = self.const(tf.shape(dlatents)[0])
        return self._layer(self.conv4, x, dlatents, randomize_noise, rng)

    def _run_block(self, r, x, dlatents, randomize_noise, rng):
        # x: [N, H, W, C] at 2**(r-1) -> [N, 2H, 2W, C'] at 2**r
        up, c1 = self.blocks[r]
        x = self._layer(up, x, dlatents, randomize_noise, rng)
        return self._layer(c1, x, dlatents, randomize_noise, rng)

    def _resolve_noise(self, randomize_noise):
        if randomize_noise is UNSET or randomize_noise is None:
            return self.randomize_noise
        return randomize_noise


class SynthesisStyleGAN2(_SynthesisBase):
    """``G_synthesis_stylegan2``: dlatents ``[N, L, D]`` -> images ``[N, C, R, R]`` (NCHW).

    Architectures 'skip' (default; ToRGB at every resolution, images summed with
    ``upsample_2d``), 'orig' (ToRGB at the end) and 'resnet' (residual ``Skip`` convs). No
    ``lod``. Variable names (``noiseN``, ``4x4/Const/const``, ``RxR/Conv0_up/mod_weight``,
    ``RxR/ToRGB/bias``, ``RxR/Skip/weight``, ...) match the official ones on purpose.
    """

    build_func_name = 'G_synthesis_stylegan2'

    def __init__(self, name='G_synthesis', data_format='NHWC', impl=None,
                 dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10,
                 fmap_decay=1.0, fmap_min=1, fmap_max=512, randomize_noise=True,
                 architecture='skip', nonlinearity='lrelu', dtype='float32',
                 resample_kernel=(1, 3, 3, 1), fused_modconv=True, static_kwargs=None,
                 **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        self._setup(name, impl, dlatent_size, num_channels, resolution, fmap_base, fmap_decay,
                    fmap_min, fmap_max, randomize_noise, nonlinearity, dtype, resample_kernel,
                    fused_modconv)
        self.architecture = _check_architecture(architecture, ARCHITECTURES_G, name)
        rl, nf = self.resolution_log2, self.nf

        # Variables, in official creation order.
        self._add_noise_vars()
        self._add_input_block()
        self.torgb = {}
        if architecture == 'skip':
            self.torgb[2] = self._torgb_layer('4x4/ToRGB', nf(1), 1)
        self.blocks, self.skips = {}, {}
        for r in range(3, rl + 1):
            s = f'{2 ** r}x{2 ** r}'
            self.blocks[r] = self._add_block(r)
            if architecture == 'resnet':
                self.skips[r] = self.track_layer(_Conv(f'{s}/Skip', 1, nf(r - 2), nf(r - 1),
                                                       self.cfg, use_bias=False, resample='up'))
            if architecture == 'skip' or r == rl:
                self.torgb[r] = self._torgb_layer(f'{s}/ToRGB', nf(r - 1), 2 * r - 3)
        if rl == 2 and architecture != 'skip':
            # At 4x4 the final resolution is the input block's (official: ToRGB 'r == rl').
            self.torgb[2] = self._torgb_layer('4x4/ToRGB', nf(1), 1)
        self.input_shapes = [[None, self.num_layers, dlatent_size]]
        self.output_shapes = [[None, num_channels, resolution, resolution]]
        self.finish_init()

    def call(self, dlatents, randomize_noise=UNSET, rng=None, **_kwargs):
        """dlatents ``[N, L, D]`` -> images ``[N, C, R, R]``.

        ``rng``: optional ``tf.random.Generator`` for the noise when ``randomize_noise`` is on.
        """
        randomize_noise = self._resolve_noise(randomize_noise)
        dlatents = tf.cast(dlatents, tf.float32)
        cfg, df, arch = self.cfg, self.data_format, self.architecture
        x = self._input(dlatents, randomize_noise, rng)                # [N, 4, 4, nf(1)]
        y = self.torgb[2](x, dlatents) if 2 in self.torgb else None
        for r in range(3, self.resolution_log2 + 1):
            t = x
            x = self._run_block(r, x, dlatents, randomize_noise, rng)
            if arch == 'resnet':
                x = (x + self.skips[r](t)) * (1.0 / _SQRT2)
            if arch == 'skip':
                y = ops.upsample_2d(y, k=cfg.resample_kernel, data_format=df, impl=_impl(cfg))
            if r in self.torgb:
                t = self.torgb[r](x, dlatents)
                y = t if y is None else y + t
        return L.to_nchw(y, df)


class SynthesisStyleGANRevised(L.ProgressiveSynthesis, _SynthesisBase):
    """``G_synthesis_stylegan_revised`` (configs b-d): v2 modulated layers with v1 progressive
    growing (``lod``, ``ToRGB_lod*`` at every resolution, nearest upsampling of images).

    Variables in official order: ``lod``, ``noiseN`` (L-1), ``4x4/Const/const``, ``4x4/Conv/*``,
    ``ToRGB_lod{rl-2}/*``, then per resolution ``RxR/Conv0_up/*``, ``RxR/Conv1/*``,
    ``ToRGB_lod{rl-r}/*`` (only ``ToRGB_lod0`` with ``structure='fixed'``).
    """

    build_func_name = 'G_synthesis_stylegan_revised'

    def __init__(self, name='G_synthesis', data_format='NHWC', impl=None,
                 dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10,
                 fmap_decay=1.0, fmap_min=1, fmap_max=512, randomize_noise=True,
                 nonlinearity='lrelu', dtype='float32', resample_kernel=(1, 3, 3, 1),
                 fused_modconv=True, structure='auto', static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        self._setup(name, impl, dlatent_size, num_channels, resolution, fmap_base, fmap_decay,
                    fmap_min, fmap_max, randomize_noise, nonlinearity, dtype, resample_kernel,
                    fused_modconv)
        self.structure = v1.check_structure(structure, name)
        rl, nf = self.resolution_log2, self.nf
        fixed = self.structure == 'fixed'

        self.lod = self.add_official_variable('lod', [], 'zeros', trainable=False)
        self._add_noise_vars()
        self._add_input_block()
        self.torgb, self.blocks = {}, {}
        if not fixed or rl == 2:
            self.torgb[2] = self._torgb_layer(f'ToRGB_lod{rl - 2}', nf(1), 1)
        for r in range(3, rl + 1):
            self.blocks[r] = self._add_block(r)
            if not fixed or r == rl:
                self.torgb[r] = self._torgb_layer(f'ToRGB_lod{rl - r}', nf(r - 1), 2 * r - 3)
        self.input_shapes = [[None, self.num_layers, dlatent_size]]
        self.output_shapes = [[None, num_channels, resolution, resolution]]
        self.finish_init()

    def _rgb(self, r, x, dlatents):
        return self.torgb[r](x, dlatents)

    def call(self, dlatents, randomize_noise=UNSET, rng=None, **_kwargs):
        """dlatents ``[N, L, D]`` -> images ``[N, C, R, R]`` at the current ``lod``."""
        randomize_noise = self._resolve_noise(randomize_noise)
        dlatents = tf.cast(dlatents, tf.float32)
        x = self._input(dlatents, randomize_noise, rng)
        img = self._synthesize(x, dlatents, randomize_noise, rng)
        return L.to_nchw(img, self.data_format)


# ------------------------------------------------------------------------------------------------
# G_main wrapper (spec 4.3).

class GMain(v1.GeneratorWrapper):
    """v2 generator (official ``G_main``): default truncation psi 0.5 on all rows
    (``truncation_cutoff=None``), ``return_dlatents``, and a choice of synthesis network."""

    build_func_name = 'G_main'
    cutoff_none_is_all_rows = True

    def __init__(self, name='G', data_format='NHWC', impl=None, truncation_psi=0.5,
                 truncation_cutoff=None, truncation_psi_val=None, truncation_cutoff_val=None,
                 dlatent_avg_beta=0.995, style_mixing_prob=0.9, is_training=False,
                 is_validation=False, return_dlatents=False, is_template_graph=False,
                 components=None, mapping_func='G_mapping',
                 synthesis_func='G_synthesis_stylegan2', static_kwargs=None, **kwargs):
        del is_template_graph
        components = dict(components or {})
        synthesis = components.get('synthesis')
        if synthesis is None:
            choices = sorted(k for k, v in NETWORKS.items() if v.role == 'G_synthesis')
            if synthesis_func not in choices:
                raise ValueError(f'{name}: unknown synthesis_func {synthesis_func!r}; expected '
                                 f'one of {choices}')
            synthesis = NETWORKS[synthesis_func].build(name='G_synthesis',
                                                       data_format=data_format, impl=impl,
                                                       **kwargs)
        if components.get('mapping') is None and mapping_func != 'G_mapping':
            raise ValueError(f'{name}: unknown mapping_func {mapping_func!r}')
        super().__init__(name, data_format, static_kwargs if static_kwargs is not None else kwargs,
                         synthesis, components.get('mapping'), MappingV2, kwargs, dict(
                             truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                             truncation_psi_val=truncation_psi_val,
                             truncation_cutoff_val=truncation_cutoff_val,
                             dlatent_avg_beta=dlatent_avg_beta,
                             style_mixing_prob=style_mixing_prob, is_training=is_training,
                             is_validation=is_validation, return_dlatents=return_dlatents),
                         impl=impl)
        self.impl = impl

    def call(self, latents, labels=None, truncation_psi=UNSET, truncation_cutoff=UNSET,
             truncation_psi_val=UNSET, truncation_cutoff_val=UNSET, dlatent_avg_beta=UNSET,
             style_mixing_prob=UNSET, is_training=UNSET, is_validation=UNSET,
             return_dlatents=UNSET, randomize_noise=UNSET, rng=None, **_kwargs):
        """latents ``[N, latent_size]``, labels ``[N, label_size]`` or None -> ``[N, C, R, R]``
        (and the dlatents fed to synthesis, ``[N, L, D]``, with ``return_dlatents=True``)."""
        opts = self.resolve_kwargs(dict(
            truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
            truncation_psi_val=truncation_psi_val, truncation_cutoff_val=truncation_cutoff_val,
            dlatent_avg_beta=dlatent_avg_beta, style_mixing_prob=style_mixing_prob,
            is_training=is_training, is_validation=is_validation,
            return_dlatents=return_dlatents))
        images, dlatents = self._generate(latents, labels, opts, randomize_noise, rng)
        return (images, dlatents) if opts['return_dlatents'] else images


# ------------------------------------------------------------------------------------------------
# Discriminators (spec 4.5).

class _DiscriminatorBase(L.OfficialModel):
    """Shared parts of ``D_stylegan2`` and ``D_stylegan``: settings and the 4x4 head."""

    def _setup(self, name, impl, num_channels, resolution, label_size, fmap_base, fmap_decay,
               fmap_min, fmap_max, nonlinearity, mbstd_group_size, mbstd_num_features, dtype,
               resample_kernel):
        v1.check_dtype(dtype, name)
        self.impl = impl
        self.cfg = _config(self.data_format, impl, resample_kernel=list(resample_kernel))
        self.act = _check_act(nonlinearity, name)
        self.resolution_log2 = v1.resolution_log2(resolution)
        self.nf = _nf_v2(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.num_channels, self.resolution, self.label_size = num_channels, resolution, label_size
        self.mbstd_group_size, self.mbstd_num_features = mbstd_group_size, mbstd_num_features

    def _conv(self, scope, kernel, cin, cout, act=None, **kw):
        return self.track_layer(_Conv(scope, kernel, cin, cout, self.cfg,
                                      act=self.act if act is None else act, **kw))

    def _add_block(self, r):
        s, nf = f'{2 ** r}x{2 ** r}', self.nf
        return (self._conv(f'{s}/Conv0', 3, nf(r - 1), nf(r - 1)),
                self._conv(f'{s}/Conv1_down', 3, nf(r - 1), nf(r - 2), resample='down'))

    def _add_head(self):
        nf = self.nf
        cin = nf(1) + (self.mbstd_num_features if self.mbstd_group_size > 1 else 0)
        self.conv4 = self._conv('4x4/Conv', 3, cin, nf(1))
        self.dense0 = self.track_layer(_DenseBiasAct('4x4/Dense0', nf(1) * 16, nf(0), self.act,
                                                     self.cfg))
        self.output_layer = self.track_layer(_DenseBiasAct(
            'Output', nf(0), max(self.label_size, 1), 'linear', self.cfg))

    def _head(self, x, labels):
        # x: [N, 4, 4, nf(1)] -> scores [N, 1]
        if self.mbstd_group_size > 1:
            x = L.minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features,
                                   self.data_format)
        x = self.conv4(x)
        x = L.to_nchw(x, self.data_format)     # official dense flattens NCHW (channel-major)
        scores = self.output_layer(self.dense0(x))
        if self.label_size:
            labels = v1.labels_or_zeros(labels, tf.shape(scores)[0],
                                         self.label_size)
            scores = tf.reduce_sum(scores * labels, axis=1, keepdims=True)
        return scores


class DStyleGAN2(_DiscriminatorBase):
    """``D_stylegan2``: images ``[N, C, R, R]`` (NCHW), labels -> scores ``[N, 1]``.

    Architectures 'resnet' (default), 'skip', 'orig'. No ``lod``. Variable names
    (``RxR/FromRGB``, ``RxR/Conv0``, ``RxR/Conv1_down``, ``RxR/Skip``, ``4x4/Conv``,
    ``4x4/Dense0``, ``Output``) match the official ones on purpose.
    """

    build_func_name = 'D_stylegan2'

    def __init__(self, name='D', data_format='NHWC', impl=None, num_channels=3,
                 resolution=1024, label_size=0, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1,
                 fmap_max=512, architecture='resnet', nonlinearity='lrelu', mbstd_group_size=4,
                 mbstd_num_features=1, dtype='float32', resample_kernel=(1, 3, 3, 1),
                 static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        self._setup(name, impl, num_channels, resolution, label_size, fmap_base, fmap_decay,
                    fmap_min, fmap_max, nonlinearity, mbstd_group_size, mbstd_num_features,
                    dtype, resample_kernel)
        self.architecture = _check_architecture(architecture, ARCHITECTURES_D, name)
        rl, nf = self.resolution_log2, self.nf
        self.fromrgb, self.blocks, self.skips = {}, {}, {}
        for r in range(rl, 2, -1):
            s = f'{2 ** r}x{2 ** r}'
            if architecture == 'skip' or r == rl:
                self.fromrgb[r] = self._conv(f'{s}/FromRGB', 1, num_channels, nf(r - 1))
            self.blocks[r] = self._add_block(r)
            if architecture == 'resnet':
                self.skips[r] = self._conv(f'{s}/Skip', 1, nf(r - 1), nf(r - 2),
                                           use_bias=False, resample='down')
        if architecture == 'skip' or rl == 2:
            self.fromrgb[2] = self._conv('4x4/FromRGB', 1, num_channels, nf(1))
        self._add_head()
        self.input_shapes = [[None, num_channels, resolution, resolution], [None, label_size]]
        self.output_shapes = [[None, 1]]
        self.finish_init()

    def call(self, images, labels=None, **_kwargs):
        # images: [N, C, R, R] (NCHW) -> scores [N, 1]
        cfg, df = self.cfg, self.data_format
        y = L.from_nchw(tf.cast(images, tf.float32), df)
        x = None
        for r in range(self.resolution_log2, 2, -1):
            if r in self.fromrgb:
                t = self.fromrgb[r](y)
                x = t if x is None else x + t
            t = x
            c0, c1 = self.blocks[r]
            x = c1(c0(x))
            if self.architecture == 'resnet':
                x = (x + self.skips[r](t)) * (1.0 / _SQRT2)
            if self.architecture == 'skip':
                y = ops.downsample_2d(y, k=cfg.resample_kernel, data_format=df, impl=_impl(cfg))
        if 2 in self.fromrgb:
            t = self.fromrgb[2](y)
            x = t if x is None else x + t
        return self._head(x, labels)


class DStyleGAN(L.ProgressiveDiscriminator, _DiscriminatorBase):
    """``D_stylegan`` (configs b-d): v2 layers with v1 progressive growing.

    Variables in official order: ``lod``, ``FromRGB_lod0/*``, then per resolution ``RxR/Conv0``,
    ``RxR/Conv1_down``, ``FromRGB_lod{rl-r+1}`` (only ``FromRGB_lod0`` with
    ``structure='fixed'``), then ``4x4/Conv``, ``4x4/Dense0``, ``Output``.
    """

    build_func_name = 'D_stylegan'

    def __init__(self, name='D', data_format='NHWC', impl=None, num_channels=3,
                 resolution=1024, label_size=0, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1,
                 fmap_max=512, nonlinearity='lrelu', mbstd_group_size=4, mbstd_num_features=1,
                 dtype='float32', resample_kernel=(1, 3, 3, 1), structure='auto',
                 static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        self._setup(name, impl, num_channels, resolution, label_size, fmap_base, fmap_decay,
                    fmap_min, fmap_max, nonlinearity, mbstd_group_size, mbstd_num_features,
                    dtype, resample_kernel)
        self.structure = v1.check_structure(structure, name)
        rl, nf = self.resolution_log2, self.nf

        def fromrgb(r):
            return self._conv(f'FromRGB_lod{rl - r}', 1, num_channels, nf(r - 1))

        self.lod = self.add_official_variable('lod', [], 'zeros', trainable=False)
        self.fromrgb = {rl: fromrgb(rl)}
        self.blocks = {}
        for r in range(rl, 2, -1):
            self.blocks[r] = self._add_block(r)
            if self.structure != 'fixed':
                self.fromrgb[r - 1] = fromrgb(r - 1)
        self._add_head()
        self.input_shapes = [[None, num_channels, resolution, resolution], [None, label_size]]
        self.output_shapes = [[None, 1]]
        self.finish_init()

    def _block(self, r, x):
        c0, c1 = self.blocks[r]
        return c1(c0(x))

    def _from_rgb(self, r, images):
        return self.fromrgb[r](images)

    def call(self, images, labels=None, **_kwargs):
        # images: [N, C, R, R] (NCHW) -> scores [N, 1]
        x = self._discriminate(L.from_nchw(tf.cast(images, tf.float32), self.data_format))
        return self._head(x, labels)


# ------------------------------------------------------------------------------------------------
# Build functions with the official names.

_SYNTHESIS_CLASSES = {'G_synthesis_stylegan2': SynthesisStyleGAN2,
                      'G_synthesis_stylegan_revised': SynthesisStyleGANRevised}


def G_main(name='G', data_format='NHWC', impl=None, **kwargs):            # noqa: N802
    """Builds the v2 generator (official ``G_main``) as a Keras model; kwargs as official.

    ``data_format`` and ``impl`` (ops implementation; None = :data:`DEFAULT_IMPL`) are ours and
    never stored in ``static_kwargs``.
    """
    synthesis_cls = _SYNTHESIS_CLASSES.get(kwargs.get('synthesis_func', 'G_synthesis_stylegan2'),
                                           SynthesisStyleGAN2)   # GMain names a bad choice
    L.check_kwargs('G_main', kwargs, GMain, MappingV2, synthesis_cls)
    static_kwargs = {k: v for k, v in kwargs.items() if k != 'components'}
    return GMain(name=name, data_format=data_format, impl=impl, static_kwargs=static_kwargs,
                 **kwargs)


def G_mapping(name='G_mapping', data_format='NHWC', impl=None, **kwargs):  # noqa: N802
    """Builds the v2 mapping network (official StyleGAN2 ``G_mapping``)."""
    return MappingV2(name=name, data_format=data_format, impl=impl, static_kwargs=kwargs,
                     **kwargs)


def G_synthesis_stylegan2(name='G_synthesis', data_format='NHWC', impl=None,  # noqa: N802
                          **kwargs):
    """Builds the v2 synthesis network (official ``G_synthesis_stylegan2``)."""
    return SynthesisStyleGAN2(name=name, data_format=data_format, impl=impl,
                              static_kwargs=kwargs, **kwargs)


def G_synthesis_stylegan_revised(name='G_synthesis', data_format='NHWC',      # noqa: N802
                                 impl=None, **kwargs):
    """Builds the configs b-d synthesis network (official ``G_synthesis_stylegan_revised``)."""
    return SynthesisStyleGANRevised(name=name, data_format=data_format, impl=impl,
                                    static_kwargs=kwargs, **kwargs)


def D_stylegan2(name='D', data_format='NHWC', impl=None, **kwargs):       # noqa: N802
    """Builds the v2 discriminator (official ``D_stylegan2``)."""
    L.check_kwargs('D_stylegan2', kwargs, DStyleGAN2)
    return DStyleGAN2(name=name, data_format=data_format, impl=impl, static_kwargs=kwargs,
                      **kwargs)


def D_stylegan(name='D', data_format='NHWC', impl=None, **kwargs):        # noqa: N802
    """Builds the configs b-d discriminator (official ``D_stylegan``)."""
    L.check_kwargs('D_stylegan', kwargs, DStyleGAN)
    return DStyleGAN(name=name, data_format=data_format, impl=impl, static_kwargs=kwargs,
                     **kwargs)


def resolved_kwargs(model) -> dict:
    """Every kwarg with its effective value (official default, then static kwargs); for G the
    components' values are included. Same as ``tf2.networks_stylegan.resolved_kwargs``."""
    out = v1.resolved_kwargs(model)
    out.pop('impl', None)
    return out


# ------------------------------------------------------------------------------------------------
# Registry (see tf2/networks_stylegan.py). The models keep official names and layouts, so every
# name rule is the identity; the rules state exactly which names each network may have.

_RES = r'\d+x\d+'
_MOD = r'(weight|mod_weight|mod_bias|noise_strength|bias)'
_TORGB = r'(weight|mod_weight|mod_bias|bias)'
_R = checkpoint.Rule
_Kind = checkpoint.NetworkKind
_LATENTS_LABELS = ('latents_in', 'labels_in')
_IMAGES_LABELS = ('images_in', 'labels_in')

NETWORKS = {
    'G_main': _Kind(G_main, 'stylegan2', 'G', 4, _LATENTS_LABELS, [_R(r'lod'), _R(r'dlatent_avg')]),
    'G_mapping': _Kind(G_mapping, 'stylegan2', 'G_mapping', 4, _LATENTS_LABELS, [
        _R(r'LabelConcat/weight'), _R(r'Dense\d+/(weight|bias)')]),
    'G_synthesis_stylegan2': _Kind(G_synthesis_stylegan2, 'stylegan2', 'G_synthesis', 4,
                                   ('dlatents_in',), [
        _R(r'noise\d+'), _R(r'4x4/Const/const'), _R(rf'4x4/Conv/{_MOD}'),
        _R(rf'{_RES}/(Conv0_up|Conv1)/{_MOD}'), _R(rf'{_RES}/ToRGB/{_TORGB}'),
        _R(rf'{_RES}/Skip/weight')]),
    'G_synthesis_stylegan_revised': _Kind(G_synthesis_stylegan_revised, 'stylegan2',
                                          'G_synthesis', 4, ('dlatents_in',), [
        _R(r'lod'), _R(r'noise\d+'), _R(r'4x4/Const/const'), _R(rf'4x4/Conv/{_MOD}'),
        _R(rf'{_RES}/(Conv0_up|Conv1)/{_MOD}'), _R(rf'ToRGB_lod\d+/{_TORGB}')]),
    'D_stylegan2': _Kind(D_stylegan2, 'stylegan2', 'D', 4, _IMAGES_LABELS, [
        _R(rf'{_RES}/(FromRGB|Conv0|Conv1_down|Conv)/(weight|bias)'), _R(rf'{_RES}/Skip/weight'),
        _R(r'4x4/Dense0/(weight|bias)'), _R(r'Output/(weight|bias)')]),
    'D_stylegan': _Kind(D_stylegan, 'stylegan2', 'D', 4, _IMAGES_LABELS, [
        _R(r'lod'), _R(r'FromRGB_lod\d+/(weight|bias)'),
        _R(rf'{_RES}/(Conv0|Conv1_down)/(weight|bias)'), _R(r'4x4/(Conv|Dense0)/(weight|bias)'),
        _R(r'Output/(weight|bias)')]),
}
