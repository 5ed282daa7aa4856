"""StyleGAN2 build functions, official TF1 style: G_main, G_mapping, G_synthesis_stylegan2, ...

Written from the project spec (shared/spec/official-stylegan.md, sections 4 and 1.3). Each
function is a *build function* for :class:`legacy_tf.tflib.Network`: it takes the network's inputs
as graph tensors plus keyword arguments and creates its variables with
``tf.compat.v1.get_variable`` inside nested variable scopes. Scope and variable names match the
official code on purpose: they are the checkpoint format (``8x8/Conv0_up/mod_weight``,
``Output/bias``, ...), and the variable creation order is the order of the pickle.

Build functions: ``G_main`` (truncation, W average, style mixing around the two components),
``G_mapping`` (StyleGAN2 math: the sqrt(2) gain comes after the activation, spec 4.2),
``G_synthesis_stylegan2`` (architectures 'orig', 'skip', 'resnet'), ``D_stylegan2`` ('orig',
'skip', 'resnet'), and the progressive-growing networks of configs b-d,
``G_synthesis_stylegan_revised`` and ``D_stylegan``. The custom ops are the graph-mode reference
implementations in :mod:`legacy_tf.tflib.ops`.

Layout: inputs and outputs are NCHW as in the official API. Inside, activations are NHWC, because
NCHW convolutions have no CPU kernel in TensorFlow; weights are HWIO either way, and every place
where the layout matters numerically (flattening before a dense layer, the constant input, the
noise inputs, minibatch standard deviation, the fused modulated convolution's groups) converts
explicitly.
"""

import numpy as np
import tensorflow as tf

from legacy_tf import networks_common
from legacy_tf import networks_stylegan as _sg1
from legacy_tf import tflib
from legacy_tf.tflib import ops

v1 = tf.compat.v1

BUILD_FUNCTIONS = ('G_main', 'G_mapping', 'G_synthesis_stylegan2',
                   'G_synthesis_stylegan_revised', 'D_stylegan2', 'D_stylegan')
STATE_VERSION = 4                  # Network state version the StyleGAN2 repo wrote.
LAYER_DATA_FORMAT = 'NHWC'         # layout of 4-D activations inside layer scopes (print_layers).

_nhwc, _nchw = _sg1._nhwc, _sg1._nchw

# ------------------------------------------------------------------------------------------------
# Checks.


def _check_dtype(dtype):
    if dtype != 'float32':
        raise ValueError(f'legacy_tf.networks_stylegan2 supports dtype="float32" only, '
                         f'got {dtype!r}')


def _check_act(act):
    if act not in ops.ACTIVATION_FUNCS:
        raise ValueError(f'unknown nonlinearity {act!r}; choose one of '
                         f'{sorted(ops.ACTIVATION_FUNCS)}')
    return act


def _check_architecture(architecture):
    if architecture not in ('orig', 'skip', 'resnet'):
        raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
    return architecture


def _nf_func(fmap_base, fmap_decay, fmap_min, fmap_max):
    """Feature maps at stage s: clip(int(fmap_base / 2**(s*fmap_decay)), fmap_min, fmap_max)."""
    return lambda stage: int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))),
                                     fmap_min, fmap_max))


def _progressive_structure(structure, clean_graph):
    """Resolves 'auto' like the official configs b-d: linear for clean graphs, else recursive."""
    if structure not in ('auto', 'fixed', 'linear', 'recursive'):
        raise ValueError("structure must be 'auto', 'fixed', 'linear' or 'recursive', "
                         f'got {structure!r}')
    if structure == 'auto':
        return 'linear' if clean_graph else 'recursive'
    return structure


# ------------------------------------------------------------------------------------------------
# Layers (NHWC activations, gain 1 everywhere; spec 2.1 and 4.1).


_get_weight = networks_common.get_weight     # callers pass gain (1 in StyleGAN2)


def _dense_layer(x, fmaps, gain=1, use_wscale=True, lrmul=1, weight_var='weight'):
    # [N, ...] -> [N, fmaps]; 4-D NHWC input is flattened channel-major, as NCHW (spec 2.7).
    if x.shape.rank > 2:
        x = tf.reshape(_nchw(x), [-1, int(np.prod(x.shape[1:]))])
    w = _get_weight([int(x.shape[1]), fmaps], gain=gain, use_wscale=use_wscale, lrmul=lrmul,
                    weight_var=weight_var)
    return tf.matmul(x, w)


