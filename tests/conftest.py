"""Shared test helpers, imported by the test modules with `from conftest import ...`.

The golden fixtures (in-repo, tests/data); tiny networks, datasets and training runs; a numpy
stand-in for Gs; the bad-input harness for scripts (one-line error, nothing written); CI=true
turning skips into failures; NCHW tests in a oneDNN child process; output comparisons.
"""
import functools
import importlib.util
import os
import subprocess
import sys
import types
from typing import Dict, Optional, Sequence

import numpy as np
import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The suite runs with oneDNN off, whatever this CPU would choose (TensorFlow turns it on by itself
# only on CPUs with AVX-512), so that every machine checks the same path; tests/test_onednn.py
# runs the network, ops and training tests again with it on. Set before TensorFlow is imported.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_DIR, 'tests', 'data')
# NVIDIA's outputs for two small official-format networks travel with the repository (see
# tests/data/official/README.md); STYLEGAN_FIXTURES points the tests at another copy.
FIXTURES_DIR = os.environ.get('STYLEGAN_FIXTURES') or os.path.join(DATA_DIR, 'official')
SPEC_DIR = DATA_DIR


def load_bench_script(name: str) -> types.ModuleType:
    """bench/<name>.py as a module (bench/ is scripts, not a package), for tests of its pure parts."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_DIR, 'bench', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_path(name: str) -> str:
    """Path of an official fixture file; a missing file fails the test (it never skips)."""
    path = os.path.join(FIXTURES_DIR, name)
    if not os.path.isfile(path):
        pytest.fail(f'official fixture {name} not found in {FIXTURES_DIR} (the repository ships them '
                    'in tests/data/official; STYLEGAN_FIXTURES, if set, must hold the same files)',
                    pytrace=False)
    return path


def spec_path(name: str) -> str:
    """Path of an official variable list in tests/data; a missing file fails the test."""
    path = os.path.join(SPEC_DIR, name)
    if not os.path.isfile(path):
        pytest.fail(f'spec file {name} not found in {SPEC_DIR}', pytrace=False)
    return path


# ------------------------------------------------------------------------------------------------
# Tiny networks, datasets and runs shared by the test modules (import them from conftest).

TOL = 1e-4    # max|diff| / max|ref| the project requires against NVIDIA's outputs (fixtures)

# A small network of either StyleGAN version: add resolution=R (and override what a test needs).
SMALL_NET = dict(num_channels=3, label_size=0, latent_size=8, dlatent_size=8, mapping_fmaps=8,
                 mapping_layers=2, fmap_base=64, fmap_max=8)


def small_net_kwargs(resolution=None, **overrides) -> dict:
    """SMALL_NET with `resolution` (if given, after num_channels as in official kwargs) and overrides."""
    out = dict(num_channels=SMALL_NET['num_channels'], **({} if resolution is None else dict(resolution=resolution)))
    out.update(SMALL_NET)
    out.update(overrides)
    return out


def randomize_tflib_net(net, seed, scale=0.5):
    """Moves every variable of a legacy_tf Network away from its initial value (noise strengths,
    mod biases, the W average, ...) so that every path matters; ``lod`` stays 0."""
    rnd = np.random.RandomState(seed)
    values = {}
    for name, var in net.vars.items():
        shape = var.shape.as_list()
        values[name] = np.float32(0) if name.endswith('lod') else \
            np.asarray(rnd.randn(*shape) * scale, np.float32)
    net.set_vars(values)


# The training-loop tests' tiny StyleGAN (G kwargs; D: fmap_base 32, fmap_max 8) and Adam.
NET = dict(latent_size=8, dlatent_size=8, mapping_layers=2, mapping_fmaps=8, fmap_base=32, fmap_max=8)
OPT = dict(func_name='training.optimizers.make_optimizer', name='adam', beta1=0.0, beta2=0.99, epsilon=1e-8)


def make_dataset(path, resolution=8, num_images=48, seed=0):
    """Smooth random colour waves, official TFRecord format."""
    from training.dataset_tool import TFRecordExporter
    os.makedirs(path, exist_ok=True)
    rnd = np.random.RandomState(seed)
    yy, xx = np.mgrid[:resolution, :resolution] / resolution
    with TFRecordExporter(path, resolution) as ex:
        for _ in range(num_images):
            color = rnd.randint(0, 256, size=[3, 1, 1])
            wave = 0.5 + 0.5 * np.sin(6 * (xx + rnd.rand()) + 3 * yy)
            ex.add_image(np.clip(color * wave[None], 0, 255).astype(np.uint8))
        ex.finish()
    return path


def tiny_kwargs(dataset_dir, total_kimg, **overrides):
    """training_loop kwargs of a tiny v1 run on make_dataset's 8x8 data, grown from 4x4."""
    kwargs = dict(
        G_args=dict(func_name='G_style', **NET),
        D_args=dict(func_name='D_basic', fmap_base=32, fmap_max=8),
        G_opt_args=dict(OPT), D_opt_args=dict(OPT),
        G_loss_args=dict(func_name='training.loss.G_logistic_nonsaturating'),
        D_loss_args=dict(func_name='training.loss.D_logistic_simplegp', r1_gamma=10.0),
        dataset_args=dict(tfrecord_dir=dataset_dir),
        # 8x8 from 4x4: the kimg-0.5 snapshot falls in the middle of the fade-in.
        sched_args=dict(lod_initial_resolution=4, lod_training_kimg=0.4, lod_transition_kimg=0.4,
                        minibatch_base=16, tick_kimg_base=0.5, tick_kimg_dict={}),
        grid_args=dict(size='4x2', layout='random'),
        total_kimg=total_kimg, network_snapshot_ticks=1, mirror_augment=True)
    kwargs.update(overrides)
    return kwargs


def load_pair(run_dir, kimg):
    """((G, D, Gs) plain states, training-state arrays) of a run's snapshot at `kimg`."""
    from dnnlib import legacy_pickle
    from training import training_loop as tl
    pkl, state = tl.snapshot_paths(run_dir, kimg)
    with np.load(state) as f:
        return legacy_pickle.load(pkl), {k: f[k] for k in f.files}


def assert_same_training_state(run_a, run_b, kimg):
    """Two runs' snapshots at `kimg` are equal bit for bit (networks and training state)."""
    (nets_a, state_a), (nets_b, state_b) = load_pair(run_a, kimg), load_pair(run_b, kimg)
    for a, b in zip(nets_a, nets_b):
        va, vb = a.all_variables(), b.all_variables()
        assert list(va) == list(vb)
        for name in va:
            np.testing.assert_array_equal(va[name], vb[name], err_msg=f'{a.name}/{name}')
    skip = ('total_time', 'pkl_sha256')
    assert sorted(state_a) == sorted(state_b)
    for key in state_a:
        if key not in skip:
            np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)


