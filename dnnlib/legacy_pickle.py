"""Safe reader and writer of NVIDIA's official StyleGAN / StyleGAN2 network pickles.

An official network pickle is a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects
(spec section 1). The official loader rebuilds each network by executing the Python source that is
embedded in the file (``build_module_src``). That is arbitrary code from a file, so this module
never does it: it runs the pickle's opcodes with its own small interpreter, which builds plain data,
accepts only the handful of globals an official pickle contains, never calls or changes any of
them, and refuses everything else (issue #13: hostile files must not crash, hang, bloat or change
the loader).

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

import _compat_pickle
import argparse
import collections
import io
import os
import pickle
import pickletools
import struct
import sys
from typing import Any, BinaryIO, Dict, Optional, Union

import numpy as np

from dnnlib.util import atomic_write

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
# Reading, part 1: an opcode interpreter that builds plain data and only records calls.
#
# pickle.Unpickler hands the file real callables: REDUCE calls them with arguments of the file's
# choosing (numpy.ndarray then builds object arrays whose pointers are bytes from the file, or
# gigabytes of uninitialised memory) and BUILD sets attributes on them, which changes the loader
# for the rest of the process. So the file is run by this interpreter instead. It creates only
# None, bool, int, float, str, memoryview (of the file's bytes), tuple, list and dict; a global
# becomes a private _GlobalRef, and REDUCE / NEWOBJ only record a _Call. Nothing the file names is
# ever called or changed. Part 2 then interprets the recorded calls it recognises.

_MAX_OBJECTS = 500_000        # containers, calls, marks and memo entries of one file: bounds the
                              # interpreter to about 50 MB (official files need a few thousand).
_MAX_DEPTH = 100              # nesting of the result; official pickles nest about 12 deep.
_MAX_TREE_NODES = 1_000_000   # size of the result with every memo reference expanded.
_MAX_NDIM = 32                # numpy 1.x limit; official variables have at most 4 dimensions.

_GLOBAL_NAMES = {   # kind -> the name official files use, for messages.
    'Network': 'dnnlib.tflib.network.Network', 'ndarray': 'numpy.ndarray', 'dtype': 'numpy.dtype',
    '_reconstruct': 'numpy.core.multiarray._reconstruct', 'scalar': 'numpy.core.multiarray.scalar',
    '_frombuffer': 'numpy.core.numeric._frombuffer', 'encode': '_codecs.encode',
}
_GLOBALS = {
    _NETWORK_GLOBAL: 'Network',
    ('numpy', 'ndarray'): 'ndarray',
    ('numpy', 'dtype'): 'dtype',
    ('_codecs', 'encode'): 'encode',   # protocol 2 spells bytes as encode(text, 'latin1').
    **{(module, '_reconstruct'): '_reconstruct' for module in _NUMPY_MODULES},
    **{(module, 'scalar'): 'scalar' for module in _NUMPY_MODULES},
    **{(module, '_frombuffer'): '_frombuffer' for module in _NUMPY_NUMERIC},   # protocol 5 arrays
}
_REDUCE_KINDS = frozenset({'_reconstruct', 'scalar', '_frombuffer', 'dtype', 'encode'})
_BUILD_KINDS = frozenset({'Network', '_reconstruct', 'dtype'})   # official files BUILD these once.
_KEY_TYPES = frozenset({str, int, float, bool, type(None)})   # hashing them cannot recurse.
_REFUSED_OPS = {
    'PERSID': 'persistent ids are not part of the official format',
    'BINPERSID': 'persistent ids are not part of the official format',
    'EXT1': 'extension codes are not part of the official format',
    'EXT2': 'extension codes are not part of the official format',
    'EXT4': 'extension codes are not part of the official format',
    'INST': 'protocol 0/1 object creation is not part of the official format',
    'OBJ': 'protocol 0/1 object creation is not part of the official format',
    'NEXT_BUFFER': 'out-of-band buffers are not part of the official format',
    **{name: 'protocol 0 text opcodes are not written by protocols 2 to 5'
       for name in ('INT', 'LONG', 'FLOAT', 'STRING', 'UNICODE', 'GET', 'PUT')},
    'EMPTY_SET': 'sets are not part of the official format',
    'ADDITEMS': 'sets are not part of the official format',
    'FROZENSET': 'sets are not part of the official format',
    'READONLY_BUFFER': 'out-of-band buffers are not part of the official format',
}


class _Refused(Exception):
    """A reason to refuse the file; load() prefixes the file name and raises PickleFormatError."""


class _GlobalRef:
    """Stands for a global the file named. Nothing calls it, and BUILD on it is refused."""
    __slots__ = ('kind',)

    def __init__(self, kind: str):
        self.kind = kind


_NO_STATE = object()


class _Call:
    """A REDUCE or NEWOBJ kept as data: what the file asked to call, arguments, BUILD state."""
    __slots__ = ('kind', 'args', 'state')

    def __init__(self, kind: str, args: Any):
        self.kind, self.args, self.state = kind, args, _NO_STATE


def _clip(text: str, limit: int = 80) -> str:
    """File text for a message: bounded and on one line."""
    return repr(text[:limit])[1:-1] + ('...' if len(text) > limit else '')


def _what(obj: Any) -> str:
    """Short description of an object the interpreter made, safe for any size and nesting."""
    kind = type(obj)
    if kind is _GlobalRef:
        return f'the global {_GLOBAL_NAMES[obj.kind]}'
    if kind is _Call:
        return f'a {_GLOBAL_NAMES[obj.kind]} object'
    if kind is str:
        return repr(obj[:40]) + ('...' if len(obj) > 40 else '')
    if kind is bytes or kind is memoryview:
        return f'bytes of length {len(obj)}'
    if kind is int:
        return str(obj) if obj.bit_length() <= 64 else f'an int of {obj.bit_length()} bits'
    if kind in (float, bool, type(None)):
        return repr(obj)
    return kind.__name__


_U1, _U2, _I4, _U4, _U8, _F8 = (struct.Struct(f).unpack_from
                                for f in ('<B', '<H', '<i', '<I', '<Q', '>d'))
_TRUNCATED = 'truncated pickle (an opcode runs past the end of the file)'


def _opname(code: int) -> str:
    op = pickletools.code2op.get(chr(code))
    return op.name if op else f'0x{code:02x}'


class _Machine:
    """Runs the opcodes of one pickle (see the section comment); ``run`` returns the root object.

    It decodes the bytes itself: a declared length is checked against the bytes left before
    anything is read, so a short file cannot make it allocate the size it declares.
    """

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.whole = memoryview(data)
        self.stack: list = []
        self.marks: list = []    # stack positions saved by MARK
        self.fence = 0           # items below the newest MARK are out of reach, as in pickle
        self.memo: dict = {}     # a dict, so a large memo index allocates nothing
        self.proto = 2
        self.made = 0
        self.handlers = [None] * 256
        for code, handler in self._table().items():
            self.handlers[ord(code)] = handler

    def _table(self) -> dict:
        push, take, view, fixed = self.stack.append, self._take, self._view, self._fixed
        return {
            '\x80': self._proto, '\x95': lambda: fixed(_U8, 8),   # FRAME only groups opcodes
            '(': self._mark, '0': self._pop_op, '1': self._pop_mark, '2': self._dup,
            'N': lambda: push(None), '\x88': lambda: push(True), '\x89': lambda: push(False),
            'J': lambda: push(fixed(_I4, 4)), 'K': lambda: push(fixed(_U1, 1)),
            'M': lambda: push(fixed(_U2, 2)), 'G': lambda: push(fixed(_F8, 8)),
            '\x8a': lambda: push(_long(take(fixed(_U1, 1)))),
            '\x8b': lambda: push(_long(take(fixed(_I4, 4)))),
            # Python 2 str, read as pickle.load(encoding='latin1') reads it.
            'T': lambda: push(take(fixed(_I4, 4)).decode('latin1')),
            'U': lambda: push(take(fixed(_U1, 1)).decode('latin1')),
            'X': lambda: push(_utf8(take(fixed(_U4, 4)))),
            '\x8c': lambda: push(_utf8(take(fixed(_U1, 1)))),
            '\x8d': lambda: push(_utf8(take(fixed(_U8, 8)))),
            # Byte strings stay views of the file until part 2 copies them into arrays.
            'B': lambda: push(view(fixed(_U4, 4))), 'C': lambda: push(view(fixed(_U1, 1))),
            '\x8e': lambda: push(view(fixed(_U8, 8))),
            '\x96': lambda: push(view(fixed(_U8, 8))),   # BYTEARRAY8: array data of protocol 5
            ')': lambda: push(()), 't': lambda: self._new(tuple(self._pop_mark())),
            '\x85': lambda: self._tuple_n(1), '\x86': lambda: self._tuple_n(2),
            '\x87': lambda: self._tuple_n(3),
            ']': lambda: self._new([]), 'l': lambda: self._new(self._pop_mark()),
            'a': self._append, 'e': self._appends,
            '}': lambda: self._new({}), 'd': lambda: self._new(_set_items({}, self._pop_mark())),
            's': self._setitem, 'u': self._setitems,
            'h': lambda: self._get(fixed(_U1, 1)), 'j': lambda: self._get(fixed(_U4, 4)),
            'q': lambda: self._put(fixed(_U1, 1)), 'r': lambda: self._put(fixed(_U4, 4)),
            '\x94': lambda: self._put(len(self.memo)),
            'c': self._global, '\x93': self._stack_global,
            'R': self._reduce, '\x81': self._newobj, '\x92': self._newobj_ex, 'b': self._build,
        }

    def run(self) -> Any:
        data, stack, memo, handlers = self.data, self.stack, self.memo, self.handlers
        pos, end = 0, len(data)
        while pos < end:
            code = data[pos]
            # The valid forms of the opcodes that make up most of an official file run inline;
            # anything else goes to the handler, which also reports the errors.
            if code == 0x94:                                                  # MEMOIZE
                if len(stack) > self.fence and self.made < _MAX_OBJECTS:
                    memo[len(memo)] = stack[-1]
                    self.made += 1
                    pos += 1
                    continue
            elif code == 0x68:                                                # BINGET
                if pos + 1 < end and data[pos + 1] in memo:
                    stack.append(memo[data[pos + 1]])
                    pos += 2
                    continue
            elif code == 0x4b:                                                # BININT1
                if pos + 1 < end:
                    stack.append(data[pos + 1])
                    pos += 2
                    continue
            elif 0x85 <= code <= 0x87:                                        # TUPLE1..3
                n = code - 0x84
                if len(stack) - self.fence >= n and self.made < _MAX_OBJECTS:
                    items = tuple(stack[-n:])
                    del stack[-n:]
                    stack.append(items)
                    self.made += 1
                    pos += 1
                    continue
            elif code == 0x8c:                                                # SHORT_BINUNICODE
                if pos + 1 < end and pos + 2 + data[pos + 1] <= end:
                    raw = data[pos + 2:pos + 2 + data[pos + 1]]
                    if raw.isascii():
                        stack.append(raw.decode('ascii'))
                        pos += 2 + len(raw)
                        continue
            elif code == 0x28:                                                # MARK
                if self.made < _MAX_OBJECTS:
                    self.made += 1
                    self.marks.append(self.fence)
                    self.fence = len(stack)
                    pos += 1
                    continue
            elif code == 0x89:                                                # NEWFALSE
                stack.append(False)
                pos += 1
                continue
            elif code == 0x2e:                                                # STOP
                return self._pop()
            self.pos = pos + 1
            try:
                handler = handlers[code]
                if handler is None:
                    name = _opname(code)
                    raise _Refused(_REFUSED_OPS.get(name, f'opcode {name} is not part of the '
                                                          'official format'))
                handler()
            except _Refused as e:
                raise _Refused(f'{e} (opcode {_opname(code)} at byte {pos})') from None
            pos = self.pos
        raise _Refused('truncated pickle (no STOP opcode)')

    # Decoding.
    def _take(self, n: int) -> bytes:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise _Refused(_TRUNCATED)
        self.pos = start + n
        return self.data[start:self.pos]

    def _view(self, n: int) -> memoryview:
        start = self.pos
        if start + n > len(self.data):
            raise _Refused(_TRUNCATED)
        self.pos = start + n
        return self.whole[start:self.pos]

    def _fixed(self, unpack: Any, size: int) -> Any:
        if self.pos + size > len(self.data):
            raise _Refused(_TRUNCATED)
        value = unpack(self.data, self.pos)[0]
        self.pos += size
        return value

    def _line(self) -> str:
        end = self.data.find(b'\n', self.pos)
        if end < 0:
            raise _Refused(_TRUNCATED)
        raw = self.data[self.pos:end]
        self.pos = end + 1
        return _utf8(raw)

    # Stack. The checks replace the IndexErrors a malformed file would cause.
    def _count(self) -> None:
        self.made += 1
        if self.made > _MAX_OBJECTS:
            raise _Refused(f'more than {_MAX_OBJECTS:,} containers, calls, marks and memo entries')

    def _new(self, obj: Any) -> None:
        self._count()
        self.stack.append(obj)

    def _pop(self) -> Any:
        if len(self.stack) <= self.fence:
            raise _Refused('stack underflow')
        return self.stack.pop()

    def _peek(self) -> Any:
        if len(self.stack) <= self.fence:
            raise _Refused('stack underflow')
        return self.stack[-1]

    def _top(self, kind: type) -> Any:
        if type(self._peek()) is not kind:
            raise _Refused(f'expected a {kind.__name__} on the stack, '
                           f'found {_what(self.stack[-1])}')
        return self.stack[-1]

    def _mark(self) -> None:
        self._count()
        self.marks.append(self.fence)
        self.fence = len(self.stack)

    def _pop_mark(self) -> list:
        if not self.marks:
            raise _Refused('no MARK to pop')
        items = self.stack[self.fence:]
        del self.stack[self.fence:]
        self.fence = self.marks.pop()
        return items

    def _pop_op(self) -> None:
        if len(self.stack) > self.fence:
            self.stack.pop()
        else:
            self._pop_mark()

    def _dup(self) -> None:
        self.stack.append(self._peek())

    def _tuple_n(self, n: int) -> None:
        if len(self.stack) - self.fence < n:
            raise _Refused('stack underflow')
        items = tuple(self.stack[-n:])
        del self.stack[-n:]
        self._new(items)

    def _append(self) -> None:
        value = self._pop()
        self._top(list).append(value)

    def _appends(self) -> None:
        items = self._pop_mark()
        self._top(list).extend(items)

    def _setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        _set_items(self._top(dict), [key, value])

    def _setitems(self) -> None:
        items = self._pop_mark()
        _set_items(self._top(dict), items)

    # Memo.
    def _get(self, key: int) -> None:
        if key not in self.memo:
            raise _Refused(f'memo entry {key} was never stored')
        self.stack.append(self.memo[key])

    def _put(self, key: int) -> None:
        value = self._peek()
        if key not in self.memo:
            self._count()
        self.memo[key] = value

    # Globals and calls: recorded, never resolved to real objects.
    def _proto(self) -> None:
        version = self._fixed(_U1, 1)
        if not 2 <= version <= 5:
            raise _Refused(f'protocol {version} (only 2 to 5 are read)')
        self.proto = version

    def _global(self) -> None:
        module = self._line()
        self._push_global(module, self._line())

    def _stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if type(module) is not str or type(name) is not str:
            raise _Refused('STACK_GLOBAL needs two strings')
        self._push_global(module, name)

    def _push_global(self, module: str, name: str) -> None:
        if self.proto < 3:   # what pickle.Unpickler(fix_imports=True) does with Python 2 names
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        kind = _GLOBALS.get((module, name))
        if kind is None:
            raise _Refused(f'refusing global {_clip(module)}.{_clip(name)}: an official network '
                           'pickle contains only dnnlib.tflib.network.Network and numpy array '
                           'globals')
        self._new(_GlobalRef(kind))

    def _reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if type(func) is not _GlobalRef:
            raise _Refused(f'REDUCE calls {_what(func)}, not a global')
        if func.kind not in _REDUCE_KINDS:
            raise _Refused(f'calling {_what(func)} is not part of the official format')
        if type(args) is not tuple:
            raise _Refused(f'REDUCE arguments are {_what(args)}, not a tuple')
        self._new(_Call(func.kind, args))

    def _newobj(self) -> None:
        args = self._pop()
        self._new_network(self._pop(), args, {})

    def _newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        self._new_network(self._pop(), args, kwargs)

    def _new_network(self, cls: Any, args: Any, kwargs: Any) -> None:
        if not (type(cls) is _GlobalRef and cls.kind == 'Network'):
            raise _Refused(f'creating {_what(cls)} is not part of the official format')
        if not (type(args) is tuple and not args and type(kwargs) is dict and not kwargs):
            raise _Refused('a Network is created without arguments')
        self._new(_Call('Network', ()))

    def _build(self) -> None:
        state = self._pop()
        target = self._peek()
        if type(target) is not _Call or target.kind not in _BUILD_KINDS:
            raise _Refused(f'BUILD on {_what(target)} is not part of the official format')
        if target.state is not _NO_STATE:
            raise _Refused(f'second BUILD on {_what(target)}')
        target.state = state


def _long(raw: bytes) -> int:
    return int.from_bytes(raw, 'little', signed=True)


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode('utf-8', 'surrogatepass')   # what pickle itself accepts
    except UnicodeDecodeError:
        raise _Refused('a string is not valid UTF-8') from None


def _set_items(target: dict, items: list) -> dict:
    if len(items) % 2:
        raise _Refused('odd number of items for a dict')
    for i in range(0, len(items), 2):
        if type(items[i]) not in _KEY_TYPES:
            raise _Refused(f'dict key {_what(items[i])} is not a str or a number')
        target[items[i]] = items[i + 1]
    return target


# ------------------------------------------------------------------------------------------------
# Reading, part 2: interpreting the result. Each memo-shared object is interpreted once (so a
# structure that doubles per memo level costs one visit per level), a repeat on the current path
# is a cycle, and depth, tree size and the bytes of array data are capped. Arrays are built only
# for numeric dtypes and only from bytes that were in the file.

_LEAF_TYPES = frozenset({type(None), bool, int, float, str, bytes})
_STATE = object()      # path marker: the keys below it are a network's state keys.
_NUMERIC_KINDS = 'biufc'


def _path_text(path: Any) -> str:
    """'root[0].components['synthesis']' from the linked (parent, key) path."""
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    text, attribute = 'root', False
    for key in reversed(keys):
        if key is _STATE:
            attribute = True
            continue
        if attribute and type(key) is str:
            text += '.' + _clip(key, 40)
        else:
            text += f'[{key}]' if type(key) is int and key.bit_length() <= 64 else f'[{_what(key)}]'
        attribute = False
    return text


class _Resolver:
    """Turns the interpreter's objects into plain data, numeric arrays and NetworkStates."""

    def __init__(self, data_budget: int):
        self.done: Dict[int, tuple] = {}   # id -> (result, tree size); the root keeps ids alive
        self.active: set = set()            # ids on the current path
        self.data_budget = data_budget      # bytes of array data still allowed
        self.kwargs_checked: set = set()
        self.networks = 0

    def value(self, obj: Any, path: Any, depth: int) -> tuple:
        """Returns (result, tree size) for one object; shared objects are interpreted once."""
        kind = type(obj)
        if kind in _LEAF_TYPES:
            return obj, 1
        key = id(obj)
        hit = self.done.get(key)
        if hit is not None:
            return hit
        if key in self.active:
            raise _Refused(f'{_path_text(path)}: the structure contains itself (a cycle)')
        if depth >= _MAX_DEPTH:
            raise _Refused(f'{_path_text(path)}: nested deeper than {_MAX_DEPTH} levels')
        self.active.add(key)
        depth += 1
        if kind is tuple or kind is list:
            items, size = self._items(enumerate(obj), path, depth)
            result = (tuple(items) if kind is tuple else items), size
        elif kind is dict:
            values, size = self._items(obj.items(), path, depth)
            result = dict(zip(obj.keys(), values)), size
        elif kind is _Call and obj.kind != 'dtype':
            result = _Resolver.calls[obj.kind](self, obj, path, depth), 1
        elif kind is memoryview:   # bytes outside an array: copied, and counted as array data
            self._spend(len(obj), path)
            result = obj.tobytes(), 1
        else:
            raise _Refused(f'{_path_text(path)}: {_what(obj)} is not network data')
        self.active.discard(key)
        self.done[key] = result
        return result

    def _items(self, pairs: Any, path: Any, depth: int) -> tuple:
        values, size = [], 1
        for key, item in pairs:
            if type(item) in _LEAF_TYPES:   # the common case, without a call
                values.append(item)
                size += 1
                continue
            value, item_size = self.value(item, (path, key), depth)
            values.append(value)
            size += item_size
            if size > _MAX_TREE_NODES:
                raise _Refused(f'{_path_text(path)}: more than {_MAX_TREE_NODES:,} nodes once '
                               'memo references are expanded')
        return values, size

    def _plain(self, obj: Any, path: Any, depth: int) -> Any:
        return self.value(obj, path, depth)[0]

    def _spend(self, nbytes: int, path: Any) -> None:
        self.data_budget -= nbytes
        if self.data_budget < 0:
            raise _Refused(f'{_path_text(path)}: array data exceeds the bytes in the file '
                           '(memo references reuse the same data)')

    # Networks.
    def _call_Network(self, call: _Call, path: Any, depth: int) -> 'NetworkState':
        where = f'network {_path_text(path)}'
        if type(call.state) is not dict:
            raise _Refused(f'{where} has no state dict')
        state = self._plain(call.state, (path, _STATE), depth)
        self.networks += 1
        return _state_to_network(state, where, self.kwargs_checked)

    # Arrays, scalars, dtypes and the bytes they are made of.
    def _call__reconstruct(self, call: _Call, path: Any, depth: int) -> np.ndarray:
        # numpy's own reduce always passes (ndarray, (0,), b'b'); the data comes with BUILD.
        # Shapes, flags and versions are checked as the interpreter left them: valid ones are
        # plain tuples and ints, so anything holding a call or a container is refused unread.
        args = call.args
        if not (len(args) == 3 and type(args[0]) is _GlobalRef and args[0].kind == 'ndarray'
                and _is_empty_shape(args[1])
                and self._data(args[2], path, depth, text_ok=True) == b'b'):
            raise _Refused(f'{_path_text(path)}: unexpected array reconstruction arguments')
        state = call.state
        if state is _NO_STATE:
            raise _Refused(f'{_path_text(path)}: array without data (no BUILD)')
        if type(state) is not tuple or len(state) not in (4, 5):
            raise _Refused(f'{_path_text(path)}: array state is {_what(state)}, not '
                           '(version, shape, dtype, is_fortran, data)')
        if len(state) == 5 and not _is_int(state[0], 1):
            raise _Refused(f'{_path_text(path)}: unknown array state version {_what(state[0])}')
        shape, dtype, fortran, raw = state[-4:]
        if type(fortran) is not bool and not (_is_int(fortran, 0) or _is_int(fortran, 1)):
            raise _Refused(f'{_path_text(path)}: array order flag is {_what(fortran)}')
        return self._array(self._data(raw, path, depth, text_ok=True),
                           self._dtype(dtype, path, depth), shape, 'F' if fortran else 'C', path)

    def _call__frombuffer(self, call: _Call, path: Any, depth: int) -> np.ndarray:
        if len(call.args) != 4:
            raise _Refused(f'{_path_text(path)}: unexpected _frombuffer arguments')
        buf, dtype, shape, order = call.args
        if order not in ('C', 'F'):
            raise _Refused(f'{_path_text(path)}: array order {_what(order)}')
        raw = self._data(buf, path, depth, text_ok=False)
        return self._array(raw, self._dtype(dtype, path, depth), shape, order, path)

    def _call_scalar(self, call: _Call, path: Any, depth: int) -> np.generic:
        if len(call.args) != 2:
            raise _Refused(f'{_path_text(path)}: unexpected numpy scalar arguments')
        dtype = self._dtype(call.args[0], path, depth)
        raw = self._data(call.args[1], path, depth, text_ok=False)
        if len(raw) != dtype.itemsize:
            raise _Refused(f'{_path_text(path)}: numpy scalar of dtype {dtype} has {len(raw)} '
                           'bytes of data')
        self._spend(len(raw), path)
        return np.frombuffer(raw, dtype=dtype)[0]

    def _call_encode(self, call: _Call, path: Any, depth: int) -> bytes:
        args = [self._plain(a, path, depth) for a in call.args]
        if not (len(args) == 2 and type(args[0]) is str and args[1] in ('latin1', 'latin-1')):
            raise _Refused(f'{_path_text(path)}: unexpected _codecs.encode call')
        self._spend(len(args[0]), path)
        return _latin1(args[0], path)

    def _data(self, obj: Any, path: Any, depth: int, text_ok: bool) -> bytes:
        # A view of the file (protocols 3 to 5), an encode() call (protocol 2), or text.
        kind = type(obj)
        if kind is memoryview:
            return obj
        if kind is _Call and obj.kind == 'encode':
            return self._plain(obj, path, depth)
        if kind is str and text_ok:   # Python 2 files: byte strings read as latin-1 text.
            self._spend(len(obj), path)
            return _latin1(obj, path)
        raise _Refused(f'{_path_text(path)}: array data is {_what(obj)}, not bytes')

    def _array(self, raw: Any, dtype: np.dtype, shape: Any, order: str, path: Any) -> np.ndarray:
        count = _shape_size(shape, path)
        if count * dtype.itemsize != len(raw):
            raise _Refused(f'{_path_text(path)}: array of shape {shape} and dtype {dtype} needs '
                           f'{count * dtype.itemsize} bytes but the file gives {len(raw)}')
        self._spend(len(raw), path)
        try:   # a view of the file's bytes, copied so the array owns writable memory
            return np.array(np.ndarray(shape, dtype, buffer=raw, order=order), order='K')
        except ValueError as e:   # e.g. a zero-size array whose other dimensions overflow
            raise _Refused(f'{_path_text(path)}: numpy refuses the array ({e})') from None

    def _dtype(self, obj: Any, path: Any, depth: int) -> np.dtype:
        if type(obj) is not _Call or obj.kind != 'dtype':
            raise _Refused(f'{_path_text(path)}: expected a numpy dtype, found {_what(obj)}')
        hit = self.done.get(id(obj))
        if hit is None:
            hit = self.done[id(obj)] = (self._new_dtype(obj, path, depth), 0)
        return hit[0]

    def _new_dtype(self, call: _Call, path: Any, depth: int) -> np.dtype:
        # Built from its spelling here, never through dtype.__setstate__: a state can only pick
        # the byte order, so forged flags or fields never reach numpy. Valid arguments and states
        # hold only strings, ints, bools and None, so they are checked as the interpreter left them.
        args = call.args
        if not (1 <= len(args) <= 3 and type(args[0]) is str
                and all(type(a) in (bool, int) for a in args[1:])):
            raise _Refused(f'{_path_text(path)}: unexpected numpy dtype arguments')
        dtype = _numeric_dtype(args[0], path)
        if call.state is _NO_STATE:
            return dtype
        return _apply_dtype_state(dtype, call.state, path)


