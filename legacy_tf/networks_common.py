"""What the StyleGAN and StyleGAN2 build functions share (v1 and v2 import this; tf2 does not).

Both wrap a mapping and a synthesis component the same way (spec 3.1 and 4.3): the components
are created once in the template graph and named as in the official pickles, the wrapper owns
``lod`` and ``dlatent_avg`` (in that order: the pickle order), tracks the W average in training,
applies style-mixing regularisation, then truncation. They differ only where the official code
does: v2 truncates all rows when the cutoff is None and passes ``is_training`` to the mapping,
v1 disables truncation for a cutoff of None or <= 0. Also the mapping network's frame (label
concatenation, dense layers, broadcast), the equalized-learning-rate weight, and the inputs and
'linear' structure of the progressive discriminators (D_basic, D_stylegan), which differ between
the versions only in the layer math passed in. Not a build function module.
"""

import numpy as np
import tensorflow as tf

from dnnlib import EasyDict
from legacy_tf import tflib

v1 = tf.compat.v1


def get_weight(shape, gain=np.sqrt(2), use_wscale=True, lrmul=1.0, weight_var='weight'):
    """Creates the weight variable and returns its runtime value (equalized learning rate,
    spec 2.1)."""
    fan_in = np.prod(shape[:-1])
    he_std = gain / np.sqrt(fan_in)
    if use_wscale:
        init_std, runtime_coef = 1.0 / lrmul, he_std * lrmul
    else:
        init_std, runtime_coef = he_std / lrmul, lrmul
    w = v1.get_variable(weight_var, shape=shape,
                        initializer=v1.initializers.random_normal(0, float(init_std)))
    return w * float(runtime_coef)


def mapping_network(latents_in, labels_in, latent_size, label_size, dlatent_size,
                    dlatent_broadcast, mapping_layers, mapping_fmaps, normalize, dense_act):
    """Mapping network z -> w (spec 3.2, 4.2): labels concatenated (LabelConcat), ``normalize(x)``
    if given, ``mapping_layers`` x ``dense_act(x, fmaps)`` in scopes Dense{i}, then broadcast.

    Returns dlatents_out [N, dlatent_broadcast, D] or [N, D].
    """
    latents_in.set_shape([None, latent_size])
    labels_in.set_shape([None, label_size])
    x = latents_in                                                     # [N, latent_size]

    if label_size:
        with v1.variable_scope('LabelConcat'):
            w = v1.get_variable('weight', shape=[label_size, latent_size],
                                initializer=v1.initializers.random_normal())
            x = tf.concat([x, tf.matmul(labels_in, w)], axis=1)
    if normalize is not None:
        x = normalize(x)
    for layer_idx in range(mapping_layers):
        with v1.variable_scope(f'Dense{layer_idx}'):
            x = dense_act(x, dlatent_size if layer_idx == mapping_layers - 1 else mapping_fmaps)
    if dlatent_broadcast is not None:
        with v1.variable_scope('Broadcast'):
            x = tf.tile(x[:, np.newaxis], [1, dlatent_broadcast, 1])
    return tf.identity(x, name='dlatents_out')


