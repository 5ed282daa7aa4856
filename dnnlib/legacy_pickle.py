"""Safe reader and writer of NVIDIA's official StyleGAN / StyleGAN2 network pickles.

An official network pickle is a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects
(spec section 1). The official loader rebuilds each network by executing the Python source that is
embedded in the file (``build_module_src``). That is arbitrary code from a file, so this module
never does it: it reads the state dicts as plain data with a restricted unpickler that resolves
only the handful of globals an official pickle contains, and refuses everything else before it
can run.

Reading:
    ``load(path_or_file)`` returns the object stored in the file (normally the 3-tuple) with every
    ``Network`` replaced by a :class:`NetworkState`. Variables come back as an ordered dict of
    numpy arrays; 0-d variables (``lod``, StyleGAN2's ``noise_strength``), which the official code
    stored as numpy scalars, come back as 0-d arrays.

Writing:
    ``save(obj, path)`` writes the official structure: class ``dnnlib.tflib.network.Network``,
    pickle protocol 4, the state keys in the official order, variables as a list of
    ``(name, value)`` pairs with 0-d values as numpy scalars, numpy globals spelled
    ``numpy.core.multiarray`` so that NumPy 1.x readers (the official TF1 stack) can load it.
    The file is written to a temporary name and renamed, so a crash never leaves half a pickle.
    ``load(save(x))`` equals ``x`` exactly.

    The ``build_module_src`` field of a written network holds what the state object carries: for a
    network read from an official file, the original text unchanged; for a network we create,
    :data:`PLACEHOLDER_MODULE_SRC`, a comment saying the network was written by this project and
    naming the build function. Official TF1 code that loads such a file executes that text and
    then looks up ``build_func_name`` in it, so it cannot rebuild our networks by itself; our
    loaders (``tf2.load_network``, ``legacy_tf.load_network``) never read the field.

Command line:
    ``python -m dnnlib.legacy_pickle info network.pkl`` prints every network's name, build
    function, state version, static kwargs, components and a table of its variables.
"""

import argparse
import collections
import io
import os
import pickle
import pickletools
import sys
import tempfile
from typing import Any, BinaryIO, Dict, Optional, Union

import numpy as np

__all__ = ['PickleFormatError', 'NetworkState', 'load', 'save', 'dumps', 'iter_networks',
           'PLACEHOLDER_MODULE_SRC', 'SUPPORTED_VERSIONS']

SUPPORTED_VERSIONS = (2, 3, 4, 5)     # 3 = StyleGAN repo, 4 = StyleGAN2 repo; 2 and 5 also read.
WRITE_PROTOCOL = 4                    # what the official training loop wrote on Python 3.6/3.7.
STATE_KEYS = ('version', 'name', 'static_kwargs', 'components', 'build_module_src',
              'build_func_name', 'variables')   # official order of Network.__getstate__.
PLACEHOLDER_MODULE_SRC = (
    '# Network written by the StyleGAN TF2 project (dnnlib.legacy_pickle).\n'
    '# The weights are in "variables"; rebuild the network from "build_func_name" and\n'
    '# "static_kwargs" with tf2.load_network or legacy_tf.load_network. No code is stored here.\n')

_NETWORK_GLOBAL = ('dnnlib.tflib.network', 'Network')
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMPY_NUMERIC = ('numpy.core.numeric', 'numpy._core.numeric')
_ALLOWED_KWARG_TYPES = (int, float, str, bool, type(None))


class PickleFormatError(ValueError):
    """A file is not an official network pickle, is damaged, or holds something we refuse."""


# ------------------------------------------------------------------------------------------------
# The plain state object.

