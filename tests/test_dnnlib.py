"""dnnlib.util and dnnlib.submission."""

import json
import multiprocessing
import os
import re
import sys

import pytest

from conftest import REPO_DIR
from dnnlib import submission, util


def test_no_tensorflow_import_in_dnnlib():
    folder = os.path.join(REPO_DIR, 'dnnlib')
    for name in os.listdir(folder):
        if name.endswith('.py'):
            text = open(os.path.join(folder, name)).read()
            assert not re.search(r'^\s*(import|from)\s+(tensorflow|keras)', text, re.M), name


def test_easydict():
    d = util.EasyDict(a=1)
    d.b = 2
    assert d['b'] == 2 and d.a == 1
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing


def test_call_and_construct_by_name():
    assert util.call_func_by_name(3, func_name='math.sqrt') == pytest.approx(1.7320508)
    assert util.call_func_by_name([3, 1, 2], func_name='builtins.sorted') == [1, 2, 3]
    od = util.construct_class_by_name(class_name='collections.OrderedDict', a=1)
    assert type(od).__name__ == 'OrderedDict' and od['a'] == 1
    assert util.get_obj_by_name('os.path.join') is os.path.join
    with pytest.raises(ImportError):
        util.get_obj_by_name('no_such_module_xyz.f')
    with pytest.raises(AttributeError):
        util.get_obj_by_name('os.path.no_such_function')
    with pytest.raises(TypeError):
        util.construct_class_by_name(class_name='os.path.join')


def test_format_time():
    assert util.format_time(5) == '5s'
    assert util.format_time(64) == '1m 04s'
    assert util.format_time(2 * 3600 + 5 * 60) == '2h 05m'
    assert util.format_time(27 * 3600) == '1d 03h'


def test_logger_tees_stdout_and_stderr(tmp_path, capsys):
    path = tmp_path / 'log.txt'
    with util.Logger(str(path), 'w'):
        print('hello out')
        print('hello err', file=sys.stderr)
    print('after')
    text = path.read_text()
    assert 'hello out' in text and 'hello err' in text and 'after' not in text
    captured = capsys.readouterr()
    assert 'hello out' in captured.out and 'hello err' in captured.err


def test_run_dirs_are_numbered(tmp_path):
    a = submission.create_run_dir(str(tmp_path), 'sgan demo')
    b = submission.create_run_dir(str(tmp_path), 'other')
    assert os.path.basename(a) == '00000-sgan-demo' and os.path.basename(b) == '00001-other'
    os.makedirs(tmp_path / '00007-manual')
    assert os.path.basename(submission.create_run_dir(str(tmp_path), 'x')) == '00008-x'
    assert [os.path.basename(p) for p in submission.list_run_dirs(str(tmp_path))] == [
        '00000-sgan-demo', '00001-other', '00007-manual', '00008-x']


def _launch(args):
    result_dir, i = args
    return submission.create_run_dir(result_dir, f'race{i}')


def test_concurrent_launches_never_share_a_number(tmp_path):
    with multiprocessing.get_context('fork').Pool(8) as pool:
        dirs = pool.map(_launch, [(str(tmp_path), i) for i in range(40)])
    numbers = [os.path.basename(d)[:5] for d in dirs]
    assert len(set(numbers)) == 40


def test_training_options_round_trip(tmp_path):
    opts = {'total_kimg': 10, 'G_args': {'fmap_base': 512}, 'resume_pkl': None}
    path = submission.save_training_options(str(tmp_path), opts)
    assert json.load(open(path)) == opts
    assert submission.load_training_options(str(tmp_path)) == opts
    assert submission.load_training_options(str(tmp_path / 'missing')) is None
    (tmp_path / 'training_options.json').write_text('{broken')
    with pytest.raises(ValueError, match='training_options.json: not valid JSON'):
        submission.load_training_options(str(tmp_path))


# ------------------------------------------------------------------------------------------------
# python -m dnnlib.legacy_pickle on files that are not network pickles: one `error:` line each.

LEGACY_PICKLE_ERRORS = [   # (file from conftest.bad_network_pickles, words in the error line)
    ('missing', ['missing.pkl', 'cannot read file']),
    ('folder', ['folder.pkl', 'cannot read file']),
    ('text', ['text.pkl', 'not a pickle']),
    ('truncated', ['truncated.pkl', 'truncated']),
    ('hostile', ['hostile.pkl', 'refusing global', 'system']),
    ('dict', ['dict.pkl', 'no networks']),
]


@pytest.mark.parametrize('name,words', LEGACY_PICKLE_ERRORS, ids=[c[0] for c in LEGACY_PICKLE_ERRORS])
def test_legacy_pickle_cli_user_errors(bad_pickles, name, words):
    from conftest import assert_user_error
    folder = os.path.dirname(bad_pickles['text'])
    assert_user_error('-m', ['dnnlib.legacy_pickle', 'info', bad_pickles[name]], words, prefix='error: ',
                      untouched=[folder])
    assert not os.path.exists(os.path.join(folder, 'HACKED'))


def test_atomic_write_all_or_nothing(tmp_path):
    from dnnlib.util import atomic_write
    path = tmp_path / 'sub' / 'out.bin'
    with atomic_write(str(path)) as f:
        f.write(b'abc')
    assert path.read_bytes() == b'abc'
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write(b'partial')
            raise RuntimeError('interrupted')
    assert path.read_bytes() == b'abc'               # the old content stays
    assert sorted(p.name for p in path.parent.iterdir()) == ['out.bin']   # no temporary left


def test_tensorflow_env_defaults_only_fill_unset_values(monkeypatch):
    monkeypatch.delenv('TF_ENABLE_ONEDNN_OPTS', raising=False)
    util.tensorflow_env_defaults()
    assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '1'
    monkeypatch.setenv('TF_ENABLE_ONEDNN_OPTS', '0')        # the user's choice wins
    util.tensorflow_env_defaults()
    assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '0'


SCRIPTS = ('calc_metrics.py', 'cross_mixing.py', 'dataset_tool.py', 'generate_images.py',
           'latent_walk.py', 'local_editing.py', 'projector.py', 'run_training.py', 'sefa.py',
           'style_mixing.py')


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_set_tensorflow_defaults_before_main(script):
    """Run as programs, the scripts set the environment defaults (oneDNN on) before main() can
    import TensorFlow; called as main() from Python (the tests) they leave the environment alone."""
    import ast
    tree = ast.parse(open(os.path.join(REPO_DIR, script)).read())
    block = [n for n in tree.body if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
    assert len(block) == 1
    calls = [ast.unparse(n) for n in ast.walk(block[0]) if isinstance(n, ast.Call)]
    assert calls.index('tensorflow_env_defaults()') < calls.index('main()'), calls
    assert set(SCRIPTS) == {f for f in os.listdir(REPO_DIR) if f.endswith('.py')}
