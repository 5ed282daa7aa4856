"""Fine-tuning (issue 8): freeze selection, layer transfer, launcher flags, and the README flow.

The expected variable lists are written out by hand from the official fixture pickles' variable
names (tests/data/official, listed by dnnlib.legacy_pickle), following the block
definitions in training/finetune.py's docstring, so they check the rule, not the code's own output.
"""

import json
import os

import numpy as np
import pytest

from conftest import REPO_DIR, fixture_path, make_dataset
from fixture_checks import fixture_networks
from dnnlib import legacy_pickle
from training import training_options as to

BLOCK_VARS_V1_D = ['Conv0/weight', 'Conv0/bias', 'Conv1_down/weight', 'Conv1_down/bias']
LAYER_VARS_V1_G = ['weight', 'Noise/weight', 'bias', 'StyleMod/weight', 'StyleMod/bias']


def _names(prefix, suffixes):
    return [f'{prefix}{s}' for s in suffixes]


# ------------------------------------------------------------------------------------------------
# Freeze selection against the official names.

def _tf2_networks(path):
    from tf2 import checkpoint
    return checkpoint.networks_from_pickle(path)


sg1 = fixture_networks('sg1_r64.pkl', _tf2_networks)
sg2 = fixture_networks('sg2_r64.pkl', _tf2_networks)


def test_freeze_d_v1_blocks_with_their_fromrgb(sg1):
    from training.finetune import frozen_variable_names
    _, D, _ = sg1
    want = (['FromRGB_lod0/weight', 'FromRGB_lod0/bias'] + _names('64x64/', BLOCK_VARS_V1_D)
            + ['FromRGB_lod1/weight', 'FromRGB_lod1/bias'] + _names('32x32/', BLOCK_VARS_V1_D))
    assert frozen_variable_names(D, 'D', 2) == want
    assert frozen_variable_names(D, 'D', 0) == []
    # All 5 blocks: everything trainable (D_basic has no layer outside the RxR scopes + FromRGB).
    assert len(frozen_variable_names(D, 'D', 5)) == len(D.trainable_variables)
    with pytest.raises(ValueError, match=r'--freeze-d 6: .*has 5 blocks'):
        frozen_variable_names(D, 'D', 6)


def test_freeze_g_v1_lowest_blocks_with_torgb_and_mapping(sg1):
    from training.finetune import frozen_variable_names
    G, _, _ = sg1
    want = (['G_synthesis/4x4/Const/const'] + _names('G_synthesis/4x4/Const/', LAYER_VARS_V1_G[1:])
            + _names('G_synthesis/4x4/Conv/', LAYER_VARS_V1_G)
            + ['G_synthesis/ToRGB_lod4/weight', 'G_synthesis/ToRGB_lod4/bias'])
    assert frozen_variable_names(G, 'G', 1) == want
    mapping = [f'G_mapping/Dense{i}/{v}' for i in range(8) for v in ('weight', 'bias')]
    assert frozen_variable_names(G, 'G', 0, mapping=True) == mapping
    two = frozen_variable_names(G, 'G', 2)
    assert two[:len(want)] == want and 'G_synthesis/8x8/Conv0_up/StyleMod/bias' in two
    assert 'G_synthesis/ToRGB_lod3/bias' in two and 'G_synthesis/16x16/Conv1/bias' not in two
    assert not any('noise' in n or n.endswith('lod') for n in two)     # non-trainable buffers


def test_freeze_v2_scopes(sg2):
    from training.finetune import frozen_variable_names
    G, D, _ = sg2
    assert frozen_variable_names(D, 'D', 1) == [
        '64x64/FromRGB/weight', '64x64/FromRGB/bias', '64x64/Conv0/weight', '64x64/Conv0/bias',
        '64x64/Conv1_down/weight', '64x64/Conv1_down/bias', '64x64/Skip/weight']
    # All blocks: the final Output layer belongs to none.
    assert [v.path for v in D.trainable_variables if all(
        v is not D.official_variables()[n] for n in frozen_variable_names(D, 'D', 5))] != []
    conv = [f'G_synthesis/4x4/Conv/{v}' for v in ('weight', 'mod_weight', 'mod_bias', 'noise_strength', 'bias')]
    torgb = [f'G_synthesis/4x4/ToRGB/{v}' for v in ('weight', 'mod_weight', 'mod_bias', 'bias')]
    assert frozen_variable_names(G, 'G', 1) == ['G_synthesis/4x4/Const/const'] + conv + torgb