class NetworkState:
    """One official ``Network`` as plain data.

    Attributes:
        version: the state version the file carried (3 for StyleGAN, 4 for StyleGAN2).
        name: network name, e.g. ``'Gs'`` or ``'G_synthesis'``.
        static_kwargs: build-function keyword arguments (plain Python values).
        components: ordered dict name -> NetworkState (``synthesis`` then ``mapping`` for G).
        build_module_src: the embedded source text (kept as text; never run).
        build_func_name: unqualified build function name, e.g. ``'G_style'``.
        variables: ordered dict of the network's own variables, name -> numpy array.
    """

    def __init__(self, name: str, build_func_name: str, static_kwargs: Optional[dict] = None,
                 variables: Optional[Dict[str, np.ndarray]] = None,
                 components: Optional[Dict[str, 'NetworkState']] = None, version: int = 4,
                 build_module_src: str = PLACEHOLDER_MODULE_SRC):
        self.version = int(version)
        self.name = str(name)
        self.static_kwargs = dict(static_kwargs or {})
        self.components = collections.OrderedDict(components or {})
        self.build_module_src = build_module_src
        self.build_func_name = str(build_func_name)
        self.variables = collections.OrderedDict(
            (str(k), np.asarray(v)) for k, v in (variables or {}).items())

    def all_variables(self) -> 'collections.OrderedDict[str, np.ndarray]':
        """Own variables then each component's, prefixed with the component's name (official ``vars``)."""
        out = collections.OrderedDict(self.variables)
        for comp in self.components.values():
            for k, v in comp.all_variables().items():
                out[f'{comp.name}/{k}'] = v
        return out

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, NetworkState):
            return NotImplemented
        return (self.version == other.version and self.name == other.name
                and self.static_kwargs == other.static_kwargs
                and self.build_module_src == other.build_module_src
                and self.build_func_name == other.build_func_name
                and list(self.components.items()) == list(other.components.items())
                and _variables_equal(self.variables, other.variables))

    def __repr__(self) -> str:
        return (f'NetworkState(name={self.name!r}, build_func_name={self.build_func_name!r}, '
                f'version={self.version}, {len(self.variables)} variables, '
                f'components={list(self.components)})')


def _variables_equal(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray]) -> bool:
    if list(a.keys()) != list(b.keys()):
        return False
    return all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
               and np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------
# Reading.

