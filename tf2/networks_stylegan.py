"""StyleGAN (v1) networks as Keras models: ``G_style``, ``G_mapping``, ``G_synthesis``, ``D_basic``.

A faithful port of the official ``training/networks_stylegan.py`` (spec sections 2 and 3), written
from the spec. Every build function takes every official kwarg with the official default and
ignores unknown ones (``**_kwargs``), like the official functions. The variables carry the
official names, shapes, order and trainable flags on purpose: they are the checkpoint format
(see ``tf2/checkpoint.py``).

Images are NCHW float32 at every model boundary (official layout); inside, the networks compute in
``data_format`` (``'NHWC'`` by default, the fast layout on CPU; ``'NCHW'`` for GPUs).

Progressive growing follows the official 'recursive' structure (``tf.cond`` on the ``lod``
variable, so changing ``lod`` never retraces); it gives the values of the 'linear' template
structure, which is why every ``ToRGB_lod*`` / ``FromRGB_lod*`` exists. ``structure='fixed'``
builds only the full-resolution ToRGB/FromRGB, as the official code does.
"""

import collections
import inspect
import types

import numpy as np
import tensorflow as tf

from tf2 import checkpoint
from tf2 import layers as L

_SQRT2 = float(np.sqrt(2))
UNSET = object()


def _nf_v1(fmap_base: int, fmap_decay: float, fmap_max: int):
    """Feature maps of a stage: ``min(int(fmap_base / 2**(stage*decay)), fmap_max)``."""
    return lambda stage: min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def resolution_log2(resolution: int) -> int:
    rl = int(np.log2(resolution))
    if resolution != 2 ** rl or resolution < 4:
        raise ValueError(f'resolution must be a power of two >= 4, got {resolution}')
    return rl


def _v1_setup(model, name, dtype, fused_scale, resolution, fmap_base, fmap_decay, fmap_max):
    """What G_synthesis and D_basic check and derive alike: (resolution_log2, nf)."""
    check_dtype(dtype, name)
    if fused_scale not in (True, False, 'auto'):
        raise ValueError(f'{name}: fused_scale must be True, False or "auto", got {fused_scale!r}')
    model.resolution_log2 = resolution_log2(resolution)
    return model.resolution_log2, _nf_v1(fmap_base, fmap_decay, fmap_max)


def check_dtype(dtype: str, where: str):
    if dtype != 'float32':
        raise ValueError(f'{where}: only dtype="float32" is supported, got {dtype!r}')


def check_structure(structure: str, where: str) -> str:
    if structure not in ('auto', 'linear', 'recursive', 'fixed'):
        raise ValueError(f'{where}: unknown structure {structure!r}')
    return 'fixed' if structure == 'fixed' else 'recursive'


def random_normal(shape, rng=None, dtype=tf.float32):
    """N(0, 1) draw from ``rng`` (a ``tf.random.Generator``) or, if None, global ``tf.random``.

    Training passes its own generator so that a resumed run continues the same random stream.
    """
    if rng is None:
        return tf.random.normal(shape, dtype=dtype)
    return rng.normal(shape, dtype=dtype)


def random_uniform(shape, minval, maxval, rng=None, dtype=tf.float32):
    """Uniform draw in ``[minval, maxval)`` from ``rng`` or, if None, global ``tf.random``."""
    if rng is None:
        return tf.random.uniform(shape, minval, maxval, dtype=dtype)
    return rng.uniform(shape, minval, maxval, dtype=dtype)


def labels_or_zeros(labels, n, label_size):
    """Official ``None`` labels: a ``[N, label_size]`` zero tensor."""
    if labels is None:
        return tf.zeros([n, label_size], tf.float32)
    return tf.cast(labels, tf.float32)


# ------------------------------------------------------------------------------------------------
# Mapping network (spec 3.2).

