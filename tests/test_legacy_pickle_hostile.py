"""dnnlib.legacy_pickle against hand-made hostile files (issue #13).

Each attack is written opcode by opcode with a small assembler, in every protocol from 2 to 5:
forged object pointers, allocation without data, memo bombs, cycles and deep nesting, and BUILD
used to change the loader. Every file must be refused with a PickleFormatError that names the file
and the reason, quickly, within a memory limit, and without changing anything in the process.

Files that crashed or hung the previous reader are first loaded in a child process, so a crash
fails a test instead of killing pytest; the in-process tests only run once the child survived.
"""

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO_DIR, fixture_path
from dnnlib import legacy_pickle as lp

PROTOCOLS = (2, 3, 4, 5)
# Time allowed per file: linear in its size, 0.5 s per MB measured for the worst opcode floods,
# doubled and more for a loaded machine. The previous reader needed 6 s to hours for memo bombs.
def seconds_allowed(size: int) -> float:
    return 1.0 + 2e-6 * size




def megabytes_allowed(size: int) -> float:
    # Peak memory of one load above what the process held before: the interpreter's objects
    # (capped at 500,000, at most about 40 bytes per byte of the worst opcode floods) plus a copy
    # of the array data. The previous reader took 2 GiB for a 2 MB file.
    return 16 + 40 * size / 2 ** 20


# ------------------------------------------------------------------------------------------------
# A small pickle assembler. Each method returns the opcodes that push one object, spelled the way
# Python's pickle and NumPy write them in the given protocol.

NONE, TRUE, FALSE = b'N', b'\x88', b'\x89'
REDUCE, BUILD, NEWOBJ, STOP, POP, MARK = b'R', b'b', b'\x81', b'.', b'0', b'('
APPEND, APPENDS, SETITEM, SETITEMS = b'a', b'e', b's', b'u'


