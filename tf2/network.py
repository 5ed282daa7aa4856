"""The official ``dnnlib.tflib.Network`` inference API on top of our Keras models.

:class:`Network` wraps a Keras model of ``tf2/networks_stylegan.py`` (or any
:class:`tf2.layers.OfficialModel`) and offers what NVIDIA's scripts use: ``run`` (numpy in and
out, NCHW, minibatching, ``None`` inputs as zeros, output transforms, the legacy
``out_mul``/``out_add``/``out_shrink``/``out_dtype`` kwargs), ``components``, ``get_var`` /
``set_var``, ``vars``, ``static_kwargs``, ``input_shape`` / ``output_shape``, ``name``.

``run`` compiles the forward pass with ``tf.function`` once per combination of dynamic kwargs
and transforms (like the official code builds one graph per combination); the input signature
has a free batch dimension, so new batch sizes do not retrace.
"""

import collections
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from dnnlib.util import EasyDict
from tf2 import checkpoint



# ------------------------------------------------------------------------------------------------
# Output transforms.

def convert_images_to_uint8(images, drange=(-1, 1), nchw_to_nhwc=False, shrink=1,
                            uint8_cast=True):
    """Official ``tflib.convert_images_to_uint8``: [drange] float NCHW -> uint8 (truncating cast).

    ``x * 255/(d1-d0) + (0.5 - d0*255/(d1-d0))`` then ``tf.saturate_cast`` (clamp to [0, 255] and
    truncate; the +0.5 does the rounding). Works on tensors (returns a tensor) and on numpy
    arrays (returns a numpy array).

    Args:
        images: ``[N, C, H, W]`` float images.
        drange: dynamic range of the input.
        nchw_to_nhwc: return ``[N, H, W, C]``.
        shrink: average-pool by this integer factor first.
        uint8_cast: cast to uint8 (False keeps the scaled float values, as StyleGAN2's option).
    """
    is_numpy = not tf.is_tensor(images)
    x = tf.cast(images, tf.float32)
    if shrink > 1:
        x = tf.transpose(x, [0, 2, 3, 1])
        x = tf.nn.avg_pool2d(x, ksize=shrink, strides=shrink, padding='VALID')
        x = x if nchw_to_nhwc else tf.transpose(x, [0, 3, 1, 2])
    elif nchw_to_nhwc:
        x = tf.transpose(x, [0, 2, 3, 1])
    scale = 255.0 / (drange[1] - drange[0])
    x = x * scale + (0.5 - drange[0] * scale)
    if uint8_cast:
        x = tf.saturate_cast(x, tf.uint8)
    return x.numpy() if is_numpy and tf.executing_eagerly() else x


def _legacy_output_transform(*outputs, out_mul=1.0, out_add=0.0, out_shrink=1, out_dtype=None):
    """The official translation of the legacy ``out_*`` kwargs of ``Network.run``."""
    outputs = list(outputs)
    if out_mul != 1.0:
        outputs = [x * out_mul for x in outputs]
    if out_add != 0.0:
        outputs = [x + out_add for x in outputs]
    if out_shrink > 1:
        k = int(out_shrink)
        outputs = [tf.transpose(tf.nn.avg_pool2d(tf.transpose(x, [0, 2, 3, 1]), k, k, 'VALID'),
                                [0, 3, 1, 2]) for x in outputs]
    if out_dtype is not None:
        dtype = tf.as_dtype(out_dtype)
        if dtype.is_integer:
            outputs = [tf.round(x) for x in outputs]
        outputs = [tf.saturate_cast(x, dtype) for x in outputs]
    return outputs


_LEGACY_KWARGS = ('out_mul', 'out_add', 'out_shrink', 'out_dtype')


def _handle_legacy_output_transforms(output_transform, dynamic_kwargs):
    if not any(k in dynamic_kwargs for k in _LEGACY_KWARGS):
        return output_transform, dynamic_kwargs
    if output_transform is not None:
        raise ValueError('run(): the legacy kwargs out_mul/out_add/out_shrink/out_dtype cannot '
                         'be combined with output_transform')
    dynamic_kwargs = dict(dynamic_kwargs)
    output_transform = dict(func=_legacy_output_transform)
    for k in _LEGACY_KWARGS:
        if k in dynamic_kwargs:
            output_transform[k] = dynamic_kwargs.pop(k)
    return output_transform, dynamic_kwargs