class _NetworkStub:
    """What ``dnnlib.tflib.network.Network`` resolves to while unpickling: it only keeps the state."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy's own reduce always passes (ndarray, (0,), b'b'); the data comes later via
    # __setstate__, which checks it against the declared shape before allocating. Anything else
    # could ask for a huge allocation up front, so refuse it.
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise PickleFormatError(f'unexpected array reconstruction arguments {subtype!r}, {shape!r}')
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


def _safe_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dt = np.dtype(spec, align, copy)
    if dt.hasobject:
        raise PickleFormatError(f'object arrays are refused (dtype {spec!r})')
    return dt


def _safe_scalar(dtype: Any, data: Any = None) -> np.generic:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise PickleFormatError('only plain numeric numpy scalars are allowed')
    if len(data) != dtype.itemsize:
        raise PickleFormatError(f'numpy scalar of dtype {dtype} has {len(data)} bytes of data')
    return np.frombuffer(data, dtype=dtype)[0]


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    # Protocol-5 spelling of an array: (buffer, dtype, shape, order). Checked before reshaping.
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise PickleFormatError('only plain numeric arrays are allowed')
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if any(s < 0 for s in shape) or count * dtype.itemsize != len(memoryview(buf).cast('B')):
        raise PickleFormatError(f'array of shape {shape} does not match its {len(buf)} data bytes')
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals an official network pickle contains (spec 1.2)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _NETWORK_GLOBAL:
            return _NetworkStub
        if module in _NUMPY_MODULES and name == '_reconstruct':
            return _safe_reconstruct
        if module in _NUMPY_MODULES and name == 'scalar':
            return _safe_scalar
        if module in _NUMPY_NUMERIC and name == '_frombuffer':
            return _safe_frombuffer
        if module == 'numpy' and name == 'ndarray':
            return np.ndarray
        if module == 'numpy' and name == 'dtype':
            return _safe_dtype
        if (module, name) == ('_codecs', 'encode'):
            # Protocol 2 on Python 3 spells bytes (the arrays' raw data) as encode(text, 'latin1').
            return _safe_latin1_encode
        if module == 'copyreg' and name == '_reconstructor':
            # Protocols 0/1 spell object creation this way; only for our stub class.
            return _safe_copyreg_reconstructor
        raise PickleFormatError(
            f'refusing global {module}.{name}: an official network pickle contains only '
            f'dnnlib.tflib.network.Network and numpy array globals')

    def persistent_load(self, pid: Any) -> Any:
        raise PickleFormatError('persistent ids are not part of the official format')


def _safe_latin1_encode(text: Any, encoding: str = 'utf-8') -> bytes:
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise PickleFormatError('unexpected _codecs.encode call')
    return text.encode('latin1')


def _safe_copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if cls is not _NetworkStub or base is not object or state is not None:
        raise PickleFormatError('unexpected copyreg._reconstructor call')
    return _NetworkStub()


def _read_bytes(path_or_file: Union[str, os.PathLike, BinaryIO]) -> (bytes, str):
    if hasattr(path_or_file, 'read'):
        label = getattr(path_or_file, 'name', '<file object>')
        data = path_or_file.read()
    else:
        label = os.fspath(path_or_file)
        try:
            with open(label, 'rb') as f:
                data = f.read()
        except OSError as e:
            raise PickleFormatError(f'{label}: cannot read file: {e.strerror or e}') from e
    if not isinstance(data, (bytes, bytearray)):
        raise PickleFormatError(f'{label}: file object did not return bytes')
    return bytes(data), str(label)


def _check_structure(data: bytes, label: str) -> None:
    """Walks the opcodes without building anything: catches non-pickles and truncation.

    pickletools reads declared lengths from an in-memory buffer, so a file that declares an
    enormous string or array but is short fails here without allocating that size.
    """
    if len(data) == 0:
        raise PickleFormatError(f'{label}: file is empty')
    if data[0] != 0x80 or len(data) < 2 or not 2 <= data[1] <= 5:
        raise PickleFormatError(f'{label}: not a pickle of protocol 2 to 5 '
                                f'(starts with {data[:8]!r})')
    try:
        last = None
        for opcode, _arg, _pos in pickletools.genops(data):
            last = opcode.name
    except Exception as e:   # pickletools raises ValueError with a description.
        raise PickleFormatError(f'{label}: truncated or damaged pickle ({e})') from None
    if last != 'STOP':
        raise PickleFormatError(f'{label}: truncated pickle (no STOP opcode)')


def _state_to_network(stub: _NetworkStub, label: str, path: str) -> NetworkState:
    state = getattr(stub, 'state', None)
    where = f'{label}: network {path}'
    if not isinstance(state, dict):
        raise PickleFormatError(f'{where} has no state dict')
    version = state.get('version')
    if version not in SUPPORTED_VERSIONS:
        raise PickleFormatError(f'{where}: unsupported state version {version!r} '
                                f'(supported: {SUPPORTED_VERSIONS})')
    for key in ('name', 'build_func_name'):
        if not isinstance(state.get(key), str):
            raise PickleFormatError(f'{where}: state key {key!r} missing or not a string')
    static_kwargs = state.get('static_kwargs', {})
    if not isinstance(static_kwargs, dict):
        raise PickleFormatError(f'{where}: static_kwargs is not a dict')
    _check_kwargs(static_kwargs, f'{where}: static_kwargs')
    components = state.get('components', {})   # version 2 may lack it (spec 1.3).
    if not isinstance(components, dict):
        raise PickleFormatError(f'{where}: components is not a dict')
    comps = collections.OrderedDict()
    for key, comp in components.items():
        if not isinstance(comp, _NetworkStub):
            raise PickleFormatError(f'{where}: component {key!r} is not a Network')
        comps[key] = _state_to_network(comp, label, f'{path}.{key}')
    variables = collections.OrderedDict()
    raw_vars = state.get('variables', [])
    if not isinstance(raw_vars, (list, tuple)):
        raise PickleFormatError(f'{where}: variables is not a list of (name, value) pairs')
    for item in raw_vars:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise PickleFormatError(f'{where}: bad variable entry {type(item).__name__}')
        name, value = item
        if isinstance(value, np.generic):
            value = np.asarray(value)        # numpy scalar -> 0-d array
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise PickleFormatError(f'{where}: variable {name!r} is not a numeric array')
        if name in variables:
            raise PickleFormatError(f'{where}: variable {name!r} appears twice')
        variables[name] = value
    src = state.get('build_module_src', '')
    if not isinstance(src, str):
        raise PickleFormatError(f'{where}: build_module_src is not text')
    return NetworkState(name=state['name'], build_func_name=state['build_func_name'],
                        static_kwargs=static_kwargs, variables=variables, components=comps,
                        version=version, build_module_src=src)


def _check_kwargs(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise PickleFormatError(f'{where}: non-string key {k!r}')
            _check_kwargs(v, f'{where}.{k}')
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_kwargs(v, where)
    elif not isinstance(value, _ALLOWED_KWARG_TYPES):
        raise PickleFormatError(f'{where}: value of type {type(value).__name__} is not allowed')


def _convert(obj: Any, label: str, path: str, found: list) -> Any:
    if isinstance(obj, _NetworkStub):
        net = _state_to_network(obj, label, path)
        found.append(net)
        return net
    if isinstance(obj, tuple):
        return tuple(_convert(o, label, f'{path}[{i}]', found) for i, o in enumerate(obj))
    if isinstance(obj, list):
        return [_convert(o, label, f'{path}[{i}]', found) for i, o in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _convert(v, label, f'{path}[{k!r}]', found) for k, v in obj.items()}
    return obj


def load(path_or_file: Union[str, os.PathLike, BinaryIO]) -> Any:
    """Reads an official network pickle without executing anything from it.

    Args:
        path_or_file: a path, or a binary file object positioned at the start of the pickle.

    Returns:
        The stored object with each ``Network`` as a :class:`NetworkState`; normally the tuple
        ``(G, D, Gs)``.

    Raises:
        PickleFormatError: the file is unreadable, not a pickle, truncated, holds a global other
            than the official ones, or holds no network. The message names the file.
    """
    data, label = _read_bytes(path_or_file)
    _check_structure(data, label)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding='latin1').load()
    except PickleFormatError as e:
        raise PickleFormatError(f'{label}: {e}') from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError) as e:
        raise PickleFormatError(f'{label}: damaged pickle ({type(e).__name__}: {e})') from None
    found: list = []
    result = _convert(obj, label, 'root', found)
    if not found:
        raise PickleFormatError(f'{label}: the pickle holds no networks '
                                f'(found {type(obj).__name__})')
    return result


def iter_networks(obj: Any):
    """Yields every top-level NetworkState in a loaded object (tuple, list, dict or single)."""
    if isinstance(obj, NetworkState):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from iter_networks(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from iter_networks(o)


# ------------------------------------------------------------------------------------------------
# Writing.

class _Global:
    """A name to write as a pickle global, whatever the running numpy calls it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> None:   # save_reduce insists that the function is callable
        raise TypeError(f'{self.module}.{self.name} is only a name to write')


