"""run_training.py and training/training_options.py: presets, validation, --dry-run, --resume, a CLI run."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_DIR, assert_user_error, bad_pickle_errors, fixture_path, make_dataset
from dnnlib import legacy_pickle, submission
from training import distribute, training_options as to

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
    assert kw['v1_minibatches_per_call'] == 1           # the official one call per minibatch
    assert kw['G_args'] == {'func_name': 'G_style'} and kw['D_args'] == {'func_name': 'D_basic'}
    assert kw['G_loss_args'] == {'func_name': 'training.loss.G_logistic_nonsaturating'}
    assert kw['D_loss_args'] == {'func_name': 'training.loss.D_logistic_simplegp', 'r1_gamma': 10.0}
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


def test_demo_defaults(tmp_path):
    notes = []
    desc, kw = to.resolve_options(dict(data_dir=str(tmp_path)), notes)      # demo not built yet
    assert desc == 'sgan-demo-1gpu'
    assert kw['dataset_args'] == {'tfrecord_dir': str(tmp_path / 'demo'), 'resolution': 64}
    assert notes == ['Resolution: 64x64 (the demo dataset is built at 64x64 on first use)']
    assert kw['mixing_figure'] is True and kw['G_args']['func_name'] == 'G_style'
    assert kw['G_args']['fmap_max'] < 512 and kw['G_args']['latent_size'] < 512
    assert kw['total_kimg'] == 42 and kw['sched_args']['lod_initial_resolution'] == 8
    assert kw['sched_args']['minibatch_base'] == 4 and kw['sched_args']['minibatch_dict'] == {32: 8}
    assert kw['v1_minibatches_per_call'] == 4           # at 64x64: a schedule evaluation per call
    assert kw['sched_args']['G_lrate_dict'][64] == kw['sched_args']['D_lrate_dict'][64] < kw['sched_args']['G_lrate_base']
    _, kw = to.resolve_options(dict(config='stylegan2-demo', data_dir=str(tmp_path)))
    assert kw['dataset_args'] == {'tfrecord_dir': str(tmp_path / 'demo32'), 'resolution': 32}


# ------------------------------------------------------------------------------------------------
# The resolution follows the dataset (issue 14).

@pytest.fixture(scope='module')
def datasets(tmp_path_factory):
    """Tiny datasets at 4, 32, 64 and 128 px in one --data-dir."""
    root = tmp_path_factory.mktemp('datasets')
    for res in (4, 32, 64, 128):
        make_dataset(str(root / f'toy{res}'), resolution=res, num_images=4)
    return str(root)


@pytest.mark.parametrize('config', ['demo', 'ffhq', 'celebahq', 'stylegan2-f', 'stylegan2-e', 'stylegan2-demo'])
@pytest.mark.parametrize('res', [32, 128])
def test_resolution_follows_the_dataset_for_every_config(datasets, config, res):
    notes = []
    _, kw = to.resolve_options(dict(config=config, data_dir=datasets, dataset=f'toy{res}'), notes)
    assert kw['dataset_args']['resolution'] == res
    assert f'Resolution: {res}x{res} (the dataset {os.path.join(datasets, f"toy{res}")}\'s largest)' in notes
    _, kw = to.resolve_options(dict(config=config, data_dir=datasets, dataset=f'toy{res}', resolution=16))
    assert kw['dataset_args']['resolution'] == 16                           # --resolution wins


@pytest.mark.parametrize('res,kimg,start', [(4, 30, 4), (32, 38, 8), (64, 42, 8), (128, 46, 8)])
def test_demo_schedule_fits_the_dataset(datasets, res, kimg, start):
    """Grown from 8x8 (or the dataset's size below that), ending with a 28-kimg stable phase at
    full size."""
    from training.schedule import training_schedule
    _, kw = to.resolve_options(dict(data_dir=datasets, dataset=f'toy{res}'))
    sched = kw['sched_args']
    assert (kw['total_kimg'], sched['lod_initial_resolution']) == (kimg, start)
    rl = int(np.log2(res))
    last_phase_start = int((kw['total_kimg'] - to.PRESETS['demo']['final_phase_kimg']) * 1000)
    final = training_schedule(int(kw['total_kimg'] * 1000), rl, 1, **sched)
    assert final.lod == 0 and training_schedule(last_phase_start, rl, 1, **sched).lod == 0
    assert final.resolution == res
    if res > start:
        assert training_schedule(last_phase_start - 1, rl, 1, **sched).lod > 0   # the full-size phase


def test_dry_run_shows_the_dataset_resolution(datasets, tmp_path):
    out = run_cli('--config', 'demo', '--data-dir', datasets, '--dataset', 'toy32', '--dry-run',
                  '--result-dir', str(tmp_path / 'r'))
    assert out.returncode == 0, out.stderr
    assert f'Resolution: 32x32 (the dataset {os.path.join(datasets, "toy32")}\'s largest)' in out.stdout
    options = json.loads(out.stdout[out.stdout.index('{'):out.stdout.rindex('}') + 1])
    assert options['dataset_args']['resolution'] == 32 and options['total_kimg'] == 38
    assert not (tmp_path / 'r').exists()


@pytest.mark.parametrize('args,message', [
    (['--gpus', '3', '--config', 'ffhq'], '--gpus 3'),
    (['--kimg', '-1'], '--kimg -1'),
    (['--resolution', '48'], '--resolution 48'),
    (['--minibatch-gpu', 'x'], '--minibatch-gpu'),
    (['--minibatch-gpu', '3', '--config', 'ffhq'], 'minibatch_gpu must divide'),
    (['--cpu-devices', '8'], '--batch / --minibatch-gpu / --gpus: schedule at 8x8: a minibatch of 4 images is fewer than the 8 devices'),
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


def _garbage_dataset(path):
    os.makedirs(path)
    with open(os.path.join(path, 'garbage-r05.tfrecords'), 'w') as f:
        f.write('not a TFRecord file at all\n' * 4)
    return path


SG1 = 'sg1_r64.pkl'
RUN_ERRORS = [   # (id, args, words in the error line); {toy32} etc. are dataset names, PKL: names
    ('missing-dataset', ['--config', 'ffhq', '--dataset', 'nope'], ['--data-dir/--dataset', 'nope']),
    ('garbage-dataset', ['--config', 'ffhq', '--dataset', 'garbage'], ['--data-dir/--dataset', 'not a TFRecord file']),
    ('resolution-above-dataset', ['--config', 'demo', '--dataset', 'toy32', '--resolution', '64'],
     ['--resolution 64', 'the largest is 32x32']),
] + bad_pickle_errors('--resume-pkl', '--dataset', 'toy64') + [
    ('resume-pkl-resolution', ['--dataset', 'toy32', '--resume-pkl', SG1],
     ['--resume-pkl', 'resolution 64', 'resolution 32', '--transfer-mismatched']),
    ('resume-pkl-family', ['--config', 'stylegan2-f', '--dataset', 'toy64', '--resume-pkl', SG1],
     ['--config stylegan2-f', 'StyleGAN (G_style)']),
    ('resume-pkl-needs-dataset', ['--resume-pkl', SG1], ['--resume-pkl', '--dataset']),
    ('freeze-d-beyond-network', ['--config', 'ffhq', '--dataset', 'toy64', '--resume-pkl', SG1, '--freeze-d', '12'],
     ['--freeze-d 12', '5 blocks']),
    ('freeze-g-beyond-network', ['--dataset', 'toy32', '--resume-pkl', SG1, '--transfer-mismatched',
                                 '--freeze-g', '5'], ['--freeze-g 5', '4 blocks']),
    ('freeze-without-pickle', ['--dataset', 'toy64', '--freeze-d', '1'], ['--freeze-d', 'need --resume-pkl']),
    ('result-dir-is-a-file', ['--dataset', 'toy64', '--result-dir', 'FILE'], ['--result-dir', 'not a directory']),
]


@pytest.mark.parametrize('case,args,words', RUN_ERRORS, ids=[c[0] for c in RUN_ERRORS])
def test_user_errors_one_line_and_nothing_written(tmp_path, datasets, bad_pickles, case, args, words):
    """Every user error stops the launcher before anything is written, with one line naming the flag."""
    data_dir = tmp_path / 'data'
    shutil.copytree(datasets, data_dir)
    _garbage_dataset(str(data_dir / 'garbage'))
    (tmp_path / 'FILE').write_text('a file where a folder should be')
    args = [fixture_path(a) if a == SG1 else bad_pickles[a[4:]] if a.startswith('PKL:') else
            str(tmp_path / a) if a == 'FILE' else a for a in args]
    if '--result-dir' not in args:
        args += ['--result-dir', str(tmp_path / 'results')]
    assert_user_error('run_training.py', [*args, '--data-dir', str(data_dir)], words, prefix='run_training.py: error: ',
                      untouched=[tmp_path / 'results', data_dir, tmp_path / 'FILE', os.path.dirname(bad_pickles['text'])])
    assert not os.path.exists(os.path.join(os.path.dirname(bad_pickles['hostile']), 'HACKED'))


def test_stylegan_pickle_without_config_follows_the_official_recipe(datasets, tmp_path):
    """Issue 12: no silent demo recipe for a StyleGAN --resume-pkl; the choice is printed."""
    pkl = fixture_path(SG1)
    out = run_cli('--resume-pkl', pkl, '--data-dir', datasets, '--dataset', 'toy64', '--dry-run',
                  '--result-dir', str(tmp_path / 'r'))
    assert out.returncode == 0, out.stderr
    assert (f'Recipe: --config ffhq, the official StyleGAN train.py recipe (the ffhq preset\'s values), chosen '
            f'because --resume-pkl {pkl} holds StyleGAN networks (G_style, 64x64)') in out.stdout
    assert 'training starts at full resolution' in out.stdout and 'Resolution: 64x64' in out.stdout
    kw = json.loads(out.stdout[out.stdout.index('{'):out.stdout.rindex('}') + 1])
    _, official = to.resolve_options(dict(config='ffhq', data_dir=datasets, dataset='toy64',
                                          resume_pkl=pkl, lod_initial_resolution='full'))
    assert kw == json.loads(json.dumps(official))
    sched = kw['sched_args']
    assert sched['lod_initial_resolution'] == 'full' and sched['minibatch_dict']['64'] == 32
    assert 'G_lrate_base' not in sched and sched['G_lrate_dict']['128'] == 0.0015    # official rates
    assert kw['total_kimg'] == 25000 and kw['G_smoothing_kimg'] == 10.0 and kw['dataset_args']['resolution'] == 64
    assert 'Would create' in out.stdout and 'sgan-toy64-1gpu' in out.stdout and not (tmp_path / 'r').exists()
    # --resume-kimg (the official way to place a grown network in the schedule) keeps the 8x8 start.
    _, kw = to.resolve_options(dict(resume_pkl=pkl, data_dir=datasets, dataset='toy64', resume_kimg=7000.0))
    assert kw['sched_args']['lod_initial_resolution'] == 8
    # StyleGAN2 pickles: config-f, said as well.
    notes = []
    to.resolve_options(dict(resume_pkl=fixture_path('sg2_r64.pkl'), data_dir=datasets, dataset='toy64'), notes)
    assert notes[0].startswith('Recipe: --config stylegan2-f, the official StyleGAN2 config-f recipe')


def test_missing_dataset_is_reported(tmp_path):
    out = run_cli('--config', 'ffhq', '--data-dir', str(tmp_path), '--result-dir', str(tmp_path / 'r'))
    assert out.returncode == 2 and '--data-dir/--dataset' in out.stderr and 'ffhq' in out.stderr
    assert not (tmp_path / 'r').exists()


def test_help_and_dry_run(tmp_path, datasets):
    out = run_cli('--help')
    assert out.returncode == 0
    for flag in ('--data-dir', '--dataset', '--kimg', '--config', '--resolution', '--gpus', '--mirror-augment',
                 '--resume', '--resume-pkl', '--resume-kimg', '--result-dir', '--seed', '--dry-run',
                 '--snapshot-ticks', '--image-snapshot-ticks', '--minibatch-gpu'):
        assert flag in out.stdout
    out = run_cli('--config', 'celebahq', '--gpus', '4', '--dry-run', '--result-dir', str(tmp_path / 'r'),
                  '--data-dir', datasets, '--dataset', 'toy64')
    assert out.returncode == 0, out.stderr
    text = out.stdout
    options = json.loads(text[text.index('{'):text.rindex('}') + 1])
    assert options['num_gpus'] == 4 and options['sched_args']['minibatch_base'] == 16
    assert 'Dry run' in text and not (tmp_path / 'r').exists()


def test_resume_restores_saved_options_with_overrides(tmp_path, datasets):
    run_dir = submission.create_run_dir(str(tmp_path / 'results'), 'sgan-ffhq-2gpu')
    launch = dict(config='ffhq', gpus=2, kimg=100.0, seed=5, data_dir=datasets, dataset='toy64')
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


def test_cli_run_writes_the_run_directory(tmp_path):
    """The issue-14 command: the demo config on a dataset of another size trains at its size."""
    data = make_dataset(str(tmp_path / 'data' / 'tiny'))          # 8x8
    out = run_cli('--config', 'demo', '--data-dir', str(tmp_path / 'data'), '--dataset', 'tiny',
                  '--kimg', '0.1', '--result-dir', str(tmp_path / 'results'), '--mixing-figure', '0')
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"Resolution: 8x8 (the dataset {data}'s largest)" in out.stdout
    # The demo preset's one thread per op is set before TensorFlow starts (else the line says so).
    threads = distribute.choose_intra_op_threads(to.PRESETS['demo']['intra_op_threads'])
    assert ('TensorFlow intra-op threads: 1 (small ops' in out.stdout) == (threads == 1), out.stdout[:3000]
    assert 'TensorFlow was already started' not in out.stdout
    runs = submission.list_run_dirs(str(tmp_path / 'results'))
    assert len(runs) == 1 and runs[0].endswith('00000-sgan-tiny-1gpu')
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
    assert Gs.static_kwargs['resolution'] == 8 and Gs.static_kwargs['fmap_max'] == to.DEMO_NETWORK['fmap_max']


@pytest.mark.slow
def test_cli_resume_continues_the_run_in_place(tmp_path):
    make_dataset(str(tmp_path / 'data' / 'tiny'))
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


def test_transfer_error_after_the_run_directory_leaves_nothing(tmp_path, datasets, monkeypatch):
    """A --resume-pkl that shares no layer is found only once the networks exist; the new run
    directory, its reservation and the result folder this launch made are removed again."""
    from training import finetune, training_loop, training_options

    def refuse(**_kwargs):
        raise finetune.TransferError('x.pkl: network G shares no trainable layer with the new one')

    monkeypatch.setattr(training_loop, 'training_loop', refuse)
    result_dir = tmp_path / 'results'
    launch = dict(config='demo', data_dir=datasets, dataset='toy32', result_dir=str(result_dir))
    with pytest.raises(finetune.TransferError, match='shares no trainable layer'):
        training_options.run_training(launch)
    assert not result_dir.exists()
    result_dir.mkdir()
    (result_dir / 'keep.txt').write_text('x')
    with pytest.raises(finetune.TransferError):
        training_options.run_training(launch)
    assert sorted(os.listdir(result_dir)) == ['keep.txt']


# Where each per-config flag lands in the training_loop kwargs that --dry-run prints.
_KWARG_OF_FLAG = dict(
    kimg=lambda kw: kw['total_kimg'], mirror_augment=lambda kw: kw['mirror_augment'],
    grid=lambda kw: kw['grid_args']['size'], snapshot_ticks=lambda kw: kw['network_snapshot_ticks'],
    image_snapshot_ticks=lambda kw: kw['image_snapshot_ticks'], mixing_figure=lambda kw: kw['mixing_figure'],
    gamma=lambda kw: kw['D_loss_args'].get('gamma'),
    dataset=lambda kw: os.path.basename(kw['dataset_args']['tfrecord_dir']))


def _help_entry(help_text: str, flag: str) -> str:
    """The help text of one option, joined to one line (argparse wraps it)."""
    lines = help_text.split('\n')
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(flag + ' ')
                 or line.strip() == flag or line.strip().startswith(flag + ' ['))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if line.strip().startswith('-'):
            break
        entry.append(line)
    return ' '.join(' '.join(entry).split()).replace('- ', '-')


@pytest.mark.parametrize('config', to.CONFIGS)
def test_help_dry_run_and_preset_table_agree(tmp_path, config):
    """Every per-config default: the preset table, what --help prints for the config, and what
    --dry-run resolves (through the CLI) are the same value."""
    help_text = run_cli('--help').stdout
    name = to.PRESETS[config]['dataset']
    if name not in to.DEMO_BUILDS:        # the config's own dataset folder, or one given by name
        make_dataset(str(tmp_path / (name or 'mine')), resolution=8, num_images=2)
    dataset = [] if name else ['--dataset', 'mine']
    out = run_cli('--config', config, '--dry-run', '--data-dir', str(tmp_path), *dataset)
    assert out.returncode == 0, out.stderr
    kwargs = json.loads(out.stdout[out.stdout.index('{'):out.stdout.rindex('}') + 1])
    for flag, key in to.PER_CONFIG_FLAGS.items():
        entry = _help_entry(help_text, '--' + flag.replace('_', '-'))
        table = to._preset_value(config, key, kwargs['dataset_args']['resolution'])
        resolved = _KWARG_OF_FLAG[flag](kwargs)
        shown = _per_config_help(entry)
        if flag == 'gamma' and not to.PRESETS[config]['gamma_flag']:
            assert config not in shown and kwargs['D_loss_args']['r1_gamma'] == to.PRESETS[config]['gamma']
            continue
        if flag == 'dataset' and table is None:
            assert resolved == 'mine' and shown[config] == 'required', (entry, shown)
            continue
        assert resolved == table, (flag, resolved, table)
        assert shown[config].startswith(to._describe(table)), (flag, shown[config], table)


def _per_config_help(entry: str) -> dict:
    """'... (default per config: a, b: 1; c: 2)' -> {'a': '1', 'b': '1', 'c': '2'}."""
    groups = entry.split('default per config: ')[1].rsplit(')', 1)[0].split('; ')
    return {config: text for group in groups for text in [group.split(': ', 1)[1]]
            for config in group.split(': ', 1)[0].split(', ')}


def test_help_shows_the_launch_defaults():
    help_text = run_cli('--help').stdout
    D = to.LAUNCH_DEFAULTS
    for flag, text in (('--data-dir', f'default: {D["data_dir"]}'), ('--seed', f'default: {D["seed"]}'),
                       ('--gpus', f'default: {D["gpus"]}'), ('--beta2', f'default: {D["beta2"]}'),
                       ('--epsilon', f'default: {D["epsilon"]:g}'), ('--optimizer', f'default: {D["optimizer"]}'),
                       ('--result-dir', f'default: {D["result_dir"]}')):
        assert text in _help_entry(help_text, flag), (flag, _help_entry(help_text, flag))
