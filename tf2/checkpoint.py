"""Official network pickles <-> Keras models, through one declarative name table.

Reading: ``dnnlib.legacy_pickle.load`` gives plain :class:`NetworkState` objects; the network is
rebuilt from its ``build_func_name`` and ``static_kwargs`` (never from ``build_module_src``, which
is not even read), then every variable is assigned through the name rules of its registry entry.
Writing: the same table in reverse gives :class:`NetworkState` objects in official format for
``dnnlib.legacy_pickle.save``.

The table must account for every variable on both sides: a pickle variable no rule matches, a
rule-matched variable the Keras model lacks, a Keras variable the pickle does not provide, or a
shape mismatch raises :class:`CheckpointError` naming the file, the network and the variable.

Registry: every network module of :data:`NETWORK_MODULES` declares ``NETWORKS``, its build
function names -> :class:`NetworkKind` (Keras build function, family, role, pickle state version,
API input names, name rules). Every consumer reads that one table; a new network kind is one
entry there. Components are built by the module of their parent, which is how the two different
``G_mapping`` functions of StyleGAN and StyleGAN2 are told apart (spec 1.3).
"""

import collections
import importlib
import re
import sys
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from dnnlib import legacy_pickle
from dnnlib.legacy_pickle import NetworkState
from tf2 import layers as L


class CheckpointError(ValueError):
    """A network pickle and a Keras model do not correspond variable for variable."""


# ------------------------------------------------------------------------------------------------
# The name table.

class Rule:
    """One row of the name table.

    Attributes:
        pattern: regular expression matching an official local variable name (full match).
        keras_name: template giving the Keras-side official name (``re`` replacement syntax).
        to_keras: function official value -> value assigned to the Keras variable.
        from_keras: function Keras value -> official value (inverse of ``to_keras``).
    """

    def __init__(self, pattern: str, keras_name: str = r'\g<0>',
                 to_keras: Callable = None, from_keras: Callable = None):
        self.pattern = re.compile(pattern)
        self.keras_name = keras_name
        self.to_keras = to_keras or (lambda v: v)
        self.from_keras = from_keras or (lambda v: v)

    def match(self, name: str) -> Optional[str]:
        m = self.pattern.fullmatch(name)
        return m.expand(self.keras_name) if m else None


class NetworkKind(NamedTuple):
    """What every consumer needs to know of one official build function."""
    build: Callable                 # Keras build function: (name=, data_format=, **official kwargs)
    family: str                     # 'stylegan' or 'stylegan2'
    role: str                       # 'G', 'G_mapping', 'G_synthesis' or 'D'
    state_version: int              # pickle state version it is written with (3 or 4)
    input_names: Tuple[str, ...]    # official API input names, in order
    rules: Sequence[Rule]           # name table of its own variables


# The modules holding Keras networks; each declares NETWORKS = {build_func_name: NetworkKind}.
NETWORK_MODULES: Tuple[str, ...] = ('tf2.networks_stylegan', 'tf2.networks_stylegan2')


def network_kind(module_name: str, build_func_name: str, where: str = '<memory>') -> NetworkKind:
    """The registry entry of a build function of ``module_name``."""
    kinds = getattr(_import(module_name, build_func_name, where), 'NETWORKS', {})
    if build_func_name not in kinds:
        raise CheckpointError(f'{where}: unknown build function {build_func_name!r} in '
                              f'{module_name}; known: {sorted(kinds)}')
    return kinds[build_func_name]


def kind_of(model) -> NetworkKind:
    """The registry entry of a Keras network model."""
    return network_kind(type(model).__module__, model.build_func_name, model.name)


def module_for_build_func(build_func_name: str, version: int, where: str = '<memory>') -> str:
    """The module of a top-level network: the one whose registry has the name. ``G_mapping`` is
    in both; a stand-alone one is StyleGAN2's when its file says state version 4 or later."""
    owners = [m for m in NETWORK_MODULES
              if build_func_name in getattr(_import(m, build_func_name, where), 'NETWORKS', {})]
    if not owners:
        raise CheckpointError(f'{where}: unknown build function {build_func_name!r}; '
                              f'known: {_all_build_func_names(where)}')
    owners.sort(key=lambda m: network_kind(m, build_func_name).state_version)
    fitting = [m for m in owners if network_kind(m, build_func_name).state_version <= version]
    return fitting[-1] if fitting else owners[0]


def _all_build_func_names(where: str):
    return sorted({n for m in NETWORK_MODULES for n in _import(m, m, where).NETWORKS})