def _conv2d_layer(x, fmaps, kernel, up=False, down=False, resample_kernel=None, gain=1,
                  use_wscale=True, lrmul=1, weight_var='weight'):
    # [N, H, W, I] -> [N, H', W', fmaps]; H' = 2H when up, H/2 when down.
    if up and down:
        raise ValueError('a convolution cannot both upsample and downsample')
    w = _get_weight([kernel, kernel, int(x.shape[-1]), fmaps], gain=gain, use_wscale=use_wscale,
                    lrmul=lrmul, weight_var=weight_var)
    if up:
        return ops.upsample_conv_2d(x, w, k=resample_kernel, data_format='NHWC')
    if down:
        return ops.conv_downsample_2d(x, w, k=resample_kernel, data_format='NHWC')
    return tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding='SAME')


def _apply_bias_act(x, act='linear', alpha=None, gain=None, lrmul=1, bias_var='bias'):
    """Creates the bias (init 0) on the last axis and applies fused_bias_act."""
    b = v1.get_variable(bias_var, shape=[int(x.shape[-1])], initializer=v1.initializers.zeros())
    return ops.fused_bias_act(x, b=b * lrmul, axis=x.shape.rank - 1, act=act, alpha=alpha,
                              gain=gain)


def _modulated_conv2d_layer(x, y, fmaps, kernel, up=False, down=False, demodulate=True,
                            resample_kernel=None, gain=1, use_wscale=True, lrmul=1,
                            fused_modconv=True, weight_var='weight', mod_weight_var='mod_weight',
                            mod_bias_var='mod_bias'):
    """Modulated convolution (spec 4.4): x [N, H, W, I], style input y [N, D] -> [N, H', W', fmaps].

    fused_modconv=True folds the batch into the channel axis and runs one grouped convolution
    with per-sample weights (the official default); False scales the activations instead. Both
    compute the same values.
    """
    if up and down:
        raise ValueError('a convolution cannot both upsample and downsample')
    if fused_modconv and not tf.config.list_logical_devices('GPU'):
        # TensorFlow's CPU kernels lack the grouped convolution's gradient (without oneDNN) and
        # the grouped transposed convolution (with or without): the equal scaled-activation form
        # runs instead; the two agree to float32 rounding.
        fused_modconv = False
    in_c = int(x.shape[-1])
    w = _get_weight([kernel, kernel, in_c, fmaps], gain=gain, use_wscale=use_wscale, lrmul=lrmul,
                    weight_var=weight_var)
    ww = w[np.newaxis]                                                 # [1, k, k, I, O]

    # Styles: s = y @ mod_weight/sqrt(D) + mod_bias + 1.
    s = _dense_layer(y, fmaps=in_c, weight_var=mod_weight_var)       # [N, I]
    s = _apply_bias_act(s, bias_var=mod_bias_var) + 1
    ww = ww * s[:, np.newaxis, np.newaxis, :, np.newaxis]              # [N, k, k, I, O]
    if demodulate:
        d = tf.math.rsqrt(tf.reduce_sum(tf.square(ww), axis=[1, 2, 3]) + 1e-8)   # [N, O]
        ww = ww * d[:, np.newaxis, np.newaxis, np.newaxis, :]

    if fused_modconv:
        # [N, H, W, I] -> [1, H, W, N*I] and [N, k, k, I, O] -> [k, k, I, N*O]: sample n is group n.
        h, wd = int(x.shape[1]), int(x.shape[2])
        x = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, wd, -1])
        w = tf.reshape(tf.transpose(ww, [1, 2, 3, 0, 4]), [kernel, kernel, in_c, -1])
    else:
        x = x * s[:, np.newaxis, np.newaxis, :]

    if up:
        x = ops.upsample_conv_2d(x, w, k=resample_kernel, data_format='NHWC')
    elif down:
        x = ops.conv_downsample_2d(x, w, k=resample_kernel, data_format='NHWC')
    else:
        x = tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding='SAME')

    if fused_modconv:
        # [1, H', W', N*O] -> [N, H', W', O]
        h, wd = int(x.shape[1]), int(x.shape[2])
        x = tf.transpose(tf.reshape(x, [h, wd, -1, fmaps]), [2, 0, 1, 3])
    elif demodulate:
        x = x * d[:, np.newaxis, np.newaxis, :]
    return x


