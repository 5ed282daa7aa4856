"""Shared test helpers: the golden fixtures (in-repo, tests/data), and CI=true turning skips into failures."""
import os

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