class Asm:
    """Opcode assembler for one protocol (2 to 5)."""

    def __init__(self, protocol: int, numpy_module: str = ''):
        self.p = protocol
        # NumPy 1.x files say numpy.core, NumPy 2 files numpy._core; alternate to cover both.
        self.np_core = numpy_module or ('numpy.core' if protocol in (2, 3) else 'numpy._core')

    def pickle(self, body: bytes) -> bytes:
        return b'\x80' + bytes([self.p]) + body + STOP

    def str(self, text: str) -> bytes:
        raw = text.encode('utf-8', 'surrogatepass')
        if self.p >= 4 and len(raw) < 256:
            return b'\x8c' + bytes([len(raw)]) + raw
        return b'X' + struct.pack('<I', len(raw)) + raw

    def int(self, n: int) -> bytes:
        if 0 <= n < 256:
            return b'K' + bytes([n])
        if -2 ** 31 <= n < 2 ** 31:
            return b'J' + struct.pack('<i', n)
        raw = n.to_bytes((n.bit_length() + 8) // 8, 'little', signed=True)
        return (b'\x8a' + bytes([len(raw)]) if len(raw) < 256 else b'\x8b' + struct.pack('<i', len(raw))) + raw

    def float(self, x: float) -> bytes:
        return b'G' + struct.pack('>d', x)

    def bytes(self, data: bytes) -> bytes:
        if self.p == 2:   # Python 3 writes protocol-2 bytes as _codecs.encode(text, 'latin1')
            return self.call(self.glob('_codecs', 'encode'), self.str(data.decode('latin1')),
                             self.str('latin1'))
        if len(data) < 256:
            return b'C' + bytes([len(data)]) + data
        return b'B' + struct.pack('<I', len(data)) + data

    def glob(self, module: str, name: str) -> bytes:
        if self.p < 4:
            return b'c' + module.encode() + b'\n' + name.encode() + b'\n'
        return self.str(module) + self.str(name) + b'\x93'

    def tuple(self, *items: bytes) -> bytes:
        if not items:
            return b')'
        if len(items) <= 3:
            return b''.join(items) + bytes([0x84 + len(items)])
        return MARK + b''.join(items) + b't'

    def list(self, *items: bytes) -> bytes:
        return b']' + (MARK + b''.join(items) + APPENDS if items else b'')

    def dict(self, *pairs) -> bytes:
        return b'}' + (MARK + b''.join(k + v for k, v in pairs) + SETITEMS if pairs else b'')

    def call(self, func: bytes, *args: bytes) -> bytes:
        return func + self.tuple(*args) + REDUCE

    @staticmethod
    def put(n: int) -> bytes:
        return b'q' + bytes([n]) if n < 256 else b'r' + struct.pack('<I', n)

    @staticmethod
    def get(n: int) -> bytes:
        return b'h' + bytes([n]) if n < 256 else b'j' + struct.pack('<I', n)

    # NumPy and the official Network, as NumPy's reduce and the official pickles spell them.
    def dtype(self, code: str = 'f4', order: str = '<', state: bytes = b'') -> bytes:
        made = self.call(self.glob('numpy', 'dtype'), self.str(code), FALSE, TRUE)
        state = state or self.tuple(self.int(3), self.str(order), NONE, NONE, NONE,
                                    self.int(-1), self.int(-1), self.int(0))
        return made + state + BUILD

    def reconstruct(self, shape: bytes, dtype: bytes, raw: bytes, args: bytes = b'') -> bytes:
        args = args or self.tuple(self.glob('numpy', 'ndarray'), self.tuple(self.int(0)),
                                  self.bytes(b'b'))
        made = self.glob(f'{self.np_core}.multiarray', '_reconstruct') + args + REDUCE
        return made + self.tuple(self.int(1), shape, dtype, FALSE, raw) + BUILD

    def frombuffer(self, raw: bytes, dtype: bytes, shape: bytes, order: str = 'C') -> bytes:
        return self.call(self.glob(f'{self.np_core}.numeric', '_frombuffer'), raw, dtype, shape,
                         self.str(order))

    def shape(self, shape) -> bytes:
        return self.tuple(*(self.int(n) for n in shape))

    def array(self, value: np.ndarray) -> bytes:
        if value.ndim == 0:
            return self.call(self.glob(f'{self.np_core}.multiarray', 'scalar'),
                             self.dtype(value.dtype.str[1:]), self.bytes(value.tobytes()))
        if self.p == 5:   # NumPy's protocol-5 reduce: _frombuffer over an in-band buffer
            raw = b'\x96' + struct.pack('<Q', value.nbytes) + value.tobytes()
            return self.frombuffer(raw, self.dtype(value.dtype.str[1:]), self.shape(value.shape))
        return self.reconstruct(self.shape(value.shape), self.dtype(value.dtype.str[1:]),
                                self.bytes(value.tobytes()))

    def network(self, name: str = 'D', kwargs: bytes = b'', variables: bytes = b'',
                components: bytes = b'', version: int = 3, memo: int = -1) -> bytes:
        made = self.glob('dnnlib.tflib.network', 'Network') + b')' + NEWOBJ
        if memo >= 0:
            made += self.put(memo)
        state = self.dict(
            (self.str('version'), self.int(version)), (self.str('name'), self.str(name)),
            (self.str('static_kwargs'), kwargs or self.dict((self.str('resolution'), self.int(8)))),
            (self.str('components'), components or self.dict()),
            (self.str('build_module_src'), self.str('raise SystemExit("never run")')),
            (self.str('build_func_name'), self.str('D_basic')),
            (self.str('variables'), variables or self.list(
                self.tuple(self.str('lod'), self.array(np.float32(1.5))),
                self.tuple(self.str('w'), self.array(np.arange(6, dtype=np.float32).reshape(2, 3))))))
        return made + state + BUILD


# ------------------------------------------------------------------------------------------------
# The assembler itself, checked against pickle and the reader, so the refusals below are
# refusals of the attack and not of a mis-assembled file.

@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_assembled_network_loads(protocol):
    a = Asm(protocol)
    data = a.pickle(a.tuple(a.network('G', components=a.dict((a.str('mapping'), a.network('G_mapping')))),
                            a.network('D'), a.network('Gs')))
    G, D, Gs = lp.load(io.BytesIO(data))
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs') and list(G.components) == ['mapping']
    assert G.variables['lod'].shape == () and float(G.variables['lod']) == 1.5
    np.testing.assert_array_equal(D.variables['w'], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert D.static_kwargs == {'resolution': 8}


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_assembler_agrees_with_pickle(protocol):
    a = Asm(protocol, numpy_module='numpy._core')   # the module pickle can import here
    plain = a.pickle(a.tuple(a.list(a.int(1), a.int(-5), a.int(2 ** 40), a.float(0.5)),
                             a.dict((a.str('k'), a.tuple(NONE, TRUE, FALSE, a.str('é')))),
                             a.bytes(b'\x00\xff')))
    assert pickle_loads(plain) == ([1, -5, 2 ** 40, 0.5], {'k': (None, True, False, 'é')}, b'\x00\xff')
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(pickle_loads(a.pickle(a.array(x))), x)
    assert pickle_loads(a.pickle(a.array(np.float32(2.5)))) == np.float32(2.5)


def pickle_loads(data: bytes):
    import pickle
    return pickle.loads(data, encoding='latin1')


# ------------------------------------------------------------------------------------------------
# The attacks. Each builder takes an assembler and returns (file bytes, regex for the reason).

MA = 'multiarray'


def _net_with(a: Asm, extra: bytes) -> bytes:
    """A valid network next to `extra` in the top-level tuple."""
    return a.pickle(a.tuple(a.network(), extra))


def _net_kwargs(a: Asm, value: bytes) -> bytes:
    return a.pickle(a.network(kwargs=a.dict((a.str('x'), value))))


def _object_array(a: Asm, nbytes: int = 32) -> bytes:
    # numpy.ndarray(shape, 'O', buffer): an object array whose pointers are bytes from the file.
    return a.call(a.glob('numpy', 'ndarray'), a.tuple(a.int(nbytes // 8)), a.str('O'),
                  a.bytes(b'\x41' * nbytes))


def forged_pointer_as_reconstruct_shape(a):
    args = a.tuple(a.glob('numpy', 'ndarray'), _object_array(a), a.bytes(b'b'))
    return _net_with(a, a.reconstruct(a.shape((4,)), a.dtype(), a.bytes(bytes(16)), args=args)), \
        r'calling the global numpy\.ndarray'


def forged_pointer_riding_along(a):
    return _net_with(a, _object_array(a)), r'calling the global numpy\.ndarray'


def forged_pointer_by_newobj(a):
    made = a.glob('numpy', 'ndarray') + a.tuple(a.tuple(a.int(4)), a.str('O')) + NEWOBJ
    return _net_with(a, made), r'creating the global numpy\.ndarray'


def object_dtype_array(a):
    return _net_with(a, a.reconstruct(a.shape((2,)), a.dtype('O8', '|'), a.bytes(b'\x41' * 16))), \
        r"dtype 'O8' is refused"


def object_dtype_scalar(a):
    scalar = a.call(a.glob(f'{a.np_core}.{MA}', 'scalar'), a.dtype('O8', '|'), a.bytes(b'\x41' * 8))
    return a.pickle(a.network(variables=a.list(a.tuple(a.str('v'), scalar)))), r"dtype 'O8' is refused"


def object_dtype_frombuffer(a):
    made = a.frombuffer(a.bytes(b'\x41' * 8), a.dtype('O8', '|'), a.shape((1,)))
    return _net_with(a, made), r"dtype 'O8' is refused"


def structured_dtype_holding_objects(a):
    fields = a.dict((a.str('p'), a.tuple(a.dtype('O8', '|'), a.int(0))),
                    (a.str('f'), a.tuple(a.dtype('f8'), a.int(8))))
    state = a.tuple(a.int(3), a.str('|'), NONE, a.tuple(a.str('p'), a.str('f')), fields,
                    a.int(16), a.int(8), a.int(63))
    return _net_with(a, a.reconstruct(a.shape((1,)), a.dtype('V16', state=state), a.bytes(bytes(16)))), \
        r"dtype 'V16' is refused"


def numeric_dtype_with_forged_fields(a):
    fields = a.dict((a.str('p'), a.tuple(a.dtype('O8', '|'), a.int(0))))
    state = a.tuple(a.int(3), a.str('<'), NONE, a.tuple(a.str('p')), fields, a.int(8), a.int(8), a.int(63))
    return _net_with(a, a.reconstruct(a.shape((1,)), a.dtype('f8', state=state), a.bytes(bytes(8)))), \
        r'structured, subarray and metadata dtypes are refused'


def dtype_from_a_field_list(a):
    spec = a.list(a.tuple(a.str('p'), a.str('O')))
    dtype = a.call(a.glob('numpy', 'dtype'), spec, FALSE, TRUE)
    return _net_with(a, a.reconstruct(a.shape((1,)), dtype, a.bytes(bytes(8)))), \
        r'unexpected numpy dtype arguments'


def uninitialised_2gib_by_ndarray(a):
    return _net_with(a, a.call(a.glob('numpy', 'ndarray'), a.shape((2 ** 29,)), a.str('f4'))), \
        r'calling the global numpy\.ndarray'


def big_reconstruct_argument(a):
    args = a.tuple(a.glob('numpy', 'ndarray'), a.shape((2 ** 29,)), a.bytes(b'b'))
    return _net_with(a, a.reconstruct(a.shape((4,)), a.dtype(), a.bytes(bytes(16)), args=args)), \
        r'unexpected array reconstruction arguments'


def big_shape_little_data(a):
    return _net_with(a, a.reconstruct(a.shape((2 ** 29,)), a.dtype(), a.bytes(bytes(16)))), \
        r'needs 2147483648 bytes but the file gives 16'


def big_frombuffer_little_data(a):
    return _net_with(a, a.frombuffer(a.bytes(bytes(16)), a.dtype(), a.shape((2 ** 29,)))), \
        r'needs 2147483648 bytes but the file gives 16'


def zero_size_with_overflowing_dimensions(a):
    return _net_with(a, a.reconstruct(a.shape((0, 2 ** 62, 2 ** 62)), a.dtype(), a.bytes(b''))), \
        r'numpy refuses the array'


def memo_reused_array_data(a):
    # One megabyte in the file, copied into 64 arrays: 64 MB from a 1 MB file.
    data = a.bytes(bytes(2 ** 20)) + a.put(200) + POP
    arrays = [a.reconstruct(a.shape((2 ** 18,)), a.dtype(), a.get(200)) for _ in range(64)]
    return a.pickle(data + a.tuple(a.network(), a.list(*arrays))), r'exceeds the bytes in the file'


def _flood(opcodes: bytes, reason: str):
    # A megabyte of one cheap opcode: each byte makes an object, so without a cap on objects
    # the interpreter's memory would grow about 100 times faster than the file.
    def build(a):
        return _net_with(a, NONE + opcodes * (2 ** 20 // len(opcodes))), reason
    return build


def _bad_shape(shape_bytes, reason):
    def build(a):
        return _net_with(a, a.reconstruct(shape_bytes(a), a.dtype(), a.bytes(bytes(16)))), reason
    return build


BAD_SHAPES = {
    'list': (lambda a: a.list(a.int(2), a.int(2)), r'array shape is list, not a tuple'),
    'negative': (lambda a: a.tuple(a.int(8), a.int(-2)), r'dimension -2 is not a non-negative int'),
    'bool': (lambda a: a.tuple(TRUE, a.int(4)), r'dimension True is not'),
    'float': (lambda a: a.tuple(a.float(2.0), a.int(2)), r'dimension 2\.0 is not'),
    'text': (lambda a: a.str('ab'), r"array shape is 'ab'"),
    'none': (lambda a: NONE, r'array shape is None'),
    'int': (lambda a: a.int(4), r'array shape is 4'),
    'huge_int': (lambda a: a.tuple(a.int(2 ** 70), a.int(1)), r'dimension an int of 71 bits'),
    'megabit_int': (lambda a: a.tuple(a.int(1 << 8_000_000)), r'dimension an int of 8000001 bits'),
    'nested': (lambda a: a.tuple(a.shape((2,)), a.int(2)), r'dimension tuple is not'),
    'call': (lambda a: a.tuple(a.dtype(), a.int(4)), r'dimension a numpy\.dtype object is not'),
    'too_many_dims': (lambda a: a.shape((1,) * 33 + (4,)), r'array has 34 dimensions'),
}


def _odd_reconstruct(args=None, state=None, reason=''):
    """_reconstruct with other arguments or another BUILD state than NumPy writes."""
    def build(a):
        nd, f4, raw = a.glob('numpy', 'ndarray'), a.dtype(), a.bytes(bytes(16))
        made = a.glob(f'{a.np_core}.{MA}', '_reconstruct')
        made += (args(a, nd) if args else a.tuple(nd, a.shape((0,)), a.bytes(b'b'))) + REDUCE
        made += (state(a, f4, raw) if state else a.tuple(a.int(1), a.shape((4,)), f4, FALSE, raw))
        return _net_with(a, made + BUILD), reason
    return build


ODD_RECONSTRUCTS = {
    'two_arguments': _odd_reconstruct(args=lambda a, nd: a.tuple(nd, a.shape((0,))),
                                      reason=r'unexpected array reconstruction arguments'),
    'other_subtype': _odd_reconstruct(args=lambda a, nd: a.tuple(
        a.glob('numpy', 'dtype'), a.shape((0,)), a.bytes(b'b')), reason=r'reconstruction arguments'),
    'other_tag': _odd_reconstruct(args=lambda a, nd: a.tuple(nd, a.shape((0,)), a.bytes(b'O')),
                                  reason=r'reconstruction arguments'),
    'shape_as_list': _odd_reconstruct(args=lambda a, nd: a.tuple(nd, a.list(a.int(0)), a.bytes(b'b')),
                                      reason=r'reconstruction arguments'),
    'shape_false': _odd_reconstruct(args=lambda a, nd: a.tuple(nd, a.tuple(FALSE), a.bytes(b'b')),
                                    reason=r'reconstruction arguments'),
    'no_build': lambda a: (_net_with(a, a.call(a.glob(f'{a.np_core}.{MA}', '_reconstruct'),
                                               a.glob('numpy', 'ndarray'), a.shape((0,)),
                                               a.bytes(b'b'))), r'array without data \(no BUILD\)'),
    'state_of_three': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(a.shape((4,)), f4, raw),
                                       reason=r'array state is tuple, not'),
    'state_as_dict': _odd_reconstruct(state=lambda a, f4, raw: a.dict((a.str('shape'), a.shape((4,)))),
                                      reason=r'array state is dict'),
    'state_version_2': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(2), a.shape((4,)), f4, FALSE, raw), reason=r'unknown array state version 2'),
    'order_flag_text': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(1), a.shape((4,)), f4, a.str('F'), raw), reason=r"array order flag is 'F'"),
    'data_as_list': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(1), a.shape((2,)), f4, FALSE, a.list(a.int(1), a.int(2))), reason=r'array data is list'),
    'data_none': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(1), a.shape((4,)), f4, FALSE, NONE), reason=r'array data is None'),
    'dtype_as_text': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(1), a.shape((4,)), a.str('f4'), FALSE, raw), reason=r"expected a numpy dtype, found 'f4'"),
    'big_endian_order_bytes': _odd_reconstruct(state=lambda a, f4, raw: a.tuple(
        a.int(1), a.shape((4,)), a.dtype('f4', order='|'), FALSE, raw), reason=r"byte order '\|'"),
}


