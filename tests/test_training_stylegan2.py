"""StyleGAN2 training (training/training_loop.py with loop_order='v2', training/training_options.py configs
stylegan2-f / -e / -demo): smoke run, lazy-regularisation bookkeeping, pl_mean and exact resume,
fine-tuning an official StyleGAN2 pickle.

Tiny G_main / D_stylegan2 networks on the tiny synthetic 8x8 dataset of test_training_loop.py;
G's style mixing and random noise are off so that runs are bit-reproducible.
"""

import inspect
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import NET, OPT, assert_same_training_state, fixture_path, load_pair, make_dataset
from dnnlib import legacy_pickle
from training import training_loop as tl


def v2_kwargs(dataset_dir, total_kimg, **overrides):
    kwargs = dict(
        G_args=dict(func_name='G_main', style_mixing_prob=0.0, randomize_noise=False, **NET),
        D_args=dict(func_name='D_stylegan2', fmap_base=32, fmap_max=8),
        G_opt_args=dict(OPT), D_opt_args=dict(OPT),
        G_loss_args=dict(func_name='training.loss.G_logistic_ns_pathreg'),
        D_loss_args=dict(func_name='training.loss.D_logistic_r1', gamma=10.0),
        dataset_args=dict(tfrecord_dir=dataset_dir),
        # No growing; 2 accumulation rounds of 8; a tick = 32 steps, so D's regulariser
        # (every 16 minibatches) runs on the first step after the kimg-0.5 snapshot.
        sched_args=dict(lod_initial_resolution='full', minibatch_base=16, minibatch_gpu_base=8,
                        G_lrate_base=0.002, D_lrate_base=0.002, tick_kimg_base=0.512, tick_kimg_dict={}),
        grid_args=dict(size='4x2', layout='random'),
        total_kimg=total_kimg, network_snapshot_ticks=1, mirror_augment=True,
        loop_order='v2', G_reg_interval=4, D_reg_interval=16)
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp('data2') / 'tiny8'))


class Spy:
    """Records what the loop asks of TrainSteps: each compiled phase with its reg, scale, rounds
    and learning rate, and the Gs updates."""

    def __init__(self):
        self.log = []
        self.initial_pl_mean = None
        self.D_reals = []          # (reg, processed reals of its last round) of every D_step call
        self.G_inputs = set()      # the label arrays each G_step got

    def install(self, monkeypatch):
        spy = self

        class SpySteps(tl.TrainSteps):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                spy.initial_pl_mean = float(self.G_loss.keywords['pl_mean'].numpy())
                spy.steps = self
                for name in ('G_step', 'D_step', 'update_Gs'):
                    setattr(self, name, spy.wrap(name, getattr(self, name)))

        monkeypatch.setattr(tl, 'TrainSteps', SpySteps)

    def wrap(self, name, fn):
        signature = inspect.signature(getattr(tl.TrainSteps, '_' + name))

        def call(*args, **kwargs):
            result = fn(*args, **kwargs)
            if name == 'update_Gs':
                self.log.append((name,))
                return result
            a = signature.bind(None, *args, **kwargs)
            a.apply_defaults()
            a = a.arguments
            if name == 'D_step':
                rounds = a['repeat'] or int(a['reals'].shape[0])
                self.D_reals.append((a['reg'], (a['reals'] if a['repeat'] else result[1]['reals'][-1]).numpy()))
            else:
                rounds = int(a['labels'].shape[0])
                self.G_inputs.add(tuple(k for k in ('labels', 'pl_labels') if a[k] is not None))
            self.log.append((name, a['reg'], a['scale'], rounds, round(float(a['lrate']), 9)))
            return result
        return call


@pytest.fixture(scope='module')
def reference_run(dataset_dir, tmp_path_factory):
    """An uninterrupted 1-kimg v2 run: ticks at 0.512 and 1.024 kimg (snapshots 000000, 000001)."""
    run_dir = str(tmp_path_factory.mktemp('runs2') / '00000-reference')
    os.makedirs(run_dir)
    summary = tl.training_loop(run_dir=run_dir, **v2_kwargs(dataset_dir, 1.0))
    return run_dir, summary


# ------------------------------------------------------------------------------------------------