_Resolver.calls = {kind: getattr(_Resolver, '_call_' + kind)
                   for kind in ('Network', '_reconstruct', '_frombuffer', 'scalar', 'encode')}


def _latin1(text: str, path: Any) -> bytes:
    try:
        return text.encode('latin1')
    except UnicodeEncodeError:
        raise _Refused(f'{_path_text(path)}: byte data holds characters above U+00FF') from None


def _is_int(value: Any, expected: int) -> bool:
    return type(value) is int and value == expected


def _is_empty_shape(shape: Any) -> bool:
    return type(shape) is tuple and len(shape) == 1 and _is_int(shape[0], 0)


def _shape_size(shape: Any, path: Any) -> int:
    """Number of elements of a valid shape: a tuple of at most 32 non-negative ints."""
    if type(shape) is not tuple:
        raise _Refused(f'{_path_text(path)}: array shape is {_what(shape)}, not a tuple of ints')
    if len(shape) > _MAX_NDIM:
        raise _Refused(f'{_path_text(path)}: array has {len(shape)} dimensions')
    count = 1
    for n in shape:
        if type(n) is not int or not 0 <= n <= sys.maxsize:
            raise _Refused(f'{_path_text(path)}: array dimension {_what(n)} is not a '
                           'non-negative int')
        count *= n
    return count


