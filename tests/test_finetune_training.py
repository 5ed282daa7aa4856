"""Fine-tuning inside training.training_loop on tiny 8x8 networks: freezing holds in every snapshot,
and a run with augmentation (albu on reals + DiffAugment/ADA) and each optimizer resumes exactly.

Networks and data are those of tests/test_training_loop.py (G's own randomness off, so runs are
bit-reproducible). The start pickle is written here, so the frozen arrays are compared with the
values the run started from.
"""

import os
import shutil

import numpy as np
import pytest

from conftest import NET, OPT, assert_same_training_state, make_dataset, tiny_kwargs
from dnnlib import legacy_pickle
from training import training_loop as tl

# Starting at kimg 0.872 (lod 0 already), 4 steps of 16 images per schedule evaluation and ticks of
# 0.05 kimg: snapshots 000000 (kimg 0.936) and 000001 (kimg 1.000), 8 D and 8 G steps in all.
D_FROZEN = ('8x8/', 'FromRGB_lod0/')                                   # --freeze-d 1
G_FROZEN = ('G_synthesis/4x4/', 'G_synthesis/ToRGB_lod1/', 'G_mapping/')   # --freeze-g 1 --freeze-mapping


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp('data') / 'tiny8'))


@pytest.fixture(scope='module')
def start_pkl(tmp_path_factory):
    from tf2 import checkpoint, networks_stylegan
    data = dict(num_channels=3, resolution=8, label_size=0)
    G = networks_stylegan.G_style(name='G', style_mixing_prob=0.0, randomize_noise=False, **data, **NET)
    D = networks_stylegan.D_basic(name='D', fmap_base=32, fmap_max=8, **data)
    path = str(tmp_path_factory.mktemp('start') / 'start.pkl')
    checkpoint.save_networks(path, G, D, checkpoint.clone(G, name='Gs'))
    return path


def finetune_kwargs(dataset_dir, start_pkl, total_kimg, optimizer='adamp'):
    opt = dict(OPT, name=optimizer, **({} if optimizer == 'adam' else {'weight_decay': 0.01}))
    return tiny_kwargs(
        dataset_dir, total_kimg, resume_pkl=start_pkl, resume_kimg=0.872, G_opt_args=dict(opt), D_opt_args=dict(opt),
        sched_args=dict(lod_initial_resolution=4, lod_training_kimg=0.4, lod_transition_kimg=0.4,
                        minibatch_base=16, tick_kimg_base=0.05, tick_kimg_dict={}),
        D_freeze_blocks=1, G_freeze_blocks=1, G_freeze_mapping=True,
        reals_augment_args=dict(func_name='training.finetune.make_reals_augment', spec='mild'),
        # ADA with target 0: p rises at every adjustment, so its state matters for the resume.
        D_augment_args=dict(class_name='training.finetune.TrainingAugment', policy=['color', 'translation', 'cutout'],
                            aug_target=0.0, seed=5, ada_interval=1, ada_kimg=2.0))


def _flat(path):
    G, D, _ = legacy_pickle.load(path)
    out = {f'D/{k}': v for k, v in D.variables.items()}
    for comp in G.components.values():
        out.update({f'G/{comp.name}/{k}': v for k, v in comp.variables.items()})
    return out


@pytest.fixture(scope='module')
def reference_run(dataset_dir, start_pkl, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp('runs') / '00000-finetune')
    os.makedirs(run_dir)
    tl.training_loop(run_dir=run_dir, **finetune_kwargs(dataset_dir, start_pkl, 1.0))
    return run_dir


def test_frozen_variables_are_bit_identical_in_every_snapshot(reference_run, start_pkl):
    start = _flat(start_pkl)
    frozen = [k for k in start if k.startswith(tuple('D/' + p for p in D_FROZEN) + tuple('G/' + p for p in G_FROZEN))
              and 'noise' not in k and not k.endswith('/lod')]
    assert len(frozen) == 4 + 2 + 10 + 2 + 2 * 2      # D: 8x8, FromRGB_lod0; G: 4x4, ToRGB_lod1, 2 mapping layers
    snapshots = sorted(n for n in os.listdir(reference_run) if n.startswith('network-'))
    assert snapshots == ['network-final.pkl', 'network-snapshot-000000.pkl', 'network-snapshot-000001.pkl']
    for name in snapshots:
        snap = _flat(os.path.join(reference_run, name))
        for key in frozen:
            np.testing.assert_array_equal(snap[key], start[key], err_msg=f'{name}: {key}')
        changed = [k for k in start if k not in frozen and not np.array_equal(snap[k], start[k])]
        for key in ('D/4x4/Conv/weight', 'D/4x4/Dense1/weight', 'G/G_synthesis/8x8/Conv1/weight',
                    'G/G_synthesis/ToRGB_lod0/weight'):
            assert key in changed, f'{name}: {key} did not train'