def test_lazy_regularization_opt_args():
    args, ratio = tl.lazy_regularization_opt_args(dict(OPT), 16)
    assert ratio == pytest.approx(16 / 17)
    assert args['beta1'] == 0.0 and args['beta2'] == pytest.approx(0.99 ** (16 / 17))
    assert OPT['beta2'] == 0.99                        # the caller's dict is not changed
    args, ratio = tl.lazy_regularization_opt_args(dict(OPT, beta1=0.5), 4)
    assert args['beta1'] == pytest.approx(0.5 ** 0.8) and ratio == pytest.approx(0.8)
    assert tl.lazy_regularization_opt_args(dict(OPT), None) == (dict(OPT), 1.0)
    with pytest.raises(ValueError, match='reg_interval'):
        tl.lazy_regularization_opt_args(dict(OPT), 0)
    assert [tl.regularization_due(i, 4) for i in range(6)] == [True, False, False, False, True, False]
    assert not tl.regularization_due(0, None)


def test_v1_loss_with_lazy_interval_is_an_error(dataset_dir, tmp_path):
    kwargs = v2_kwargs(dataset_dir, 0.016, D_loss_args=dict(func_name='training.loss.D_logistic_simplegp'))
    with pytest.raises(ValueError, match='D_reg_interval 16: lazy regularisation needs a loss with a `reg`'):
        tl.training_loop(run_dir=str(tmp_path), **kwargs)


def test_lazy_regularization_bookkeeping(dataset_dir, tmp_path, monkeypatch):
    """Official StyleGAN2 order per minibatch i: G rounds, G reg rounds if i % G_int == 0,
    Gs update, D rounds, D reg rounds if i % D_int == 0; lr scaled by interval/(interval+1)."""
    spy = Spy()
    spy.install(monkeypatch)
    G_int, D_int = 2, 3
    kwargs = v2_kwargs(dataset_dir, 0.064, G_reg_interval=G_int, D_reg_interval=D_int,
                       sched_args=dict(lod_initial_resolution='full', minibatch_base=8, minibatch_gpu_base=4,
                                       G_lrate_base=0.002, D_lrate_base=0.003, tick_kimg_base=1, tick_kimg_dict={}))
    summary = tl.training_loop(run_dir=str(tmp_path), **kwargs)
    num_steps = int(round(summary['kimg'] * 1000)) // 8
    assert num_steps == 8
    G_lr, D_lr = round(0.002 * G_int / (G_int + 1), 9), round(0.003 * D_int / (D_int + 1), 9)
    want = []
    for i in range(num_steps):      # 2 rounds of 4 images in each compiled phase
        want += [('G_step', 'none', 1.0, 2, G_lr)]
        if i % G_int == 0:
            want += [('G_step', 'only', float(G_int), 2, G_lr)]
        want += [('update_Gs',)]
        want += [('D_step', 'none', 1.0, 2, D_lr)]
        if i % D_int == 0:
            want += [('D_step', 'only', float(D_int), 2, D_lr)]
    assert spy.log == want
    # Each D regulariser round sees exactly the reals the last D round saw, as processed for it
    # (mirror_augment is on: a fresh processing would flip other images), rounds times.
    last = None
    for reg, reals in spy.D_reals:
        if reg == 'only':
            np.testing.assert_array_equal(reals, last)
        else:
            last = reals
    assert sum(reg == 'only' for reg, _ in spy.D_reals) == len(range(0, num_steps, D_int))
    # G steps get random labels and their own random labels for the path-length batch.
    assert spy.G_inputs == {('labels', 'pl_labels')}
    # Adam betas: beta1 0 ** ratio = 0, beta2 0.99 ** ratio; the reg steps share the Adam state.
    steps = spy.steps
    assert float(steps.G_opt.beta_2) == pytest.approx(0.99 ** (G_int / (G_int + 1)))
    assert float(steps.D_opt.beta_2) == pytest.approx(0.99 ** (D_int / (D_int + 1)))
    assert float(steps.G_opt.beta_1) == 0.0
    assert int(steps.G_opt.iterations.numpy()) == num_steps + len(range(0, num_steps, G_int))
    assert int(steps.D_opt.iterations.numpy()) == num_steps + len(range(0, num_steps, D_int))