def _numeric_dtype(spec: str, path: Any) -> np.dtype:
    # Only bool, integer, float and complex: object dtypes hold pointers, and structured, string
    # or datetime dtypes are not network data.
    code = spec.lstrip('<>|=')
    if not (len(spec) - len(code) <= 1 and len(code) >= 2 and code[0] in _NUMERIC_KINDS
            and code[1:].isdigit() and code[1:].isascii() and len(code) <= 3):
        raise _Refused(f'{_path_text(path)}: numpy dtype {_clip(spec, 20)!r} is refused (only '
                       'bool, integer, float and complex arrays are network data)')
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise _Refused(f'{_path_text(path)}: unknown numpy dtype {spec!r}') from None
    if dtype.kind not in _NUMERIC_KINDS:   # cannot happen for the spellings above; cheap to check
        raise _Refused(f'{_path_text(path)}: numpy dtype {spec!r} is not numeric')
    return dtype


def _apply_dtype_state(dtype: np.dtype, state: Any, path: Any) -> np.dtype:
    # numpy writes (3, byteorder, subarray, names, fields, elsize, alignment, flags) and adds
    # metadata as a 9th item in version 4.
    if not (type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4)
            and all(type(x) is int for x in (state[0], *state[5:8]))):
        raise _Refused(f'{_path_text(path)}: unexpected numpy dtype state')
    if any(x is not None for x in (*state[2:5], *state[8:])):
        raise _Refused(f'{_path_text(path)}: structured, subarray and metadata dtypes are refused '
                       '(they can hold Python objects)')
    order = state[1]
    if dtype.itemsize == 1 and order in ('|', '<', '>', '='):
        return dtype
    if order in ('<', '>', '='):
        return dtype.newbyteorder(order)
    raise _Refused(f'{_path_text(path)}: byte order {_what(order)} for dtype {dtype}')


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


