"""StyleGAN (v1) build functions, official TF1 style: G_style, G_mapping, G_synthesis, D_basic.

Written from the project spec (shared/spec/official-stylegan.md, section 3). Each function is a
*build function* for :class:`legacy_tf.tflib.Network`: it takes the network's inputs as graph
tensors plus keyword arguments and creates its variables with ``tf.compat.v1.get_variable`` inside
nested variable scopes. The scope and variable names match the official code on purpose: they
are the checkpoint format (``4x4/Const/StyleMod/weight``, ``ToRGB_lod0/bias``, ...), and the
variable creation order is the order of the pickle.

Layout: inputs and outputs are NCHW as in the official API. Inside, activations are NHWC, because
NCHW convolutions have no CPU kernel in TensorFlow; weights are HWIO either way, and every place
where the layout matters numerically (flattening before a dense layer, the constant input, the
noise inputs, minibatch standard deviation) converts explicitly.
"""

import numpy as np
import tensorflow as tf

from legacy_tf import networks_common
from legacy_tf import tflib

v1 = tf.compat.v1

BUILD_FUNCTIONS = ('G_style', 'G_mapping', 'G_synthesis', 'D_basic')   # what Network may build
STATE_VERSION = 3                  # Network state version the StyleGAN repo wrote.
LAYER_DATA_FORMAT = 'NHWC'         # layout of 4-D activations inside layer scopes (print_layers).

# ------------------------------------------------------------------------------------------------
# Primitive operations (NHWC).


def _nhwc(x):
    return tf.transpose(x, [0, 2, 3, 1])


def _nchw(x):
    return tf.transpose(x, [0, 3, 1, 2])


def _check_dtype(dtype):
    if dtype != 'float32':
        raise ValueError(f'legacy_tf.networks_stylegan supports dtype="float32" only, '
                         f'got {dtype!r}')


def _blur2d(x, f=(1, 2, 1), normalize=True, stride=1):
    """Depthwise FIR filter with the separable kernel outer(f, f), zero 'SAME' padding."""
    if f is None or len(f) == 0:
        return x
    f = np.asarray(f, dtype=np.float32)
    k = f[:, np.newaxis] * f[np.newaxis, :]
    if normalize:
        k /= np.sum(k)
    channels = int(x.shape[-1])
    k = np.tile(k[:, :, np.newaxis, np.newaxis], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(x, tf.constant(k), strides=[1, stride, stride, 1], padding='SAME')


def _upscale2d(x, factor=2):
    """Nearest-neighbour upscaling by an integer factor; [N, H, W, C] -> [N, fH, fW, C]."""
    if factor == 1:
        return x
    h, w, c = (int(d) for d in x.shape[1:])
    x = tf.reshape(x, [-1, h, 1, w, 1, c])
    x = tf.tile(x, [1, 1, factor, 1, factor, 1])
    return tf.reshape(x, [-1, h * factor, w * factor, c])


def _downscale2d(x, factor=2):
    """Box-filter downscaling by an integer factor (2x2 average for factor 2)."""
    if factor == 1:
        return x
    if factor == 2:
        # The official code filters with outer([0.5, 0.5])^2 at stride 2 for this case.
        return _blur2d(x, f=[0.5, 0.5], normalize=False, stride=2)
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding='VALID')


_get_weight = networks_common.get_weight


def _dense(x, fmaps, **kwargs):
    # [N, I] -> [N, fmaps]
    w = _get_weight([int(x.shape[1]), fmaps], **kwargs)
    return tf.matmul(x, w)


def _conv2d(x, fmaps, kernel, **kwargs):
    # [N, H, W, I] -> [N, H, W, fmaps]
    w = _get_weight([kernel, kernel, int(x.shape[-1]), fmaps], **kwargs)
    return tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding='SAME')