def test_v2_smoke_run_writes_official_v4_snapshots(reference_run, tmp_path):
    run_dir, summary = reference_run
    assert summary['ticks'] == 2 and summary['kimg'] == 1.024
    for name in ('reals.png', 'fakes_init.png', 'fakes000000.png', 'fakes000001.png', 'stats.jsonl',
                 'network-snapshot-000000.pkl', 'training-state-000000.npz',
                 'network-snapshot-000001.pkl', 'network-final.pkl'):
        assert os.path.isfile(os.path.join(run_dir, name)), name

    pkl = os.path.join(run_dir, 'network-snapshot-000001.pkl')
    G, D, Gs = legacy_pickle.load(pkl)
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs')
    assert G.version == D.version == Gs.version == 4
    assert G.build_func_name == 'G_main' and D.build_func_name == 'D_stylegan2'
    assert G.components['synthesis'].build_func_name == 'G_synthesis_stylegan2'
    assert G.static_kwargs['resolution'] == 8 and 'lod' not in D.variables
    assert np.any(G.variables['dlatent_avg'] != 0)

    import tf2
    z = np.random.RandomState(0).randn(2, 8)
    _, _, Gs_net = tf2.load_network(pkl)
    images = Gs_net.run(z, None, truncation_psi=1.0, randomize_noise=False)
    assert images.shape == (2, 3, 8, 8) and np.all(np.isfinite(images))
    import legacy_tf
    _, _, Gs_legacy = legacy_tf.load_network(pkl)
    np.testing.assert_allclose(Gs_legacy.run(z, None, truncation_psi=1.0, randomize_noise=False),
                               images, atol=2e-3)

    # The regularisers ran: pl_mean moved away from 0 and is in the sidecar with the counter.
    _, state = load_pair(run_dir, 0)
    assert float(state['G_loss/pl_mean']) > 0 and int(state['running_mb_counter']) == 32
    lines = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/G_reg/loss', 'Loss/D_reg/loss', 'Loss/pl_lengths',
                'Loss/r1_penalty', 'Loss/scores/real', 'Loss/scores/fake'):
        assert np.isfinite(lines[-1][key]), key
    assert lines[-1]['Progress/lod'] == 0.0 and lines[-1]['Progress/minibatch'] == 16


def test_v2_resume_is_exact_and_restores_pl_mean(reference_run, dataset_dir, tmp_path, monkeypatch):
    ref_dir, _ = reference_run
    run_dir = str(tmp_path / '00001-resumed')
    shutil.copytree(ref_dir, run_dir)
    for name in ('network-final.pkl', 'network-snapshot-000001.pkl', 'training-state-000001.npz'):
        os.remove(os.path.join(run_dir, name))
    saved = load_pair(run_dir, 0)[1]
    spy = Spy()
    spy.install(monkeypatch)
    summary = tl.training_loop(run_dir=run_dir, resume_run=True, **v2_kwargs(dataset_dir, 1.0))
    assert summary['ticks'] == 2
    assert spy.initial_pl_mean == pytest.approx(float(saved['G_loss/pl_mean']), rel=0, abs=0)
    # Counter 32 after the resume: the first step runs both regularisers (32 % 4 == 32 % 16 == 0).
    assert spy.log[:2] == [('G_step', 'none', 1.0, 2, 0.0016), ('G_step', 'only', 4.0, 2, 0.0016)]
    assert ('D_step', 'only', 16.0) in [entry[:3] for entry in spy.log[:5]]
    assert_same_training_state(ref_dir, run_dir, 1)


# ------------------------------------------------------------------------------------------------
# Launcher.