def _module_for(state: NetworkState, parent_module: Optional[str], where: str) -> str:
    if parent_module is not None:
        return parent_module
    return module_for_build_func(state.build_func_name, state.version, where)


def _import(module_name: str, build_func_name: str, where: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise CheckpointError(f'{where}: build function {build_func_name!r} needs '
                              f'{module_name.replace(".", "/")}.py, which is not available') from e


def _rules_for(module_name: str, build_func_name: str, where: str) -> Sequence[Rule]:
    return network_kind(module_name, build_func_name, where).rules


def _map_names(names, rules, where, net_name) -> Dict[str, Tuple[str, Rule]]:
    """Official name -> (Keras-side name, rule); an unknown name is an error."""
    out = collections.OrderedDict()
    for name in names:
        hits = [(r.match(name), r) for r in rules if r.match(name) is not None]
        if not hits:
            raise CheckpointError(f'{where}: network {net_name!r} has variable {name!r}, '
                                  'which no rule of the name table accounts for')
        if len(hits) > 1:
            raise CheckpointError(f'{where}: variable {name!r} of {net_name!r} matches '
                                  f'{len(hits)} rules of the name table')
        out[name] = hits[0]
    return out


# ------------------------------------------------------------------------------------------------
# Pickle state -> Keras model.

def model_from_state(state: NetworkState, name: Optional[str] = None, data_format: str = 'NHWC',
                     where: str = '<memory>', _parent_module: Optional[str] = None):
    """Builds the Keras model of one official network state and assigns its variables.

    Args:
        state: a network read by ``dnnlib.legacy_pickle.load`` (components included).
        name: network name to give the model (default: the state's name).
        data_format: internal layout of the model (``'NHWC'`` or ``'NCHW'``).
        where: file name used in error messages.

    Raises:
        CheckpointError: unknown build function, or variables that do not correspond.
    """
    module_name = _module_for(state, _parent_module, where)
    build = network_kind(module_name, state.build_func_name, where).build
    components = {key: model_from_state(comp, data_format=data_format, where=where,
                                        _parent_module=module_name)
                  for key, comp in state.components.items()}
    kwargs = dict(state.static_kwargs)
    for reserved in ('name', 'data_format', 'static_kwargs'):
        kwargs.pop(reserved, None)   # never official kwargs; cannot shadow ours
    if components:
        kwargs['components'] = components
    try:
        try:
            model = build(name=name or state.name, data_format=data_format, **kwargs)
        except L.UnknownKwargsError as e:
            # NVIDIA's build functions ignore keys they do not know, so a released pickle may
            # carry some; say which are ignored (they stay in static_kwargs for saving).
            print(f'{where}: network {state.name!r} ({state.build_func_name}): ignoring '
                  f'static_kwargs {e.unknown} that this port does not use', file=sys.stderr)
            for key in e.unknown:
                kwargs.pop(key)
            model = build(name=name or state.name, data_format=data_format, **kwargs)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f'{where}: cannot build network {state.name!r} '
                              f'({state.build_func_name}): {e}') from e
    model.static_kwargs = dict(state.static_kwargs)
    model.state_version = state.version
    model.build_module_src = state.build_module_src
    assign_state_variables(model, state, where, module_name)
    return model


def assign_state_variables(model, state: NetworkState, where: str = '<memory>',
                           module_name: Optional[str] = None):
    """Assigns a state's own variables (not its components') to ``model`` via the name table."""
    module_name = module_name or type(model).__module__
    rules = _rules_for(module_name, state.build_func_name, where)
    mapped = _map_names(state.variables.keys(), rules, where, state.name)
    keras_vars = model.own_official_variables()
    used = set()
    for name, (keras_name, rule) in mapped.items():
        var = keras_vars.get(keras_name)
        if var is None:
            raise CheckpointError(f'{where}: network {state.name!r} has variable {name!r}, '
                                  f'but the {state.build_func_name} model built from its '
                                  'static_kwargs has no such variable')
        value = np.asarray(rule.to_keras(state.variables[name]), dtype=np.float32)
        if tuple(value.shape) != tuple(var.shape):
            raise CheckpointError(f'{where}: variable {name!r} of {state.name!r} has shape '
                                  f'{list(value.shape)}, the model expects {list(var.shape)}')
        var.assign(value)
        used.add(keras_name)
    missing = [k for k in keras_vars if k not in used]
    if missing:
        raise CheckpointError(f'{where}: network {state.name!r} lacks variables the '
                              f'{state.build_func_name} model needs: {missing[:5]}'
                              f'{" ..." if len(missing) > 5 else ""}')