def _declared_length(opcode: bytes, fmt: str, n: int):
    def build(a):
        # A valid network, then an opcode that declares more bytes than the file has left.
        return a.pickle(a.network())[:-1] + opcode + struct.pack(fmt, n) + b'\0' * 64, \
            r'truncated pickle'
    return build


def _bomb(a: Asm, levels: int, kind: str, first_memo: int = 300) -> bytes:
    """x = [x, x] per level (or the tuple or dict version), sharing through the memo."""
    out = {'list': b']', 'tuple': b')', 'dict': b'}'}[kind] + a.put(first_memo) + POP
    for i in range(first_memo + 1, first_memo + levels + 1):
        prev = a.get(i - 1)
        if kind == 'list':
            out += MARK + prev + prev + b'l'
        elif kind == 'tuple':
            out += prev + prev + b'\x86'
        else:
            out += MARK + a.str('a') + prev + a.str('b') + prev + b'd'
        out += a.put(i) + POP
    return out + a.get(first_memo + levels)


def _bomb_case(levels, kind, place, reason):
    def build(a):
        bomb = _bomb(a, levels, kind)
        if place == 'kwargs':
            return _net_kwargs(a, bomb), reason
        if place == 'shape':
            return _net_with(a, a.reconstruct(bomb, a.dtype(), a.bytes(bytes(16)))), reason
        if place == 'variables':
            return a.pickle(a.network(variables=bomb)), reason
        return _net_with(a, bomb), reason
    return build