_G_NETWORK = _Global(*_NETWORK_GLOBAL)
_G_RECONSTRUCT = _Global('numpy.core.multiarray', '_reconstruct')
_G_SCALAR = _Global('numpy.core.multiarray', 'scalar')
_G_NDARRAY = _Global('numpy', 'ndarray')
_G_DTYPE = _Global('numpy', 'dtype')


class _OfficialPickler(pickle._Pickler):
    """Writes the official opcodes. The pure-Python pickler lets us spell globals by name
    (``numpy.core.multiarray`` for NumPy 1.x readers, ``dnnlib.tflib.network.Network``)."""

    def __init__(self, file: BinaryIO):
        super().__init__(file, protocol=WRITE_PROTOCOL)

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        memo = self.memo.get(id(obj))
        if memo is not None and isinstance(obj, (_Global, NetworkState)):
            self.write(self.get(memo[0]))
        elif isinstance(obj, _Global):
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
        elif isinstance(obj, NetworkState):
            # What the official Network.__reduce_ex__ produced: NEWOBJ of the class, then BUILD.
            self.save(_G_NETWORK)
            self.save(())
            self.write(pickle.NEWOBJ)
            self.memoize(obj)
            self.save(_network_state_dict(obj))
            self.write(pickle.BUILD)
        else:
            super().save(obj, save_persistent_id)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.dtype):
            _cls, args, state = obj.__reduce__()
            return _G_DTYPE, args, state
        if isinstance(obj, np.generic):
            return _G_SCALAR, (obj.dtype, obj.tobytes())
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise PickleFormatError('object arrays cannot be written')
            arr = np.ascontiguousarray(obj)
            return (_G_RECONSTRUCT, (_G_NDARRAY, (0,), b'b'),
                    (1, arr.shape, arr.dtype, False, arr.tobytes()))
        if isinstance(obj, (type, type(len))) :
            raise PickleFormatError(f'cannot write global {obj!r}: not part of the official format')
        return NotImplemented


