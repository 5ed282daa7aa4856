"""Official network pickles <-> Keras models, through one declarative name table.

Reading: ``dnnlib.legacy_pickle.load`` gives plain :class:`NetworkState` objects; the network is
rebuilt from its ``build_func_name`` and ``static_kwargs`` (never from ``build_module_src``, which
is not even read), then every variable is assigned through :data:`NAME_TABLE`.
Writing: the same table in reverse gives :class:`NetworkState` objects in official format for
``dnnlib.legacy_pickle.save``.

The table must account for every variable on both sides: a pickle variable no rule matches, a
rule-matched variable the Keras model lacks, a Keras variable the pickle does not provide, or a
shape mismatch raises :class:`CheckpointError` naming the file, the network and the variable.

Dispatch: top-level build functions are registered in :data:`NETWORK_MODULES` (build function
name -> module holding Keras build functions of that name). Components are built by the module of
their parent, which is how the two different ``G_mapping`` functions of StyleGAN and StyleGAN2
are told apart (spec 1.3).
"""

import collections
import importlib
import re
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from dnnlib import legacy_pickle
from dnnlib.legacy_pickle import NetworkState


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


_RES = r'\d+x\d+'
_LAYER_VARS = r'(weight|bias|Noise/weight|StyleMod/weight|StyleMod/bias)'

# The v1 models keep official names and layouts, so every rule is the identity; the table still
# states exactly which names may exist in each network.
NAME_TABLE: Dict[Tuple[str, str], Sequence[Rule]] = {
    ('tf2.networks_stylegan', 'G_style'): [Rule(r'lod'), Rule(r'dlatent_avg')],
    ('tf2.networks_stylegan', 'G_mapping'): [
        Rule(r'LabelConcat/weight'), Rule(r'Dense\d+/(weight|bias)')],
    ('tf2.networks_stylegan', 'G_synthesis'): [
        Rule(r'lod'), Rule(r'noise\d+'), Rule(r'4x4/Const/const'),
        Rule(rf'4x4/(Const|Dense|Conv)/{_LAYER_VARS}'),
        Rule(rf'{_RES}/(Conv0_up|Conv1)/{_LAYER_VARS}'),
        Rule(r'ToRGB_lod\d+/(weight|bias)')],
    ('tf2.networks_stylegan', 'D_basic'): [
        Rule(r'lod'), Rule(r'FromRGB_lod\d+/(weight|bias)'),
        Rule(rf'{_RES}/(Conv0|Conv1_down)/(weight|bias)'),
        Rule(r'4x4/(Conv|Dense0|Dense1)/(weight|bias)')],
}

# Top-level build function name -> module with Keras build functions of the same names.
NETWORK_MODULES: Dict[str, str] = {
    'G_style': 'tf2.networks_stylegan',
    'G_synthesis': 'tf2.networks_stylegan',
    'D_basic': 'tf2.networks_stylegan',
    'G_main': 'tf2.networks_stylegan2',
    'G_synthesis_stylegan2': 'tf2.networks_stylegan2',
    'G_synthesis_stylegan_revised': 'tf2.networks_stylegan2',
    'D_stylegan2': 'tf2.networks_stylegan2',
    'D_stylegan': 'tf2.networks_stylegan2',
}


def register_rules(module_name: str, build_func_name: str, rules: Sequence[Rule]):
    """Adds the name table of one build function (used by ``tf2/networks_stylegan2.py``)."""
    NAME_TABLE[(module_name, build_func_name)] = list(rules)


def _module_for(state: NetworkState, parent_module: Optional[str], where: str) -> str:
    if parent_module is not None:
        return parent_module
    name = state.build_func_name
    if name == 'G_mapping':   # a stand-alone mapping: StyleGAN2's files are version 4
        return 'tf2.networks_stylegan2' if state.version >= 4 else 'tf2.networks_stylegan'
    if name not in NETWORK_MODULES:
        raise CheckpointError(f'{where}: unknown build function {name!r} of network '
                              f'{state.name!r}; known: {sorted(NETWORK_MODULES)}')
    return NETWORK_MODULES[name]


def _import(module_name: str, build_func_name: str, where: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise CheckpointError(f'{where}: build function {build_func_name!r} needs '
                              f'{module_name.replace(".", "/")}.py, which is not available') from e


def _rules_for(module_name: str, build_func_name: str, where: str) -> Sequence[Rule]:
    key = (module_name, build_func_name)
    if key not in NAME_TABLE:
        raise CheckpointError(f'{where}: no variable name table for {build_func_name!r} '
                              f'in {module_name}')
    return NAME_TABLE[key]


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
    module = _import(module_name, state.build_func_name, where)
    build = getattr(module, 'BUILD_FUNCS', {}).get(state.build_func_name)
    if build is None:
        raise CheckpointError(f'{where}: unknown build function {state.build_func_name!r} of '
                              f'network {state.name!r} in {module_name}')
    components = {key: model_from_state(comp, data_format=data_format, where=where,
                                        _parent_module=module_name)
                  for key, comp in state.components.items()}
    kwargs = dict(state.static_kwargs)
    for reserved in ('name', 'data_format', 'static_kwargs'):
        kwargs.pop(reserved, None)   # never official kwargs; cannot shadow ours
    if components:
        kwargs['components'] = components
    try:
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

DEFAULT_STATE_VERSION = {'tf2.networks_stylegan': 3, 'tf2.networks_stylegan2': 4}


def state_from_model(model, name: Optional[str] = None) -> NetworkState:
    """Official-format state of a Keras model (own variables and components, recursively).

    Values are copied, so later training does not change the returned state.
    """
    module_name = type(model).__module__
    rules = _rules_for(module_name, model.build_func_name, model.name)
    keras_vars = model.own_official_variables()
    mapped = _map_names(keras_vars.keys(), rules, 'Keras model', model.name)
    variables = collections.OrderedDict()
    for name_, (keras_name, rule) in mapped.items():
        if keras_name != name_:
            raise CheckpointError(f'name table rule for {name_!r} is not invertible')
        variables[name_] = np.array(rule.from_keras(keras_vars[name_].numpy()), dtype=np.float32)
    components = collections.OrderedDict(
        (key, state_from_model(comp)) for key, comp in model.components.items())
    version = model.state_version or DEFAULT_STATE_VERSION.get(module_name, 4)
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