def _check_header(data: bytes) -> None:
    if len(data) == 0:
        raise _Refused('file is empty')
    if data[0] != 0x80 or len(data) < 2 or not 2 <= data[1] <= 5:
        raise _Refused(f'not a pickle of protocol 2 to 5 (starts with {data[:8]!r})')


def _state_to_network(state: Any, where: str, kwargs_checked: set) -> NetworkState:
    version = state.get('version')
    if version not in SUPPORTED_VERSIONS or type(version) is not int:
        raise _Refused(f'{where}: unsupported state version {_what(version)} '
                       f'(supported: {SUPPORTED_VERSIONS})')
    for key in ('name', 'build_func_name'):
        if not isinstance(state.get(key), str):
            raise _Refused(f'{where}: state key {key!r} missing or not a string')
    static_kwargs = state.get('static_kwargs', {})
    if not isinstance(static_kwargs, dict):
        raise _Refused(f'{where}: static_kwargs is not a dict')
    _check_kwargs(static_kwargs, f'{where}: static_kwargs', kwargs_checked)
    components = state.get('components', {})   # version 2 may lack it (spec 1.3).
    if not isinstance(components, dict):
        raise _Refused(f'{where}: components is not a dict')
    for key, comp in components.items():
        if not isinstance(comp, NetworkState):
            raise _Refused(f'{where}: component {_what(key)} is not a Network')
    src = state.get('build_module_src', '')
    if not isinstance(src, str):
        raise _Refused(f'{where}: build_module_src is not text')
    return NetworkState(name=state['name'], build_func_name=state['build_func_name'],
                        static_kwargs=static_kwargs, components=components, version=version,
                        variables=_state_variables(state.get('variables', []), where),
                        build_module_src=src)