def test_select_trainable_keeps_order_and_excludes_frozen(sg1):
    from training.finetune import frozen_variable_names, select_trainable
    G, D, _ = sg1
    lines = []
    G_vars, D_vars = select_trainable(G, D, 2, 1, True, log=lines.append)
    frozen_ids = {id(D.official_variables()[n]) for n in frozen_variable_names(D, 'D', 2)}
    assert [id(v) for v in D_vars] == [id(v) for v in D.trainable_variables if id(v) not in frozen_ids]
    assert len(G_vars) == len(G.trainable_variables) - 12 - 16
    assert len(lines) == 2 and 'FromRGB_lod1' in lines[1] and 'G_mapping/Dense7' in lines[0]


# ------------------------------------------------------------------------------------------------
# Starting from a pickle at another resolution / label size.

def test_mismatched_pickle_is_an_error_naming_the_flag():
    from training.finetune import TransferError, networks_for_dataset
    pkl = fixture_path('sg1_r64.pkl')
    with pytest.raises(TransferError, match=r'resolution 64 vs 32.*--transfer-mismatched'):
        networks_for_dataset(pkl, dict(num_channels=3, resolution=32, label_size=0), False)


def test_transfer_copies_matching_layers_by_resolution():
    from training.finetune import networks_for_dataset
    pkl = fixture_path('sg1_r64.pkl')
    src = {s.name: s for s in legacy_pickle.load(pkl)}
    lines = []
    G, D, Gs = networks_for_dataset(pkl, dict(num_channels=3, resolution=32, label_size=2), True,
                                    log=lines.append)
    dv = {k: v.numpy() for k, v in D.official_variables().items()}
    # The 32x32 block of a 32 px D is fed by FromRGB_lod0; in the 64 px pickle that layer is FromRGB_lod1.
    np.testing.assert_array_equal(dv['FromRGB_lod0/weight'], src['D'].variables['FromRGB_lod1/weight'])
    np.testing.assert_array_equal(dv['32x32/Conv0/weight'], src['D'].variables['32x32/Conv0/weight'])
    np.testing.assert_array_equal(dv['4x4/Dense0/weight'], src['D'].variables['4x4/Dense0/weight'])
    # With 2 labels D's output layer has max(label_size, 1) = 2 outputs (official D_basic): a new
    # shape, not transferred.
    assert dv['4x4/Dense1/weight'].shape == (48, 2)
    gs = {k: v.numpy() for k, v in Gs.official_variables().items()}
    comps = src['Gs'].components
    np.testing.assert_array_equal(gs['G_synthesis/ToRGB_lod0/weight'],
                                  comps['synthesis'].variables['ToRGB_lod1/weight'])
    np.testing.assert_array_equal(gs['G_mapping/Dense3/weight'], comps['mapping'].variables['Dense3/weight'])
    assert 'G_mapping/LabelConcat/weight' in gs      # new: the labels' embedding
    text = '\n'.join(lines)
    assert 'D: NOT transferred' in text and '4x4/Dense1/weight (shape [48, 2] != [48, 1]' in text
    assert 'G: NOT transferred' in text and 'G_mapping/LabelConcat/weight (not in the pickle)' in text
    assert '64x64/Conv0' in text.split('D: unused from the pickle')[1]


# ------------------------------------------------------------------------------------------------
# Launcher flags.