def _cycle(a: Asm, kind: str) -> bytes:
    if kind == 'list':      # x = [x]
        return b']' + a.put(250) + a.get(250) + APPEND
    if kind == 'dict':      # x = {'k': x}
        return b'}' + a.put(250) + a.str('k') + a.get(250) + SETITEM
    if kind == 'list_dict':  # x = [{'k': x}]
        return b']' + a.put(250) + b'}' + a.str('k') + a.get(250) + SETITEM + APPEND
    # x = [(x,)]: a tuple reaches itself through a list
    return b']' + a.put(250) + a.get(250) + b'\x85' + APPEND


def network_that_is_its_own_component(a):
    return a.pickle(a.network(memo=250, components=a.dict((a.str('synthesis'), a.get(250))))), \
        r'contains itself'


def array_whose_data_is_itself(a):
    made = a.glob(f'{a.np_core}.{MA}', '_reconstruct') + a.tuple(
        a.glob('numpy', 'ndarray'), a.tuple(a.int(0)), a.bytes(b'b')) + REDUCE + a.put(250)
    made += a.tuple(a.int(1), a.shape((1,)), a.dtype(), FALSE, a.get(250)) + BUILD
    return _net_with(a, made), r'array data is a numpy\.core\.multiarray\._reconstruct object'


