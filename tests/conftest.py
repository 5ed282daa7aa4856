"""Shared test helpers: where the official fixtures live, and a skip when they are absent."""
import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.environ.get(
    'STYLEGAN_FIXTURES', os.path.join(REPO_DIR, '..', 'shared', 'fixtures', 'official'))
SPEC_DIR = os.path.join(REPO_DIR, '..', 'shared', 'spec')


def fixture_path(name: str) -> str:
    """Path of an official fixture file; skips the test with a clear message when absent."""
    path = os.path.join(FIXTURES_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f'official fixture {name} not found in {FIXTURES_DIR} '
                    '(place ../shared/fixtures/official beside the repo or set STYLEGAN_FIXTURES)')
    return path


def spec_path(name: str) -> str:
    """Path of a file in ../shared/spec; skips the test when absent."""
    path = os.path.join(SPEC_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f'spec file {name} not found in {SPEC_DIR}')
    return path