def _state_variables(raw_vars: Any, where: str) -> 'collections.OrderedDict[str, np.ndarray]':
    if not isinstance(raw_vars, (list, tuple)):
        raise _Refused(f'{where}: variables is not a list of (name, value) pairs')
    variables = collections.OrderedDict()
    for item in raw_vars:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise _Refused(f'{where}: bad variable entry {_what(item)}')
        name, value = item
        if isinstance(value, np.generic):
            value = np.asarray(value)        # numpy scalar -> 0-d array
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _NUMERIC_KINDS:
            raise _Refused(f'{where}: variable {_clip(name)!r} is not a numeric array')
        if name in variables:
            raise _Refused(f'{where}: variable {_clip(name)!r} appears twice')
        variables[name] = value
    return variables


def _check_kwargs(value: Any, where: str, checked: set) -> None:
    # Containers already checked (memo-shared ones, or kwargs shared between networks) are
    # skipped, so the check is linear in the number of distinct objects.
    if isinstance(value, (dict, list, tuple)):
        if id(value) in checked:
            return
        checked.add(id(value))
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Refused(f'{where}: non-string key {_what(k)}')
            _check_kwargs(v, f'{where}.{_clip(k, 40)}', checked)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_kwargs(v, where, checked)
    elif not isinstance(value, _ALLOWED_KWARG_TYPES):
        raise _Refused(f'{where}: value of type {type(value).__name__} is not allowed')


