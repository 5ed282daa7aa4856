"""Network: the official ``dnnlib.tflib.network.Network`` API in graph mode inside TensorFlow 2.

A Network is built from a *build function* and fixed keyword arguments (``static_kwargs``). On
construction it builds a template graph in its own variable scope, which creates the variables;
``get_output_for()`` rebuilds the graph on new inputs reusing them, and ``run()`` evaluates it on
numpy arrays in minibatches. Sub-networks (G's mapping and synthesis) are ``components``.

Build functions are looked up by name in a registry of legacy_tf modules (:data:`BUILD_MODULES`),
never by executing the source text stored in a pickle. A registered module lists its build
functions in ``BUILD_FUNCTIONS`` and may set ``STATE_VERSION`` (the pickle state version its
networks are written with; 4 if absent) and ``LAYER_DATA_FORMAT`` ('NHWC' if its layer
activations are NHWC, for print_layers).

Pickles: ``__getstate__`` returns the official state dict (spec 1.3) and ``__setstate__`` rebuilds
from one, so ``pickle.dump``/``pickle.load`` round-trip in a legacy_tf process. Files in NVIDIA's
format (class ``dnnlib.tflib.network.Network``, readable by the official code) are written by
:func:`save_pkl` and read by :func:`load_network` / :func:`load_pkl` through
``dnnlib.legacy_pickle``, which executes nothing from the file.
"""

import collections
import contextlib
import importlib
import inspect
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from dnnlib import EasyDict
from dnnlib import legacy_pickle
from . import tfutil

v1 = tf.compat.v1

__all__ = ['Network', 'BUILD_MODULES', 'resolve_build_func', 'load_network', 'load_pkl',
           'save_pkl']

# Modules searched for build functions, in order. An unqualified name found in several of them
# (G_mapping exists in both) resolves to the first, unless the caller prefers a module (the
# module of the parent network when loading a pickle; spec 1.3).
BUILD_MODULES = ['legacy_tf.networks_stylegan', 'legacy_tf.networks_stylegan2']

# Official module names (training.networks_stylegan, ...) map to ours by their last component.
_OFFICIAL_MODULES = {name.rsplit('.', 1)[-1]: name for name in BUILD_MODULES}

_VAR_OP_TYPES = ('VarHandleOp', 'VariableV2', 'AssignVariableOp', 'ReadVariableOp',
                 'VarIsInitializedOp', 'Assign', 'Const', 'NoOp')


# ------------------------------------------------------------------------------------------------
# Build-function registry.

