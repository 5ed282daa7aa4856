"""docs/architecture.md's layers: every package imports only from the layers it may use."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# What each package may import of the project's packages (itself included), as the layer table says.
ALLOWED = {
    'dnnlib': {'dnnlib'},
    'tf2': {'dnnlib', 'tf2'},
    'legacy_tf': {'dnnlib', 'legacy_tf'},
    'metrics': {'dnnlib', 'tf2', 'metrics'},
    'editing': {'dnnlib', 'tf2', 'legacy_tf', 'metrics', 'editing'},
    'training': {'dnnlib', 'tf2', 'editing', 'metrics', 'training'},
}


def _project_imports(path: pathlib.Path):
    """Top-level project packages a module imports, at any depth of the file (lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split('.')[0]
            if top in ALLOWED:
                yield node.lineno, top


@pytest.mark.parametrize('package', sorted(ALLOWED))
def test_package_imports_only_downwards(package):
    bad = [f'{path.relative_to(ROOT)}:{line} imports {top}'
           for path in sorted((ROOT / package).rglob('*.py'))
           for line, top in _project_imports(path) if top not in ALLOWED[package]]
    assert not bad, '\n'.join(bad)


def test_every_package_is_in_the_table():
    packages = {p.parent.name for p in ROOT.glob('*/__init__.py')}
    assert packages == set(ALLOWED), packages ^ set(ALLOWED)
