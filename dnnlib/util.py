"""Small framework-free helpers: EasyDict, call/construct by name, format_time, Logger."""

import contextlib
import importlib
import os
import re
import sys
import tempfile
import types
from typing import Any, Callable, List, Optional, TextIO


class EasyDict(dict):
    """A dict whose items are also attributes: ``d.key`` is ``d['key']``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]


def get_obj_by_name(name: str) -> Any:
    """Finds a Python object by its fully qualified name, e.g. ``'training.loss.G_logistic_nonsaturating'``.

    Tries the longest importable module prefix first, then walks attributes.
    """
    parts = name.split('.')
    for i in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:i])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and not module_name.startswith(e.name):
                raise    # a real import error inside an existing module
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise AttributeError(f'{name}: module {module_name!r} has no attribute path '
                                     f'{".".join(parts[i:])!r}')
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f'cannot find a module for {name!r}')


def call_func_by_name(*args: Any, func_name: str, **kwargs: Any) -> Any:
    """Calls the function named ``func_name`` (fully qualified) with the given arguments."""
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise TypeError(f'{func_name} is not callable')
    return func(*args, **kwargs)


def construct_class_by_name(*args: Any, class_name: str, **kwargs: Any) -> Any:
    """Constructs an instance of the class named ``class_name`` (fully qualified)."""
    cls = get_obj_by_name(class_name)
    if not isinstance(cls, type):
        raise TypeError(f'{class_name} is not a class')
    return cls(*args, **kwargs)


def format_time(seconds: float) -> str:
    """Formats seconds the way the official tick line does: ``12s``, ``3m 04s``, ``2h 05m``, ``1d 03h``."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h'


class _Tee:
    def __init__(self, stream: TextIO, file: TextIO, flush: bool):
        self.stream, self.file, self.flush_always = stream, file, flush

    def write(self, text: str) -> int:
        if text:
            self.file.write(text)
            self.stream.write(text)
            if self.flush_always:
                self.flush()
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:   # isatty, fileno, encoding ... of the real stream
        return getattr(self.stream, name)


class Logger:
    """Tees ``sys.stdout`` and ``sys.stderr`` into a log file until ``close()`` (or ``with`` exit)."""

    def __init__(self, file_name: Optional[str] = None, file_mode: str = 'a', should_flush: bool = True):
        self.file = open(file_name, file_mode, encoding='utf-8') if file_name else None
        self.stdout, self.stderr = sys.stdout, sys.stderr
        if self.file is not None:
            sys.stdout = _Tee(self.stdout, self.file, should_flush)
            sys.stderr = _Tee(self.stderr, self.file, should_flush)

    def __enter__(self) -> 'Logger':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Restores the original streams and closes the file."""
        if self.file is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self.stdout, self.stderr
        self.file.close()
        self.file = None


def is_top_level_function(obj: Any) -> bool:
    """True for a module-level function (something call_func_by_name can name)."""
    return isinstance(obj, types.FunctionType) and '.' not in obj.__qualname__


def get_top_level_function_name(obj: Callable) -> str:
    """Fully qualified name of a module-level function, for storing in options files."""
    if not is_top_level_function(obj):
        raise ValueError(f'{obj!r} is not a module-level function')
    return f'{obj.__module__}.{obj.__name__}'


@contextlib.contextmanager
def atomic_path(path: str):
    """Writes ``path`` all or nothing: yields a temporary file name beside it (same extension, so
    writers that choose a format by it still work), renamed into place when the block ends
    without error and removed otherwise (no half-written file, even on Ctrl-C). Creates the
    folder if needed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp' + os.path.splitext(name)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb'):
    """``atomic_path`` for an open file: yields the temporary file opened with ``mode``; its data
    reach the disk (fsync) before the rename, so a crash leaves the old file or the new one."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def parse_seeds(text: str) -> List[int]:
    """Parses a seed list such as ``'0-3,7,10-12'`` into ``[0, 1, 2, 3, 7, 10, 11, 12]``
    (ranges inclusive; seeds are ``np.random.RandomState`` seeds, 0 .. 2**32-1).

    Raises:
        ValueError: malformed text, a reversed range, or a seed >= 2**32.
    """
    seeds = []
    for part in (t.strip() for t in str(text).split(',')):
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise ValueError(f'bad seed list {text!r}: {part!r} is not N or N-M '
                             '(non-negative integers, e.g. 0-3,7,10-12)')
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if hi < lo:
            raise ValueError(f'bad seed list {text!r}: range {part!r} is reversed')
        if hi >= 2 ** 32:
            raise ValueError(f'bad seed list {text!r}: seeds must be < 2**32')
        seeds.extend(range(lo, hi + 1))
    return seeds


# Environment defaults for TensorFlow in this project's scripts (TensorFlow reads them once, when it
# is first imported; a value set in the environment wins). oneDNN: TensorFlow turns it on by
# itself only on CPUs with AVX-512; on the 2-core AVX2 development machine it made the demo's
# training steps 1.3-1.6x and generation 1.2-1.6x faster (docs/performance.md), with results
# inside the README's tolerances (tests/test_onednn.py runs the network and training tests so).
TF_ENV_DEFAULTS = {'TF_ENABLE_ONEDNN_OPTS': '1'}


def tensorflow_env_defaults() -> None:
    """Sets the TF_ENV_DEFAULTS the environment does not set. Call before importing TensorFlow."""
    for name, value in TF_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_output_dir(outdir: str) -> None:
    """Raises ValueError unless ``outdir`` is a folder or can be made one (checked before any
    network is loaded, so that a bad path costs nothing and leaves nothing behind)."""
    path = os.path.abspath(outdir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise ValueError(f'{outdir}: output folder cannot be created: {path} is a file, not a folder')
    if not os.access(path, os.W_OK | os.X_OK):      # X: to create or open files inside it
        raise ValueError(f'{outdir}: output folder is not writable ({path})')


def read_npz(path: str, where: str, what: str) -> dict:
    """Every array of an ``.npz`` file (no pickled objects), or ValueError starting with
    ``where``: "<what> file not found" or "not a readable .npz file (...)"."""
    import numpy as np
    if not os.path.isfile(path):
        raise ValueError(f'{where}: {what} file not found')
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as e:   # noqa: BLE001 - any read failure means "not an npz we can use"
        raise ValueError(f'{where}: not a readable .npz file ({e})') from e