def test_finetune_flags_resolve_into_loop_kwargs(tmp_path):
    pkl = fixture_path('sg1_r64.pkl')
    _, kw = to.resolve_options(dict(config='ffhq', resume_pkl=pkl, freeze_d=2, freeze_g=1,
                                    freeze_mapping=True, optimizer='adamw', weight_decay=0.01,
                                    lr=0.002, batch=32, beta2=0.9, lod_initial_resolution='full',
                                    augment='diff:color,xflip', aug_target=0.6, seed=7))
    sched = kw['sched_args']
    assert (sched['minibatch_base'], sched['minibatch_dict']) == (32, {})
    assert (sched['G_lrate_base'], sched['D_lrate_base'], sched['G_lrate_dict'], sched['D_lrate_dict']) == (0.002, 0.002, {}, {})
    assert sched['lod_initial_resolution'] == 'full'
    for opt in (kw['G_opt_args'], kw['D_opt_args']):
        assert opt == dict(func_name='training.optimizers.make_optimizer', name='adamw', beta1=0.0,
                           beta2=0.9, epsilon=1e-8, weight_decay=0.01)
    assert (kw['D_freeze_blocks'], kw['G_freeze_blocks'], kw['G_freeze_mapping']) == (2, 1, True)
    assert kw['D_augment_args'] == dict(class_name='training.finetune.TrainingAugment', policy=['color', 'xflip'],
                                        aug_p=None, aug_target=0.6, seed=7)
    assert 'reals_augment_args' not in kw
    _, kw = to.resolve_options(dict(resume_pkl=pkl, dataset='x', augment='albu:mild'))
    assert kw['reals_augment_args'] == dict(func_name='training.finetune.make_reals_augment', spec='mild')
    assert 'D_augment_args' not in kw
    # Defaults: the official optimizer, no freezing, no augmentation.
    _, kw = to.resolve_options(dict(config='ffhq'))
    assert kw['G_opt_args'] == dict(func_name='training.optimizers.make_optimizer', name='adam', beta1=0.0,
                                    beta2=0.99, epsilon=1e-8)
    assert (kw['D_freeze_blocks'], kw['G_freeze_blocks'], kw['G_freeze_mapping']) == (0, 0, False)


@pytest.mark.parametrize('launch,message', [
    (dict(weight_decay=0.1), '--weight-decay 0.1: needs --optimizer adamw or adamp'),
    (dict(optimizer='sgd'), "--optimizer 'sgd'"),
    (dict(lr=0.0), '--lr 0.0: must be > 0'),
    (dict(beta1=1.0), '--beta1 1.0'),
    (dict(batch=0), '--batch 0'),
    (dict(freeze_d=2), '--freeze-d/--freeze-g/--freeze-mapping: need --resume-pkl'),
    (dict(transfer_mismatched=True), '--transfer-mismatched: needs --resume-pkl'),
    (dict(freeze_g=-1, resume_pkl='PKL'), '--freeze-g -1'),
    (dict(freeze_d=6, resume_pkl='PKL'), '--freeze-d 6: networks at 64x64 have 5 blocks'),
    (dict(lod_initial_resolution=12), '--lod-initial-resolution 12'),
    (dict(augment='albu:default', aug_p=0.5), '--aug-p/--aug-target apply to --augment diff'),
    (dict(augment='diff:blur'), 'unknown augmentation'),
    (dict(augment='diff', aug_p=0.5, aug_target=0.6), 'exclude each other'),
])
def test_bad_finetune_flags_name_the_flag(launch, message):
    if launch.get('resume_pkl') == 'PKL':     # a 64x64 pickle; no dataset here, so --resolution 64
        launch = dict(launch, resume_pkl=fixture_path('sg1_r64.pkl'), dataset='x', resolution=64)
    with pytest.raises(to.OptionsError) as e:
        to.resolve_options(launch)
    assert message in str(e.value)