def dtype_whose_arguments_hold_itself(a):
    made = b']' + a.put(250) + POP + a.call(a.glob('numpy', 'dtype'), a.get(250)) + a.put(251)
    made += POP + a.get(250) + a.get(251) + APPEND + POP    # the list now holds the dtype
    made = made + a.reconstruct(a.shape((1,)), a.get(251), a.bytes(bytes(4)))
    return _net_with(a, made), r'unexpected numpy dtype arguments|is not network data'


def deep_lists(a):
    n = 5000
    return _net_with(a, b']' * n + APPEND * (n - 1)), r'nested deeper than 100 levels'


def deep_tuples(a):
    return _net_with(a, NONE + b'\x85' * 100_000), r'nested deeper than 100 levels'


def deep_dicts_in_kwargs(a):
    n = 5000
    return _net_kwargs(a, (MARK + a.str('k')) * n + b'}' + b'd' * n), r'nested deeper than 100 levels'


def deep_components(a):
    inner = a.network()
    for _ in range(40):
        inner = a.network(components=a.dict((a.str('c'), inner)))
    return a.pickle(inner), r'nested deeper than 100 levels'


GLOBALS = [('dnnlib.tflib.network', 'Network'), ('numpy', 'ndarray'), ('numpy', 'dtype'),
           ('_codecs', 'encode'), (f'numpy.core.{MA}', '_reconstruct'), (f'numpy._core.{MA}', 'scalar'),
           ('numpy.core.numeric', '_frombuffer')]


def _build_on_global(module, name, slot_state):
    def build(a):
        defaults = a.dict((a.str('__defaults__'), a.tuple(a.int(7))))
        state = a.tuple(NONE, defaults) if slot_state else defaults
        return _net_with(a, a.glob(module, name) + state + BUILD), r'BUILD on the global'
    return build


def _build_targets(a: Asm) -> dict:
    """Everything the reader can hand to BUILD, each already complete (BUILT once if it takes state)."""
    f4 = a.dtype()
    return {
        'none': NONE, 'bool': TRUE, 'int': a.int(3), 'float': a.float(1.0), 'str': a.str('s'),
        'bytes': a.bytes(b'xy'), 'empty_tuple': a.tuple(), 'tuple': a.tuple(a.int(1)),
        'list': a.list(), 'dict': a.dict(), 'network': a.network(), 'dtype': f4,
        'array': a.reconstruct(a.shape((1,)), f4, a.bytes(bytes(4))),
        'scalar': a.call(a.glob(f'{a.np_core}.{MA}', 'scalar'), a.dtype(), a.bytes(bytes(4))),
        'frombuffer': a.frombuffer(a.bytes(bytes(4)), a.dtype(), a.shape((1,))),
        'encode': a.call(a.glob('_codecs', 'encode'), a.str('x'), a.str('latin1')),
    }


