"""tests/conftest.py: with CI=true a skipped or xfailed test is reported as a failure."""
import os
import subprocess
import sys

from conftest import REPO_DIR

PROBE = '''
import pytest

def test_skips():
    pytest.skip('deliberate skip')

@pytest.mark.xfail(reason='deliberate xfail')
def test_xfails():
    assert False

def test_passes():
    pass
'''


def _run_probe(tmp_path, ci):
    (tmp_path / 'test_probe.py').write_text(PROBE)
    env = dict(os.environ, CI=ci, PYTHONPATH=os.path.join(REPO_DIR, 'tests'))
    return subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'conftest', '-p', 'no:cacheprovider',
                           'test_probe.py'], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ci_true_turns_skips_and_xfails_into_failures(tmp_path):
    proc = _run_probe(tmp_path, 'true')
    assert proc.returncode == 1, proc.stdout
    assert '2 failed, 1 passed' in proc.stdout
    assert 'CI=true: a skipped test counts as a failure: Skipped: deliberate skip' in proc.stdout
    assert 'CI=true: an xfailed test counts as a failure: deliberate xfail' in proc.stdout


def test_without_ci_skips_are_reported_as_skips(tmp_path):
    proc = _run_probe(tmp_path, '')
    assert proc.returncode == 0, proc.stdout
    assert '1 passed, 1 skipped, 1 xfailed' in proc.stdout