def test_ada_p_is_saved_with_the_snapshot(reference_run):
    import json
    with np.load(tl.snapshot_paths(reference_run, 1)[1]) as st:
        p = float(st['augment/ada_p'])
        steps = int(st['augment/ada_step'])
        assert 'augment/rng_state' in st.files
    assert steps == 8                               # one ADA update per D step
    # Each adjustment moves p by +-16 / 2000, so p is a multiple of 0.008 in [0, 1] (or clipped).
    assert 0.0 <= p <= 1.0 and (p == 1.0 or abs(p / 0.008 - round(p / 0.008)) < 1e-3)
    with open(os.path.join(reference_run, 'stats.jsonl')) as f:
        last = [json.loads(line) for line in f][-1]
    assert last['Progress/augment_p'] == pytest.approx(p)


# adamp runs in CI (it reuses the reference run); adamw and adam need a reference run each.
@pytest.mark.parametrize('optimizer', ['adamp', pytest.param('adamw', marks=pytest.mark.slow),
                                       pytest.param('adam', marks=pytest.mark.slow)])
def test_resume_with_augmentation_and_optimizer_is_exact(optimizer, reference_run, dataset_dir, start_pkl,
                                                         tmp_path):
    """Snapshot 000001 of an uninterrupted run == that of a run resumed from snapshot 000000."""
    if optimizer == 'adamp':
        ref_dir = reference_run
    else:
        ref_dir = str(tmp_path / '00000-reference')
        os.makedirs(ref_dir)
        tl.training_loop(run_dir=ref_dir, **finetune_kwargs(dataset_dir, start_pkl, 1.0, optimizer))
    run_dir = str(tmp_path / '00001-resumed')
    shutil.copytree(ref_dir, run_dir)
    for path in tl.snapshot_paths(run_dir, 1) + (os.path.join(run_dir, 'network-final.pkl'),):
        os.remove(path)
    tl.training_loop(run_dir=run_dir, resume_run=True, **finetune_kwargs(dataset_dir, start_pkl, 1.0, optimizer))
    assert_same_training_state(ref_dir, run_dir, 1)


def test_transfer_from_another_resolution_then_freeze(dataset_dir, tmp_path):
    """A 16 px start pickle on the 8 px dataset: an error naming the flag, or with
    transfer_mismatched the 4x4..8x8 layers are copied (and, frozen here, stay the pickle's)."""
    from tf2 import checkpoint, networks_stylegan
    from training.finetune import TransferError
    data = dict(num_channels=3, resolution=16, label_size=0)
    G = networks_stylegan.G_style(name='G', style_mixing_prob=0.0, randomize_noise=False, **data, **NET)
    D = networks_stylegan.D_basic(name='D', fmap_base=32, fmap_max=8, **data)
    pkl = str(tmp_path / 'start16.pkl')
    checkpoint.save_networks(pkl, G, D, checkpoint.clone(G, name='Gs'))
    kwargs = finetune_kwargs(dataset_dir, pkl, 0.94)
    kwargs.update(D_augment_args=None, reals_augment_args=None)
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    with pytest.raises(TransferError, match='resolution 16 vs 8.*--transfer-mismatched'):
        tl.training_loop(run_dir=run_dir, **kwargs)
    assert os.listdir(run_dir) == []
    tl.training_loop(run_dir=run_dir, transfer_mismatched=True, **dict(kwargs, G_freeze_mapping=False))
    start, snap = _flat(pkl), _flat(os.path.join(run_dir, 'network-final.pkl'))
    # D's 8x8 block is fed by FromRGB_lod0 at 8 px, by FromRGB_lod1 at 16 px.
    np.testing.assert_array_equal(snap['D/FromRGB_lod0/weight'], start['D/FromRGB_lod1/weight'])
    np.testing.assert_array_equal(snap['D/8x8/Conv1_down/weight'], start['D/8x8/Conv1_down/weight'])
    np.testing.assert_array_equal(snap['G/G_synthesis/4x4/Conv/weight'], start['G/G_synthesis/4x4/Conv/weight'])
    np.testing.assert_array_equal(snap['G/G_synthesis/ToRGB_lod1/bias'], start['G/G_synthesis/ToRGB_lod2/bias'])
    assert not np.array_equal(snap['G/G_synthesis/8x8/Conv1/weight'], start['G/G_synthesis/8x8/Conv1/weight'])
    assert not np.array_equal(snap['G/G_mapping/Dense0/weight'], start['G/G_mapping/Dense0/weight'])
