"""Shared test helpers: the golden fixtures (in-repo, tests/data), and CI=true turning skips into failures."""
import functools
import os
import subprocess
import sys
from typing import Dict, Optional, Sequence

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