def _import_registered(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:     # the module is not written yet (e.g. StyleGAN2)
            return None
        raise


def _registered_func(module_name: str, func_name: str) -> Optional[Callable]:
    module = _import_registered(module_name)
    if module is None or func_name not in getattr(module, 'BUILD_FUNCTIONS', ()):
        return None
    return getattr(module, func_name)


def resolve_build_func(func_name: Any, prefer_module: Optional[str] = None,
                       allow_import: bool = True) -> Tuple[str, str, Callable]:
    """Finds a build function.

    Args:
        func_name: a function object; an unqualified name such as ``'G_style'`` (searched in
            ``prefer_module`` then :data:`BUILD_MODULES`); or a qualified name such as
            ``'legacy_tf.networks_stylegan.G_style'`` or the official
            ``'training.networks_stylegan.G_style'`` (mapped to ours by module name).
        prefer_module: module searched first for unqualified names.
        allow_import: allow qualified names of other modules (imported normally). Off when the
            name comes from a file.

    Returns:
        (module name, unqualified function name, function).
    """
    if callable(func_name):
        return func_name.__module__, func_name.__name__, func_name
    if not isinstance(func_name, str) or not func_name:
        raise TypeError(f'func_name must be a function or a non-empty string, got {func_name!r}')
    if '.' in func_name:
        module_name, name = func_name.rsplit('.', 1)
        module_name = _OFFICIAL_MODULES.get(module_name.rsplit('.', 1)[-1], module_name)
        func = _registered_func(module_name, name) if module_name in BUILD_MODULES else None
        if func is None and allow_import and module_name not in BUILD_MODULES:
            func = getattr(importlib.import_module(module_name), name, None)
        if not callable(func):
            raise ValueError(f'unknown build function {func_name!r}')
        return module_name, name, func
    modules = ([prefer_module] if prefer_module else []) + \
        [m for m in BUILD_MODULES if m != prefer_module]
    for module_name in modules:
        func = _registered_func(module_name, func_name)
        if func is not None:
            return module_name, func_name, func
    known = [f'{m}.{f}' for m in BUILD_MODULES if _import_registered(m) is not None
             for f in getattr(_import_registered(m), 'BUILD_FUNCTIONS', ())]
    raise ValueError(f'unknown build function {func_name!r}; legacy_tf knows {known}')


def _module_attr(module_name: str, attr: str, default: Any) -> Any:
    module = sys.modules.get(module_name)
    return getattr(module, attr, default) if module is not None else default


def _plain_kwargs(kwargs: dict) -> dict:
    """static_kwargs as plain Python values (what an official pickle may contain)."""
    def plain(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(plain(x) for x in v)
        return v
    return {k: plain(v) for k, v in kwargs.items()}


# ------------------------------------------------------------------------------------------------
# Network.

class Network:
    """A network built from a build function, with the official dnnlib.tflib API.

    Attributes (as in the official class):
        name: network name (``'G'``, ``'Gs'``, ``'G_synthesis'``, ...).
        scope: unique variable scope in legacy_tf's graph (``'Gs'``, ``'G_synthesis_1'``, ...).
        static_kwargs: build-function keyword arguments fixed at construction (EasyDict).
        components: sub-networks (EasyDict, e.g. ``synthesis``, ``mapping``).
        input_names, input_shapes, input_shape, input_templates, num_inputs: inputs (the build
            function's positional parameters without defaults).
        output_names, output_shapes, output_shape, output_templates, num_outputs: outputs.
        own_vars: name -> tf.Variable for this network's own variables (creation order).
        vars: own_vars plus each component's vars prefixed with the component's name.
        trainables: the trainable subset of vars.
        var_global_to_local: graph variable name -> local name.
    """

    def __init__(self, name: Optional[str] = None, func_name: Any = None, **static_kwargs: Any):
        """Builds the network.

        Args:
            name: network name; defaults to the build function's name.
            func_name: build function: a function, ``'G_style'``,
                ``'legacy_tf.networks_stylegan.G_style'`` or another qualified name.
            **static_kwargs: keyword arguments for the build function.
        """
        if func_name is None:
            raise TypeError('Network() needs func_name (the build function or its name)')
        module_name, build_func_name, func = resolve_build_func(func_name)
        self._init_fields(name or build_func_name, module_name, build_func_name, func,
                          static_kwargs, EasyDict(), version=None, module_src=None)
        self._init_graph()
        self.reset_own_vars()

    # -- construction ---------------------------------------------------------------------------

    def _init_fields(self, name, module_name, build_func_name, build_func, static_kwargs,
                     components, version, module_src) -> None:
        tfutil.init_tf()
        self._graph = tfutil.get_graph()       # the graph (and session) this network lives in
        self.name = str(name)
        self.static_kwargs = EasyDict(static_kwargs)
        self.components = EasyDict(components)
        self._build_module_name = module_name
        self._build_func_name = build_func_name
        self._build_func = build_func
        self._state_version = version          # None = the build module's STATE_VERSION
        self._build_module_src = module_src    # None = legacy_pickle.PLACEHOLDER_MODULE_SRC
        self._run_cache = {}

    def _init_graph(self) -> None:
        sig = inspect.signature(self._build_func)
        self.input_names = [p.name for p in sig.parameters.values()
                            if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
        if not self.input_names:
            raise ValueError(f'build function {self._build_func_name} has no inputs')
        graph = self._graph
        with tfutil.graph_scope(graph):
            with graph.name_scope(None):    # a top-level scope, even for a component
                self.scope = graph.unique_name(self.name.replace('/', '_'), mark_as_used=True)
            build_kwargs = dict(self.static_kwargs, is_template_graph=True,
                                components=self.components)
            with tfutil.absolute_variable_scope(self.scope, reuse=False), \
                    tfutil.absolute_name_scope(self.scope), tf.control_dependencies(None):
                self.input_templates = [v1.placeholder(tf.float32, name=n)
                                        for n in self.input_names]
                out = self._build_func(*self.input_templates, **build_kwargs)
        self.output_templates = list(out) if isinstance(out, (tuple, list)) else [out]
        for t in self.output_templates:
            if not tfutil.is_tf_expression(t):
                raise TypeError(f'{self.name}: build function {self._build_func_name} returned '
                                f'{type(t).__name__}, not a tensor')
        self.output_names = [t.name.split('/')[-1].split(':')[0] for t in self.output_templates]
        self.input_shapes = [_shape_list(t) for t in self.input_templates]
        self.output_shapes = [_shape_list(t) for t in self.output_templates]
        prefix = self.scope + '/'
        with tfutil.graph_scope(self._graph):
            own = [v for v in v1.global_variables() if v.name.startswith(prefix)]
        self.own_vars = collections.OrderedDict(
            (v.name[len(prefix):].split(':')[0], v) for v in own)
        self._init_var_maps()

    def _init_var_maps(self) -> None:
        self.vars = collections.OrderedDict(self.own_vars)
        for comp in self.components.values():
            self.vars.update((f'{comp.name}/{n}', v) for n, v in comp.vars.items())
        self.trainables = collections.OrderedDict(
            (n, v) for n, v in self.vars.items() if v.trainable)
        self.var_global_to_local = collections.OrderedDict(
            (v.name.split(':')[0], n) for n, v in self.vars.items())

    @property
    def input_shape(self) -> List[Optional[int]]:
        """Shape of the first input, e.g. ``[None, 512]`` for G."""
        return self.input_shapes[0]

    @property
    def output_shape(self) -> List[Optional[int]]:
        """Shape of the first output, e.g. ``[None, 3, 1024, 1024]`` for G."""
        return self.output_shapes[0]

    @property
    def build_func_name(self) -> str:
        """Unqualified build function name as stored in pickles, e.g. ``'G_style'``."""
        return self._build_func_name

    @property
    def num_inputs(self) -> int:
        return len(self.input_names)

    @property
    def num_outputs(self) -> int:
        return len(self.output_names)

    def __repr__(self) -> str:
        return (f'<legacy_tf Network {self.name!r} ({self._build_func_name}, scope '
                f'{self.scope!r}, inputs {self.input_shapes}, outputs {self.output_shapes})>')

    # -- variables ------------------------------------------------------------------------------

    def reset_own_vars(self) -> None:
        """Re-initializes this network's own variables (not the components')."""
        tfutil.run([v.initializer for v in self.own_vars.values()])

    def reset_vars(self) -> None:
        """Re-initializes all variables, components included."""
        tfutil.run([v.initializer for v in self.vars.values()])

    def reset_trainables(self) -> None:
        """Re-initializes the trainable variables."""
        tfutil.run([v.initializer for v in self.trainables.values()])

    def find_var(self, var_or_local_name: Any) -> tf.Variable:
        """The tf.Variable for a local name such as ``'G_synthesis/noise0'`` (or a variable)."""
        if tfutil.is_tf_expression(var_or_local_name):
            return var_or_local_name
        try:
            return self.vars[var_or_local_name]
        except KeyError:
            raise KeyError(f'network {self.name!r} has no variable {var_or_local_name!r}') from None

    def get_var_local_name(self, var_or_global_name: Any) -> str:
        """Local name of a variable given the variable or its graph name."""
        name = var_or_global_name if isinstance(var_or_global_name, str) \
            else var_or_global_name.name
        return self.var_global_to_local[name.split(':')[0]]

    def get_var(self, var_or_local_name: Any) -> np.ndarray:
        """Current value of one variable as numpy (0-d variables as numpy scalars)."""
        return tfutil.run(self.find_var(var_or_local_name))

    def set_var(self, var_or_local_name: Any, new_value: Any) -> None:
        """Assigns a numpy value to one variable."""
        tfutil.set_vars([(self.find_var(var_or_local_name), new_value)])

    def get_vars(self, names: Optional[List[str]] = None) -> 'collections.OrderedDict':
        """Values of several variables (all of ``vars`` by default) in one session run."""
        names = list(self.vars) if names is None else list(names)
        values = tfutil.get_vars([self.find_var(n) for n in names])
        return collections.OrderedDict(zip(names, values))

    def set_vars(self, name_to_value: Dict[str, Any]) -> None:
        """Assigns several variables by local name in one session run."""
        tfutil.set_vars([(self.find_var(n), v) for n, v in name_to_value.items()])

    def copy_own_vars_from(self, src_net: 'Network') -> None:
        """Copies the values of own variables that ``src_net`` also has (by name)."""
        self._copy_from(src_net, [n for n in self.own_vars if n in src_net.own_vars], own=True)

    def copy_vars_from(self, src_net: 'Network') -> None:
        """Copies the values of all variables that ``src_net`` also has (by name)."""
        self._copy_from(src_net, [n for n in self.vars if n in src_net.vars])

    def copy_trainables_from(self, src_net: 'Network') -> None:
        """Copies the values of trainable variables that ``src_net`` also has (by name)."""
        self._copy_from(src_net, [n for n in self.trainables if n in src_net.vars])

    def _copy_from(self, src_net: 'Network', names: List[str], own: bool = False) -> None:
        src = src_net.own_vars if own else src_net.vars
        dst = self.own_vars if own else self.vars
        values = tfutil.get_vars([src[n] for n in names])
        tfutil.set_vars([(dst[n], v) for n, v in zip(names, values)])

    # -- cloning --------------------------------------------------------------------------------

    def _clone(self, name: Optional[str], new_static_kwargs: dict) -> 'Network':
        net = object.__new__(Network)
        comps = EasyDict((k, c._clone(None, {})) for k, c in self.components.items())
        net._init_fields(name or self.name, self._build_module_name, self._build_func_name,
                         self._build_func, dict(self.static_kwargs, **new_static_kwargs), comps,
                         self._state_version, self._build_module_src)
        net._init_graph()
        return net

    def clone(self, name: Optional[str] = None, **new_static_kwargs: Any) -> 'Network':
        """A new network with the same build function, kwargs and values (``Gs = G.clone('Gs')``).

        Components are cloned too and keep their names (``G_synthesis``, ``G_mapping``).
        """
        net = self._clone(name, new_static_kwargs)
        net.copy_vars_from(self)
        return net

    def convert(self, new_func_name: Any = None, new_name: Optional[str] = None,
                **new_static_kwargs: Any) -> 'Network':
        """A new network with another build function and/or kwargs; copies matching variables.

        Args:
            new_func_name: build function of the new network (default: this one's).
            new_name: its name (default: this one's).
            **new_static_kwargs: kwargs that replace or add to this network's static_kwargs.
        """
        func = self._build_func if new_func_name is None else new_func_name
        net = Network(new_name or self.name, func_name=func,
                      **dict(self.static_kwargs, **new_static_kwargs))
        net.copy_vars_from(self)
        return net

    def setup_as_moving_average_of(self, src_net: 'Network', beta: Any = 0.99,
                                   beta_nontrainable: Any = 0.0) -> tf.Operation:
        """Op that moves every variable shared with ``src_net`` towards it (Gs = EMA of G).

        ``var <- src + (var - src) * b`` with ``b = beta`` for trainables and
        ``beta_nontrainable`` (default 0: a plain copy) for the rest. Run it with tflib.run.
        """
        if src_net._graph is not self._graph:
            raise ValueError(f'{self.name}.setup_as_moving_average_of({src_net.name}): the '
                             'networks live in different graphs (one was built before reset_tf)')
        with tfutil.graph_scope(self._graph), \
                tfutil.absolute_name_scope(self.scope + '/_MovingAvg'):
            ops = []
            for name, var in self.vars.items():
                if name in src_net.vars:
                    cur_beta = beta if name in self.trainables else beta_nontrainable
                    ops.append(var.assign(tfutil.lerp(src_net.vars[name], var, cur_beta)))
            return tf.group(*ops)

    # -- graph building -------------------------------------------------------------------------

    def get_output_for(self, *in_expr: Any, return_as_list: bool = False,
                       **dynamic_kwargs: Any) -> Any:
        """Builds the network on the given input tensors; returns graph tensors.

        ``None`` inputs become zeros of the input's shape. ``dynamic_kwargs`` override the static
        kwargs for this graph (e.g. ``truncation_psi=0.5``, ``is_training=True``). The tensors
        live in legacy_tf's graph: evaluate them with ``tflib.run`` and build further ops on them
        inside ``tflib.graph_scope()``.
        """
        if len(in_expr) != self.num_inputs:
            raise TypeError(f'{self.name}.get_output_for() takes {self.num_inputs} inputs '
                            f'{self.input_names}, got {len(in_expr)}')
        if all(e is None for e in in_expr):
            raise ValueError(f'{self.name}.get_output_for(): all inputs are None')
        build_kwargs = dict(self.static_kwargs)
        build_kwargs.update(dynamic_kwargs)
        build_kwargs.update(is_template_graph=False, components=self.components)
        with tfutil.graph_scope(self._graph):
            with tfutil.absolute_variable_scope(self.scope, reuse=True), tf.name_scope(self.name):
                # numpy arrays and eager tensors become float32 constants in this graph.
                exprs = [e if e is None or tf.is_symbolic_tensor(e) or isinstance(e, tf.Variable)
                         else tf.constant(np.asarray(e, dtype=np.float32)) for e in in_expr]
                ref = next(e for e in exprs if e is not None)
                final = []
                for expr, name, shape in zip(exprs, self.input_names, self.input_shapes):
                    if expr is None:
                        expr = tf.zeros(tf.concat([tf.shape(ref)[:1],
                                                   tf.constant(shape[1:], tf.int32)], axis=0))
                    final.append(tf.identity(expr, name=name))
                out = self._build_func(*final, **build_kwargs)
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        if return_as_list:
            return out
        return out[0] if len(out) == 1 else tuple(out)

    # -- running --------------------------------------------------------------------------------

    def run(self, *in_arrays: Any, input_transform: Optional[dict] = None,
            output_transform: Optional[dict] = None, return_as_list: bool = False,
            print_progress: bool = False, minibatch_size: Optional[int] = None,
            num_gpus: int = 1, assume_frozen: bool = False, **dynamic_kwargs: Any) -> Any:
        """Runs the network on numpy arrays (official ``Network.run``).

        Args:
            *in_arrays: one array per input (``None`` = zeros, e.g. no labels). Values are fed as
                float32, so float64 latents work.
            input_transform: ``dict(func=f, **kw)``: ``f(*input_tensors, **kw)`` runs first.
            output_transform: ``dict(func=f, **kw)``: ``f(*output_tensors, **kw)`` runs last, e.g.
                ``dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)``.
            return_as_list: always return a list of arrays.
            print_progress: print ``done / total`` while running.
            minibatch_size: items per session run (default: all at once).
            num_gpus: split each minibatch over this many GPUs.
            assume_frozen: accepted for compatibility. Official code used it to cache per-GPU
                copies of the weights; here every run reads the variables, which gives the
                same values.
            **dynamic_kwargs: build-function overrides (``truncation_psi``, ``randomize_noise``,
                ``is_validation``, ...), plus the legacy ``out_mul``, ``out_add``, ``out_shrink``
                and ``out_dtype`` output options.

        Returns:
            One numpy array, or a tuple/list when there are several outputs.
        """
        del assume_frozen
        if len(in_arrays) != self.num_inputs:
            raise TypeError(f'{self.name}.run() takes {self.num_inputs} inputs '
                            f'{self.input_names}, got {len(in_arrays)}')
        arrays = [None if a is None else np.asarray(a) for a in in_arrays]
        if all(a is None for a in arrays):
            raise ValueError(f'{self.name}.run(): all inputs are None')
        num_items = next(a for a in arrays if a is not None).shape[0]
        for a, name in zip(arrays, self.input_names):
            if a is not None and (a.ndim == 0 or a.shape[0] != num_items):
                raise ValueError(f'{self.name}.run(): input {name} has shape {a.shape}; '
                                 f'expected {num_items} items along axis 0')
        minibatch_size = num_items if minibatch_size is None else int(minibatch_size)
        if minibatch_size <= 0 and num_items > 0:
            raise ValueError(f'minibatch_size must be positive, got {minibatch_size}')
        output_transform, dynamic_kwargs = _handle_legacy_output_transforms(
            output_transform, dynamic_kwargs)
        in_ph, out_expr = self._get_run_graph(input_transform, output_transform, num_gpus,
                                              dynamic_kwargs)
        out_arrays = [None] * len(out_expr)
        for mb_begin in range(0, num_items, max(minibatch_size, 1)):
            if print_progress:
                print(f'\r{mb_begin} / {num_items}', end='')
            mb_end = min(mb_begin + minibatch_size, num_items)
            mb_num = mb_end - mb_begin
            feed = {}
            for ph, a, shape in zip(in_ph, arrays, self.input_shapes):
                feed[ph] = a[mb_begin:mb_end] if a is not None \
                    else np.zeros([mb_num] + shape[1:], np.float32)
            mb_out = tfutil.run(out_expr, feed)
            for i, value in enumerate(mb_out):
                if out_arrays[i] is None:
                    out_arrays[i] = np.empty((num_items,) + value.shape[1:], value.dtype)
                out_arrays[i][mb_begin:mb_end] = value
        if print_progress:
            print(f'\r{num_items} / {num_items}')
        for i, expr in enumerate(out_expr):
            if out_arrays[i] is None:    # no items
                out_arrays[i] = np.empty([0] + _shape_list(expr)[1:], expr.dtype.as_numpy_dtype)
        if return_as_list:
            return out_arrays
        return out_arrays[0] if len(out_arrays) == 1 else tuple(out_arrays)

    def _get_run_graph(self, input_transform, output_transform, num_gpus, dynamic_kwargs):
        key = repr([_cache_key(input_transform), _cache_key(output_transform), num_gpus,
                    _cache_key(dynamic_kwargs)])
        if key in self._run_cache:
            return self._run_cache[key]
        devices = _run_devices(num_gpus)
        with tfutil.graph_scope(self._graph), tfutil.absolute_name_scope(self.scope + '/_Run'), \
                tf.control_dependencies(None):
            with tf.device('/cpu:0'):
                in_ph = [v1.placeholder(tf.float32, [None] + shape[1:], name=name)
                         for name, shape in zip(self.input_names, self.input_shapes)]
                in_split = [tf.split(x, len(devices)) for x in in_ph] if len(devices) > 1 \
                    else [[x] for x in in_ph]
            out_split = []
            for i, device in enumerate(devices):
                with tf.device(device) if device else contextlib.nullcontext(), \
                        tf.name_scope(f'GPU{i}'):
                    gpu_in = [x[i] for x in in_split]
                    if input_transform is not None:
                        kw = dict(input_transform)
                        func = kw.pop('func')
                        gpu_in = func(*gpu_in, **kw)
                        gpu_in = list(gpu_in) if isinstance(gpu_in, (tuple, list)) else [gpu_in]
                    out = self.get_output_for(*gpu_in, return_as_list=True, **dynamic_kwargs)
                    if output_transform is not None:
                        kw = dict(output_transform)
                        func = kw.pop('func')
                        out = func(*out, **kw)
                        out = list(out) if isinstance(out, (tuple, list)) else [out]
                    out_split.append(out)
            with tf.device('/cpu:0'):
                out_expr = [tf.concat(outs, axis=0) if len(outs) > 1 else outs[0]
                            for outs in zip(*out_split)]
        self._run_cache[key] = (in_ph, out_expr)
        return in_ph, out_expr

    # -- introspection --------------------------------------------------------------------------

    def list_ops(self) -> List[tf.Operation]:
        """Operations of the template graph (not of run graphs or helpers, which start with _)."""
        include, exclude = self.scope + '/', self.scope + '/_'
        ops = self._graph.get_operations()
        return [op for op in ops if op.name.startswith(include) and not op.name.startswith(exclude)]

    def list_layers(self) -> List[Tuple[str, Any, List[tf.Variable]]]:
        """[(layer name, output tensor or variable, trainable variables)].

        A layer is a variable scope holding variables; sub-scopes such as ``Noise`` and
        ``StyleMod`` belong to the layer around them. Inputs and outputs appear as layers without
        variables, and each component's layers follow with the component's name as prefix.
        """
        return [(name, out, trainables) for name, out, trainables, _ in self._layer_rows()]

    def _layer_rows(self) -> List[Tuple[str, Any, List[tf.Variable], bool]]:
        """list_layers rows plus a flag: the output is a 4-D activation stored NHWC."""
        nhwc = _module_attr(self._build_module_name, 'LAYER_DATA_FORMAT', 'NCHW') == 'NHWC'
        rows = [(n, t, [], False) for n, t in zip(self.input_names, self.input_templates)]
        rows += [(n, t, tv, nhwc and isinstance(t, tf.Tensor)) for n, t, tv in self._own_layers()]
        for comp in self.components.values():
            rows += [(f'{comp.name}/{n}', t, tv, f) for n, t, tv, f in comp._layer_rows()]
        rows += [(n, t, [], False) for n, t in zip(self.output_names, self.output_templates)]
        return rows

    def _own_layers(self) -> List[Tuple[str, Any, List[tf.Variable]]]:
        scopes = {n.rsplit('/', 1)[0] for n in self.own_vars if '/' in n}
        groups = collections.OrderedDict()
        for name, var in self.own_vars.items():
            key = name.rsplit('/', 1)[0] if '/' in name else name
            parts = key.split('/')
            for i in range(1, len(parts)):
                if '/'.join(parts[:i]) in scopes:
                    key = '/'.join(parts[:i])
                    break
            groups.setdefault(key, []).append((name, var))
        ops = self.list_ops()
        layers = []
        for key, named in groups.items():
            prefix = f'{self.scope}/{key}/'
            outs = [op.outputs[0] for op in ops if op.name.startswith(prefix) and op.outputs
                    and op.type not in _VAR_OP_TYPES and '/Initializer/' not in op.name]
            trainables = [v for _, v in named if v.trainable]
            # The layer's weight first (shown as WeightShape), then the rest in creation order.
            trainables.sort(key=lambda v: v.name.split(':')[0] != f'{self.scope}/{key}/weight')
            layers.append((key, outs[-1] if outs else named[-1][1], trainables))
        return layers

    def print_layers(self, title: Optional[str] = None,
                     hide_layers_with_no_params: bool = False) -> None:
        """Prints a table of layers: trainable parameters, output shape (NCHW), weight shape."""
        rows = [(title or self.name, 'Params', 'OutputShape', 'WeightShape'), ('---',) * 4]
        total = 0
        for name, out, trainables, nhwc in self._layer_rows():
            num = sum(int(np.prod(_shape_list(v))) for v in trainables)
            total += num
            if hide_layers_with_no_params and num == 0:
                continue
            shape = _shape_list(out)
            if nhwc and shape is not None and len(shape) == 4:
                shape = [shape[0], shape[3], shape[1], shape[2]]
            rows.append((name, str(num) if num else '-', _format_shape(shape),
                         _format_shape(_shape_list(trainables[0])) if trainables else '-'))
        rows += [('---',) * 4, ('Total', str(total), '', '')]
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        print()
        for row in rows:
            print('  '.join(cell + ' ' * (w - len(cell)) for cell, w in zip(row, widths)).rstrip())
        print()

    # -- pickling -------------------------------------------------------------------------------

    @property
    def state_version(self) -> int:
        """Pickle state version this network is written with (3 for StyleGAN, 4 for StyleGAN2)."""
        if self._state_version is not None:
            return self._state_version
        return int(_module_attr(self._build_module_name, 'STATE_VERSION', 4))

    def __getstate__(self) -> dict:
        """The official state dict (spec 1.3): own variables only, components as Networks."""
        values = tfutil.get_vars(self.own_vars.values())
        return {
            'version': self.state_version,
            'name': self.name,
            'static_kwargs': _plain_kwargs(self.static_kwargs),
            'components': dict(self.components),
            'build_module_src': self._build_module_src or legacy_pickle.PLACEHOLDER_MODULE_SRC,
            'build_func_name': self._build_func_name,
            'variables': list(zip(self.own_vars.keys(), values)),
        }

    def __setstate__(self, state: dict) -> None:
        """Rebuilds from an official state dict (build function looked up by name, never exec)."""
        comps = EasyDict(state.get('components', {}))
        for key, comp in comps.items():
            if not isinstance(comp, Network):
                raise TypeError(f'component {key!r} is {type(comp).__name__}, not a Network')
        # Components were unpickled first, without knowing their parent. A name that exists in
        # several modules (G_mapping) must come from the parent's module (spec 1.3): rebuild.
        if comps and '.' not in state['build_func_name']:
            parent_module = resolve_build_func(state['build_func_name'], allow_import=False)[0]
            for key, comp in comps.items():
                if comp._build_module_name != parent_module and \
                        _registered_func(parent_module, comp._build_func_name) is not None:
                    comps[key] = Network.from_state(comp.to_state(), parent_module, 'pickle')
        self._init_from_state(
            name=state['name'], build_func_name=state['build_func_name'],
            static_kwargs=state.get('static_kwargs', {}), components=comps,
            variables=collections.OrderedDict((n, np.asarray(v)) for n, v in state['variables']),
            version=state['version'], module_src=state.get('build_module_src'),
            prefer_module=None, label='pickle')

    def _init_from_state(self, name, build_func_name, static_kwargs, components, variables,
                         version, module_src, prefer_module, label) -> None:
        where = f'{label}: network {name!r}'
        if version not in legacy_pickle.SUPPORTED_VERSIONS:
            raise ValueError(f'{where}: unsupported state version {version!r}')
        if '.' in build_func_name:
            raise ValueError(f'{where}: build_func_name {build_func_name!r} must be unqualified')
        if prefer_module is None and isinstance(module_src, str) and 'fused_bias_act' in module_src:
            prefer_module = 'legacy_tf.networks_stylegan2'    # only a hint for ambiguous names
        try:
            module_name, func_name, func = resolve_build_func(build_func_name, prefer_module,
                                                              allow_import=False)
        except ValueError as e:
            raise ValueError(f'{where}: {e}') from None
        self._init_fields(name, module_name, func_name, func, static_kwargs, components,
                          version, module_src)
        try:
            self._init_graph()
        except (ValueError, TypeError) as e:
            raise ValueError(f'{where}: cannot build {func_name} from static_kwargs '
                             f'{dict(static_kwargs)}: {e}') from e
        # Every own variable is assigned (strict match), so no initializer needs to run.
        self._assign_state_variables(variables, where)

    def _assign_state_variables(self, variables: Dict[str, np.ndarray], where: str) -> None:
        unknown = [n for n in variables if n not in self.own_vars]
        missing = [n for n in self.own_vars if n not in variables]
        if unknown or missing:
            raise ValueError(f'{where} ({self._build_func_name}): variables do not match the '
                             f'network built from static_kwargs; in the file only: {unknown}; '
                             f'in the network only: {missing}')
        pairs = []
        for n, value in variables.items():
            var = self.own_vars[n]
            if tuple(value.shape) != tuple(_shape_list(var)):
                raise ValueError(f'{where}: variable {n!r} has shape {value.shape} in the file, '
                                 f'{tuple(_shape_list(var))} in the network')
            pairs.append((var, value))
        tfutil.set_vars(pairs)

    def to_state(self) -> legacy_pickle.NetworkState:
        """This network (components included) as a dnnlib.legacy_pickle.NetworkState."""
        values = tfutil.get_vars(self.own_vars.values())
        return legacy_pickle.NetworkState(
            name=self.name, build_func_name=self._build_func_name,
            static_kwargs=_plain_kwargs(self.static_kwargs),
            variables=collections.OrderedDict(zip(self.own_vars.keys(), values)),
            components=collections.OrderedDict((k, c.to_state())
                                               for k, c in self.components.items()),
            version=self.state_version,
            build_module_src=self._build_module_src or legacy_pickle.PLACEHOLDER_MODULE_SRC)

    @classmethod
    def from_state(cls, state: legacy_pickle.NetworkState, prefer_module: Optional[str] = None,
                   label: str = '<state>') -> 'Network':
        """Builds a Network (and its components) from a NetworkState and assigns its variables.

        Components are resolved preferring the parent's module, so a StyleGAN2 ``G_mapping``
        under ``G_main`` gets the StyleGAN2 math (spec 1.3).
        """
        net = object.__new__(cls)
        module = prefer_module
        if state.components and '.' not in state.build_func_name:
            try:
                module = resolve_build_func(state.build_func_name, prefer_module,
                                            allow_import=False)[0]
            except ValueError as e:
                raise ValueError(f'{label}: network {state.name!r}: {e}') from None
        comps = EasyDict((k, cls.from_state(c, module, label)) for k, c in state.components.items())
        net._init_from_state(name=state.name, build_func_name=state.build_func_name,
                             static_kwargs=state.static_kwargs, components=comps,
                             variables=state.variables, version=state.version,
                             module_src=state.build_module_src, prefer_module=prefer_module,
                             label=label)
        return net


# ------------------------------------------------------------------------------------------------
# Helpers.

def _shape_list(t: Any) -> Optional[List[Optional[int]]]:
    shape = t.shape
    return None if shape.rank is None else shape.as_list()


def _format_shape(shape: Optional[List[Optional[int]]]) -> str:
    if shape is None:
        return '?'
    dims = ['?' if d is None else str(d) for d in shape]
    return '(' + ', '.join(dims) + (',)' if len(dims) == 1 else ')')


def _run_devices(num_gpus: int) -> List[Optional[str]]:
    if num_gpus < 1:
        raise ValueError(f'num_gpus must be >= 1, got {num_gpus}')
    if num_gpus == 1:
        return [None]       # let TensorFlow place ops (GPU if present)
    found = len(tf.config.list_physical_devices('GPU'))
    if found < num_gpus:
        raise ValueError(f'num_gpus={num_gpus} but only {found} GPU(s) are visible')
    return [f'/gpu:{i}' for i in range(num_gpus)]


def _cache_key(x: Any) -> Any:
    if isinstance(x, dict):
        return sorted((str(k), _cache_key(v)) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return [type(x).__name__] + [_cache_key(v) for v in x]
    if isinstance(x, np.ndarray):
        return ('ndarray', x.dtype.str, x.shape, x.tobytes().hex())
    if callable(x) and not isinstance(x, type):
        name = f'{getattr(x, "__module__", "?")}.{getattr(x, "__qualname__", repr(x))}'
        return name if '<' not in name else f'{name}@{id(x)}'
    return repr(x)


def _legacy_output_func(*expr: Any, out_mul: float = 1.0, out_add: float = 0.0,
                        out_shrink: int = 1, out_dtype: Any = None) -> List[Any]:
    """The pre-output_transform options: scale, offset, box-shrink (NCHW) and cast."""
    if out_mul != 1.0:
        expr = [x * out_mul for x in expr]
    if out_add != 0.0:
        expr = [x + out_add for x in expr]
    if out_shrink > 1:
        expr = [tfutil._avg_pool_nchw(x, int(out_shrink)) for x in expr]
    if out_dtype is not None:
        if tf.as_dtype(out_dtype).is_integer:
            expr = [tf.round(x) for x in expr]
        expr = [tf.saturate_cast(x, out_dtype) for x in expr]
    return list(expr)


def _handle_legacy_output_transforms(output_transform, dynamic_kwargs):
    legacy = ('out_mul', 'out_add', 'out_shrink', 'out_dtype')
    if not any(k in dynamic_kwargs for k in legacy):
        return output_transform, dynamic_kwargs
    if output_transform is not None:
        raise ValueError('output_transform cannot be combined with out_mul/out_add/out_shrink/'
                         'out_dtype')
    kwargs = dict(dynamic_kwargs)
    transform = {k: kwargs.pop(k) for k in legacy if k in dynamic_kwargs}
    transform['func'] = _legacy_output_func
    return transform, kwargs


def _map_networks(obj: Any, fn: Callable) -> Any:
    if isinstance(obj, (Network, legacy_pickle.NetworkState)):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(_map_networks(o, fn) for o in obj)
    if isinstance(obj, list):
        return [_map_networks(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _map_networks(v, fn) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------------------------------
# Files.

def load_network(path: Any) -> Any:
    """Reads an official-format pickle into legacy_tf Networks, normally ``(G, D, Gs)``.

    Each network is rebuilt from its ``build_func_name`` and ``static_kwargs`` and its variables
    are assigned; the source text stored in the file is never executed.

    Args:
        path: file path or binary file object (NVIDIA's pickles or the project's snapshots).

    Raises:
        dnnlib.legacy_pickle.PickleFormatError: unreadable, damaged or refused file.
        ValueError: a network cannot be rebuilt (unknown build function, variables that do not
            match); the message names the file and the network.
    """
    obj = legacy_pickle.load(path)
    label = getattr(path, 'name', '<file object>') if hasattr(path, 'read') else os.fspath(path)
    return _map_networks(obj, lambda s: Network.from_state(s, label=str(label)))


def load_pkl(file_or_path: Any) -> Any:
    """``misc.load_pkl`` for official-era scripts: same as :func:`load_network`."""
    return load_network(file_or_path)


def save_pkl(obj: Any, path: Any) -> None:
    """Writes Networks (normally ``(G, D, Gs)``) as an official pickle, atomically.

    The file has NVIDIA's structure (class ``dnnlib.tflib.network.Network``, protocol 4, state
    version 3 for StyleGAN networks); ``build_module_src`` keeps the text of the file a network
    was loaded from, else ``dnnlib.legacy_pickle.PLACEHOLDER_MODULE_SRC``.
    """
    if not any(True for _ in legacy_pickle.iter_networks(obj, Network)):
        raise ValueError('save_pkl: the object holds no legacy_tf Network')
    legacy_pickle.save(_map_networks(obj, lambda n: n.to_state()
                                     if isinstance(n, Network) else n), path)
