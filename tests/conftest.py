"""Shared test helpers: the golden fixtures (in-repo, tests/data), and CI=true turning skips into failures."""
import functools
import os
import subprocess
import sys

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

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