def _build_on(target):
    def build(a):
        state = a.dict((a.str('__class__'), a.str('x')))
        reason = r'second BUILD on' if target in ('network', 'dtype', 'array') else r'BUILD on'
        return _net_with(a, _build_targets(a)[target] + state + BUILD), reason
    return build


def setitems_on_a_global(a):
    return _net_with(a, a.glob('numpy', 'dtype') + MARK + a.str('__call__') + NONE + SETITEMS), \
        r'expected a dict on the stack, found the global numpy\.dtype'


def appends_on_a_network(a):
    return _net_with(a, a.network() + MARK + NONE + APPENDS), r'expected a list on the stack'


def setitem_on_a_dtype(a):
    return _net_with(a, a.dtype() + a.str('names') + NONE + SETITEM), r'expected a dict on the stack'


ATTACKS = {
    # 1. Forged object pointers.
    'forged_pointer_as_reconstruct_shape': forged_pointer_as_reconstruct_shape,
    'forged_pointer_riding_along': forged_pointer_riding_along,
    'forged_pointer_by_newobj': forged_pointer_by_newobj,
    'object_dtype_array': object_dtype_array,
    'object_dtype_scalar': object_dtype_scalar,
    'object_dtype_frombuffer': object_dtype_frombuffer,
    'structured_dtype_holding_objects': structured_dtype_holding_objects,
    'numeric_dtype_with_forged_fields': numeric_dtype_with_forged_fields,
    'dtype_from_a_field_list': dtype_from_a_field_list,
    # 2. Allocation without data.
    'uninitialised_2gib_by_ndarray': uninitialised_2gib_by_ndarray,
    'big_reconstruct_argument': big_reconstruct_argument,
    'big_shape_little_data': big_shape_little_data,
    'big_frombuffer_little_data': big_frombuffer_little_data,
    'zero_size_with_overflowing_dimensions': zero_size_with_overflowing_dimensions,
    'memo_reused_array_data': memo_reused_array_data,
    **{f'shape_{name}': _bad_shape(*spec) for name, spec in BAD_SHAPES.items()},
    **{f'reconstruct_{name}': build for name, build in ODD_RECONSTRUCTS.items()},
    'declared_binbytes8': _declared_length(b'\x8e', '<Q', 2 ** 40),
    'declared_binunicode8': _declared_length(b'\x8d', '<Q', 2 ** 40),
    'declared_bytearray8': _declared_length(b'\x96', '<Q', 2 ** 40),
    'declared_binunicode': _declared_length(b'X', '<I', 2 ** 32 - 1),
    'declared_binstring': _declared_length(b'T', '<i', 2 ** 31 - 1),
    'declared_long4': _declared_length(b'\x8b', '<i', 2 ** 31 - 1),
    # 3. Memo bombs (18 bytes or so per level; the result doubles per level).
    **{f'bomb_{kind}_{levels}_{place}': _bomb_case(levels, kind, place, reason)
       for kind in ('list', 'tuple', 'dict')
       for levels, reason in ((20, r'more than 1,000,000 nodes'), (30, r'more than 1,000,000 nodes'),
                              (1000, r'nested deeper than 100 levels'))
       for place in ('kwargs', 'top')},
    'bomb_tuple_30_shape': _bomb_case(30, 'tuple', 'shape', r'dimension tuple is not'),
    'bomb_list_30_variables': _bomb_case(30, 'list', 'variables', r'more than 1,000,000 nodes'),
    # 4. Cycles and depth.
    **{f'cycle_{kind}_{place}': (lambda kind, place: lambda a: (
        (_net_kwargs if place == 'kwargs' else _net_with)(a, _cycle(a, kind)), r'contains itself'))(kind, place)
       for kind in ('list', 'dict', 'list_dict', 'tuple_list') for place in ('kwargs', 'top')},
    'network_that_is_its_own_component': network_that_is_its_own_component,
    'array_whose_data_is_itself': array_whose_data_is_itself,
    'dtype_whose_arguments_hold_itself': dtype_whose_arguments_hold_itself,
    'deep_lists': deep_lists,
    'deep_tuples': deep_tuples,
    'deep_dicts_in_kwargs': deep_dicts_in_kwargs,
    'deep_components': deep_components,
    # 5. State change: BUILD, SETITEMS, APPENDS on what the reader hands out.
    **{f'build_on_{name}_{"slots" if slots else "dict"}': _build_on_global(module, name, slots)
       for module, name in GLOBALS for slots in (False, True)},
    **{f'build_on_{target}': _build_on(target) for target in _build_targets(Asm(4))},
    'setitems_on_a_global': setitems_on_a_global,
    'appends_on_a_network': appends_on_a_network,
    'setitem_on_a_dtype': setitem_on_a_dtype,
}
# Floods are the same opcodes in every protocol, and take the longest to refuse: protocol 4 only.
FLOODS = {
    'flood_memoize': _flood(b'\x94', r'more than 500,000 containers, calls, marks and memo entries'),
    'flood_empty_lists': _flood(b']', r'more than 500,000 containers'),
    'flood_tuples': _flood(b'\x85', r'more than 500,000 containers'),
    'flood_marks': _flood(b'(', r'more than 500,000 containers'),
    'flood_dup': _flood(b'2', r'the pickle holds no networks'),
}
CASES = {**{f'{name}-p{p}': (build, p) for name, build in ATTACKS.items() for p in PROTOCOLS},
         **{f'{name}-p4': (build, 4) for name, build in FLOODS.items()}}