def test_stylegan2_options():
    from training import training_options as to
    desc, kw = to.resolve_options(dict(config='stylegan2-f', dataset='ffhq', gpus=8))
    assert desc == 'stylegan2-ffhq-8gpu-config-f'
    assert kw['G_args'] == dict(func_name='G_main') and kw['D_args'] == dict(func_name='D_stylegan2')
    assert kw['G_loss_args'] == dict(func_name='training.loss.G_logistic_ns_pathreg')
    assert kw['D_loss_args'] == dict(func_name='training.loss.D_logistic_r1', gamma=10.0)
    assert (kw['loop_order'], kw['G_reg_interval'], kw['D_reg_interval']) == ('v2', 4, 16)
    s = kw['sched_args']
    assert (s['minibatch_base'], s['minibatch_gpu_base'], s['G_lrate_base'], s['D_lrate_base']) == (32, 4, 0.002, 0.002)
    assert s['lod_initial_resolution'] == 'full' and s['tick_kimg_base'] == 4
    assert s['tick_kimg_dict'] == {8: 28, 16: 24, 32: 20, 64: 16, 128: 12, 256: 8, 512: 6, 1024: 4}
    assert (kw['total_kimg'], kw['G_smoothing_kimg'], kw['image_snapshot_ticks'], kw['network_snapshot_ticks']) == \
        (25000, 10.0, 10, 10)
    assert kw['grid_args']['size'] == '8k' and kw['mirror_augment'] is False
    desc, kw = to.resolve_options(dict(config='stylegan2-e', dataset='cars', gamma=None))
    assert desc == 'stylegan2-cars-1gpu-config-e'
    assert kw['D_loss_args']['gamma'] == 100.0
    assert kw['G_args']['fmap_base'] == kw['D_args']['fmap_base'] == 8192
    assert to.resolve_options(dict(config='stylegan2-f', dataset='x', gamma=5.0))[1]['D_loss_args']['gamma'] == 5.0
    with pytest.raises(to.OptionsError, match='--dataset is required'):
        to.resolve_options(dict(config='stylegan2-f'))
    with pytest.raises(to.OptionsError, match='--lod-initial-resolution'):
        to.resolve_options(dict(config='stylegan2-f', dataset='x', lod_initial_resolution=8))
    with pytest.raises(to.OptionsError, match='--gamma'):
        to.resolve_options(dict(config='ffhq', gamma=3.0))


def test_resume_pkl_chooses_the_config():
    from training import training_options as to
    sg2 = fixture_path('sg2_r64.pkl')
    desc, kw = to.resolve_options(dict(resume_pkl=sg2, dataset='faces'))
    assert desc == 'stylegan2-faces-1gpu-config-f' and kw['loop_order'] == 'v2'
    with pytest.raises(to.OptionsError, match='--config ffhq: --resume-pkl .* holds StyleGAN2'):
        to.resolve_options(dict(config='ffhq', resume_pkl=sg2))
    sg1 = fixture_path('sg1_r64.pkl')
    with pytest.raises(to.OptionsError, match='--config stylegan2-f: --resume-pkl .* holds StyleGAN \\(G_style\\)'):
        to.resolve_options(dict(config='stylegan2-f', dataset='x', resume_pkl=sg1))


@pytest.mark.slow
def test_finetune_official_stylegan2_pickle(tmp_path):
    """run_training with --resume-pkl sg2_r64.pkl (config from the pickle) and FreezeD."""
    from training import training_options as to
    sg2 = fixture_path('sg2_r64.pkl')
    make_dataset(str(tmp_path / 'data' / 'faces64'), resolution=64, num_images=8)
    summary = to.run_training(dict(resume_pkl=sg2, data_dir=str(tmp_path / 'data'), dataset='faces64',
                                   result_dir=str(tmp_path / 'results'), kimg=0.008, batch=4,
                                   minibatch_gpu='2', grid='2x1', freeze_d=1))
    assert os.path.basename(summary['run_dir']) == '00000-stylegan2-faces64-1gpu-config-f'
    G0, D0, _ = legacy_pickle.load(sg2)
    G1, D1, _ = legacy_pickle.load(summary['final_pkl'])
    assert G1.version == 4 and G1.build_func_name == 'G_main'
    d0, d1 = D0.all_variables(), D1.all_variables()
    np.testing.assert_array_equal(d1['64x64/FromRGB/weight'], d0['64x64/FromRGB/weight'])   # frozen
    assert not np.array_equal(d1['Output/weight'], d0['Output/weight'])                       # trained
    g0, g1 = G0.all_variables(), G1.all_variables()
    assert not np.array_equal(g1['G_synthesis/4x4/Conv/weight'], g0['G_synthesis/4x4/Conv/weight'])


def test_step_phases_are_the_official_orders():
    """One minibatch's work as data: StyleGAN's D-repeats-then-G, StyleGAN2's G-Gs-D."""
    assert tl.step_phases('v2', 1) == ('count', 'G', 'G_reg', 'Gs', 'D', 'D_reg')
    assert tl.step_phases('v1', 1) == ('D', 'D_reg', 'Gs', 'count', 'G', 'G_reg')
    assert tl.step_phases('v1', 2) == ('D', 'D_reg', 'Gs', 'count', 'D', 'Gs', 'count', 'G', 'G_reg')