def _minibatch_stddev_layer(x, group_size=4, num_new_features=1):
    """Minibatch standard deviation (spec 2.6), the same op as StyleGAN's; NHWC in and out."""
    return _sg1._minibatch_stddev_layer(x, group_size, num_new_features)


def _noise_inputs(num_layers):
    """noise0 .. noise{L-2}: [1, 1, 2**res, 2**res] with res = (idx + 5) // 2, non-trainable."""
    noise = []
    for layer_idx in range(num_layers - 1):
        res = (layer_idx + 5) // 2
        noise.append(v1.get_variable(
            f'noise{layer_idx}', shape=[1, 1, 2 ** res, 2 ** res],
            initializer=v1.initializers.random_normal(), trainable=False))
    return noise


def _add_noise(x, noise_var, randomize_noise):
    # x [N, H, W, C] += noise [*, H, W, 1] * noise_strength (scalar, init 0).
    h, w = int(x.shape[1]), int(x.shape[2])
    if randomize_noise:
        noise = v1.random_normal(tf.stack([tf.shape(x)[0], h, w, 1]), dtype=x.dtype)
    else:
        noise = tf.reshape(noise_var, [1, h, w, 1])
    noise_strength = v1.get_variable('noise_strength', shape=[],
                                     initializer=v1.initializers.zeros())
    return x + noise * noise_strength


def _synthesis_layer_func(dlatents_in, num_layers, randomize_noise, act, **conv_kwargs):
    """Creates the noise inputs (_noise_inputs) and returns ``layer(x, layer_idx, fmaps, kernel,
    up=False)``: modulated conv with style row ``layer_idx`` -> noise -> bias + act, the layer
    of both synthesis networks. conv_kwargs: resample_kernel, fused_modconv."""
    noise_inputs = _noise_inputs(num_layers)

    def layer(x, layer_idx, fmaps, kernel, up=False):
        x = _modulated_conv2d_layer(x, dlatents_in[:, layer_idx], fmaps=fmaps, kernel=kernel,
                                    up=up, **conv_kwargs)
        x = _add_noise(x, noise_inputs[layer_idx], randomize_noise)
        return _apply_bias_act(x, act=act)
    return layer


def _resnet_skip(x, t, fmaps, resample_kernel, **up_or_down):
    """'resnet' blocks: (x + the block input t through a resampling 1x1 conv 'Skip') / sqrt(2)."""
    with v1.variable_scope('Skip'):
        t = _conv2d_layer(t, fmaps=fmaps, kernel=1, resample_kernel=resample_kernel, **up_or_down)
        return (x + t) * (1 / np.sqrt(2))


def _const_input(dlatents_in, channels):
    """4x4/Const/const [1, C, 4, 4] (init N(0, 1)) tiled over the batch; NHWC out."""
    with v1.variable_scope('Const'):
        const = v1.get_variable('const', shape=[1, channels, 4, 4],
                                initializer=v1.initializers.random_normal())
        return tf.tile(_nhwc(const), [tf.shape(dlatents_in)[0], 1, 1, 1])


# ------------------------------------------------------------------------------------------------
# Generator wrapper.


def _component_func(func, what):
    """mapping_func / synthesis_func: a function, or a build-function name of this module."""
    if callable(func):
        return func
    if isinstance(func, str) and func in BUILD_FUNCTIONS:
        return globals()[func]
    raise ValueError(f'G_main: unknown {what} {func!r}; use a function or one of '
                     f'{list(BUILD_FUNCTIONS)}')