def test_resume_run_dir_restores_finetune_flags(tmp_path, capsys):
    """--resume RUN_DIR re-resolves the saved launch_args (dry run: no training, no TensorFlow)."""
    from dnnlib import submission
    pkl = fixture_path('sg1_r64.pkl')
    make_dataset(str(tmp_path / 'data' / 'my64'), resolution=64, num_images=4)
    launch = dict(resume_pkl=pkl, freeze_d=2, freeze_g=1, freeze_mapping=True, augment='diff:cutout',
                  aug_p=0.3, optimizer='adamp', weight_decay=0.02, lr=0.002, batch=32,
                  lod_initial_resolution='full', transfer_mismatched=True, result_dir=str(tmp_path),
                  data_dir=str(tmp_path / 'data'), dataset='my64')
    _, kwargs = to.resolve_options(launch)
    run_dir = submission.create_run_dir(str(tmp_path), 'sgan-my64-1gpu')
    submission.save_training_options(run_dir, dict(launch_args=launch, training_loop_kwargs=kwargs))
    capsys.readouterr()
    assert to.run_training(dict(kimg=30.0), resume=run_dir, dry_run=True) is None
    out = capsys.readouterr().out
    resolved = json.loads(out[out.index('{'):out.rindex('}') + 1])
    assert resolved == json.loads(json.dumps(dict(kwargs, total_kimg=30.0)))
    assert resolved['D_augment_args']['aug_p'] == 0.3 and resolved['G_opt_args']['weight_decay'] == 0.02
    assert (resolved['D_freeze_blocks'], resolved['G_freeze_blocks'], resolved['G_freeze_mapping'],
            resolved['transfer_mismatched']) == (2, 1, True, True)


def test_mismatched_resume_pkl_stops_the_launcher_before_writing(tmp_path):
    make_dataset(str(tmp_path / 'data' / 'tiny32'), resolution=32, num_images=4)
    results = tmp_path / 'results'
    with pytest.raises(to.OptionsError, match=r'--resume-pkl .*resolution 64, but the dataset .* gives '
                                              r'resolution 32.*--transfer-mismatched'):
        to.run_training(dict(config='ffhq', resume_pkl=fixture_path('sg1_r64.pkl'), data_dir=str(tmp_path / 'data'),
                             dataset='tiny32', result_dir=str(results)))
    assert not results.exists()


# ------------------------------------------------------------------------------------------------
# The README flow: a folder of images -> dataset -> fine-tuned snapshot -> style-mixing figure.

def _write_images(folder, count=24, seed=0):
    """Smooth colour gradients of 80x72 px (not square: center-crop is exercised)."""
    import PIL.Image
    os.makedirs(folder)
    rnd = np.random.RandomState(seed)
    yy, xx = np.mgrid[:72, :80] / 72.0
    for i in range(count):
        a, b = rnd.rand(3, 1, 1) * 255, rnd.rand(3, 1, 1) * 255
        t = 0.5 + 0.5 * np.sin(4 * xx * rnd.rand() + 3 * yy + rnd.rand() * 6)
        img = (a * t + b * (1 - t)).transpose(1, 2, 0)
        PIL.Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(folder, f'{i:03d}.png'))


def _snapshot_vars(path):
    G, D, _ = legacy_pickle.load(path)
    g = {f'G_synthesis/{k}': v for k, v in G.components['synthesis'].variables.items()}
    g.update({f'G_mapping/{k}': v for k, v in G.components['mapping'].variables.items()})
    return g, dict(D.variables)


def _assert_frozen(start_pkl, snapshot, D_frozen_prefixes, G_frozen_prefixes):
    g0, d0 = _snapshot_vars(start_pkl)
    g1, d1 = _snapshot_vars(snapshot)
    frozen_d = [k for k in d0 if k.startswith(D_frozen_prefixes)]
    frozen_g = [k for k in g0 if k.startswith(G_frozen_prefixes)] if G_frozen_prefixes else []
    assert frozen_d
    for name in frozen_d:
        np.testing.assert_array_equal(d1[name], d0[name], err_msg=f'{snapshot}: D {name}')
    for name in frozen_g:
        np.testing.assert_array_equal(g1[name], g0[name], err_msg=f'{snapshot}: G {name}')
    changed_d = [k for k in d0 if k not in frozen_d and k != 'lod' and not np.array_equal(d0[k], d1[k])]
    changed_g = [k for k in g0 if k not in frozen_g and not np.array_equal(g0[k], g1[k])]
    assert '16x16/Conv0/weight' in changed_d and '4x4/Dense1/weight' in changed_d
    assert 'G_synthesis/64x64/Conv1/weight' in changed_g and 'G_mapping/Dense0/weight' in changed_g