# A tiny network with the official API, in numpy (the mixing library and scripts run on it).

class _Component:
    def __init__(self, fn, input_shape, output_shape):
        self._fn = fn
        self.input_shape = input_shape
        self.output_shape = output_shape

    def run(self, *args, **kwargs):
        return self._fn(*args, **kwargs)


class FakeGs:
    """Numpy stand-in for ``Gs``: every style row changes the image, rows of a dlatent differ.

    ``randomize_noise`` values passed to synthesis are recorded in ``noise_calls``.
    """

    def __init__(self, num_rows=10, latent_size=8, dlatent_size=6, resolution=8, channels=3,
                 build_func_name='G_style', seed=0, name='Gs'):
        rng = np.random.RandomState(seed)
        self.name = name
        self.build_func_name = build_func_name
        self.static_kwargs = dict(resolution=resolution, num_channels=channels,
                                  latent_size=latent_size, dlatent_size=dlatent_size)
        self.input_shape = [None, latent_size]
        self.output_shape = [None, channels, resolution, resolution]
        self._map_w = rng.randn(latent_size, dlatent_size).astype(np.float32)
        self._row_offsets = (0.1 * rng.randn(num_rows, dlatent_size)).astype(np.float32)
        self._syn_w = (0.4 * rng.randn(num_rows, dlatent_size, channels * resolution ** 2)
                       ).astype(np.float32)
        self._avg = (0.2 * rng.randn(dlatent_size)).astype(np.float32)
        self.noise_calls = []
        shape_img = (channels, resolution, resolution)
        self.components = types.SimpleNamespace(
            mapping=_Component(self._mapping, [None, latent_size], [None, num_rows, dlatent_size]),
            synthesis=_Component(self._synthesis, [None, num_rows, dlatent_size],
                                 [None, *shape_img]))
        self._shape_img = shape_img

    def _mapping(self, latents, labels):
        assert labels is None
        x = np.tanh(np.asarray(latents, np.float32) @ self._map_w)          # [N, D]
        return x[:, None, :] + self._row_offsets[None]                     # [N, L, D]

    def _synthesis(self, dlatents, randomize_noise=True):
        self.noise_calls.append(randomize_noise)
        x = np.einsum('nld,ldp->np', np.asarray(dlatents, np.float32), self._syn_w)
        if randomize_noise:
            x = x + np.random.randn(*x.shape).astype(np.float32) * 0.05
        return np.tanh(x).reshape((-1,) + self._shape_img).astype(np.float32)

    def get_var(self, name):
        if name != 'dlatent_avg':
            raise KeyError(name)
        return self._avg.copy()