def G_main(latents_in, labels_in, truncation_psi=0.5, truncation_cutoff=None,
           truncation_psi_val=None, truncation_cutoff_val=None, dlatent_avg_beta=0.995,
           style_mixing_prob=0.9, is_training=False, is_validation=False, return_dlatents=False,
           is_template_graph=False, components=None, mapping_func='G_mapping',
           synthesis_func='G_synthesis_stylegan2', **kwargs):
    """StyleGAN2 generator: mapping, truncation, synthesis (spec 4.3).

    Args:
        latents_in: [N, latent_size] z.
        labels_in: [N, label_size] labels.
        truncation_psi: psi (1 or None disables; default 0.5).
        truncation_cutoff: rows < cutoff are truncated; None (default) = all rows.
        truncation_psi_val, truncation_cutoff_val: used instead when is_validation.
        dlatent_avg_beta: decay of the tracked W average (training only).
        style_mixing_prob: probability of style-mixing regularisation (training only).
        is_training, is_validation: graph mode flags (mutually exclusive).
        return_dlatents: also return the (truncated, mixed) dlatents.
        is_template_graph, components: supplied by Network.
        mapping_func, synthesis_func: component build functions (names of this module or
            functions); G_synthesis_stylegan_revised gives configs b-d.
        **kwargs: forwarded to both components (static when created, dynamic when run).

    Returns:
        images_out [N, C, R, R] (and dlatents_out [N, L, D] with return_dlatents).
    """
    components, lod_in, dlatents = networks_common.generator_dlatents(
        'G_main', latents_in, labels_in, kwargs,
        synthesis_func=_component_func(synthesis_func, 'synthesis_func'),
        mapping_func=_component_func(mapping_func, 'mapping_func'),
        truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
        truncation_psi_val=truncation_psi_val, truncation_cutoff_val=truncation_cutoff_val,
        dlatent_avg_beta=dlatent_avg_beta, style_mixing_prob=style_mixing_prob,
        is_training=is_training, is_validation=is_validation, components=components,
        mapping_kwargs=dict(kwargs, is_training=is_training), cutoff_none_means_all=True,
        style_mix_scope=v1.variable_scope)

    # G's lod drives a progressive synthesis network (configs b-d); stylegan2 synthesis has none.
    deps = []
    if 'lod' in components.synthesis.vars:
        deps.append(v1.assign(components.synthesis.find_var('lod'), lod_in))
    with tf.control_dependencies(deps):
        images_out = components.synthesis.get_output_for(
            dlatents, is_training=is_training, force_clean_graph=is_template_graph, **kwargs)
    images_out = tf.identity(images_out, name='images_out')
    if return_dlatents:
        return images_out, tf.identity(dlatents, name='dlatents_out')
    return images_out


# ------------------------------------------------------------------------------------------------
# Mapping network.


def G_mapping(latents_in, labels_in, latent_size=512, label_size=0, dlatent_size=512,
              dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
              mapping_nonlinearity='lrelu', normalize_latents=True, dtype='float32', **_kwargs):
    """StyleGAN2 mapping z -> w (spec 4.2): ``x = act_gain * act(x @ W/sqrt(fan_in)*lrmul +
    b*lrmul)``; dlatents_out [N, dlatent_broadcast, D] or [N, D]."""
    _check_dtype(dtype)
    act = _check_act(mapping_nonlinearity)

    def normalize(x):
        with v1.variable_scope('Normalize'):
            return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + 1e-8)
    dense_act = lambda x, fmaps: _apply_bias_act(_dense_layer(x, fmaps=fmaps, lrmul=mapping_lrmul),
                                                 act=act, lrmul=mapping_lrmul)
    return networks_common.mapping_network(
        latents_in, labels_in, latent_size, label_size, dlatent_size, dlatent_broadcast,
        mapping_layers, mapping_fmaps, normalize if normalize_latents else None, dense_act)


# ------------------------------------------------------------------------------------------------
# Synthesis networks.