def generator_dlatents(name, latents_in, labels_in, kwargs, *, synthesis_func, mapping_func,
                       truncation_psi, truncation_cutoff, truncation_psi_val,
                       truncation_cutoff_val, dlatent_avg_beta, style_mixing_prob, is_training,
                       is_validation, components, mapping_kwargs=None,
                       cutoff_none_means_all=False, style_mix_scope=tf.name_scope):
    """The generator wrapper up to the synthesis call.

    Args:
        name: the build function's name, for error messages.
        latents_in, labels_in: the wrapper's inputs.
        kwargs: the wrapper's other keyword arguments, forwarded to both components.
        synthesis_func, mapping_func: component build functions.
        truncation_psi, ..., is_validation: the wrapper's arguments (see G_style / G_main).
        components: supplied by Network (None: a new EasyDict).
        mapping_kwargs: keyword arguments of the mapping's get_output_for (default ``kwargs``).
        cutoff_none_means_all: True (v2): truncation_cutoff None truncates every row; False
            (v1): a cutoff of None or <= 0 disables truncation.
        style_mix_scope: the scope of the style-mixing ops (v1 name_scope, v2 variable_scope).

    Returns:
        (components, lod_in, dlatents [N, L, D] float32).
    """
    if is_training and is_validation:
        raise ValueError(f'{name}: is_training and is_validation are mutually exclusive')
    components = EasyDict() if components is None else components
    mapping_kwargs = kwargs if mapping_kwargs is None else mapping_kwargs
    if is_validation:
        truncation_psi, truncation_cutoff = truncation_psi_val, truncation_cutoff_val
    py = lambda v: v is not None and not tflib.is_tf_expression(v)   # a plain Python value
    if is_training or (py(truncation_psi) and truncation_psi == 1):
        truncation_psi = None
    if is_training or (not cutoff_none_means_all and py(truncation_cutoff)
                       and truncation_cutoff <= 0):
        truncation_cutoff = None
    if not is_training or (py(dlatent_avg_beta) and dlatent_avg_beta == 1):
        dlatent_avg_beta = None
    if not is_training or (py(style_mixing_prob) and style_mixing_prob <= 0):
        style_mixing_prob = None
    if truncation_cutoff is None and not cutoff_none_means_all:
        truncation_psi = None

    # Components (created once, in the template graph), named as in the official pickles.
    if 'synthesis' not in components:
        components.synthesis = tflib.Network('G_synthesis', func_name=synthesis_func, **kwargs)
    num_layers = components.synthesis.input_shape[1]
    dlatent_size = components.synthesis.input_shape[2]
    if 'mapping' not in components:
        components.mapping = tflib.Network('G_mapping', func_name=mapping_func,
                                           dlatent_broadcast=num_layers, **kwargs)
    latents_in.set_shape(components.mapping.input_shapes[0])
    labels_in.set_shape(components.mapping.input_shapes[1])

    lod_in = v1.get_variable('lod', initializer=np.float32(0), trainable=False)
    dlatent_avg = v1.get_variable('dlatent_avg', shape=[dlatent_size],
                                  initializer=v1.initializers.zeros(), trainable=False)

    # [N, L, D]
    map_latents = lambda z: tf.cast(components.mapping.get_output_for(z, labels_in,
                                                                      **mapping_kwargs), tf.float32)
    dlatents = map_latents(latents_in)

    if dlatent_avg_beta is not None:
        # Tracked W average; a control dependency of every training forward pass.
        with v1.variable_scope('DlatentAvg'):
            batch_avg = tf.reduce_mean(dlatents[:, 0], axis=0)
            update_op = v1.assign(dlatent_avg, tflib.lerp(batch_avg, dlatent_avg, dlatent_avg_beta))
            with tf.control_dependencies([update_op]):
                dlatents = tf.identity(dlatents)

    if style_mixing_prob is not None:
        with style_mix_scope('StyleMix'):
            dlatents2 = map_latents(v1.random_normal(tf.shape(latents_in)))
            layer_idx = np.arange(num_layers)[np.newaxis, :, np.newaxis]
            cur_layers = num_layers - tf.cast(lod_in, tf.int32) * 2
            mixing_cutoff = tf.cond(
                v1.random_uniform([], 0.0, 1.0) < style_mixing_prob,
                lambda: v1.random_uniform([], 1, cur_layers, dtype=tf.int32),
                lambda: cur_layers)
            mask = tf.broadcast_to(layer_idx < mixing_cutoff, tf.shape(dlatents))
            dlatents = tf.where(mask, dlatents, dlatents2)

    if truncation_psi is not None:
        # psi on rows < cutoff (all rows when the cutoff is None), 1 elsewhere.
        with v1.variable_scope('Truncation'):
            layer_idx = np.arange(num_layers)[np.newaxis, :, np.newaxis]
            ones = np.ones(layer_idx.shape, dtype=np.float32)
            if truncation_cutoff is None:
                coefs = truncation_psi * ones
            else:
                coefs = tf.where(layer_idx < truncation_cutoff, truncation_psi * ones, ones)
            dlatents = tflib.lerp(dlatent_avg, dlatents, coefs)
    return components, lod_in, dlatents


def progressive_d_inputs(images_in, labels_in, num_channels, resolution, label_size):
    """The inputs of a progressive discriminator (D_basic, D_stylegan) shaped, and its ``lod``
    variable created; returns (images [N, R, R, C] NHWC, lod read once)."""
    images_in.set_shape([None, num_channels, resolution, resolution])
    labels_in.set_shape([None, label_size])
    images = tf.transpose(images_in, [0, 2, 3, 1])                     # [N, R, R, C]
    lod_in = v1.get_variable('lod', initializer=np.float32(0), trainable=False)
    return images, tf.identity(lod_in)


def discriminator_linear(images, block, fromrgb, downscale, lod_in, res_log2):
    """The 'linear' structure of a progressive discriminator (spec 3.4): every ``block(res, x)``
    runs from full resolution down to 8x8, its output blended (scope Grow_lod{l}) towards
    ``fromrgb`` of the image downscaled by ``downscale(img, l)``; returns the 4x4 head's input."""
    img = images
    x = fromrgb(img, res_log2)
    for res in range(res_log2, 2, -1):
        lod = res_log2 - res
        x = block(res, x)
        img = downscale(img, lod)
        y = fromrgb(img, res - 1)
        with v1.variable_scope(f'Grow_lod{lod}'):
            x = tflib.lerp_clip(x, y, lod_in - lod)
    return x