# ------------------------------------------------------------------------------------------------
# Loading in a child process, with a memory limit; a crash or hang there fails the test.

_CHILD = r'''
import gc, json, resource, sys, time
from dnnlib import legacy_pickle as lp
headroom = int(sys.argv[1])
vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, vm + headroom))


def status_kb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1])


def reset_peak():
    # Writing 5 to clear_refs resets VmHWM (Linux 4.0+), so each file's own peak is measured.
    # Where that is not allowed the peak only counts growth beyond earlier files' peaks.
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


for path in sys.argv[2:]:
    print(json.dumps({'start': path}), flush=True)
    gc.collect()
    reset_peak()
    before = status_kb('VmRSS')
    t = time.perf_counter()
    try:
        lp.load(path)
        outcome, message = 'loaded', ''
    except lp.PickleFormatError as e:
        outcome, message = 'refused', str(e)
    except BaseException as e:
        outcome, message = type(e).__name__, str(e)[:300]
    print(json.dumps({'path': path, 'outcome': outcome, 'message': message,
                      'seconds': time.perf_counter() - t,
                      'peak_mb': (status_kb('VmHWM') - before) / 1024}), flush=True)
'''


def load_in_child(paths, headroom_mb: int = 1024, timeout: float = 300) -> dict:
    """Loads each file in one child process; returns path -> record (outcome, message, time, memory)."""
    env = dict(os.environ, PYTHONPATH=REPO_DIR, OPENBLAS_NUM_THREADS='1')
    argv = [sys.executable, '-c', _CHILD, str(headroom_mb << 20), *map(str, paths)]
    try:
        proc = subprocess.run(argv, cwd=REPO_DIR, env=env, capture_output=True, text=True,
                              timeout=timeout)
        stdout, code, stderr = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as e:
        stdout, code, stderr = (e.stdout or b'').decode(), 'timeout', ''
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith('{')]
    started = [r['start'] for r in records if 'start' in r]
    if code != 0:
        how = f'signal {signal.Signals(-code).name}' if isinstance(code, int) and code < 0 else code
        pytest.fail(f'the child died ({how}) while loading {started[-1] if started else "?"}\n'
                    f'{stderr[-3000:]}')
    return {r['path']: r for r in records if 'path' in r}


@pytest.fixture(scope='module')
def hostile_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hostile')
    files = {}
    for case, (build, protocol) in CASES.items():
        data, reason = build(Asm(protocol))
        path = folder / f'{case}.pkl'
        path.write_bytes(data)
        files[case] = (str(path), reason, len(data))
    return files


@pytest.fixture(scope='module')
def child_results(hostile_files):
    """All hostile files loaded in one child. In-process tests depend on it, so they run only
    when no file crashed the child."""
    return load_in_child([path for path, _reason, _size in hostile_files.values()])


@pytest.mark.parametrize('case', CASES)
def test_hostile_file_is_refused_with_reason(case, hostile_files, child_results):
    path, reason, size = hostile_files[case]
    record = child_results[path]
    assert record['outcome'] == 'refused', record
    message = record['message']
    assert message.startswith(f'{path}: '), message
    assert re.search(reason, message), f'{reason!r} not in {message!r}'
    assert '\n' not in message and len(message) < 1000 + len(path)
    assert record['seconds'] < seconds_allowed(size), record


def test_hostile_files_stay_small_in_memory(hostile_files, child_results):
    too_big = {case: (size, child_results[path]['peak_mb'])
               for case, (path, _reason, size) in hostile_files.items()
               if child_results[path]['peak_mb'] > megabytes_allowed(size)}
    assert not too_big, too_big
    assert max(size for _p, _r, size in hostile_files.values()) < 2.2e6   # 100 bytes to 2 MB


def test_reader_stays_within_an_address_space_limit(tmp_path):
    # The 2 GiB allocation and the memo-reused data again, under a limit they would exceed.
    paths = []
    for name in ('uninitialised_2gib_by_ndarray', 'memo_reused_array_data', 'big_shape_little_data'):
        data, _reason = ATTACKS[name](Asm(4))
        paths.append(tmp_path / f'{name}.pkl')
        paths[-1].write_bytes(data)
    results = load_in_child(paths, headroom_mb=48)
    for path in paths:
        assert results[str(path)]['outcome'] == 'refused', results[str(path)]
        assert 'out of memory' not in results[str(path)]['message']


# ------------------------------------------------------------------------------------------------
# Loader state: nothing a file does may outlive its load.

