"""Builds, caches and loads the compiled kernels of tf2.ops, and chooses the implementation.

The C++ CPU kernels are compiled with g++ at first use against the TensorFlow that is imported
(``tf.sysconfig`` gives the compile and link flags), so they work in any virtualenv where
TensorFlow was pip-installed. They are built with ``-O3 -march=native -fno-trapping-math`` so
the element loops vectorize; the library name includes a hash of the CPU's flags. The CUDA kernels are compiled with nvcc, only when TensorFlow lists
a GPU and nvcc is found.

Cache: ``$STYLEGAN_OPS_CACHE`` or ``~/.cache/stylegan_tf2_ops``. A library's file name contains a
hash of its sources, the compiler command and the TensorFlow version, so an edited source or a
different TensorFlow gets a fresh build. Each build writes to a temporary name and is renamed into
place, so concurrent processes never load a half-written library.

Implementation choice (``impl=``):
* ``'ref'``: plain TensorFlow ops (the readable reference);
* ``'cpp'``: compiled C++ CPU kernel; raises ``OpBuildError`` when it cannot be built;
* ``'cuda'``: compiled CUDA kernel; raises when there is no GPU, no nvcc or the build fails;
* ``'auto'``: the fastest one available (cuda if a GPU is listed, else cpp, else ref). A failed
  build is reported with a warning carrying the compiler's error text, then ref is used.
The chosen implementation is printed once per op and process.
"""
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

import tensorflow as tf

IMPLS = ('auto', 'ref', 'cpp', 'cuda')
_SRC_DIR = os.path.dirname(os.path.abspath(__file__))
_lock = threading.Lock()
_loaded = {}        # library name -> loaded module, or the OpBuildError it raised
_announced = set()  # (op name, impl) pairs already printed


class OpBuildError(RuntimeError):
    """A compiled kernel could not be built or loaded; the message holds the compiler output."""