def _make_dataset(tmp_path):
    import dataset_tool
    images = str(tmp_path / 'my_images')
    _write_images(images)
    data_dir = str(tmp_path / 'datasets')
    assert dataset_tool.main(['create_from_images', os.path.join(data_dir, 'my64'), images,
                              '--resolution', '64', '--resize', 'center-crop', '--workers', '1',
                              '--no-progress']) == 0
    return data_dir


D_FROZEN_2 = ('64x64/', '32x32/', 'FromRGB_lod0/', 'FromRGB_lod1/')     # --freeze-d 2 at 64 px


def _finetune_args(pkl, data_dir, results, kimg):
    # The README command at test size: batch 8, and resume-kimg so that one schedule evaluation
    # (4 steps of 8 images) ends a tick: kimg 0.960 -> 0.992 (snapshot 000000) -> 1.024 (000001).
    return ['--resume-pkl', pkl, '--config', 'demo', '--resume-kimg', '0.96', '--data-dir', data_dir, '--dataset', 'my64',
            '--lod-initial-resolution', 'full', '--freeze-d', '2', '--augment', 'albu:default',
            '--optimizer', 'adamp', '--lr', '0.002', '--batch', '8', '--kimg', str(kimg),
            '--result-dir', results, '--mixing-figure', '0', '--grid', '2x2']


@pytest.mark.slow      # ~90 s on 2 CPU cores: tracing the 64 px v1 D step (R1 through the lod conds)
def test_readme_flow_images_to_finetuned_snapshot_and_mixing_figure(tmp_path, capsys):
    """dataset_tool.py -> run_training.py --resume-pkl ... -> style_mixing.py, in-process.
    FreezeD 2 is checked bit for bit in every snapshot; --resume restores the flags (dry run)."""
    import run_training
    import style_mixing
    pkl = fixture_path('sg1_r64.pkl')
    data_dir = _make_dataset(tmp_path)
    results = str(tmp_path / 'results')
    assert run_training.main(_finetune_args(pkl, data_dir, results, 0.992)) == 0
    out = capsys.readouterr().out
    assert 'albumentations augments the real images only' in out          # the leak warning
    assert 'Frozen in D (12 of 32' in out and 'lod 0.00' in out
    run_dir = os.path.join(results, os.listdir(results)[0])
    options = json.load(open(os.path.join(run_dir, 'training_options.json')))
    launch = options['launch_args']
    assert (launch['freeze_d'], launch['augment'], launch['optimizer'], launch['lr'], launch['batch'],
            launch['lod_initial_resolution']) == (2, 'albu:default', 'adamp', 0.002, 8, 'full')
    loop = options['training_loop_kwargs']
    assert loop['reals_augment_args']['spec'] == 'default' and loop['G_opt_args']['name'] == 'adamp'
    assert loop['D_freeze_blocks'] == 2 and loop['sched_args']['minibatch_base'] == 8
    snapshots = sorted(n for n in os.listdir(run_dir) if n.startswith('network-'))
    assert snapshots == ['network-final.pkl', 'network-snapshot-000000.pkl']
    for name in snapshots:
        _assert_frozen(pkl, os.path.join(run_dir, name), D_FROZEN_2, None)

    # --resume RUN_DIR brings the saved fine-tuning flags back (dry run: nothing trained).
    assert run_training.main(['--resume', run_dir, '--kimg', '1.024', '--result-dir', results, '--dry-run']) == 0
    out = capsys.readouterr().out
    resolved = json.loads(out[out.index('{'):out.rindex('}') + 1])
    assert resolved == dict(loop, total_kimg=1.024)

    outdir = str(tmp_path / 'mixing')
    assert style_mixing.main(['--network', os.path.join(run_dir, 'network-snapshot-000000.pkl'),
                              '--dst-seeds', '1,2', '--src-seeds', '3,4', '--scheme', 'coarse',
                              '--outdir', outdir]) == 0
    assert any(n.endswith('.png') for n in os.listdir(outdir))