def _shifted_sum(w):
    """[k, k, a, b] -> [k+1, k+1, a, b]: the sum of the zero-padded kernel at its 4 offsets."""
    w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]], mode='CONSTANT')
    return tf.add_n([w[1:, 1:], w[:-1, 1:], w[1:, :-1], w[:-1, :-1]])


def _upscale2d_conv2d(x, fmaps, kernel, fused_scale='auto', **kwargs):
    """2x upscale then conv; fused into one transposed conv at output res >= 128 (spec 3.3)."""
    h, w = int(x.shape[1]), int(x.shape[2])
    if fused_scale == 'auto':
        fused_scale = min(h, w) * 2 >= 128
    if not fused_scale:
        return _conv2d(_upscale2d(x), fmaps, kernel, **kwargs)
    wgt = _get_weight([kernel, kernel, int(x.shape[-1]), fmaps], **kwargs)
    wgt = _shifted_sum(tf.transpose(wgt, [0, 1, 3, 2]))          # [k+1, k+1, O, I]
    out_shape = tf.stack([tf.shape(x)[0], h * 2, w * 2, fmaps])
    return tf.nn.conv2d_transpose(x, wgt, out_shape, strides=[1, 2, 2, 1], padding='SAME')


def _conv2d_downscale2d(x, fmaps, kernel, fused_scale='auto', **kwargs):
    """Conv then 2x2 average; fused into one stride-2 conv at input res >= 128 (spec 3.4)."""
    h, w = int(x.shape[1]), int(x.shape[2])
    if fused_scale == 'auto':
        fused_scale = min(h, w) >= 128
    if not fused_scale:
        return _downscale2d(_conv2d(x, fmaps, kernel, **kwargs))
    wgt = _get_weight([kernel, kernel, int(x.shape[-1]), fmaps], **kwargs)
    wgt = _shifted_sum(wgt) * 0.25                                # [k+1, k+1, I, O]
    return tf.nn.conv2d(x, wgt, strides=[1, 2, 2, 1], padding='SAME')


def _apply_bias(x, lrmul=1.0):
    """Adds 'bias' (init 0) along the last (channel) axis."""
    b = v1.get_variable('bias', shape=[int(x.shape[-1])], initializer=v1.initializers.zeros())
    return x + b * lrmul


def _leaky_relu(x, alpha=0.2):
    with tf.name_scope('LeakyReLU'):
        return tf.maximum(x * alpha, x)


def _activation(nonlinearity):
    acts = {'relu': (tf.nn.relu, np.sqrt(2)), 'lrelu': (_leaky_relu, np.sqrt(2))}
    if nonlinearity not in acts:
        raise ValueError(f'unknown nonlinearity {nonlinearity!r}; choose one of {sorted(acts)}')
    return acts[nonlinearity]


def _pixel_norm(x, epsilon=1e-8):
    with tf.name_scope('PixelNorm'):
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + epsilon)