def cache_dir() -> str:
    """Folder holding the compiled libraries ($STYLEGAN_OPS_CACHE or ~/.cache/stylegan_tf2_ops)."""
    path = os.environ.get('STYLEGAN_OPS_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'stylegan_tf2_ops')
    os.makedirs(path, exist_ok=True)
    return path


def gpu_available() -> bool:
    """True when TensorFlow lists at least one GPU."""
    return len(tf.config.list_physical_devices('GPU')) > 0


def _nvcc() -> str:
    cuda_home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH') or '/usr/local/cuda'
    return shutil.which('nvcc') or shutil.which(os.path.join(cuda_home, 'bin', 'nvcc')) or ''


def _march_fixes():
    # TensorFlow 2.21's Eigen headers (Core/arch/AVX512/PacketMathFP16.h) do not compile with
    # GCC 12 once -march=native turns AVX512-FP16 on (Sapphire Rapids and later Xeons). The
    # kernels are float32 and float16-by-conversion: leave that instruction set off.
    return ['-mno-avx512fp16'] if 'avx512_fp16' in _cpu_signature() else []


def _cpp_command(sources, out_path):
    return (['g++', '-std=c++17', '-O3', '-march=native'] + _march_fixes()
            + ['-fno-trapping-math', '-fPIC', '-shared', '-Wno-deprecated-declarations']
            + [s for s in tf.sysconfig.get_compile_flags() if not s.startswith('--std=')]
            + list(sources) + ['-o', out_path] + tf.sysconfig.get_link_flags())


def _cuda_command(sources, out_path):
    nvcc = _nvcc()
    cuda_root = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    compile_flags = [f for f in tf.sysconfig.get_compile_flags() if not f.startswith('--std=')]
    return ([nvcc, '-std=c++17', '-O2', '--shared', '-Xcompiler', '-fPIC', '-DGOOGLE_CUDA=1',
             '-DNDEBUG', '--expt-relaxed-constexpr', '--disable-warnings', '-x', 'cu']
            + compile_flags + list(sources) + ['-o', out_path] + tf.sysconfig.get_link_flags()
            + ['-L' + os.path.join(cuda_root, 'lib64'), '-lcudart'])


def _cpu_signature():
    # The CPU model and instruction-set flags, so a cache folder shared between machines never
    # hands a -march=native library to a CPU that lacks its instructions.
    try:
        with open('/proc/cpuinfo') as f:
            lines = [line for line in f if line.startswith(('model name', 'flags'))]
        return ''.join(sorted(set(lines)))
    except OSError:
        return platform.machine() + platform.processor()


def _library_path(name, sources, command_fn, cuda):
    digest = hashlib.sha256()
    for src in sources:
        with open(src, 'rb') as f:
            digest.update(f.read())
    digest.update(' '.join(command_fn(['SRC'], 'OUT')).encode())
    digest.update(tf.__version__.encode())
    if not cuda:
        digest.update(_cpu_signature().encode())  # -march=native code runs only on this CPU type
    return os.path.join(cache_dir(), f'{name}_{digest.hexdigest()[:16]}.so')


def _compile(command_fn, sources, lib_path):
    # Build to a unique temporary name in the cache folder, then rename (atomic on POSIX), so a
    # concurrent build of the same library by another process is harmless.
    fd, tmp_path = tempfile.mkstemp(suffix='.so.tmp', dir=os.path.dirname(lib_path))
    os.close(fd)
    cmd = command_fn(sources, tmp_path)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            output = proc.stderr + proc.stdout
            errors = [line for line in output.splitlines() if 'error:' in line.lower()]
            raise OpBuildError(f'tf2/ops: building {os.path.basename(lib_path)} failed '
                               f'(exit {proc.returncode}).\nCommand: {" ".join(cmd)}\n'
                               'Errors:\n' + '\n'.join(errors[:20])
                               + f'\nEnd of compiler output:\n{output[-4000:]}')
        os.replace(tmp_path, lib_path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


@tf.autograph.experimental.do_not_convert
def load_library(name: str, source_files, cuda: bool = False):
    """Returns the loaded op library built from ``source_files`` (names inside tf2/ops/).

    Builds it at first use and caches it on disk and in the process.

    Raises:
        OpBuildError: the compiler is missing, the build failed or the library did not load.
    """
    sources = [os.path.join(_SRC_DIR, s) for s in source_files]
    key = (name, cuda)
    with _lock:
        if key not in _loaded:
            try:
                _loaded[key] = _build_and_load(name, sources, cuda)
            except OpBuildError as e:
                _loaded[key] = e
        result = _loaded[key]
    if isinstance(result, OpBuildError):
        raise result
    return result


def _build_and_load(name, sources, cuda):
    command_fn = _cuda_command if cuda else _cpp_command
    compiler = _nvcc() if cuda else shutil.which('g++')
    if not compiler:
        raise OpBuildError(f'tf2/ops: cannot build {name}: '
                           f'{"nvcc" if cuda else "g++"} not found on PATH')
    lib_path = _library_path(name, sources, command_fn, cuda)
    if not os.path.isfile(lib_path):
        _compile(command_fn, sources, lib_path)
    try:
        return tf.load_op_library(lib_path)
    except Exception as e:  # a stale or foreign library: report it with its path
        raise OpBuildError(f'tf2/ops: loading {lib_path} failed: {e}') from e


@tf.autograph.experimental.do_not_convert
def resolve_impl(op_name: str, impl: str, loader, dtype=None) -> str:
    """Turns ``impl`` into 'ref', 'cpp' or 'cuda' and announces the choice once per op.

    Args:
        op_name: public op name, for messages.
        impl: one of IMPLS.
        loader: function(kind) that loads the compiled library for kind 'cpp' or 'cuda'
            (raising OpBuildError on failure).
        dtype: dtype of the input; the compiled kernels take float32 and float64.
    """
    if impl not in IMPLS:
        raise ValueError(f'tf2/ops/{op_name}: unknown impl {impl!r}; choose one of {IMPLS}')
    compiled_dtype = dtype is None or tf.as_dtype(dtype) in (tf.float32, tf.float64)
    if impl == 'cuda' and not gpu_available():
        raise OpBuildError(f'tf2/ops/{op_name}: impl=\'cuda\' requested but TensorFlow lists no GPU')
    if impl in ('cpp', 'cuda'):
        if not compiled_dtype:
            raise TypeError(f'tf2/ops/{op_name}: impl={impl!r} supports float32 and float64, '
                            f'got {tf.as_dtype(dtype).name}')
        loader(impl)  # raises OpBuildError with the compiler output
        chosen = impl
    elif impl == 'ref' or not compiled_dtype:
        chosen = 'ref'
    else:
        chosen = 'ref'
        for kind in (['cuda'] if gpu_available() else ['cpp']):
            try:
                loader(kind)
                chosen = kind
                break
            except OpBuildError as e:
                if (op_name, 'warned', kind) not in _announced:
                    _announced.add((op_name, 'warned', kind))
                    warnings.warn(f'{e}\ntf2/ops/{op_name}: falling back to impl=\'ref\'',
                                  RuntimeWarning, stacklevel=3)
    _announce(op_name, chosen, impl)
    return chosen


_DESCRIPTIONS = {'ref': 'reference TensorFlow ops', 'cpp': 'compiled C++ CPU kernel',
                 'cuda': 'compiled CUDA kernel'}


def _announce(op_name, chosen, requested):
    if (op_name, chosen) in _announced:
        return
    _announced.add((op_name, chosen))
    print(f'tf2.ops: {op_name} runs impl={chosen!r} ({_DESCRIPTIONS[chosen]}; '
          f'requested {requested!r})', file=sys.stderr, flush=True)