@pytest.mark.slow
def test_readme_flow_resumed_run_keeps_flags_and_frozen_layers(tmp_path, capsys):
    """As above, then a real --resume of the run: flags restored, a second snapshot, still frozen."""
    import run_training
    pkl = fixture_path('sg1_r64.pkl')
    data_dir = _make_dataset(tmp_path)
    results = str(tmp_path / 'results')
    assert run_training.main(_finetune_args(pkl, data_dir, results, 0.992)) == 0
    run_dir = os.path.join(results, os.listdir(results)[0])
    capsys.readouterr()
    assert run_training.main(['--resume', run_dir, '--kimg', '1.024', '--result-dir', results]) == 0
    out = capsys.readouterr().out
    assert 'Frozen in D (12 of 32' in out and 'kimg: 0.992 -> 1.024' in out
    assert 'albumentations augments the real images only' in out
    snapshots = sorted(n for n in os.listdir(run_dir) if n.startswith('network-'))
    assert snapshots == ['network-final.pkl', 'network-snapshot-000000.pkl', 'network-snapshot-000001.pkl']
    for name in snapshots:
        _assert_frozen(pkl, os.path.join(run_dir, name), D_FROZEN_2, None)


@pytest.mark.slow      # ~100 s on 2 CPU cores, like the v1 README flow tests above
def test_stylegan2_pickle_finetune_flow(tmp_path, capsys):
    """The README flow on NVIDIA's StyleGAN2 fixture:
    dataset_tool.py -> run_training.py with FreezeD/FreezeG/frozen mapping -> style_mixing.py."""
    import run_training
    pkl = fixture_path('sg2_r64.pkl')
    data_dir = _make_dataset(tmp_path)
    results = str(tmp_path / 'results')
    args = _finetune_args(pkl, data_dir, results, 0.992)
    del args[args.index('--config'):args.index('--config') + 2]      # stylegan2-f, from the pickle
    args[args.index('--freeze-d') + 1] = '1'
    args += ['--freeze-g', '1', '--freeze-mapping']
    assert run_training.main(args) == 0
    out = capsys.readouterr().out
    assert 'Frozen in D (7 of' in out and 'Frozen in G' in out
    run_dir = os.path.join(results, os.listdir(results)[0])
    start = legacy_pickle.load(pkl)
    for name in ('network-snapshot-000000.pkl', 'network-final.pkl'):
        G, D, _ = legacy_pickle.load(os.path.join(run_dir, name))
        for k, v in start[1].variables.items():
            if k.startswith('64x64/'):
                np.testing.assert_array_equal(D.variables[k], v, err_msg=f'{name}: D {k}')
        for comp in ('synthesis', 'mapping'):
            for k, v in start[0].components[comp].variables.items():
                if comp == 'mapping' or k.startswith('4x4/'):
                    np.testing.assert_array_equal(G.components[comp].variables[k], v, err_msg=f'{name}: G {k}')
        assert not np.array_equal(D.variables['32x32/Conv0/weight'], start[1].variables['32x32/Conv0/weight'])
        assert not np.array_equal(G.components['synthesis'].variables['64x64/Conv1/weight'],
                                  start[0].components['synthesis'].variables['64x64/Conv1/weight'])
    import style_mixing
    outdir = str(tmp_path / 'mixing')
    assert style_mixing.main(['--network', os.path.join(run_dir, 'network-final.pkl'), '--dst-seeds', '1,2',
                              '--src-seeds', '3', '--scheme', 'coarse', '--outdir', outdir]) == 0
    assert any(n.endswith('.png') for n in os.listdir(outdir))