class MappingV1(L.OfficialModel):
    """v1 mapping network z (+labels) -> w, broadcast to ``[N, dlatent_broadcast, dlatent_size]``.

    Variable names (``LabelConcat/weight``, ``Dense{i}/weight``, ``Dense{i}/bias``) match the
    official ones on purpose.
    """

    build_func_name = 'G_mapping'

    def __init__(self, name='G_mapping', data_format='NHWC',
                 latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                 mapping_nonlinearity='lrelu', use_wscale=True, normalize_latents=True,
                 dtype='float32', static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        check_dtype(dtype, name)
        self.latent_size, self.label_size = latent_size, label_size
        self.dlatent_size, self.dlatent_broadcast = dlatent_size, dlatent_broadcast
        self.normalize_latents = normalize_latents
        self.act = L.activation(mapping_nonlinearity)
        if label_size:
            self.label_concat = self.track_layer(LabelConcat(label_size, latent_size))
        fan_in = latent_size * 2 if label_size else latent_size
        self.dense_layers, self.bias_layers = [], []
        for i in range(mapping_layers):
            fmaps = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
            scope = f'Dense{i}'
            self.dense_layers.append(self.track_layer(L.Dense(
                scope, fan_in, fmaps, gain=_SQRT2, use_wscale=use_wscale, lrmul=mapping_lrmul)))
            self.bias_layers.append(self.track_layer(L.Bias(scope, fmaps, lrmul=mapping_lrmul)))
            fan_in = fmaps
        self.finish_mapping_init(latent_size, label_size, dlatent_broadcast, dlatent_size)

    def call(self, latents, labels=None, **_kwargs):
        # latents: [N, latent_size]
        x = tf.cast(latents, tf.float32)
        if self.label_size:
            labels = labels_or_zeros(labels, tf.shape(x)[0], self.label_size)
            x = tf.concat([x, self.label_concat(labels)], axis=1)
        if self.normalize_latents:
            x = L.pixel_norm(x, axis=1)
        for dense, bias in zip(self.dense_layers, self.bias_layers):
            x = self.act(bias(dense(x)))
        if self.dlatent_broadcast is not None:
            x = tf.tile(x[:, tf.newaxis], [1, self.dlatent_broadcast, 1])
        return x


class LabelConcat(L.OfficialLayer):
    """``LabelConcat/weight [label_size, latent_size]``: labels embedded by a plain matmul."""

    def __init__(self, label_size, latent_size):
        super().__init__('LabelConcat')
        self.weight = self.add_official_variable('weight', [label_size, latent_size],
                                                 L._normal(1.0))
        self.built = True

    def call(self, labels):
        return tf.matmul(labels, self.weight)


# ------------------------------------------------------------------------------------------------
# Synthesis network (spec 3.3).

class _Epilogue(L.OfficialLayer):
    """v1 layer epilogue: noise -> bias -> act -> pixel norm -> instance norm -> style mod.

    Own variables, in official order: ``Noise/weight``, ``bias``, ``StyleMod/weight``,
    ``StyleMod/bias``.
    """

    def __init__(self, scope, channels, layer_idx, dlatent_size, cfg):
        super().__init__(scope)
        self.channels, self.layer_idx, self.cfg = channels, layer_idx, cfg
        df = cfg.data_format
        if cfg.use_noise:
            self.noise_weight = self.add_official_variable('Noise/weight', [channels], 'zeros')
        self.bias = self.add_official_variable('bias', [channels], 'zeros')
        if cfg.use_styles:
            init_std, self.style_coef = L.weight_scales([dlatent_size, channels * 2], 1.0,
                                                        cfg.use_wscale, 1.0)
            self.style_weight = self.add_official_variable(
                'StyleMod/weight', [dlatent_size, channels * 2], L._normal(init_std))
            self.style_bias = self.add_official_variable('StyleMod/bias', [channels * 2],
                                                         'zeros')
        self.cshape = L.channel_shape(channels, df)
        self.built = True

    def call(self, x, dlatents=None, noise_var=None, randomize_noise=True, rng=None):
        # x: [N, H, W, C] (or NCHW); dlatents: [N, num_styles, D]
        cfg, df = self.cfg, self.cfg.data_format
        if cfg.use_noise:
            if randomize_noise:
                shape = tf.shape(x)
                noise_shape = ([shape[0], shape[1], shape[2], 1] if df == 'NHWC'
                               else [shape[0], 1, shape[2], shape[3]])
                noise = random_normal(noise_shape, rng, dtype=x.dtype)
            else:
                noise = L.from_nchw(noise_var, df)   # [1, 1, H, W] -> [1, H, W, 1]
            x = x + noise * tf.reshape(self.noise_weight, self.cshape)
        x = cfg.act(tf.nn.bias_add(x, self.bias, data_format=df))
        if cfg.use_pixel_norm:
            x = L.pixel_norm(x, axis=L.channel_axis(df))
        if cfg.use_styles:
            # [N, 2C]: first half scale (applied as s + 1), second half shift
            style = tf.matmul(dlatents[:, self.layer_idx], self.style_weight * self.style_coef)
            style = style + self.style_bias
            scale = tf.reshape(style[:, :self.channels], [-1] + self.cshape[1:]) + 1
            shift = tf.reshape(style[:, self.channels:], [-1] + self.cshape[1:])
        if cfg.use_instance_norm and cfg.use_styles:
            # Instance norm and style folded into one multiply-add over x (memory-bound on
            # CPU): (x - mean) * rsqrt(var + eps) * scale + shift, with x - mean = d - mean_d.
            d, mean_d, var = L.spatial_moments(x, df)
            scale = tf.math.rsqrt(var + 1e-8) * scale
            return d * scale + (shift - mean_d * scale)
        if cfg.use_instance_norm:
            x = L.instance_norm(x, df)
        if cfg.use_styles:
            x = x * scale + shift
        return x


class _Const(L.OfficialLayer):
    """``4x4/Const/const [1, C, 4, 4]`` (init ones), tiled over the batch."""

    def __init__(self, channels, data_format):
        super().__init__('4x4/Const')
        self.data_format = data_format
        self.const = self.add_official_variable('const', [1, channels, 4, 4], 'ones')
        self.built = True

    def call(self, n):
        return tf.tile(L.from_nchw(self.const, self.data_format), [n, 1, 1, 1])


class SynthesisV1(L.ProgressiveSynthesis, L.OfficialModel):
    """v1 synthesis network dlatents ``[N, L, D]`` -> images ``[N, C, R, R]`` (NCHW).

    Variable names match the official ones on purpose (``lod``, ``noiseN``, ``4x4/Const/const``,
    ``RxR/Conv0_up/weight``, ``ToRGB_lodK/bias``, ...).
    """

    build_func_name = 'G_synthesis'

    def __init__(self, name='G_synthesis', data_format='NHWC',
                 dlatent_size=512, num_channels=3, resolution=1024,
                 fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 use_styles=True, const_input_layer=True, use_noise=True, randomize_noise=True,
                 nonlinearity='lrelu', use_wscale=True, use_pixel_norm=False,
                 use_instance_norm=True, dtype='float32', fused_scale='auto',
                 blur_filter=(1, 2, 1), structure='auto', static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        rl, nf = _v1_setup(self, name, dtype, fused_scale, resolution, fmap_base, fmap_decay, fmap_max)
        self.num_layers = rl * 2 - 2
        self.num_styles = self.num_layers if use_styles else 1
        self.num_channels, self.resolution = num_channels, resolution
        self.randomize_noise = randomize_noise
        self.structure = check_structure(structure, name)
        self.blur = L.blur_kernel(blur_filter) if blur_filter else None
        self.cfg = cfg = types.SimpleNamespace(data_format=self.data_format, use_noise=use_noise,
                                 use_styles=use_styles, use_wscale=use_wscale,
                                 use_pixel_norm=use_pixel_norm,
                                 use_instance_norm=use_instance_norm,
                                 act=L.activation(nonlinearity))
        df = self.data_format

        # Variables, in official creation order.
        self.lod = self.add_official_variable('lod', [], 'zeros', trainable=False)
        self.noise_vars = []
        if use_noise:
            for idx in range(self.num_layers):
                r = idx // 2 + 2
                self.noise_vars.append(self.add_official_variable(
                    f'noise{idx}', [1, 1, 2 ** r, 2 ** r], L._normal(1.0), trainable=False))

        def epilogue(scope, channels, idx):
            return self.track_layer(_Epilogue(scope, channels, idx, dlatent_size, cfg))

        def conv(scope, kernel, cin, cout, gain, **kw):
            return self.track_layer(L.Conv2d(scope, kernel, cin, cout, gain=gain,
                                             use_wscale=use_wscale, data_format=df, **kw))

        def torgb(r):
            scope = f'ToRGB_lod{rl - r}'
            return (conv(scope, 1, nf(r - 1), num_channels, 1.0),
                    self.track_layer(L.Bias(scope, num_channels, data_format=df)))

        self.const_input_layer = const_input_layer
        if const_input_layer:
            self.const = self.track_layer(_Const(nf(1), df))
            self.input_epilogue = epilogue('4x4/Const', nf(1), 0)
        else:
            self.input_dense = self.track_layer(L.Dense(
                '4x4/Dense', dlatent_size, nf(1) * 16, gain=_SQRT2 / 4, use_wscale=use_wscale))
            self.input_epilogue = epilogue('4x4/Dense', nf(1), 0)
        self.conv4 = conv('4x4/Conv', 3, nf(1), nf(1), _SQRT2)
        self.conv4_epilogue = epilogue('4x4/Conv', nf(1), 1)
        self.torgb = {}
        if self.structure != 'fixed' or rl == 2:
            self.torgb[2] = torgb(2)
        self.blocks = {}
        for r in range(3, rl + 1):
            s = f'{2 ** r}x{2 ** r}'
            fused = (2 ** r >= 128) if fused_scale == 'auto' else fused_scale
            up = conv(f'{s}/Conv0_up', 3, nf(r - 2), nf(r - 1), _SQRT2, resample='up',
                      fused=fused)
            up_epi = epilogue(f'{s}/Conv0_up', nf(r - 1), r * 2 - 4)
            c1 = conv(f'{s}/Conv1', 3, nf(r - 1), nf(r - 1), _SQRT2)
            c1_epi = epilogue(f'{s}/Conv1', nf(r - 1), r * 2 - 3)
            self.blocks[r] = (up, up_epi, c1, c1_epi)
            if self.structure != 'fixed' or r == rl:
                self.torgb[r] = torgb(r)
        self.input_shapes = [[None, self.num_styles, dlatent_size]]
        self.output_shapes = [[None, num_channels, resolution, resolution]]
        self.finish_init()

    # Forward pieces. ------------------------------------------------------------------------

    def _noise(self, idx):
        return self.noise_vars[idx] if self.noise_vars else None

    def _run_block(self, r, x, dlatents, randomize_noise, rng=None):
        # x: [N, H, W, C] at 2**(r-1) -> [N, 2H, 2W, C'] at 2**r
        up, up_epi, c1, c1_epi = self.blocks[r]
        x = up(x)
        if self.blur is not None:
            x = L.blur2d(x, self.blur, self.data_format)
        x = up_epi(x, dlatents=dlatents, noise_var=self._noise(2 * r - 4),
                   randomize_noise=randomize_noise, rng=rng)
        return c1_epi(c1(x), dlatents=dlatents, noise_var=self._noise(2 * r - 3),
                      randomize_noise=randomize_noise, rng=rng)

    def _input_block(self, dlatents, randomize_noise, rng=None):
        # dlatents: [N, num_styles, D] -> x: [N, 4, 4, nf(1)]
        n = tf.shape(dlatents)[0]
        if self.const_input_layer:
            x = self.const(n)
        else:
            x = self.input_dense(dlatents[:, 0])
            x = L.from_nchw(tf.reshape(x, [-1, x.shape[1] // 16, 4, 4]), self.data_format)
        x = self.input_epilogue(x, dlatents=dlatents, noise_var=self._noise(0),
                                randomize_noise=randomize_noise, rng=rng)
        return self.conv4_epilogue(self.conv4(x), dlatents=dlatents, noise_var=self._noise(1),
                                   randomize_noise=randomize_noise, rng=rng)

    def _rgb(self, r, x, dlatents=None):
        conv, bias = self.torgb[r]
        return bias(conv(x))

    def call(self, dlatents, randomize_noise=UNSET, rng=None, **_kwargs):
        """dlatents ``[N, num_styles, D]`` -> images ``[N, C, R, R]``.

        ``rng``: optional ``tf.random.Generator`` for the noise when ``randomize_noise`` is on
        (None: global ``tf.random``).
        """
        if randomize_noise is UNSET or randomize_noise is None:
            randomize_noise = self.randomize_noise
        dlatents = tf.cast(dlatents, tf.float32)
        x = self._input_block(dlatents, randomize_noise, rng)
        img = self._synthesize(x, dlatents, randomize_noise, rng)
        return L.to_nchw(img, self.data_format)


# ------------------------------------------------------------------------------------------------
# G_style wrapper (spec 3.1).

G_STYLE_OWN_KWARGS = ('truncation_psi', 'truncation_cutoff', 'truncation_psi_val',
                      'truncation_cutoff_val', 'dlatent_avg_beta', 'style_mixing_prob',
                      'is_training', 'is_validation', 'is_template_graph', 'components')


class GeneratorWrapper(L.OfficialModel):
    """What G_style (v1) and G_main (v2) share: mapping -> truncation / style mixing -> synthesis.

    Own variables ``lod`` and ``dlatent_avg`` (official names on purpose); components
    ``synthesis`` (network name ``G_synthesis``) then ``mapping`` (``G_mapping``). Subclasses
    set ``build_func_name`` and the truncation rule ``cutoff_none_is_all_rows`` (v1: psi and
    cutoff are both needed; v2: cutoff None truncates every row), and pass their components.
    """

    cutoff_none_is_all_rows = False

    def __init__(self, name, data_format, static_kwargs, synthesis, mapping, mapping_cls,
                 kwargs, defaults, **mapping_extra):
        """``mapping``: the given component, or None to build ``mapping_cls`` from the official
        ``kwargs`` (broadcast to the synthesis' rows) plus ``mapping_extra`` (ours, e.g. impl)."""
        super().__init__(name, static_kwargs, data_format)
        self.defaults = dict(defaults)
        self.num_layers = synthesis.input_shapes[0][1]
        dlatent_size = synthesis.input_shapes[0][2]
        if mapping is None:
            mapping_kwargs = {'dlatent_broadcast': self.num_layers,
                              **{k: v for k, v in kwargs.items() if k != 'dlatent_broadcast'}}
            mapping = mapping_cls(name='G_mapping', data_format=data_format,
                                  static_kwargs=mapping_kwargs, **mapping_kwargs, **mapping_extra)
        self.synthesis, self.mapping = synthesis, mapping
        self.components = collections.OrderedDict([('synthesis', synthesis),
                                                   ('mapping', mapping)])
        self.lod = self.add_official_variable('lod', [], 'zeros', trainable=False)
        self.dlatent_avg = self.add_official_variable('dlatent_avg', [dlatent_size], 'zeros',
                                                      trainable=False)
        self.input_shapes = mapping.input_shapes
        self.output_shapes = synthesis.output_shapes
        self.finish_init()

    def resolve_kwargs(self, dynamic: dict) -> dict:
        """Official-default, then static, then dynamic values of the wrapper's own options."""
        opts = dict(self.defaults)
        opts.update({k: v for k, v in dynamic.items() if k in opts and v is not UNSET})
        if opts['is_training'] and opts['is_validation']:
            raise ValueError(f'{self.build_func_name}: is_training and is_validation are '
                             'mutually exclusive')
        if opts['is_validation']:
            opts['truncation_psi'] = opts['truncation_psi_val']
            opts['truncation_cutoff'] = opts['truncation_cutoff_val']
        training = opts['is_training']
        beta, prob = opts['dlatent_avg_beta'], opts['style_mixing_prob']
        psi, cutoff = opts['truncation_psi'], opts['truncation_cutoff']
        if not training or (beta is not None and _is_py(beta) and beta == 1):
            opts['dlatent_avg_beta'] = None
        if not training or (prob is not None and _is_py(prob) and prob <= 0):
            opts['style_mixing_prob'] = None
        if training or (psi is not None and _is_py(psi) and psi == 1):
            opts['truncation_psi'] = None
        if training or (not self.cutoff_none_is_all_rows and cutoff is not None
                        and _is_py(cutoff) and cutoff <= 0):
            opts['truncation_cutoff'] = None
        return opts

    def _generate(self, latents, labels, opts, randomize_noise, rng):
        """(images ``[N, C, R, R]``, dlatents ``[N, L, D]`` fed to synthesis) for resolved opts.

        ``rng``: optional ``tf.random.Generator`` for every random draw (style-mixing z2, mixing
        coin and cutoff, per-layer noise); None uses global ``tf.random``.
        """
        latents = tf.cast(latents, tf.float32)
        labels = labels_or_zeros(labels, tf.shape(latents)[0], self.mapping.label_size)
        dlatents = tf.cast(self.mapping(latents, labels), tf.float32)     # [N, L, D]

        if opts['dlatent_avg_beta'] is not None:
            batch_avg = tf.reduce_mean(dlatents[:, 0], axis=0)
            self.dlatent_avg.assign(L.lerp(batch_avg, self.dlatent_avg, opts['dlatent_avg_beta']))
        if opts['style_mixing_prob'] is not None:
            dlatents = self._style_mix(latents, labels, dlatents, opts['style_mixing_prob'], rng)
        psi, cutoff = opts['truncation_psi'], opts['truncation_cutoff']
        if psi is not None and (cutoff is not None or self.cutoff_none_is_all_rows):
            dlatents = self.truncate(dlatents, psi, cutoff)

        if hasattr(self.synthesis, 'lod'):          # v2's config-e/f synthesis has no lod
            self.synthesis.lod.assign(self.lod)
        syn_kwargs = {} if randomize_noise is UNSET else {'randomize_noise': randomize_noise}
        return self.synthesis(dlatents, rng=rng, **syn_kwargs), dlatents

    def truncate(self, dlatents, psi, cutoff=None):
        """``avg + (w - avg) * c``: ``c = psi`` on rows ``< cutoff`` (all rows if None), else 1."""
        layer_idx = np.arange(self.num_layers)[np.newaxis, :, np.newaxis]
        ones = np.ones(layer_idx.shape, dtype=np.float32)
        coefs = psi * ones if cutoff is None else tf.where(layer_idx < cutoff, psi * ones, ones)
        return L.lerp(self.dlatent_avg, dlatents, coefs)

    def _style_mix(self, latents, labels, dlatents, prob, rng=None):
        latents2 = random_normal(tf.shape(latents), rng)
        dlatents2 = tf.cast(self.mapping(latents2, labels), tf.float32)
        layer_idx = np.arange(self.num_layers)[np.newaxis, :, np.newaxis]
        cur_layers = self.num_layers - tf.cast(tf.convert_to_tensor(self.lod), tf.int32) * 2
        # The coin and the cutoff are drawn unconditionally (like the official graph), so the
        # random stream advances the same way whatever the coin says.
        coin = random_uniform([], 0.0, 1.0, rng)
        mixed_cutoff = random_uniform([], 1, cur_layers, rng, dtype=tf.int32)
        cutoff = tf.where(coin < prob, mixed_cutoff, cur_layers)
        return tf.where(tf.broadcast_to(layer_idx < cutoff, tf.shape(dlatents)),
                        dlatents, dlatents2)


class GStyle(GeneratorWrapper):
    """v1 generator (official ``G_style``): truncation needs both psi and cutoff."""

    build_func_name = 'G_style'

    def __init__(self, name='G', data_format='NHWC', truncation_psi=0.7, truncation_cutoff=8,
                 truncation_psi_val=None, truncation_cutoff_val=None, dlatent_avg_beta=0.995,
                 style_mixing_prob=0.9, is_training=False, is_validation=False,
                 is_template_graph=False, components=None, static_kwargs=None, **kwargs):
        del is_template_graph
        components = dict(components or {})
        synthesis = components.get('synthesis') or SynthesisV1(
            name='G_synthesis', data_format=data_format, static_kwargs=kwargs, **kwargs)
        super().__init__(name, data_format, static_kwargs if static_kwargs is not None else kwargs,
                         synthesis, components.get('mapping'), MappingV1, kwargs, dict(
                             truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                             truncation_psi_val=truncation_psi_val,
                             truncation_cutoff_val=truncation_cutoff_val,
                             dlatent_avg_beta=dlatent_avg_beta,
                             style_mixing_prob=style_mixing_prob, is_training=is_training,
                             is_validation=is_validation))

    def call(self, latents, labels=None, truncation_psi=UNSET, truncation_cutoff=UNSET,
             truncation_psi_val=UNSET, truncation_cutoff_val=UNSET, dlatent_avg_beta=UNSET,
             style_mixing_prob=UNSET, is_training=UNSET, is_validation=UNSET,
             randomize_noise=UNSET, rng=None, return_dlatents=False, **_kwargs):
        """latents ``[N, latent_size]``, labels ``[N, label_size]`` or None -> ``[N, C, R, R]``
        (and the dlatents fed to synthesis, ``[N, L, D]``, with ``return_dlatents=True``, as
        ``G_main``; the training loop under tf.distribute reads them)."""
        opts = self.resolve_kwargs(dict(
            truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
            truncation_psi_val=truncation_psi_val, truncation_cutoff_val=truncation_cutoff_val,
            dlatent_avg_beta=dlatent_avg_beta, style_mixing_prob=style_mixing_prob,
            is_training=is_training, is_validation=is_validation))
        images, dlatents = self._generate(latents, labels, opts, randomize_noise, rng)
        return (images, dlatents) if return_dlatents is True else images


def _is_py(value) -> bool:
    return not tf.is_tensor(value)


# ------------------------------------------------------------------------------------------------
# Discriminator (spec 3.4).

class DBasic(L.ProgressiveDiscriminator, L.OfficialModel):
    """v1 discriminator images ``[N, C, R, R]`` (NCHW), labels -> scores ``[N, 1]``.

    Variable names (``lod``, ``FromRGB_lodK/*``, ``RxR/Conv0``, ``RxR/Conv1_down``, ``4x4/Conv``,
    ``4x4/Dense0``, ``4x4/Dense1``) match the official ones on purpose.
    """

    build_func_name = 'D_basic'

    def __init__(self, name='D', data_format='NHWC', num_channels=1, resolution=32,
                 label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 nonlinearity='lrelu', use_wscale=True, mbstd_group_size=4,
                 mbstd_num_features=1, dtype='float32', fused_scale='auto',
                 blur_filter=(1, 2, 1), structure='auto', static_kwargs=None, **_kwargs):
        super().__init__(name, static_kwargs or {}, data_format)
        rl, nf = _v1_setup(self, name, dtype, fused_scale, resolution, fmap_base, fmap_decay, fmap_max)
        df = self.data_format
        self.num_channels, self.resolution, self.label_size = num_channels, resolution, label_size
        self.mbstd_group_size, self.mbstd_num_features = mbstd_group_size, mbstd_num_features
        self.structure = check_structure(structure, name)
        self.blur = L.blur_kernel(blur_filter) if blur_filter else None
        self.act = L.activation(nonlinearity)

        def conv_bias(scope, kernel, cin, cout, **kw):
            return (self.track_layer(L.Conv2d(scope, kernel, cin, cout, gain=_SQRT2,
                                              use_wscale=use_wscale, data_format=df, **kw)),
                    self.track_layer(L.Bias(scope, cout, data_format=df)))

        def fromrgb(r):
            return conv_bias(f'FromRGB_lod{rl - r}', 1, num_channels, nf(r - 1))

        self.lod = self.add_official_variable('lod', [], 'zeros', trainable=False)
        self.fromrgb = {rl: fromrgb(rl)}
        self.blocks = {}
        for r in range(rl, 2, -1):
            s = f'{2 ** r}x{2 ** r}'
            fused = (2 ** r >= 128) if fused_scale == 'auto' else fused_scale
            self.blocks[r] = (conv_bias(f'{s}/Conv0', 3, nf(r - 1), nf(r - 1)),
                              conv_bias(f'{s}/Conv1_down', 3, nf(r - 1), nf(r - 2),
                                        resample='down', fused=fused))
            if self.structure != 'fixed':
                self.fromrgb[r - 1] = fromrgb(r - 1)
        cin = nf(1) + (mbstd_num_features if mbstd_group_size > 1 else 0)
        self.conv4 = conv_bias('4x4/Conv', 3, cin, nf(1))
        self.dense0 = (self.track_layer(L.Dense('4x4/Dense0', nf(1) * 16, nf(0), gain=_SQRT2,
                                                use_wscale=use_wscale)),
                       self.track_layer(L.Bias('4x4/Dense0', nf(0))))
        self.dense1 = (self.track_layer(L.Dense('4x4/Dense1', nf(0), max(label_size, 1),
                                                gain=1.0, use_wscale=use_wscale)),
                       self.track_layer(L.Bias('4x4/Dense1', max(label_size, 1))))
        self.input_shapes = [[None, num_channels, resolution, resolution], [None, label_size]]
        self.output_shapes = [[None, 1]]
        self.finish_init()

    def _from_rgb(self, r, img):
        conv, bias = self.fromrgb[r]
        return self.act(bias(conv(img)))

    def _block(self, r, x):
        # x: [N, H, W, C] at 2**r -> [N, H/2, W/2, C'] at 2**(r-1)
        (c0, b0), (c1, b1) = self.blocks[r]
        x = self.act(b0(c0(x)))
        if self.blur is not None:
            x = L.blur2d(x, self.blur, self.data_format)
        return self.act(b1(c1(x)))

    def _head(self, x):
        # x: [N, 4, 4, nf(1)] -> [N, max(label_size, 1)]
        if self.mbstd_group_size > 1:
            x = L.minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features,
                                   self.data_format)
        conv, bias = self.conv4
        x = self.act(bias(conv(x)))
        x = L.to_nchw(x, self.data_format)      # official dense flattens NCHW (channel-major)
        x = self.act(self.dense0[1](self.dense0[0](x)))
        return self.dense1[1](self.dense1[0](x))

    def call(self, images, labels=None, **_kwargs):
        # images: [N, C, R, R] (NCHW) -> scores [N, 1]
        images = L.from_nchw(tf.cast(images, tf.float32), self.data_format)
        x = self._discriminate(images)
        scores = self._head(x)
        if self.label_size:
            labels = labels_or_zeros(labels, tf.shape(scores)[0], self.label_size)
            scores = tf.reduce_sum(scores * labels, axis=1, keepdims=True)
        return scores


# ------------------------------------------------------------------------------------------------
# Build functions with the official names.

def G_style(name='G', data_format='NHWC', **kwargs):            # noqa: N802 (official name)
    """Builds the v1 generator (official ``G_style``) as a Keras model; kwargs as official."""
    L.check_kwargs('G_style', kwargs, GStyle, MappingV1, SynthesisV1)
    static_kwargs = {k: v for k, v in kwargs.items() if k != 'components'}
    return GStyle(name=name, data_format=data_format, static_kwargs=static_kwargs, **kwargs)


def G_mapping(name='G_mapping', data_format='NHWC', **kwargs):  # noqa: N802
    """Builds the v1 mapping network (official ``G_mapping``) as a Keras model."""
    return MappingV1(name=name, data_format=data_format, static_kwargs=kwargs, **kwargs)


def G_synthesis(name='G_synthesis', data_format='NHWC', **kwargs):  # noqa: N802
    """Builds the v1 synthesis network (official ``G_synthesis``) as a Keras model."""
    return SynthesisV1(name=name, data_format=data_format, static_kwargs=kwargs, **kwargs)


def D_basic(name='D', data_format='NHWC', **kwargs):            # noqa: N802
    """Builds the v1 discriminator (official ``D_basic``) as a Keras model."""
    L.check_kwargs('D_basic', kwargs, DBasic)
    return DBasic(name=name, data_format=data_format, static_kwargs=kwargs, **kwargs)


# ------------------------------------------------------------------------------------------------
# Registry (read by tf2/checkpoint.py, tf2/network.py, training/finetune.py, the training loop). The
# models keep official names and layouts, so every name rule is the identity; the rules state
# exactly which names each network may have.

_RES = r'\d+x\d+'
_LAYER_VARS = r'(weight|bias|Noise/weight|StyleMod/weight|StyleMod/bias)'
_R = checkpoint.Rule
_LATENTS_LABELS = ('latents_in', 'labels_in')

NETWORKS = {
    'G_style': checkpoint.NetworkKind(G_style, 'stylegan', 'G', 3, _LATENTS_LABELS, [
        _R(r'lod'), _R(r'dlatent_avg')]),
    'G_mapping': checkpoint.NetworkKind(G_mapping, 'stylegan', 'G_mapping', 3, _LATENTS_LABELS, [
        _R(r'LabelConcat/weight'), _R(r'Dense\d+/(weight|bias)')]),
    'G_synthesis': checkpoint.NetworkKind(G_synthesis, 'stylegan', 'G_synthesis', 3,
                                          ('dlatents_in',), [
        _R(r'lod'), _R(r'noise\d+'), _R(r'4x4/Const/const'),
        _R(rf'4x4/(Const|Dense|Conv)/{_LAYER_VARS}'),
        _R(rf'{_RES}/(Conv0_up|Conv1)/{_LAYER_VARS}'), _R(r'ToRGB_lod\d+/(weight|bias)')]),
    'D_basic': checkpoint.NetworkKind(D_basic, 'stylegan', 'D', 3, ('images_in', 'labels_in'), [
        _R(r'lod'), _R(r'FromRGB_lod\d+/(weight|bias)'),
        _R(rf'{_RES}/(Conv0|Conv1_down)/(weight|bias)'),
        _R(r'4x4/(Conv|Dense0|Dense1)/(weight|bias)')]),
}


def resolved_kwargs(model) -> dict:
    """Every kwarg of a network with its effective value: official default, then static kwargs.

    For G the components' resolved kwargs are included (so ``resolved_kwargs(G)['resolution']``
    and ``['latent_size']`` work), then G's own, then its static kwargs.
    """
    out = {}
    for comp in model.components.values():
        out.update(resolved_kwargs(comp))
    skip = ('self', 'name', 'data_format', 'static_kwargs', 'components')
    for p in inspect.signature(type(model).__init__).parameters.values():
        if p.name not in skip and p.default is not inspect.Parameter.empty:
            out[p.name] = p.default
    out.update(model.static_kwargs)
    return out