def G_synthesis_stylegan2(dlatents_in, dlatent_size=512, num_channels=3, resolution=1024,
                          fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                          randomize_noise=True, architecture='skip', nonlinearity='lrelu',
                          dtype='float32', resample_kernel=[1, 3, 3, 1], fused_modconv=True,
                          **_kwargs):
    """StyleGAN2 synthesis w -> image (spec 4.4), architecture 'orig', 'skip' or 'resnet'.

    dlatents_in [N, L, D] with L = 2*log2(R) - 2 -> images_out [N, C, R, R]. Style rows: 4x4/Conv
    0, RxR/Conv0_up 2r-5, RxR/Conv1 2r-4, ToRGB at 2^r 2r-3. randomize_noise=False uses the
    stored noiseN variables.
    """
    _check_dtype(dtype)
    res_log2 = _sg1._resolution_log2(resolution)
    nf = _nf_func(fmap_base, fmap_decay, fmap_min, fmap_max)
    architecture = _check_architecture(architecture)
    act = _check_act(nonlinearity)
    num_layers = res_log2 * 2 - 2
    dlatents_in.set_shape([None, num_layers, dlatent_size])
    layer = _synthesis_layer_func(dlatents_in, num_layers, randomize_noise, act,
                                  resample_kernel=resample_kernel, fused_modconv=fused_modconv)

    def block(x, res):
        # [N, H, W, nf(res-2)] -> [N, 2H, 2W, nf(res-1)]
        t = x
        with v1.variable_scope('Conv0_up'):
            x = layer(x, res * 2 - 5, fmaps=nf(res - 1), kernel=3, up=True)
        with v1.variable_scope('Conv1'):
            x = layer(x, res * 2 - 4, fmaps=nf(res - 1), kernel=3)
        if architecture == 'resnet':
            x = _resnet_skip(x, t, nf(res - 1), resample_kernel, up=True)
        return x

    def torgb(x, y, res):
        # Not demodulated, linear; added to the upsampled image in 'skip'.
        with v1.variable_scope('ToRGB'):
            t = _modulated_conv2d_layer(x, dlatents_in[:, res * 2 - 3], fmaps=num_channels,
                                        kernel=1, demodulate=False, fused_modconv=fused_modconv)
            t = _apply_bias_act(t)
            return t if y is None else y + t

    y = None
    with v1.variable_scope('4x4'):
        x = _const_input(dlatents_in, nf(1))                           # [N, 4, 4, nf(1)]
        with v1.variable_scope('Conv'):
            x = layer(x, 0, fmaps=nf(1), kernel=3)
        if architecture == 'skip':
            y = torgb(x, y, 2)
    for res in range(3, res_log2 + 1):
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            x = block(x, res)
            if architecture == 'skip':
                with v1.variable_scope('Upsample'):
                    y = ops.upsample_2d(y, k=resample_kernel, data_format='NHWC')
            if architecture == 'skip' or res == res_log2:
                y = torgb(x, y, res)
    if y is None:      # resolution 4 with 'orig'/'resnet': the 4x4 block is the last one
        with v1.variable_scope('4x4'):
            y = torgb(x, None, 2)
    return tf.identity(_nchw(y), name='images_out')