def _read(data: bytes) -> Any:
    _check_header(data)
    root = _Machine(data).run()
    # Array data may use each file byte about twice: protocol 2 spells it as text, encoded to
    # bytes first, then copied into the array.
    resolver = _Resolver(data_budget=2 * len(data) + 4096)
    result = resolver.value(root, None, 0)[0]
    if not resolver.networks:
        raise _Refused(f'the pickle holds no networks (found {type(result).__name__})')
    return result


def load(path_or_file: Union[str, os.PathLike, BinaryIO]) -> Any:
    """Reads an official network pickle without executing anything from it.

    Whatever the file holds, this returns plain data or raises PickleFormatError: it never calls
    anything the file names and never changes loader state. Array data is copied only from bytes in
    the file (at most twice their size, for protocol 2); the interpreter's other objects are capped
    at 500,000 (about 50 MB, at most about 40 bytes per file byte). Time is linear in the file's
    size: memo-shared objects are visited once, nesting is capped at 100 levels and the result,
    with memo references expanded, at a million nodes.

    Args:
        path_or_file: a path, or a binary file object positioned at the start of the pickle.

    Returns:
        The stored object with each ``Network`` as a :class:`NetworkState`; normally the tuple
        ``(G, D, Gs)``.

    Raises:
        PickleFormatError: the file is unreadable, not a pickle, truncated, holds a global, call
            or structure other than the official ones, or holds no network. The message names
            the file and the reason.
    """
    data, label = _read_bytes(path_or_file)
    try:
        return _read(data)
    except _Refused as e:
        raise PickleFormatError(f'{label}: {e}') from None
    except RecursionError:   # the depth cap should prevent it; the caller's stack may be deep.
        raise PickleFormatError(f'{label}: structure too deeply nested for the reader') from None
    except MemoryError:
        raise PickleFormatError(f'{label}: out of memory while reading') from None
    except Exception as e:   # a bug in this reader: still the documented error, and tests look
        raise PickleFormatError(   # for this wording to make sure it never happens.
            f'{label}: internal error in the reader ({type(e).__name__}: {_clip(str(e), 200)})'
        ) from e


def iter_networks(obj: Any, kind: type = None):
    """Yields every top-level network in a loaded object (tuple, list, dict or single): each
    instance of ``kind`` (default NetworkState; legacy_tf passes its live Network class)."""
    kind = NetworkState if kind is None else kind
    if isinstance(obj, kind):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from iter_networks(o, kind)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from iter_networks(o, kind)


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
    with atomic_write(os.fspath(path)) as f:
        f.write(data)


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
            print('error: ' + ' '.join(str(e).splitlines()), file=sys.stderr)   # one line each
            status = 1
            continue
        print(f'== {path}')
        print(format_info(obj))
    return status


if __name__ == '__main__':
    sys.exit(main())