def _spatial_mean(x):
    # [N, H, W, C] -> [N, 1, 1, C], W first and then H: a single NHWC reduction over H and W sums
    # each channel sequentially in float32 (a million values at 1024 px) and loses precision.
    return tf.reduce_mean(tf.reduce_mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


def _instance_norm(x, epsilon=1e-8):
    # [N, H, W, C], statistics over H and W per sample and channel. The per-channel shift by
    # pixel 0 cancels exactly in x - mean(x); it keeps float32 sums accurate when the
    # activations' mean is far larger than their spread (shifted-data variance algorithm).
    with v1.variable_scope('InstanceNorm'):
        x = x - tf.stop_gradient(x[:, :1, :1, :])
        x = x - _spatial_mean(x)
        return x * tf.math.rsqrt(_spatial_mean(tf.square(x)) + epsilon)


def _style_mod(x, dlatent, **kwargs):
    # x [N, H, W, C], dlatent [N, D]: x * (scale + 1) + shift.
    with v1.variable_scope('StyleMod'):
        channels = int(x.shape[-1])
        style = _apply_bias(_dense(dlatent, fmaps=channels * 2, gain=1, **kwargs))
        style = tf.reshape(style, [-1, 2, 1, 1, channels])
        return x * (style[:, 0] + 1) + style[:, 1]


def _apply_noise(x, noise_var=None, randomize_noise=True):
    # x [N, H, W, C]; noise_var [1, 1, H, W] as stored.
    with v1.variable_scope('Noise'):
        h, w = int(x.shape[1]), int(x.shape[2])
        if noise_var is None or randomize_noise:
            noise = v1.random_normal(tf.stack([tf.shape(x)[0], h, w, 1]), dtype=x.dtype)
        else:
            noise = tf.reshape(noise_var, [1, h, w, 1])
        weight = v1.get_variable('weight', shape=[int(x.shape[-1])],
                                 initializer=v1.initializers.zeros())
        return x + noise * weight


def _minibatch_stddev_layer(x, group_size=4, num_new_features=1):
    """Appends the minibatch standard deviation as extra channel(s) (spec 2.6); NHWC in and out."""
    with v1.variable_scope('MinibatchStddev'):
        y = _nchw(x)                                                   # [N, C, H, W]
        c, h, w = (int(d) for d in y.shape[1:])
        group_size = tf.minimum(group_size, tf.shape(y)[0])
        s = tf.reshape(y, [group_size, -1, num_new_features, c // num_new_features, h, w])
        s = tf.cast(s, tf.float32)
        s -= tf.reduce_mean(s, axis=0, keepdims=True)
        s = tf.reduce_mean(tf.square(s), axis=0)
        s = tf.sqrt(s + 1e-8)
        s = tf.reduce_mean(s, axis=[2, 3, 4])                          # [M, n]
        s = tf.reshape(tf.cast(s, x.dtype), [-1, 1, 1, num_new_features])
        s = tf.tile(s, [group_size, h, w, 1])                          # [N, H, W, n]
        return tf.concat([x, s], axis=3)


def _check_structure(structure, is_template_graph):
    if structure not in ('auto', 'linear', 'recursive'):
        raise ValueError(f"structure must be 'auto', 'linear' or 'recursive', got {structure!r}")
    # The template graph always uses 'linear': it creates every ToRGB/FromRGB variable in the
    # official order. At run time 'auto' means 'recursive' (only the needed branch runs).
    if is_template_graph:
        return 'linear'
    return 'recursive' if structure == 'auto' else structure


def _resolution_log2(resolution):
    res_log2 = int(np.log2(resolution))
    if resolution != 2 ** res_log2 or resolution < 4:
        raise ValueError(f'resolution must be a power of two >= 4, got {resolution}')
    return res_log2


# ------------------------------------------------------------------------------------------------
# Generator wrapper.


def G_style(latents_in, labels_in, truncation_psi=0.7, truncation_cutoff=8,
            truncation_psi_val=None, truncation_cutoff_val=None, dlatent_avg_beta=0.995,
            style_mixing_prob=0.9, is_training=False, is_validation=False,
            is_template_graph=False, components=None, **kwargs):
    """Style-based generator: mapping, truncation, synthesis (spec 3.1).

    Args:
        latents_in: [N, latent_size] z.
        labels_in: [N, label_size] labels.
        truncation_psi: psi (1 disables); rows < truncation_cutoff are truncated.
        truncation_cutoff: None or <= 0 disables truncation.
        truncation_psi_val, truncation_cutoff_val: used instead when is_validation.
        dlatent_avg_beta: decay of the tracked W average (training only).
        style_mixing_prob: probability of style-mixing regularisation (training only).
        is_training, is_validation: graph mode flags (mutually exclusive).
        is_template_graph, components: supplied by Network.
        **kwargs: forwarded to G_mapping and G_synthesis.

    Returns:
        images_out [N, C, R, R].
    """
    components, lod_in, dlatents = networks_common.generator_dlatents(
        'G_style', latents_in, labels_in, kwargs, synthesis_func=G_synthesis,
        mapping_func=G_mapping, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, truncation_psi_val=truncation_psi_val,
        truncation_cutoff_val=truncation_cutoff_val, dlatent_avg_beta=dlatent_avg_beta,
        style_mixing_prob=style_mixing_prob, is_training=is_training,
        is_validation=is_validation, components=components)

    # G's lod drives the synthesis network: copy it before synthesis runs.
    synthesis_kwargs = dict(kwargs)
    if is_template_graph:
        # The template's output only provides shapes; 'linear' builds faster than tf.cond.
        synthesis_kwargs['structure'] = 'linear'
    with tf.control_dependencies([v1.assign(components.synthesis.find_var('lod'), lod_in)]):
        images_out = components.synthesis.get_output_for(dlatents, **synthesis_kwargs)
    return tf.identity(images_out, name='images_out')


# ------------------------------------------------------------------------------------------------
# Mapping network.


def G_mapping(latents_in, labels_in, latent_size=512, label_size=0, dlatent_size=512,
              dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
              mapping_nonlinearity='lrelu', use_wscale=True, normalize_latents=True,
              dtype='float32', **_kwargs):
    """Mapping network z -> w (spec 3.2); dlatents_out [N, dlatent_broadcast, D] or [N, D]."""
    _check_dtype(dtype)
    act, gain = _activation(mapping_nonlinearity)
    dense_act = lambda x, fmaps: act(_apply_bias(_dense(
        x, fmaps=fmaps, gain=gain, use_wscale=use_wscale, lrmul=mapping_lrmul), lrmul=mapping_lrmul))
    return networks_common.mapping_network(
        latents_in, labels_in, latent_size, label_size, dlatent_size, dlatent_broadcast,
        mapping_layers, mapping_fmaps, _pixel_norm if normalize_latents else None, dense_act)


# ------------------------------------------------------------------------------------------------
# Synthesis network.


def G_synthesis(dlatents_in, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192,
                fmap_decay=1.0, fmap_max=512, use_styles=True, const_input_layer=True,
                use_noise=True, randomize_noise=True, nonlinearity='lrelu', use_wscale=True,
                use_pixel_norm=False, use_instance_norm=True, dtype='float32',
                fused_scale='auto', blur_filter=[1, 2, 1], structure='auto',
                is_template_graph=False, **_kwargs):
    """Synthesis network w -> image (spec 3.3); dlatents_in [N, L, D] -> images_out [N, C, R, R]."""
    _check_dtype(dtype)
    res_log2 = _resolution_log2(resolution)
    nf = lambda stage: min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)
    structure = _check_structure(structure, is_template_graph)
    act, gain = _activation(nonlinearity)
    num_layers = res_log2 * 2 - 2
    num_styles = num_layers if use_styles else 1
    blur = lambda x: _blur2d(x, blur_filter) if blur_filter else x
    dlatents_in.set_shape([None, num_styles, dlatent_size])

    lod_in = v1.get_variable('lod', initializer=np.float32(0), trainable=False)
    lod_in = tf.identity(lod_in)     # read once, after any control dependency of the caller
    noise_inputs = []
    if use_noise:
        for layer_idx in range(num_layers):
            res = layer_idx // 2 + 2
            noise_inputs.append(v1.get_variable(
                f'noise{layer_idx}', shape=[1, 1, 2 ** res, 2 ** res],
                initializer=v1.initializers.random_normal(), trainable=False))

    def epilogue(x, layer_idx):
        # noise -> bias -> activation -> pixel norm -> instance norm -> style (spec 10.4)
        if use_noise:
            x = _apply_noise(x, noise_inputs[layer_idx], randomize_noise=randomize_noise)
        x = act(_apply_bias(x))
        if use_pixel_norm:
            x = _pixel_norm(x)
        if use_instance_norm:
            x = _instance_norm(x)
        if use_styles:
            x = _style_mod(x, dlatents_in[:, layer_idx], use_wscale=use_wscale)
        return x

    def block_4x4():
        with v1.variable_scope('4x4'):
            if const_input_layer:
                with v1.variable_scope('Const'):
                    const = v1.get_variable('const', shape=[1, nf(1), 4, 4],
                                            initializer=v1.initializers.ones())
                    x = tf.tile(_nhwc(const), [tf.shape(dlatents_in)[0], 1, 1, 1])
                    x = epilogue(x, 0)                                 # [N, 4, 4, nf1]
            else:
                with v1.variable_scope('Dense'):
                    x = _dense(dlatents_in[:, 0], fmaps=nf(1) * 16, gain=gain / 4,
                               use_wscale=use_wscale)
                    x = epilogue(_nhwc(tf.reshape(x, [-1, nf(1), 4, 4])), 0)
            with v1.variable_scope('Conv'):
                x = epilogue(_conv2d(x, fmaps=nf(1), kernel=3, gain=gain, use_wscale=use_wscale), 1)
            return x

    def block(res, x):
        # [N, H, W, C] -> [N, 2H, 2W, nf(res-1)]
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            with v1.variable_scope('Conv0_up'):
                x = _upscale2d_conv2d(x, fmaps=nf(res - 1), kernel=3, gain=gain,
                                      use_wscale=use_wscale, fused_scale=fused_scale)
                x = epilogue(blur(x), res * 2 - 4)
            with v1.variable_scope('Conv1'):
                x = _conv2d(x, fmaps=nf(res - 1), kernel=3, gain=gain, use_wscale=use_wscale)
                x = epilogue(x, res * 2 - 3)
            return x

    def torgb(res, x):
        with v1.variable_scope(f'ToRGB_lod{res_log2 - res}'):
            return _apply_bias(_conv2d(x, fmaps=num_channels, kernel=1, gain=1,
                                       use_wscale=use_wscale))

    if structure == 'linear':
        x = block_4x4()
        images = torgb(2, x)
        for res in range(3, res_log2 + 1):
            lod = res_log2 - res
            x = block(res, x)
            img = torgb(res, x)
            images = _upscale2d(images)
            with v1.variable_scope(f'Grow_lod{lod}'):
                images = tflib.lerp_clip(img, images, lod_in - lod)
    else:
        images = _synthesis_recursive(block_4x4(), block, torgb, lod_in, res_log2)
    return tf.identity(_nchw(images), name='images_out')


def _synthesis_recursive(x4, block, torgb, lod_in, res_log2):
    """The 'recursive' structure: the same values as 'linear', computing only what lod needs.

    At block ``res`` (lod level ``l = res_log2 - res``): if lod < l the output comes from a finer
    block; otherwise it is ToRGB here, blended with the coarser ToRGB by lod - l, and
    nearest-upscaled by 2**l to full size.
    """
    def grow(x_prev, res):
        lod = res_log2 - res
        y = block(res, x_prev)
        here = lambda: _upscale2d(torgb(res, y), 2 ** lod)
        blend = lambda: _upscale2d(tflib.lerp_clip(
            torgb(res, y), _upscale2d(torgb(res - 1, x_prev)), lod_in - lod), 2 ** lod)
        img = lambda: tf.cond(lod_in > lod, blend, here)
        if lod > 0:
            return tf.cond(lod_in < lod, lambda: grow(y, res + 1), img)
        return img()

    if res_log2 == 2:
        return torgb(2, x4)
    return grow(x4, 3)


# ------------------------------------------------------------------------------------------------
# Discriminator.


def D_basic(images_in, labels_in, num_channels=1, resolution=32, label_size=0, fmap_base=8192,
            fmap_decay=1.0, fmap_max=512, nonlinearity='lrelu', use_wscale=True,
            mbstd_group_size=4, mbstd_num_features=1, dtype='float32', fused_scale='auto',
            blur_filter=[1, 2, 1], structure='auto', is_template_graph=False, **_kwargs):
    """StyleGAN discriminator (spec 3.4); images_in [N, C, R, R] -> scores_out [N, 1]."""
    _check_dtype(dtype)
    res_log2 = _resolution_log2(resolution)
    nf = lambda stage: min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)
    structure = _check_structure(structure, is_template_graph)
    act, gain = _activation(nonlinearity)
    blur = lambda x: _blur2d(x, blur_filter) if blur_filter else x
    images, lod_in = networks_common.progressive_d_inputs(images_in, labels_in, num_channels,
                                                          resolution, label_size)

    def fromrgb(x, res):
        with v1.variable_scope(f'FromRGB_lod{res_log2 - res}'):
            return act(_apply_bias(_conv2d(x, fmaps=nf(res - 1), kernel=1, gain=gain,
                                           use_wscale=use_wscale)))

    def block(res, x):
        # res >= 3: [N, H, W, nf(res-1)] -> [N, H/2, W/2, nf(res-2)]
        # res 2:    [N, 4, 4, nf(1)] -> [N, max(label_size, 1)]
        with v1.variable_scope(f'{2 ** res}x{2 ** res}'):
            if res >= 3:
                with v1.variable_scope('Conv0'):
                    x = act(_apply_bias(_conv2d(x, fmaps=nf(res - 1), kernel=3, gain=gain,
                                                use_wscale=use_wscale)))
                with v1.variable_scope('Conv1_down'):
                    x = act(_apply_bias(_conv2d_downscale2d(
                        blur(x), fmaps=nf(res - 2), kernel=3, gain=gain, use_wscale=use_wscale,
                        fused_scale=fused_scale)))
                return x
            if mbstd_group_size > 1:
                x = _minibatch_stddev_layer(x, mbstd_group_size, mbstd_num_features)
            with v1.variable_scope('Conv'):
                x = act(_apply_bias(_conv2d(x, fmaps=nf(res - 1), kernel=3, gain=gain,
                                            use_wscale=use_wscale)))
            with v1.variable_scope('Dense0'):
                x = tf.reshape(_nchw(x), [-1, int(np.prod(x.shape[1:]))])   # channel-major flatten
                x = act(_apply_bias(_dense(x, fmaps=nf(res - 2), gain=gain, use_wscale=use_wscale)))
            with v1.variable_scope('Dense1'):
                x = _apply_bias(_dense(x, fmaps=max(label_size, 1), gain=1, use_wscale=use_wscale))
            return x

    if structure == 'linear':
        scores_out = block(2, networks_common.discriminator_linear(
            images, block, fromrgb, lambda img, _lod: _downscale2d(img), lod_in, res_log2))
    else:
        scores_out = block(2, _discriminator_recursive(images, block, fromrgb, lod_in, res_log2))

    if label_size:
        with v1.variable_scope('LabelSwitch'):
            scores_out = tf.reduce_sum(scores_out * labels_in, axis=1, keepdims=True)
    return tf.identity(scores_out, name='scores_out')


def _discriminator_recursive(images, block, fromrgb, lod_in, res_log2):
    """The 'recursive' structure of D: the input of the 4x4 head, same values as 'linear'.

    The input of the block at ``res`` (lod level ``l = res_log2 - res``) is FromRGB of the image
    downscaled by 2**l when lod >= l; otherwise it is the output of the finer block, blended
    towards that FromRGB by lod - (l - 1) when lod > l - 1.
    """
    def block_input(res):
        lod = res_log2 - res
        if res == res_log2:
            return fromrgb(images, res)
        direct = lambda: fromrgb(_downscale2d(images, 2 ** lod), res)

        def finer():
            x = block(res + 1, block_input(res + 1))
            return tf.cond(lod_in > lod - 1,
                           lambda: tflib.lerp_clip(x, direct(), lod_in - (lod - 1)), lambda: x)
        return tf.cond(lod_in >= lod, direct, finer)

    return block_input(2)