def G_synthesis_stylegan_revised(dlatents_in, dlatent_size=512, num_channels=3, resolution=1024,
                                 fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                                 randomize_noise=True, nonlinearity='lrelu', dtype='float32',
                                 resample_kernel=[1, 3, 3, 1], fused_modconv=True,
                                 structure='auto', is_template_graph=False,
                                 force_clean_graph=False, **_kwargs):
    """Synthesis of configs b-d: StyleGAN2 layers with progressive growing (spec 4.4, end).

    Same noise inputs, modulated layers and style rows as G_synthesis_stylegan2 ('orig' blocks);
    images come from ``ToRGB_lod{l}`` and are blended across levels by the ``lod`` variable as in
    StyleGAN (spec 3.3), with nearest upsampling (``upsample_2d`` with k = [1, 1]).
    structure: 'fixed' (no growing: the last ToRGB only), 'linear', 'recursive' or 'auto'
    (linear for the template graph, else recursive).
    """
    _check_dtype(dtype)
    res_log2 = _sg1._resolution_log2(resolution)
    nf = _nf_func(fmap_base, fmap_decay, fmap_min, fmap_max)
    act = _check_act(nonlinearity)
    if is_template_graph:
        force_clean_graph = True
    if force_clean_graph:
        randomize_noise = False
    structure = _progressive_structure(structure, force_clean_graph)
    num_layers = res_log2 * 2 - 2
    dlatents_in.set_shape([None, num_layers, dlatent_size])

    lod_in = v1.get_variable('lod', initializer=np.float32(0), trainable=False)
    lod_in = tf.identity(lod_in)     # read once, after any control dependency of the caller
    layer = _synthesis_layer_func(dlatents_in, num_layers, randomize_noise, act,
                                  resample_kernel=resample_kernel, fused_modconv=fused_modconv)

    def block_4x4():
        with v1.variable_scope('4x4'):
            x = _const_input(dlatents_in, nf(1))
            with v1.variable_scope('Conv'):
                return layer(x, 0, fmaps=nf(1), kernel=3)

    def block(res, x):
        # [N, H, W, nf(res-2)] -> [N, 2H, 2W, nf(res-1)]
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            with v1.variable_scope('Conv0_up'):
                x = layer(x, res * 2 - 5, fmaps=nf(res - 1), kernel=3, up=True)
            with v1.variable_scope('Conv1'):
                return layer(x, res * 2 - 4, fmaps=nf(res - 1), kernel=3)

    def torgb(res, x):
        with v1.variable_scope(f'ToRGB_lod{res_log2 - res}'):
            return _apply_bias_act(_modulated_conv2d_layer(
                x, dlatents_in[:, res * 2 - 3], fmaps=num_channels, kernel=1, demodulate=False,
                fused_modconv=fused_modconv))

    x = block_4x4()
    if structure == 'fixed':
        for res in range(3, res_log2 + 1):
            x = block(res, x)
        images = torgb(res_log2, x)
    elif structure == 'linear':
        images = torgb(2, x)
        for res in range(3, res_log2 + 1):
            lod = res_log2 - res
            x = block(res, x)
            img = torgb(res, x)
            with v1.variable_scope(f'Upsample_lod{lod}'):
                images = ops.upsample_2d(images, data_format='NHWC')
            with v1.variable_scope(f'Grow_lod{lod}'):
                images = tflib.lerp_clip(img, images, lod_in - lod)
    else:
        images = _sg1._synthesis_recursive(x, block, torgb, lod_in, res_log2)
    return tf.identity(_nchw(images), name='images_out')


# ------------------------------------------------------------------------------------------------
# Discriminators.


def _d_head(x, labels_in, label_size, nf, act, mbstd_group_size, mbstd_num_features):
    """4x4 head and Output (spec 4.5): [N, 4, 4, nf(1)] -> scores [N, 1]."""
    with v1.variable_scope('4x4'):
        if mbstd_group_size > 1:
            x = _minibatch_stddev_layer(x, mbstd_group_size, mbstd_num_features)
        with v1.variable_scope('Conv'):
            x = _apply_bias_act(_conv2d_layer(x, fmaps=nf(1), kernel=3), act=act)
        with v1.variable_scope('Dense0'):
            x = _apply_bias_act(_dense_layer(x, fmaps=nf(0)), act=act)
    with v1.variable_scope('Output'):
        x = _apply_bias_act(_dense_layer(x, fmaps=max(label_size, 1)))
        if label_size:
            x = tf.reduce_sum(x * labels_in, axis=1, keepdims=True)
    return x