def _network_state_dict(net: NetworkState) -> dict:
    variables = []
    for name, value in net.variables.items():
        value = np.asarray(value)
        variables.append((name, value[()] if value.ndim == 0 else value))   # 0-d -> numpy scalar
    values = {
        'version': net.version, 'name': net.name, 'static_kwargs': dict(net.static_kwargs),
        'components': dict(net.components), 'build_module_src': net.build_module_src,
        'build_func_name': net.build_func_name, 'variables': variables,
    }
    return {k: values[k] for k in STATE_KEYS}


def dumps(obj: Any) -> bytes:
    """Serialises NetworkStates (or a tuple/list of them) in the official format."""
    if not any(True for _ in iter_networks(obj)):
        raise PickleFormatError('nothing to save: the object holds no NetworkState')
    buf = io.BytesIO()
    _OfficialPickler(buf).dump(obj)
    return buf.getvalue()


def save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """Writes ``obj`` (normally ``(G, D, Gs)`` of NetworkState) as an official pickle, atomically."""
    data = dumps(obj)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ------------------------------------------------------------------------------------------------
# Command line.

def format_info(obj: Any) -> str:
    """Human-readable description of every network in a loaded pickle."""
    lines = []
    for net in iter_networks(obj):
        _describe(net, lines, indent='')
    return '\n'.join(lines)


def _describe(net: NetworkState, lines: list, indent: str) -> None:
    lines.append(f'{indent}Network {net.name!r}: build_func_name={net.build_func_name!r}, '
                 f'state version {net.version}')
    lines.append(f'{indent}  static_kwargs: {net.static_kwargs}')
    lines.append(f'{indent}  components: {[f"{k} ({c.name})" for k, c in net.components.items()]}')
    rows = [(name, 'x'.join(str(s) for s in v.shape) or 'scalar', str(v.dtype), v.size)
            for name, v in net.all_variables().items()]
    w = max([len(r[0]) for r in rows] + [8])
    lines.append(f'{indent}  {"variable":<{w}}  {"shape":<18} {"dtype":<8} {"params":>12}')
    lines.append(f'{indent}  {"-" * w}  {"-" * 18} {"-" * 8} {"-" * 12}')
    for name, shape, dtype, size in rows:
        lines.append(f'{indent}  {name:<{w}}  {shape:<18} {dtype:<8} {size:>12,}')
    lines.append(f'{indent}  {"total":<{w}}  {len(rows):<18} {"":<8} {sum(r[3] for r in rows):>12,}')
    lines.append('')


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m dnnlib.legacy_pickle',
        description='Inspect official StyleGAN/StyleGAN2 network pickles safely (nothing in the '
                    'file is executed).')
    sub = parser.add_subparsers(dest='command', required=True)
    p_info = sub.add_parser('info', help='print each network, its kwargs and variables')
    p_info.add_argument('pkl', nargs='+', help='network pickle(s)')
    args = parser.parse_args(argv)
    status = 0
    for path in args.pkl:
        try:
            obj = load(path)
        except PickleFormatError as e:
            print(f'error: {e}', file=sys.stderr)
            status = 1
            continue
        print(f'== {path}')
        print(format_info(obj))
    return status


if __name__ == '__main__':
    sys.exit(main())