def networks_from_pickle(path: str, data_format: str = 'NHWC'):
    """Loads an official ``(G, D, Gs)`` pickle as three Keras models (weights assigned).

    Raises:
        CheckpointError: the file's networks do not match what their build functions create.
        dnnlib.legacy_pickle.PickleFormatError: the file is not an official network pickle.
    """
    data = legacy_pickle.load(path)
    if not (isinstance(data, tuple) and len(data) == 3
            and all(isinstance(x, NetworkState) for x in data)):
        raise CheckpointError(f'{path}: expected a (G, D, Gs) tuple of networks, found '
                              f'{type(data).__name__}'
                              f'{" of length %d" % len(data) if isinstance(data, tuple) else ""}')
    return tuple(model_from_state(s, data_format=data_format, where=path) for s in data)


# ------------------------------------------------------------------------------------------------
# Keras model -> pickle state.

def state_from_model(model, name: Optional[str] = None) -> NetworkState:
    """Official-format state of a Keras model (own variables and components, recursively).

    Values are copied, so later training does not change the returned state.
    """
    kind = kind_of(model)
    rules = kind.rules
    keras_vars = model.own_official_variables()
    mapped = _map_names(keras_vars.keys(), rules, 'Keras model', model.name)
    variables = collections.OrderedDict()
    for name_, (keras_name, rule) in mapped.items():
        if keras_name != name_:
            raise CheckpointError(f'name table rule for {name_!r} is not invertible')
        variables[name_] = np.array(rule.from_keras(keras_vars[name_].numpy()), dtype=np.float32)
    components = collections.OrderedDict(
        (key, state_from_model(comp)) for key, comp in model.components.items())
    version = model.state_version or kind.state_version
    extra = {} if model.build_module_src is None else {'build_module_src': model.build_module_src}
    return NetworkState(name or model.name, model.build_func_name,
                        static_kwargs=dict(model.static_kwargs), variables=variables,
                        components=components, version=version, **extra)


def network_states(G, D, Gs) -> Tuple[NetworkState, NetworkState, NetworkState]:  # noqa: N803
    """``(G, D, Gs)`` Keras models -> official states named ``'G'``, ``'D'``, ``'Gs'``.

    Save them with ``dnnlib.legacy_pickle.save(network_states(G, D, Gs), path)``.
    """
    return state_from_model(G, 'G'), state_from_model(D, 'D'), state_from_model(Gs, 'Gs')


def save_networks(path: str, G, D, Gs):   # noqa: N803
    """Writes ``(G, D, Gs)`` Keras models as an official network pickle (atomic rename)."""
    legacy_pickle.save(network_states(G, D, Gs), path)


# ------------------------------------------------------------------------------------------------
# Cloning and moving average.

def _paired_variables(dst, src):
    dst_vars, src_vars = dst.official_variables(), src.official_variables()
    return [(dst_vars[k], src_vars[k]) for k in dst_vars if k in src_vars]


def copy_vars(dst, src):
    """Copies every variable present in both models, by official name (``copy_vars_from``)."""
    for d, s in _paired_variables(dst, src):
        if tuple(d.shape) != tuple(s.shape):
            raise CheckpointError(f'copy_vars: shape mismatch {list(d.shape)} vs {list(s.shape)}')
        d.assign(s)


def clone(model, name: Optional[str] = None):
    """A new model with the same build function, kwargs and variable values (official ``clone``)."""
    state = state_from_model(model, name or model.name)
    return model_from_state(state, name=name or model.name, data_format=model.data_format,
                            where=f'clone of {model.name}')


def setup_as_moving_average_of(dst, src, beta, beta_nontrainable=0.0):
    """Official moving average: ``dst <- src + (dst - src) * b`` for variables in both.

    ``b = beta`` for trainable variables and ``beta_nontrainable`` (0: copy) for the others
    (``lod``, ``dlatent_avg``, ``noiseN``). ``beta`` may be a Python number or a tensor; this
    works eagerly and inside ``tf.function``.
    """
    for d, s in _paired_variables(dst, src):
        b = beta if s.trainable else beta_nontrainable
        if isinstance(b, (int, float)) and b == 0:
            d.assign(s)
        else:
            s_val = tf.convert_to_tensor(s)
            d.assign(s_val + (tf.convert_to_tensor(d) - s_val) * b)