def loader_state() -> dict:
    """Identity and mutable attributes of everything the reader module holds."""
    state = {'module': sorted((k, id(v)) for k, v in vars(lp).items())}
    for name, obj in vars(lp).items():
        members = [(name, obj)]
        if isinstance(obj, type):
            members += [(f'{name}.{k}', v) for k, v in vars(obj).items()]
            state[f'{name}.__dict__'] = sorted((k, id(v)) for k, v in vars(obj).items())
        for label, member in members:
            for attr in ('__defaults__', '__kwdefaults__', '__code__'):
                if hasattr(member, attr):
                    state[f'{label}.{attr}'] = repr(getattr(member, attr))
            if callable(member) and hasattr(member, '__dict__') and not isinstance(member, type):
                state[f'{label}.__dict__'] = repr(vars(member))
    for container in (lp._GLOBALS, lp._GLOBAL_NAMES, lp._REFUSED_OPS):
        state[f'table {id(container)}'] = repr(container)
    f4 = np.dtype('f4')
    state['numpy'] = (f4.byteorder, f4.str, f4.flags, f4.isnative, repr(np.ndarray.__dict__.keys()))
    return state


def test_hostile_files_leave_no_state_behind(hostile_files, child_results):
    reference = lp.load(fixture_path('sg2_r64.pkl'))
    before = loader_state()
    for path, _reason, _size in hostile_files.values():
        with pytest.raises(lp.PickleFormatError):
            lp.load(path)
    assert loader_state() == before
    again = lp.load(fixture_path('sg2_r64.pkl'))
    assert all(a == b for a, b in zip(reference, again))


def test_build_on_a_reader_function_cannot_change_its_defaults():
    # The attack of issue #13 itself: BUILD on the function find_class returned set __defaults__.
    a = Asm(4)
    func = a.glob('numpy.core.multiarray', '_reconstruct')
    evil = a.pickle(a.tuple(func + a.tuple(NONE, a.dict((a.str('__defaults__'), a.tuple(a.int(1))))) + BUILD,
                            a.network()))
    before = loader_state()
    with pytest.raises(lp.PickleFormatError, match='BUILD on the global numpy.core.multiarray._reconstruct'):
        lp.load(io.BytesIO(evil))
    assert loader_state() == before


# ------------------------------------------------------------------------------------------------
# What hostile-looking but valid files do: load, quickly, with sharing kept.

def test_moderate_memo_sharing_loads_once_per_object():
    a = Asm(4)
    data = _net_kwargs(a, _bomb(a, 15, 'list'))   # 65,535 nodes expanded, 16 distinct lists
    t = time.perf_counter()
    net = lp.load(io.BytesIO(data))
    assert time.perf_counter() - t < seconds_allowed(len(data))
    x = net.static_kwargs['x']
    assert x[0] is x[1] and x[0][0] is x[0][1]     # shared in the file, shared in the result


def test_large_memo_index_allocates_nothing():
    # pickle's own unpickler sizes its memo table by the largest index (32 GB for this one).
    a = Asm(4)
    data = a.pickle(a.network() + b'r' + struct.pack('<I', 2 ** 32 - 1))
    assert lp.load(io.BytesIO(data)).name == 'D'


def test_nesting_below_the_cap_loads_and_above_is_refused():
    a = Asm(4)

    def nested(depth):
        return _net_kwargs(a, a.list() if depth == 0 else b']' * depth + APPEND * (depth - 1))

    assert lp.load(io.BytesIO(nested(90))).static_kwargs['x'] is not None
    with pytest.raises(lp.PickleFormatError, match='nested deeper than 100 levels'):
        lp.load(io.BytesIO(nested(100)))


def test_deep_caller_stack_gets_pickle_format_error_not_recursion_error():
    # The depth cap keeps the reader's own recursion short, but a caller may already be deep.
    a = Asm(4)
    data = _net_kwargs(a, b']' * 95 + APPEND * 94)

    def at_depth(n):
        if n:
            return at_depth(n - 1)
        try:
            return lp.load(io.BytesIO(data))
        except RecursionError as e:   # pragma: no cover - the failure this test exists for
            pytest.fail(f'RecursionError escaped: {e}')
        except lp.PickleFormatError as e:
            return e

    outcome = at_depth(sys.getrecursionlimit() - 150)
    assert isinstance(outcome, (lp.NetworkState, lp.PickleFormatError)), outcome


# ------------------------------------------------------------------------------------------------
# The command line on hostile files: one `error:` line each, non-zero exit, no traceback.

def test_info_command_reports_hostile_files_on_one_line_each(hostile_files):
    cases = ['forged_pointer_as_reconstruct_shape-p4', 'uninitialised_2gib_by_ndarray-p2',
             'bomb_list_30_kwargs-p3', 'cycle_list_top-p5', 'deep_tuples-p4',
             'build_on__reconstruct_slots-p4']
    paths = [hostile_files[c][0] for c in cases]
    proc = subprocess.run([sys.executable, '-m', 'dnnlib.legacy_pickle', 'info',
                           fixture_path('sg1_r64.pkl'), *paths],
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(paths), proc.stderr
    for line, path in zip(lines, paths):
        assert line.startswith(f'error: {path}: '), line
    assert "Network 'Gs'" in proc.stdout   # the genuine file in the same call still printed
