"""TF1-style helpers running in a graph and session owned by legacy_tf (official ``tfutil`` API).

The official StyleGAN code runs in TensorFlow 1 graph mode with one process-wide default session.
TensorFlow 2.21 runs eagerly by default, and other code in the same process (the Keras port in
``tf2/``) relies on that. So legacy_tf never switches the process to graph mode
(no ``disable_v2_behavior`` / ``disable_eager_execution``): it owns one ``tf.Graph`` and one
``tf.compat.v1.Session`` created by :func:`init_tf`, and every graph operation it performs is
scoped with ``graph.as_default()``. Outside legacy_tf calls the process stays eager.

Official-era scripts keep working with one import changed: ``tflib.init_tf()``, ``tflib.run()``,
``tflib.set_vars()``, ``tflib.convert_images_to_uint8`` and friends exist with the official
signatures. Code that builds its own TF1 ops on network outputs wraps them in
``with tflib.graph_scope():``.
"""

import contextlib
import os
from typing import Any, Iterable, List, Optional

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

__all__ = ['init_tf', 'reset_tf', 'is_tf_initialized', 'get_graph', 'get_session', 'graph_scope', 'run',
           'is_tf_expression', 'shape_to_list', 'lerp', 'lerp_clip', 'absolute_name_scope',
           'absolute_variable_scope', 'set_vars', 'get_vars', 'init_uninitialized_vars',
           'convert_images_to_uint8', 'convert_images_from_uint8',
           'convert_images_from_uint8_v2', 'TF_CONFIG_DEFAULTS']

# Defaults of the official init_tf config; keys are 'rnd.*' (seeds), 'env.*' (environment
# variables) or dotted tf.compat.v1.ConfigProto fields.
TF_CONFIG_DEFAULTS = {
    'rnd.np_random_seed': None,                # NumPy seed; None = leave NumPy's state as is.
    'rnd.tf_random_seed': 'auto',              # graph seed; 'auto' = np.random.randint(1 << 31).
    'env.TF_CPP_MIN_LOG_LEVEL': '1',           # applied only if the variable is not set already.
    'graph_options.place_pruned_graph': True,  # skip device checks for ops that never run.
    'gpu_options.allow_growth': True,          # take GPU memory as needed, not all at once.
    'allow_soft_placement': True,              # fall back to CPU for ops without a GPU kernel.
}


class _Context:
    """The graph and session legacy_tf works in (one per process, made by init_tf)."""

    def __init__(self, graph: tf.Graph, session: 'v1.Session'):
        self.graph = graph
        self.session = session


_context: Optional[_Context] = None


def init_tf(config_dict: Optional[dict] = None) -> None:
    """Creates legacy_tf's graph and session and sets the random seeds (official ``init_tf``).

    Like the official function, a second call does nothing. The process is not switched to graph
    mode: the graph is entered only inside legacy_tf calls and :func:`graph_scope`.

    Args:
        config_dict: overrides of :data:`TF_CONFIG_DEFAULTS`: ``'rnd.np_random_seed'`` seeds
            NumPy, ``'rnd.tf_random_seed'`` is the graph-level TF seed (``'auto'`` derives it from
            NumPy's random state, as the official code does), ``'env.NAME'`` sets an environment
            variable, and any other key is a dotted ``tf.compat.v1.ConfigProto`` field such as
            ``'gpu_options.allow_growth'``.
    """
    global _context
    if _context is not None:
        return
    cfg = dict(TF_CONFIG_DEFAULTS)
    user = dict(config_dict or {})
    cfg.update(user)
    for key, value in cfg.items():
        if key.startswith('env.'):
            name = key[len('env.'):]
            if key in user:
                os.environ[name] = str(value)
            else:
                os.environ.setdefault(name, str(value))
    if cfg['rnd.np_random_seed'] is not None:
        np.random.seed(cfg['rnd.np_random_seed'])
    tf_seed = cfg['rnd.tf_random_seed']
    if tf_seed == 'auto':
        tf_seed = np.random.randint(1 << 31)
    graph = tf.Graph()
    if tf_seed is not None:
        graph.seed = int(tf_seed)
    config = v1.ConfigProto()
    for key, value in cfg.items():
        if key.startswith('rnd.') or key.startswith('env.'):
            continue
        fields = key.split('.')
        obj = config
        for field in fields[:-1]:
            obj = getattr(obj, field)
        setattr(obj, fields[-1], value)
    _context = _Context(graph, v1.Session(graph=graph, config=config))
    # Networks keep running in their own graph's session, also after reset_tf().
    graph._legacy_tf_session = _context.session