def use_fake_networks(monkeypatch, networks):
    """Makes the scripts load ``networks[path]`` (FakeGs objects) instead of reading a pickle."""
    def load(path, impl='tf2'):
        if path not in networks:
            raise ValueError(f'{path}: network pickle not found')
        return networks[path]
    from editing import mixing
    monkeypatch.setattr(mixing, 'load_gs', load)


def seed_latents(seeds, latent_size):
    """Spec: a seed means RandomState(seed).randn(1, latent_size)."""
    return np.stack([np.random.RandomState(s).randn(1, latent_size)[0] for s in seeds]
                    ).astype(np.float32)


# Real networks from the fixtures, loaded once per process.

IMPLS = ('tf2', 'legacy')     # editing.impl.IMPLS: the two implementations that load pickles
_LOADED = {}


def load_real_gs(pkl_name, impl):
    """Gs from a fixture pickle through ``impl`` ('tf2' or 'legacy'), cached per process."""
    if (pkl_name, impl) not in _LOADED:
        from editing.impl import load_network
        _LOADED[pkl_name, impl] = load_network(fixture_path(pkl_name), impl)[2]
    return _LOADED[pkl_name, impl]


def use_loaded_networks(monkeypatch, impl):
    """Lets the scripts reuse the networks ``load_real_gs`` loaded (loading takes seconds)."""
    def load(path, impl_arg='tf2'):
        assert impl_arg == impl
        return load_real_gs(os.path.basename(path), impl)
    from editing import mixing
    monkeypatch.setattr(mixing, 'load_gs', load)


# ------------------------------------------------------------------------------------------------
# Scripts on bad input: one line `<script>: error: <what>` on stderr, a non-zero exit, no
# traceback, and nothing written.