def _freeze(value: Any):
    """Hashable cache key of kwargs / transform dicts (functions by identity)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if callable(value):
        return ('callable', id(value))
    if isinstance(value, np.ndarray):
        return ('array', value.shape, value.tobytes())
    return value


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


# ------------------------------------------------------------------------------------------------
# The wrapper.

class Network:
    """Official ``Network`` API around a Keras model (which keeps owning the variables).

    Args:
        model: a Keras model built by ``tf2/networks_stylegan.py`` (or loaded by
            ``tf2.checkpoint``).
        name: network name (default: the model's name).
    """

    def __init__(self, model, name: Optional[str] = None):
        self.model = model
        self.name = name or model.name
        self.components = EasyDict(
            (key, Network(comp)) for key, comp in model.components.items())
        self._fn_cache: Dict[Any, Any] = {}

    # Description. ---------------------------------------------------------------------------

    @property
    def static_kwargs(self) -> dict:
        """The kwargs the network was built with (as stored in the pickle)."""
        return EasyDict(self.model.static_kwargs)

    @property
    def build_func_name(self) -> str:
        return self.model.build_func_name

    @property
    def input_shapes(self):
        return [list(s) for s in self.model.input_shapes]

    @property
    def output_shapes(self):
        return [list(s) for s in self.model.output_shapes]

    @property
    def input_shape(self):
        """Shape of the first input, e.g. ``[None, 512]`` for G (official)."""
        return self.input_shapes[0]

    @property
    def output_shape(self):
        """Shape of the first output, e.g. ``[None, 3, 1024, 1024]`` for G (official)."""
        return self.output_shapes[0]

    @property
    def num_inputs(self) -> int:
        return len(self.input_shapes)

    @property
    def num_outputs(self) -> int:
        return len(self.output_shapes)

    @property
    def input_names(self):
        return list(checkpoint.kind_of(self.model).input_names)[:self.num_inputs]

    # Variables. -----------------------------------------------------------------------------

    @property
    def vars(self) -> 'collections.OrderedDict[str, Any]':
        """Official name -> variable, own then ``<component name>/<var>`` (``np.asarray(v)``)."""
        return collections.OrderedDict(self.model.official_variables())

    @property
    def own_vars(self):
        return collections.OrderedDict(self.model.own_official_variables())

    @property
    def trainables(self):
        return collections.OrderedDict((k, v) for k, v in self.vars.items() if v.trainable)

    def find_var(self, name: str):
        """The variable of an official name (own or ``<component name>/<var>``)."""
        variables = self.vars
        if name not in variables:
            raise KeyError(f'network {self.name!r} has no variable {name!r}')
        return variables[name]

    def get_var(self, name: str) -> np.ndarray:
        """Value of a variable as numpy (a numpy scalar for 0-d variables such as ``lod``)."""
        return self.find_var(name).numpy()

    def set_var(self, name: str, value) -> None:
        """Assigns a value of the variable's shape (e.g. ``set_var('lod', 1.0)``)."""
        var = self.find_var(name)
        value = np.asarray(value, dtype=np.float32)
        if value.shape != tuple(var.shape):
            raise ValueError(f'set_var({name!r}): value has shape {list(value.shape)}, the '
                             f'variable has shape {list(var.shape)}')
        var.assign(value)

    def get_vars(self, names=None) -> 'collections.OrderedDict[str, np.ndarray]':
        """Values of several variables (all of ``vars`` by default), name -> numpy."""
        names = list(self.vars) if names is None else list(names)
        return collections.OrderedDict((n, self.get_var(n)) for n in names)

    def set_vars(self, name_to_value: Dict[str, Any]) -> None:
        """Assigns several variables, name -> value."""
        for name, value in name_to_value.items():
            self.set_var(name, value)

    # Running. -------------------------------------------------------------------------------

    def get_output_for(self, *in_expr, return_as_list=False, **dynamic_kwargs):
        """Runs the model on tensors (eager or inside the caller's ``tf.function``)."""
        out = self.model(*in_expr, **dynamic_kwargs)
        outs = _as_list(out)
        return outs if return_as_list else (outs[0] if len(outs) == 1 else tuple(outs))

    def _compiled(self, input_transform, output_transform, dynamic_kwargs):
        key = (_freeze(input_transform), _freeze(output_transform), _freeze(dynamic_kwargs))
        fn = self._fn_cache.get(key)
        if fn is None:
            fn = self._make_fn(input_transform, output_transform, dict(dynamic_kwargs))
            self._fn_cache[key] = fn
        return fn

    def _make_fn(self, input_transform, output_transform, dynamic_kwargs):
        model = self.model
        specs = [tf.TensorSpec([None] + list(s[1:]), tf.float32) for s in self.input_shapes]

        def forward(*inputs):
            if input_transform is not None:
                kw = {k: v for k, v in input_transform.items() if k != 'func'}
                inputs = _as_list(input_transform['func'](*inputs, **kw))
            outs = _as_list(model(*inputs, **dynamic_kwargs))
            if output_transform is not None:
                kw = {k: v for k, v in output_transform.items() if k != 'func'}
                outs = _as_list(output_transform['func'](*outs, **kw))
            return outs

        return tf.function(forward, input_signature=specs, autograph=False)

    def _check_inputs(self, in_arrays):
        if len(in_arrays) != self.num_inputs:
            raise ValueError(f'{self.name}.run() takes {self.num_inputs} inputs '
                             f'({", ".join(self.input_names)}), got {len(in_arrays)}')
        if all(a is None for a in in_arrays):
            raise ValueError(f'{self.name}.run(): at least one input must not be None')
        arrays = []
        for a, shape, name in zip(in_arrays, self.input_shapes, self.input_names):
            if a is not None:
                a = np.asarray(a)
                if a.ndim != len(shape) or any(s is not None and s != d
                                               for s, d in zip(shape[1:], a.shape[1:])):
                    raise ValueError(f'{self.name}.run(): input {name} has shape '
                                     f'{list(a.shape)}, expected {shape}')
                a = a.astype(np.float32, copy=False)
            arrays.append(a)
        return arrays

    def run(self, *in_arrays, input_transform=None, output_transform=None, return_as_list=False,
            print_progress=False, minibatch_size=None, num_gpus=1, assume_frozen=False,
            **dynamic_kwargs):
        """Official ``Network.run``: numpy in, numpy out, in minibatches.

        Args:
            *in_arrays: one array per input (NCHW images, ``[N, latent_size]`` latents, ...).
                ``None`` means zeros (``labels=None`` gives ``[N, 0]``); float64 is cast to
                float32.
            input_transform: ``dict(func=f, **kw)`` applied to the input tensors.
            output_transform: ``dict(func=f, **kw)`` applied to the output tensors, e.g.
                ``dict(func=convert_images_to_uint8, nchw_to_nhwc=True)``.
            return_as_list: always return a list of outputs.
            print_progress: print the number of processed items.
            minibatch_size: items per forward pass (default: all at once).
            num_gpus, assume_frozen: accepted for compatibility; TensorFlow's default device runs.
            **dynamic_kwargs: override static kwargs for this call (``truncation_psi``,
                ``truncation_cutoff``, ``randomize_noise``, ``is_validation``, ...), plus the
                legacy ``out_mul``/``out_add``/``out_shrink``/``out_dtype``.
        """
        del num_gpus, assume_frozen
        output_transform, dynamic_kwargs = _handle_legacy_output_transforms(
            output_transform, dynamic_kwargs)
        arrays = self._check_inputs(in_arrays)
        num_items = next(a.shape[0] for a in arrays if a is not None)
        mb = int(minibatch_size) if minibatch_size else max(num_items, 1)
        fn = self._compiled(input_transform, output_transform, dynamic_kwargs)
        chunks = []
        for begin in range(0, max(num_items, 1), mb):
            end = min(begin + mb, num_items)
            mb_in = [tf.constant(a[begin:end]) if a is not None
                     else tf.zeros([end - begin] + list(shape[1:]), tf.float32)
                     for a, shape in zip(arrays, self.input_shapes)]
            chunks.append([o.numpy() for o in fn(*mb_in)])
            if print_progress:
                print(f'\r{end} / {num_items}', end='', flush=True)
        if print_progress:
            print()
        outs = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        return outs if return_as_list else (outs[0] if len(outs) == 1 else tuple(outs))

    # Copies. --------------------------------------------------------------------------------

    def clone(self, name: Optional[str] = None) -> 'Network':
        """An independent copy (new Keras model, same kwargs and values)."""
        return Network(checkpoint.clone(self.model, name or self.name))

    def copy_vars_from(self, src: 'Network') -> None:
        """Copies the values of all variables present in both networks."""
        checkpoint.copy_vars(self.model, src.model)

    def setup_as_moving_average_of(self, src: 'Network', beta=0.99, beta_nontrainable=0.0):
        """Official moving average update (runs immediately; see ``checkpoint``)."""
        checkpoint.setup_as_moving_average_of(self.model, src.model, beta, beta_nontrainable)

    def print_layers(self) -> None:
        """Prints every variable: official name, shape, trainable flag, and the totals."""
        rows = [(k, list(v.shape), 'trainable' if v.trainable else 'non-trainable')
                for k, v in self.vars.items()]
        width = max([len(r[0]) for r in rows] + [8])
        print(f'{"Variable":<{width}}  {"Shape":<22} Kind')
        for name, shape, kind in rows:
            print(f'{name:<{width}}  {str(shape):<22} {kind}')
        total = sum(int(np.prod(v.shape)) for v in self.trainables.values())
        print(f'{self.name}: {len(rows)} variables, {total} trainable parameters')

    def __repr__(self):
        return (f'Network(name={self.name!r}, build_func_name={self.build_func_name!r}, '
                f'input_shape={self.input_shape}, output_shape={self.output_shape})')


def load_network(path: str, data_format: str = 'NHWC'):
    """Loads an official ``(G, D, Gs)`` pickle as three :class:`Network` objects.

    Raises:
        tf2.checkpoint.CheckpointError: unknown build function or non-matching variables
            (the message names the file).
        dnnlib.legacy_pickle.PickleFormatError: not an official network pickle.
    """
    return tuple(Network(m) for m in checkpoint.networks_from_pickle(path, data_format))