def reset_tf(config_dict: Optional[dict] = None) -> None:
    """Starts a fresh graph and session for what is built from now on (then like init_tf).

    Networks made before keep working in their own graph and session. Useful in long processes
    that build many networks: TensorFlow prunes the whole graph for every new combination of
    fetches (a first get_var, a run() with new kwargs), so a smaller graph is faster.
    """
    global _context
    _context = None
    init_tf(config_dict)


def is_tf_initialized() -> bool:
    """True once :func:`init_tf` has run."""
    return _context is not None


def _ctx() -> _Context:
    if _context is None:
        init_tf()
    return _context


def get_graph() -> tf.Graph:
    """legacy_tf's graph (created on first use with the default config)."""
    return _ctx().graph


def get_session() -> 'v1.Session':
    """legacy_tf's session: what ``tf.get_default_session()`` was in official code."""
    return _ctx().session


@contextlib.contextmanager
def graph_scope(graph: Optional[tf.Graph] = None):
    """Makes legacy_tf's graph (or ``graph``) the default graph (TF1 mode) for the block.

    Use it around your own ``tf.compat.v1`` code that consumes tensors from ``get_output_for``.
    The rest of the process stays eager.
    """
    graph = get_graph() if graph is None else graph
    if not tf.executing_eagerly() and v1.get_default_graph() is graph:
        yield graph
        return
    with graph.as_default():
        yield graph


def _graph_of(fetches: Any) -> Optional[tf.Graph]:
    """The graph of the first graph tensor, operation or variable found in nested fetches."""
    if isinstance(fetches, (tf.Tensor, tf.Operation, tf.Variable)):
        try:
            return fetches.graph
        except (AttributeError, RuntimeError):
            return None
    if isinstance(fetches, dict):
        fetches = list(fetches.values())
    if isinstance(fetches, (list, tuple)):
        for f in fetches:
            graph = _graph_of(f)
            if graph is not None:
                return graph
    return None


def run(*args: Any, **kwargs: Any) -> Any:
    """Runs fetches in legacy_tf's session (official ``tflib.run``).

    Fetches from a graph legacy_tf created run in that graph's session.
    """
    graph = _graph_of(args[0]) if args else None
    session = getattr(graph, '_legacy_tf_session', None)
    if session is None:
        graph, session = get_graph(), get_session()
    with graph_scope(graph):
        return session.run(*args, **kwargs)


def is_tf_expression(x: Any) -> bool:
    """True for TF graph tensors, variables and operations."""
    return isinstance(x, (tf.Tensor, tf.Variable, tf.Operation))


def shape_to_list(shape: Iterable[Any]) -> List[Optional[int]]:
    """A TensorShape or list as a list of ints, None for unknown dimensions."""
    return [getattr(dim, 'value', dim) for dim in shape]


def lerp(a: Any, b: Any, t: Any) -> Any:
    """``a + (b - a) * t``, the official linear interpolation."""
    with tf.name_scope('Lerp'):
        return a + (b - a) * t


def lerp_clip(a: Any, b: Any, t: Any) -> Any:
    """``a + (b - a) * clip(t, 0, 1)``."""
    with tf.name_scope('LerpClip'):
        return a + (b - a) * tf.clip_by_value(t, 0.0, 1.0)


def absolute_name_scope(scope: str):
    """A name scope that ignores the enclosing ones."""
    return tf.name_scope(scope + '/')


def absolute_variable_scope(scope: str, **kwargs: Any):
    """A variable scope that ignores the enclosing ones (and opens no extra name scope)."""
    return v1.variable_scope(v1.VariableScope(name=scope, **kwargs), auxiliary_name_scope=False)


# ------------------------------------------------------------------------------------------------
# Variables.

def _setter(var: tf.Variable):
    """(placeholder, assign op) for a variable, created once and cached per variable."""
    cache = getattr(var, '_legacy_tf_setter', None)
    if cache is None:
        scope, local = var.name.split(':')[0].split('/', 1) if '/' in var.name \
            else ('', var.name.split(':')[0])
        with graph_scope(var.graph), absolute_name_scope(f'{scope}/_Set/{local}'.lstrip('/')), \
                tf.control_dependencies(None):
            ph = v1.placeholder(var.dtype.base_dtype, shape=var.shape, name='new_value')
            op = var.assign(ph, read_value=False)
        cache = (ph, op)
        var._legacy_tf_setter = cache
    return cache