def D_stylegan2(images_in, labels_in, num_channels=3, resolution=1024, label_size=0,
                fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                architecture='resnet', nonlinearity='lrelu', mbstd_group_size=4,
                mbstd_num_features=1, dtype='float32', resample_kernel=[1, 3, 3, 1], **_kwargs):
    """StyleGAN2 discriminator (spec 4.5); images_in [N, C, R, R] -> scores_out [N, 1]."""
    _check_dtype(dtype)
    res_log2 = _sg1._resolution_log2(resolution)
    nf = _nf_func(fmap_base, fmap_decay, fmap_min, fmap_max)
    architecture = _check_architecture(architecture)
    act = _check_act(nonlinearity)
    images_in.set_shape([None, num_channels, resolution, resolution])
    labels_in.set_shape([None, label_size])

    def fromrgb(x, y, res):
        # conv1x1 + bias + lrelu; added to x in 'skip'.
        with v1.variable_scope('FromRGB'):
            t = _apply_bias_act(_conv2d_layer(y, fmaps=nf(res - 1), kernel=1), act=act)
            return t if x is None else x + t

    def block(x, res):
        # [N, H, W, nf(res-1)] -> [N, H/2, W/2, nf(res-2)]
        t = x
        with v1.variable_scope('Conv0'):
            x = _apply_bias_act(_conv2d_layer(x, fmaps=nf(res - 1), kernel=3), act=act)
        with v1.variable_scope('Conv1_down'):
            x = _apply_bias_act(_conv2d_layer(x, fmaps=nf(res - 2), kernel=3, down=True,
                                              resample_kernel=resample_kernel), act=act)
        if architecture == 'resnet':
            x = _resnet_skip(x, t, nf(res - 2), resample_kernel, down=True)
        return x

    x = None
    y = _nhwc(images_in)                                               # [N, R, R, C]
    for res in range(res_log2, 2, -1):
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            if architecture == 'skip' or res == res_log2:
                x = fromrgb(x, y, res)
            x = block(x, res)
            if architecture == 'skip':
                with v1.variable_scope('Downsample'):
                    y = ops.downsample_2d(y, k=resample_kernel, data_format='NHWC')
    if architecture == 'skip' or res_log2 == 2:
        with v1.variable_scope('4x4'):
            x = fromrgb(x, y, 2)
    scores_out = _d_head(x, labels_in, label_size, nf, act, mbstd_group_size, mbstd_num_features)
    return tf.identity(scores_out, name='scores_out')


def D_stylegan(images_in, labels_in, num_channels=3, resolution=1024, label_size=0,
               fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
               nonlinearity='lrelu', mbstd_group_size=4, mbstd_num_features=1, dtype='float32',
               resample_kernel=[1, 3, 3, 1], structure='auto', is_template_graph=False,
               **_kwargs):
    """Discriminator of configs b-d: StyleGAN2 layers with progressive growing.

    The 'orig' D_stylegan2 blocks (Conv0, Conv1_down with ``conv_downsample_2d``), fed by
    ``FromRGB_lod{l}`` layers and blended across levels by the ``lod`` variable as in StyleGAN's
    D_basic (spec 3.4), images box-downsampled (``downsample_2d`` with k = [1, 1]); the 4x4 head
    and Output of D_stylegan2. structure as in G_synthesis_stylegan_revised.
    images_in [N, C, R, R] -> scores_out [N, 1].
    """
    _check_dtype(dtype)
    res_log2 = _sg1._resolution_log2(resolution)
    nf = _nf_func(fmap_base, fmap_decay, fmap_min, fmap_max)
    act = _check_act(nonlinearity)
    structure = _progressive_structure(structure, is_template_graph)
    images, lod_in = networks_common.progressive_d_inputs(images_in, labels_in, num_channels,
                                                          resolution, label_size)

    def fromrgb(x, res):
        with v1.variable_scope(f'FromRGB_lod{res_log2 - res}'):
            return _apply_bias_act(_conv2d_layer(x, fmaps=nf(res - 1), kernel=1), act=act)

    def block(res, x):
        # [N, H, W, nf(res-1)] -> [N, H/2, W/2, nf(res-2)]
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            with v1.variable_scope('Conv0'):
                x = _apply_bias_act(_conv2d_layer(x, fmaps=nf(res - 1), kernel=3), act=act)
            with v1.variable_scope('Conv1_down'):
                return _apply_bias_act(_conv2d_layer(x, fmaps=nf(res - 2), kernel=3, down=True,
                                                     resample_kernel=resample_kernel), act=act)

    if structure == 'fixed':
        x = fromrgb(images, res_log2)
        for res in range(res_log2, 2, -1):
            x = block(res, x)
    elif structure == 'linear':
        def downsample(img, lod):
            with v1.variable_scope(f'Downsample_lod{lod}'):
                return ops.downsample_2d(img, data_format='NHWC')
        x = networks_common.discriminator_linear(images, block, fromrgb, downsample, lod_in,
                                                 res_log2)
    else:
        x = _sg1._discriminator_recursive(images, lambda res, t: block(res, t), fromrgb, lod_in,
                                          res_log2)
    scores_out = _d_head(x, labels_in, label_size, nf, act, mbstd_group_size, mbstd_num_features)
    return tf.identity(scores_out, name='scores_out')
