"""run_training.py and tf2/training_options.py: presets, validation, --dry-run, --resume, a CLI run."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_DIR
from dnnlib import legacy_pickle, submission
from tf2 import training_options as to

SCRIPT = os.path.join(REPO_DIR, 'run_training.py')


def run_cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO_DIR)
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO_DIR)


# ------------------------------------------------------------------------------------------------
# Presets (spec 6.1).

@pytest.mark.parametrize('gpus,base,mb_dict', [
    (1, 4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    (2, 8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    (4, 16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    (8, 32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32})])
def test_official_gpu_presets(gpus, base, mb_dict):
    desc, kw = to.resolve_options(dict(config='ffhq', gpus=gpus))
    assert desc == f'sgan-ffhq-{gpus}gpu'
    sched = kw['sched_args']
    assert sched['minibatch_base'] == base and sched['minibatch_dict'] == mb_dict
    assert sched['lod_initial_resolution'] == 8
    lr = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
    assert sched['G_lrate_dict'] == lr and sched['D_lrate_dict'] == lr
    assert kw['num_gpus'] == gpus and kw['total_kimg'] == 25000
    assert kw['G_smoothing_kimg'] == 10.0 and kw['network_snapshot_ticks'] == 10
    assert kw['image_snapshot_ticks'] == 1 and kw['random_seed'] == 1000
    assert kw['G_args'] == {'func_name': 'G_style'} and kw['D_args'] == {'func_name': 'D_basic'}
    assert kw['G_loss_args'] == {'func_name': 'tf2.loss.G_logistic_nonsaturating'}
    assert kw['D_loss_args'] == {'func_name': 'tf2.loss.D_logistic_simplegp', 'r1_gamma': 10.0}
    for opt in (kw['G_opt_args'], kw['D_opt_args']):
        assert (opt['beta1'], opt['beta2'], opt['epsilon'], opt['name']) == (0.0, 0.99, 1e-8, 'adam')
    assert kw['grid_args'] == {'size': '4k', 'layout': 'random'}


@pytest.mark.parametrize('config,dataset,mirror', [
    ('ffhq', 'ffhq', True), ('celebahq', 'celebahq', True), ('bedroom', 'lsun-bedroom-full', False),
    ('car', 'lsun-car-512x384', False), ('cat', 'lsun-cat-full', False), ('demo', 'demo', True)])
def test_dataset_configs(config, dataset, mirror):
    _, kw = to.resolve_options(dict(config=config, data_dir='/data'))
    assert kw['dataset_args']['tfrecord_dir'] == os.path.join('/data', dataset)
    assert kw['mirror_augment'] is mirror
    _, kw = to.resolve_options(dict(config=config, mirror_augment=not mirror))
    assert kw['mirror_augment'] is (not mirror)


def test_flags_reach_the_options():
    desc, kw = to.resolve_options(dict(config='ffhq', resolution=256, kimg=123.0, seed=7, snapshot_ticks=3,
                                       image_snapshot_ticks=2, minibatch_gpu='256:4,128:8', grid='1080p'))
    assert desc == 'sgan-ffhq256-1gpu'
    assert kw['dataset_args']['resolution'] == 256 and kw['total_kimg'] == 123.0
    assert kw['random_seed'] == 7 and kw['network_snapshot_ticks'] == 3 and kw['image_snapshot_ticks'] == 2
    assert kw['sched_args']['minibatch_gpu_dict'] == {256: 4, 128: 8}
    assert kw['grid_args']['size'] == '1080p'
    _, kw = to.resolve_options(dict(config='ffhq', minibatch_gpu='2'))
    assert kw['sched_args']['minibatch_gpu_base'] == 2


def test_demo_defaults():
    desc, kw = to.resolve_options({})
    assert desc == 'sgan-demo-1gpu'
    assert kw['dataset_args'] == {'tfrecord_dir': os.path.join('datasets', 'demo'), 'resolution': 64}
    assert kw['mixing_figure'] is True and kw['G_args']['func_name'] == 'G_style'
    assert kw['G_args']['fmap_max'] < 512 and kw['G_args']['latent_size'] < 512


@pytest.mark.parametrize('args,message', [
    (['--gpus', '3', '--config', 'ffhq'], '--gpus 3'),
    (['--kimg', '-1'], '--kimg -1'),
    (['--resolution', '48'], '--resolution 48'),
    (['--minibatch-gpu', 'x'], '--minibatch-gpu'),
    (['--minibatch-gpu', '3', '--config', 'ffhq'], 'minibatch_gpu must divide'),
    (['--snapshot-ticks', '0'], '--snapshot-ticks 0'),
    (['--resume-pkl', '/nonexistent.pkl'], '--resume-pkl /nonexistent.pkl'),
    (['--resume', '/nonexistent-run'], '--resume /nonexistent-run'),
])
def test_bad_flags_name_the_flag_and_write_nothing(tmp_path, args, message):
    result_dir = tmp_path / 'results'
    out = run_cli(*args, '--result-dir', str(result_dir), '--data-dir', str(tmp_path / 'data'))
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert not result_dir.exists() and not (tmp_path / 'data').exists()


def test_missing_dataset_is_reported(tmp_path):
    out = run_cli('--config', 'ffhq', '--data-dir', str(tmp_path), '--result-dir', str(tmp_path / 'r'))
    assert out.returncode == 2 and '--data-dir/--dataset' in out.stderr and 'ffhq' in out.stderr
    assert not (tmp_path / 'r').exists()


def test_help_and_dry_run(tmp_path):
    out = run_cli('--help')
    assert out.returncode == 0
    for flag in ('--data-dir', '--dataset', '--kimg', '--config', '--resolution', '--gpus', '--mirror-augment',
                 '--resume', '--resume-pkl', '--resume-kimg', '--result-dir', '--seed', '--dry-run',
                 '--snapshot-ticks', '--image-snapshot-ticks', '--minibatch-gpu'):
        assert flag in out.stdout
    out = run_cli('--config', 'celebahq', '--gpus', '4', '--dry-run', '--result-dir', str(tmp_path / 'r'))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    options = json.loads(text[text.index('{'):text.rindex('}') + 1])
    assert options['num_gpus'] == 4 and options['sched_args']['minibatch_base'] == 16
    assert 'Dry run' in text and not (tmp_path / 'r').exists()


def test_resume_restores_saved_options_with_overrides(tmp_path):
    run_dir = submission.create_run_dir(str(tmp_path / 'results'), 'sgan-ffhq-2gpu')
    launch = dict(config='ffhq', gpus=2, kimg=100.0, seed=5)
    _, kwargs = to.resolve_options(launch)
    submission.save_training_options(run_dir, dict(launch_args=launch, training_loop_kwargs=kwargs))
    out = run_cli('--resume', run_dir, '--kimg', '250', '--dry-run')
    assert out.returncode == 0, out.stderr
    text = out.stdout
    options = json.loads(text[text.index('{'):text.rindex('}') + 1])
    assert options['total_kimg'] == 250.0 and options['num_gpus'] == 2 and options['random_seed'] == 5
    assert "kimg: 100.0 -> 250.0" in text and f'Would continue {run_dir}' in text
    # By run number, looked up in --result-dir.
    number = os.path.basename(run_dir).split('-')[0]
    out = run_cli('--resume', str(int(number)), '--result-dir', str(tmp_path / 'results'), '--dry-run')
    assert out.returncode == 0 and json.loads(out.stdout[out.stdout.index('{'):out.stdout.rindex('}') + 1])['total_kimg'] == 100.0
    # A folder that is not a run directory.
    out = run_cli('--resume', str(tmp_path), '--dry-run')
    assert out.returncode == 2 and 'training_options.json' in out.stderr


def _tiny_dataset(path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_training_loop import make_dataset
    return make_dataset(path, resolution=8, num_images=48)


def test_cli_run_writes_the_run_directory(tmp_path):
    data = _tiny_dataset(str(tmp_path / 'data' / 'tiny'))
    out = run_cli('--config', 'demo', '--data-dir', str(tmp_path / 'data'), '--dataset', 'tiny',
                  '--resolution', '8', '--kimg', '0.1', '--result-dir', str(tmp_path / 'results'),
                  '--mixing-figure', '0')
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    runs = submission.list_run_dirs(str(tmp_path / 'results'))
    assert len(runs) == 1 and runs[0].endswith('00000-sgan-tiny8-1gpu')
    run_dir = runs[0]
    for name in ('training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png',
                 'fakes000000.png', 'network-snapshot-000000.pkl', 'training-state-000000.npz',
                 'network-final.pkl'):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert 'tick 1 ' in log and 'sec/kimg' in log and 'lod 0.00' in log
    options = json.load(open(os.path.join(run_dir, 'training_options.json')))
    assert options['launch_args']['kimg'] == 0.1 and options['training_loop_kwargs']['total_kimg'] == 0.1
    G, D, Gs = legacy_pickle.load(os.path.join(run_dir, 'network-final.pkl'))
    assert Gs.static_kwargs['resolution'] == 8 and Gs.static_kwargs['fmap_max'] == 128


@pytest.mark.slow
def test_cli_resume_continues_the_run_in_place(tmp_path):
    _tiny_dataset(str(tmp_path / 'data' / 'tiny'))
    common = ('--data-dir', str(tmp_path / 'data'), '--result-dir', str(tmp_path / 'results'))
    out = run_cli('--config', 'demo', '--dataset', 'tiny', '--resolution', '8', '--kimg', '0.1',
                  '--mixing-figure', '0', *common)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = submission.list_run_dirs(str(tmp_path / 'results'))[0]
    out = run_cli('--resume', run_dir, '--kimg', '0.2', *common)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(submission.list_run_dirs(str(tmp_path / 'results'))) == 1       # no new run
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert 'Resuming' in log and 'kimg: 0.1 -> 0.2' in log
    lines = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert [l['tick'] for l in lines] == [1, 2] and lines[-1]['kimg'] >= 0.2
    assert json.load(open(os.path.join(run_dir, 'training_options.json')))['launch_args']['kimg'] == 0.2