def run_script(script: str, *args, cwd: str = REPO_DIR, env: Optional[dict] = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs a repository script (`'generate_images.py'`, or `'-m', 'dnnlib.legacy_pickle'` as the
    first two arguments) in a subprocess with this Python; text stdout/stderr."""
    argv = [script, *args] if script == '-m' else [os.path.join(REPO_DIR, script), *args]
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO_DIR, **(env or {}))
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def tree_state(path) -> Optional[dict]:
    """Every file (size, mtime) and folder under `path`; None if `path` is absent. A folder's own
    mtime is left out: a temporary file made and removed again leaves nothing behind."""
    path = str(path)
    if not os.path.exists(path):
        return None

    def entry(full):
        st = os.stat(full)
        return ('folder',) if os.path.isdir(full) else ('file', st.st_size, st.st_mtime_ns)
    state = {'.': entry(path)}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            state[os.path.relpath(os.path.join(root, name), path)] = entry(os.path.join(root, name))
    return state


def assert_user_error(script: str, args: Sequence, words: Sequence[str] = (), untouched: Sequence = (),
                      prefix: Optional[str] = None, **run_kwargs) -> str:
    """Runs `script args` and checks the user-error contract; returns the error line.

    Args:
        script, args: as for run_script.
        words: texts the error line must contain (the flag or file it names, the problem).
        untouched: paths that must be exactly as before the run (absent ones stay absent).
        prefix: start of the error line (default `<script>: error: `).
    """
    before = {str(p): tree_state(p) for p in untouched}
    proc = run_script(script, *args, **run_kwargs)
    prefix = prefix if prefix is not None else f'{os.path.basename(script)}: error: '
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    report = f'exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}'
    assert proc.returncode not in (0, None), report
    assert 'Traceback' not in proc.stderr, report
    assert lines and lines[-1].startswith(prefix), report
    # Only argparse's usage block may come before the one error line.
    usage = lines[:-1]
    assert not usage or (usage[0].startswith('usage:') and all(l.startswith(' ') for l in usage[1:])), report
    for word in words:
        assert word in lines[-1], f'{word!r} not in the error line\n{report}'
    for path, state in before.items():
        assert tree_state(path) == state, f'{path} was changed\n{report}'
    return lines[-1]


def bad_network_pickles(folder) -> Dict[str, str]:
    """Files that are not usable network pickles, made in `folder`: name -> path.

    missing (no file), folder (a directory), text (not a pickle), truncated (half of an official
    pickle), hostile (calls os.system to create `<folder>/HACKED` if anything executes it),
    dict (a pickle without networks), pair (only G and D), d_as_gs (a D in the Gs slot).
    """
    import pickle
    from dnnlib import legacy_pickle
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    paths = {name: os.path.join(folder, f'{name}.pkl') for name in
             ('missing', 'text', 'truncated', 'hostile', 'dict', 'pair', 'd_as_gs')}
    paths['folder'] = os.path.join(folder, 'folder.pkl')
    os.makedirs(paths['folder'], exist_ok=True)
    with open(paths['text'], 'w') as f:
        f.write('these are not the networks you are looking for\n')
    with open(fixture_path('sg1_r64.pkl'), 'rb') as f:
        data = f.read()
    with open(paths['truncated'], 'wb') as f:
        f.write(data[:len(data) // 2])
    marker = os.path.join(folder, 'HACKED')

    class Hostile:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)
    with open(paths['hostile'], 'wb') as f:
        pickle.dump(Hostile(), f, protocol=2)
    with open(paths['dict'], 'wb') as f:
        pickle.dump({'weights': [1.0, 2.0]}, f, protocol=4)
    G, D, Gs = legacy_pickle.load(fixture_path('sg1_r64.pkl'))
    legacy_pickle.save((G, D), paths['pair'])
    legacy_pickle.save((G, D, D), paths['d_as_gs'])
    return paths


@pytest.fixture(scope='session')
def bad_pickles(tmp_path_factory) -> Dict[str, str]:
    """bad_network_pickles in a session-wide folder (tests must not write there)."""
    return bad_network_pickles(tmp_path_factory.mktemp('bad_pickles'))


# What the scripts' error line says about each bad_network_pickles file: (with --network, the
# generation and editing scripts, after the file name; with --resume-pkl, run_training.py, after
# the flag).
BAD_PICKLE_WORDS = {
    'missing': (['network pickle not found'], ['no such file']),
    'folder': (['not a file'], ['no such file']),
    'text': (['not a pickle'], ['not a pickle']),
    'truncated': (['truncated'], ['truncated']),
    'hostile': (['system'], ['system']),
    'dict': (['no networks'], ['no networks']),
    'pair': (['(G, D, Gs)'], ['not a (G, D, Gs)']),
    'd_as_gs': (['D_basic', 'not a generator'], ['D_basic']),
}


def bad_pickle_errors(flag: str, *extra_args: str) -> list:
    """Rows (id, arguments, words in the error line) of an error walk over every
    bad_network_pickles file passed as `flag PKL:<name> *extra_args`, flag '--network' or
    '--resume-pkl' (BAD_PICKLE_WORDS); the id is the flag without its dashes, then the name."""
    network = flag == '--network'
    return [(f'{flag.lstrip("-")}-{name}', [flag, f'PKL:{name}', *extra_args],
             [f'{name}.pkl' if network else flag, *words[0 if network else 1]])
            for name, words in BAD_PICKLE_WORDS.items()]


def expand_args(args: Sequence[str], tmp_path, bad_pickles: Optional[Dict[str, str]] = None) -> list:
    """Command-line templates of the error walks: `PKL:<name>` is a bad_network_pickles file,
    `FIXTURE:<file>` an official fixture, `TMP:<path>` a path in tmp_path."""
    out = []
    for arg in args:
        kind, _, rest = str(arg).partition(':')
        if kind == 'PKL' and rest:
            out.append(bad_pickles[rest])
        elif kind == 'FIXTURE' and rest:
            out.append(fixture_path(rest))
        elif kind == 'TMP' and rest:
            out.append(os.path.join(str(tmp_path), rest))
        else:
            out.append(str(arg))
    return out


# ------------------------------------------------------------------------------------------------
# CI=true: a skipped (or xfailed) test is a failure, so the suite cannot turn green without
# running everything it collected. Deselection with -m (e.g. the slow set) is not a skip.

def _ci() -> bool:
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:      # (file, line, 'Skipped: reason')
        return f'{longrepr[2]} ({longrepr[0]}:{longrepr[1]})'
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _ci() and report.skipped:
        xfailed = hasattr(report, 'wasxfail')
        reason = report.wasxfail if xfailed else _skip_reason(report)
        report.outcome = 'failed'
        report.longrepr = (f'CI=true: {"an xfailed" if xfailed else "a skipped"} test counts as a '
                           f'failure: {reason}')
        if xfailed:
            del report.wasxfail


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _ci() and report.skipped:        # a module-level skip / importorskip
        report.outcome = 'failed'
        report.longrepr = f'CI=true: a skipped module counts as a failure: {_skip_reason(report)}'


# ------------------------------------------------------------------------------------------------
# @pytest.mark.nchw: tests of the GPU layout (data_format='NCHW'). TensorFlow's CPU build runs NCHW
# convolutions only with oneDNN, which TensorFlow turns on by itself only on some CPUs. Where this
# process cannot run them, the test runs in a child pytest with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN is
# not turned on for the whole suite: it changes float rounding). It never skips.

def pytest_configure(config):
    config.addinivalue_line('markers', 'nchw: needs NCHW convolutions; runs in a child process with '
                                       'oneDNN (TF_ENABLE_ONEDNN_OPTS=1) where this one lacks them')


@functools.lru_cache(maxsize=None)
def nchw_convolutions_run() -> bool:
    """Whether this process's TensorFlow runs an NCHW convolution on its device."""
    import tensorflow as tf
    try:
        tf.nn.conv2d(tf.zeros([1, 1, 4, 4]), tf.zeros([3, 3, 1, 1]), 1, 'SAME', data_format='NCHW')
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return False
    return True


_NCHW_CHILD: dict = {}


def _nchw_child_results(session) -> dict:
    """Runs every collected nchw test in one child pytest with oneDNN, once per session."""
    if not _NCHW_CHILD:
        nodeids = [item.nodeid for item in session.items if item.get_closest_marker('nchw')]
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='1')
        proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rA', '-p', 'no:cacheprovider', *nodeids],
                              cwd=str(session.config.rootpath), env=env, capture_output=True, text=True,
                              timeout=3600)
        outcomes = {}
        for line in proc.stdout.splitlines():
            word, _, rest = line.partition(' ')
            if word in ('PASSED', 'FAILED', 'ERROR'):
                outcomes[rest.split(' - ')[0].strip()] = word
        _NCHW_CHILD.update(outcomes=outcomes, output=f'{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}')
    return _NCHW_CHILD


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker('nchw') is None or nchw_convolutions_run():
        return None
    if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '1':
        pytest.fail('NCHW convolutions do not run on this CPU even with oneDNN (TF_ENABLE_ONEDNN_OPTS=1)',
                    pytrace=False)
    child = _nchw_child_results(pyfuncitem.session)
    outcome = child['outcomes'].get(pyfuncitem.nodeid, 'not run')
    if outcome != 'PASSED':
        pytest.fail(f'{pyfuncitem.nodeid}: {outcome} in the child pytest with TF_ENABLE_ONEDNN_OPTS=1 (NCHW '
                    f'convolutions need oneDNN on this CPU):\n{child["output"]}', pytrace=False)
    return True


