"""metrics.torchscript: the restricted reader of PyTorch files, on files written here by hand.

The writers below emit the pickle opcodes themselves (no torch, no pickle.Pickler), in the
layouts PyTorch uses: a TorchScript / new-style zip (`<prefix>/data.pkl` + `<prefix>/data/<key>`)
and the legacy torch.save stream (five pickles, then the storages). Other metric tests import them.
"""
import os
import struct
import zipfile

import numpy as np
import pytest

from metrics import torchscript


class Module:
    """A TorchScript module to write: class name and ordered attributes."""

    def __init__(self, qualname: str, **attributes):
        self.qualname, self.attributes = qualname, attributes


class IntList(list):
    """Written as torch.jit._pickle.build_intlist, as TorchScript stores List[int] attributes."""


class PickleWriter:
    """Protocol-2 opcodes for the few types PyTorch files hold; tensors become storage records."""

    def __init__(self, storages: dict, persid_extra=()):
        self.out = bytearray(b'\x80\x02')
        self.storages, self.persid_extra = storages, tuple(persid_extra)

    def glob(self, module: str, name: str):
        self.out += b'c' + f'{module}\n{name}\n'.encode()

    def string(self, s: str):
        data = s.encode()
        self.out += b'X' + struct.pack('<I', len(data)) + data

    def integer(self, v: int):
        if -2 ** 31 <= v < 2 ** 31:
            self.out += b'J' + struct.pack('<i', v)
        else:       # LONG1, as torch.save writes its magic number
            data = v.to_bytes((v.bit_length() + 8) // 8, 'little', signed=True)
            self.out += b'\x8a' + bytes([len(data)]) + data

    def tuple_of(self, items):
        self.out += b'('
        for item in items:
            self.value(item)
        self.out += b't'

    def tensor(self, array: np.ndarray, strides=None):
        """A tensor of the storage `array` (C order unless `strides`, in elements, are given)."""
        key = str(len(self.storages))
        storage = np.ascontiguousarray(array, np.float32).reshape(-1) if strides is None else \
            np.asarray(array, np.float32).reshape(-1)
        self.storages[key] = storage
        shape = array.shape if strides is None else strides[0]
        stride = (tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
                  if strides is None else strides[1])
        self.glob('torch._utils', '_rebuild_tensor_v2')
        self.out += b'(('
        self.string('storage')
        self.glob('torch', 'FloatStorage')
        self.string(key)
        self.string('cpu')
        self.integer(storage.size)
        for extra in self.persid_extra:
            self.value(extra)
        self.out += b'tQ'
        self.integer(0)
        self.tuple_of(shape)
        self.tuple_of(stride)
        self.out += b'\x89'
        self.glob('collections', 'OrderedDict')
        self.out += b')Rt' + b'R'

    def value(self, v):
        if isinstance(v, Module):
            self.glob(*v.qualname.rsplit('.', 1))
            self.out += b')\x81'
            self.dict_of(v.attributes)
            self.out += b'b'
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        elif isinstance(v, tuple) and len(v) == 3 and v[0] == 'strided':
            self.tensor(v[1], strides=v[2])
        elif isinstance(v, bool):
            self.out += b'\x88' if v else b'\x89'
        elif isinstance(v, int):
            self.integer(v)
        elif v is None:
            self.out += b'N'
        elif isinstance(v, str):
            self.string(v)
        elif isinstance(v, IntList):
            self.glob('torch.jit._pickle', 'build_intlist')
            self.out += b'(]('
            for item in v:
                self.integer(item)
            self.out += b'etR'
        elif isinstance(v, list):
            self.out += b']('
            for item in v:
                self.value(item)
            self.out += b'e'
        elif isinstance(v, tuple):
            self.tuple_of(v)
        elif isinstance(v, dict):
            self.dict_of(v, ordered=getattr(v, 'ordered', False))
        else:
            raise TypeError(type(v))

    def dict_of(self, d: dict, ordered=False):
        if ordered:
            self.glob('collections', 'OrderedDict')
            self.out += b')R'
        else:
            self.out += b'}'
        self.out += b'('
        for key, item in d.items():
            self.string(key)
            self.value(item)
        self.out += b'u'

    def finish(self) -> bytes:
        return bytes(self.out) + b'.'


class OrderedState(dict):
    ordered = True


def write_torch_zip(path, obj, prefix='archive', extra_records=None):
    """A TorchScript / torch.save (>= 1.6) zip archive holding `obj`."""
    storages = {}
    writer = PickleWriter(storages)
    writer.value(obj)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(f'{prefix}/data.pkl', writer.finish())
        for key, storage in storages.items():
            z.writestr(f'{prefix}/data/{key}', storage.astype('<f4').tobytes())
        z.writestr(f'{prefix}/version', b'3\n')
        for name, data in (extra_records or {}).items():
            z.writestr(f'{prefix}/{name}', data)
    return str(path)


def write_torch_legacy(path, obj, truncate=0):
    """A legacy torch.save file: magic, protocol, sys info, object, storage keys, storages."""
    storages = {}
    pickles = []
    for head in (torchscript.LEGACY_MAGIC_NUMBER, torchscript.LEGACY_PROTOCOL_VERSION,
                 {'protocol_version': 1001, 'little_endian': True}):
        w = PickleWriter({})
        w.value(head)
        pickles.append(w.finish())
    w = PickleWriter(storages, persid_extra=(None,))
    w.value(obj)
    pickles.append(w.finish())
    w = PickleWriter({})
    w.value(list(storages))
    pickles.append(w.finish())
    data = b''.join(pickles) + b''.join(struct.pack('<q', s.size) + s.astype('<f4').tobytes()
                                        for s in storages.values())
    with open(path, 'wb') as f:
        f.write(data[:len(data) - truncate])
    return str(path)


# ------------------------------------------------------------------------------------------------

def _module_tree(rng):
    conv = Module('__torch__.net.Conv', weight=rng.randn(4, 3, 3, 3).astype(np.float32),
                  beta=rng.randn(4).astype(np.float32), stride=2, padding=IntList([0, 1]), training=False)
    return Module('__torch__.net.Wrap', training=False, _is_full_backward_hook=None,
                  net=Module('__torch__.net.Body', conv=conv, name='body'))


def test_zip_module_tree_and_tensors(tmp_path):
    tree = _module_tree(np.random.RandomState(0))
    path = write_torch_zip(tmp_path / 'model.pt', tree, prefix='out_jit_module')
    obj = torchscript.load(path)
    assert isinstance(obj, torchscript.ScriptObject) and obj.qualname == '__torch__.net.Wrap'
    modules = dict(torchscript.named_modules(obj))
    assert list(modules) == ['', 'net', 'net.conv']
    conv = modules['net.conv'].attributes
    assert conv['stride'] == 2 and conv['padding'] == [0, 1] and conv['training'] is False
    want = tree.attributes['net'].attributes['conv'].attributes
    np.testing.assert_array_equal(conv['weight'], want['weight'])
    np.testing.assert_array_equal(conv['beta'], want['beta'])
    assert [n for n, _ in torchscript.named_tensors(obj)] == ['net.conv.weight', 'net.conv.beta']


def test_strided_views_are_read_as_torch_would(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    # The transpose of `base` as a view: shape (6, 4), strides (1, 6) into base's storage.
    state = OrderedState(t=('strided', base, ((6, 4), (1, 6))))
    obj = torchscript.load(write_torch_zip(tmp_path / 'v.pth', state))
    np.testing.assert_array_equal(obj['t'], base.T)


def test_legacy_state_dict(tmp_path):
    rng = np.random.RandomState(1)
    state = OrderedState(**{'features.0.weight': rng.randn(8, 3, 3, 3).astype(np.float32),
                            'features.0.bias': rng.randn(8).astype(np.float32)})
    obj = torchscript.load(write_torch_legacy(tmp_path / 'old.pth', state))
    assert list(obj) == list(state)
    for key in state:
        np.testing.assert_array_equal(obj[key], state[key])


def test_big_endian_archive(tmp_path):
    state = OrderedState(x=np.arange(5, dtype=np.float32))
    path = tmp_path / 'be.pt'
    write_torch_zip(path, state, extra_records={'byteorder': b'big'})
    # Rewrite the storage big-endian, as a big-endian machine would have written it.
    with zipfile.ZipFile(path) as z:
        records = {n: z.read(n) for n in z.namelist()}
    records['archive/data/0'] = np.arange(5, dtype='>f4').tobytes()
    with zipfile.ZipFile(path, 'w') as z:
        for n, d in records.items():
            z.writestr(n, d)
    np.testing.assert_array_equal(torchscript.load(str(path))['x'], np.arange(5))


def _hostile_pickle(tmp_path, marker):
    data = b'\x80\x02cos\nsystem\n(X' + struct.pack('<I', len(f'touch {marker}')) + \
        f'touch {marker}'.encode() + b'tR.'
    path = tmp_path / 'hostile.pt'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('archive/data.pkl', data)
    return str(path)


@pytest.mark.parametrize('case', ['hostile', 'missing_record', 'out_of_bounds', 'not_torch', 'truncated_legacy',
                                  'missing', 'two_pickles'])
def test_bad_files_are_refused(tmp_path, case):
    marker = tmp_path / 'HACKED'
    if case == 'hostile':
        path, words = _hostile_pickle(tmp_path, marker), ['refused global os.system']
    elif case == 'missing_record':
        path = write_torch_zip(tmp_path / 'm.pt', OrderedState(x=np.ones(3, np.float32)))
        with zipfile.ZipFile(path) as z:
            keep = {n: z.read(n) for n in z.namelist() if not n.endswith('data/0')}
        with zipfile.ZipFile(path, 'w') as z:
            for n, d in keep.items():
                z.writestr(n, d)
        words = ['data/0 is missing']
    elif case == 'out_of_bounds':
        path = write_torch_zip(tmp_path / 'o.pt', OrderedState(
            t=('strided', np.ones(4, np.float32), ((3, 3), (3, 1)))))
        words = ['reaches element']
    elif case == 'not_torch':
        path = str(tmp_path / 'n.pt')
        with open(path, 'wb') as f:
            f.write(b'hello, not a torch file')
        words = ['not a readable PyTorch file']
    elif case == 'truncated_legacy':
        path = write_torch_legacy(tmp_path / 't.pth', OrderedState(x=np.ones(100, np.float32)), truncate=10)
        words = ['truncated']
    elif case == 'missing':
        path, words = str(tmp_path / 'nothing.pt'), ['file not found']
    else:
        path = str(tmp_path / 'two.pt')
        with zipfile.ZipFile(path, 'w') as z:
            z.writestr('a/data.pkl', b'\x80\x02N.')
            z.writestr('b/data.pkl', b'\x80\x02N.')
        words = ['found 2']
    with pytest.raises(torchscript.TorchFileError) as info:
        torchscript.load(path)
    for word in words:
        assert word in str(info.value)
    assert path in str(info.value) or case in ('out_of_bounds',)
    assert not marker.exists()