def set_vars(var_to_value_dict: Any) -> None:
    """Assigns numpy values to variables in one session run (official ``tflib.set_vars``).

    Args:
        var_to_value_dict: ``{tf.Variable: value}`` or an iterable of ``(tf.Variable, value)``
            pairs. TensorFlow 2 makes variables unhashable while eager execution is on, so build
            such a dict inside ``with tflib.graph_scope():``, or pass a list of pairs.

    Raises:
        ValueError: a value's shape does not match its variable, naming the variable.
    """
    pairs = var_to_value_dict.items() if isinstance(var_to_value_dict, dict) else var_to_value_dict
    ops, phs, values = [], [], []
    for var, value in pairs:
        value = np.asarray(value)
        shape = tuple(shape_to_list(var.shape))
        if value.shape != shape:
            raise ValueError(f'set_vars: value for {var.name} has shape {value.shape}, '
                             f'the variable has {shape}')
        ph, op = _setter(var)
        ops.append(op)
        phs.append(ph)
        values.append(value)
    if ops:
        with graph_scope(ops[0].graph):
            run(ops, dict(zip(phs, values)))


def get_vars(variables: Iterable[tf.Variable]) -> List[np.ndarray]:
    """Current values of variables (one session run)."""
    variables = list(variables)
    return list(run(variables)) if variables else []


def init_uninitialized_vars(target_vars: Optional[Iterable[tf.Variable]] = None) -> None:
    """Runs the initializers of the variables that are not initialized yet."""
    with graph_scope():
        if target_vars is None:
            target_vars = v1.global_variables()
        target_vars = list(target_vars)
        if not target_vars:
            return
        flags = run([v1.is_variable_initialized(v) for v in target_vars])
        inits = [v.initializer for v, ok in zip(target_vars, flags) if not ok]
        if inits:
            run(inits)


# ------------------------------------------------------------------------------------------------
# Image conversion (official tflib versions; NCHW in, as the networks produce).

def _with_graph_of(x: Any):
    """Builds ops in the graph of a graph tensor or variable; eager values stay eager."""
    graph = None
    if isinstance(x, tf.Variable) or tf.is_symbolic_tensor(x):
        try:
            graph = x.graph
        except (AttributeError, RuntimeError):   # eager variables have no graph
            graph = None
    if graph is None or (not tf.executing_eagerly() and v1.get_default_graph() is graph):
        return contextlib.nullcontext()
    return graph.as_default()


def _avg_pool_nchw(x: Any, factor: int) -> Any:
    # NCHW pooling has no CPU kernel; pool in NHWC and come back.
    x = tf.transpose(x, [0, 2, 3, 1])
    x = tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding='VALID')
    return tf.transpose(x, [0, 3, 1, 2])


def convert_images_to_uint8(images: Any, drange=(-1, 1), nchw_to_nhwc: bool = False,
                            shrink: int = 1, uint8_cast: bool = True) -> Any:
    """Network images -> uint8, exactly as the official tflib function.

    ``shrink`` average-pools by that factor, then the optional NCHW -> NHWC transpose, then
    ``x * 255/(d1-d0) + (0.5 - d0*255/(d1-d0))`` and a saturating **truncating** cast (the +0.5
    does the rounding). ``uint8_cast=False`` (StyleGAN2's extra argument) returns the float values.

    Args:
        images: NCHW tensor (graph or eager) or numpy array in ``drange``.
        drange: the nominal range of ``images``.
        nchw_to_nhwc: transpose the result to NHWC.
        shrink: integer box-downscaling factor.
        uint8_cast: cast to uint8 (the official default).
    """
    with _with_graph_of(images):
        images = tf.cast(images, tf.float32)
        if shrink > 1:
            images = _avg_pool_nchw(images, int(shrink))
        if nchw_to_nhwc:
            images = tf.transpose(images, [0, 2, 3, 1])
        scale = 255 / (drange[1] - drange[0])
        images = images * scale + (0.5 - drange[0] * scale)
        if uint8_cast:
            images = tf.saturate_cast(images, tf.uint8)
        return images


def convert_images_from_uint8(images: Any, drange=(-1, 1), nhwc_to_nchw: bool = False) -> Any:
    """uint8 -> float the StyleGAN (v1) way: ``(x - d0) * ((d1 - d0) / 255)``.

    This is the official v1 formula verbatim. For drange [-1, 1] it maps 0 -> 2/255 and
    255 -> 512/255, not to [-1, 1]; StyleGAN2 fixed it (:func:`convert_images_from_uint8_v2`).
    """
    with _with_graph_of(images):
        images = tf.cast(images, tf.float32)
        if nhwc_to_nchw:
            images = tf.transpose(images, [0, 3, 1, 2])
        return (images - drange[0]) * ((drange[1] - drange[0]) / 255)


def convert_images_from_uint8_v2(images: Any, drange=(-1, 1), nhwc_to_nchw: bool = False) -> Any:
    """uint8 -> float the StyleGAN2 way: ``x * ((d1 - d0) / 255) + d0`` (0 -> d0, 255 -> d1)."""
    with _with_graph_of(images):
        images = tf.cast(images, tf.float32)
        if nhwc_to_nchw:
            images = tf.transpose(images, [0, 3, 1, 2])
        return images * ((drange[1] - drange[0]) / 255) + drange[0]