# ------------------------------------------------------------------------------------------------
# The compiled custom ops (tf2/ops): built once per session; a build failure fails the tests.

def compiled_kernel_fixture(op_name: str):
    """A session-scoped pytest fixture that builds (or loads from the cache) the C++ kernel of
    ``tf2.ops.<op_name>`` and returns the impl name 'cpp'; assign it to the fixture's name."""
    @pytest.fixture(scope='session')
    def kernel():
        import importlib
        import time
        from tf2.ops import _build
        start = time.time()
        try:
            importlib.import_module(f'tf2.ops.{op_name}')._load('cpp')
        except _build.OpBuildError as e:
            pytest.fail(f'C++ {op_name} kernel did not build: {e}')
        print(f'{op_name} C++ kernel ready in {time.time() - start:.1f} s')
        return 'cpp'
    return kernel


# ------------------------------------------------------------------------------------------------
# Comparing outputs with NVIDIA's (fixtures) or with the float64 NumPy references.

def rel(out, ref) -> float:
    """Largest per-sample relative error: max over i of max|out_i - ref_i| / max|ref_i|.

    Per sample, because a batch-wide maximum hides a sample that is wrong but smaller in
    magnitude than another. Arrays of rank 0 to 2 (scores [N, 1], vectors) are compared as a
    whole: the magnitude of one score near zero is no yardstick.
    """
    import numpy as np
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    assert out.shape == ref.shape, f'shape {out.shape} != reference {ref.shape}'
    if ref.ndim <= 2:
        return float(np.abs(out - ref).max() / np.abs(ref).max())
    axes = tuple(range(1, ref.ndim))
    return float((np.abs(out - ref).max(axis=axes) / np.abs(ref).max(axis=axes)).max())


def uint8_mismatch(out, ref) -> float:
    """The README's uint8 yardstick: the largest fraction of differing values in one image."""
    import numpy as np
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.uint8
    return float((out != ref).reshape(len(ref), -1).mean(axis=1).max())


# What a discriminator takes of a generator's keyword arguments (network constructors reject
# keys they do not know, so tests that build G and D from one dict pass D only these).
D_KEYS = ('num_channels', 'resolution', 'label_size', 'fmap_base', 'fmap_decay', 'fmap_max', 'fmap_min')


def d_kwargs(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k in D_KEYS}
