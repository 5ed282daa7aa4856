"""training/distribute.py and the training loop under tf.distribute (issue 19).

The layouts of one minibatch compared here: its shards as rounds on one device, on two replicas
of a MirroredStrategy over two logical CPU devices, and on two worker processes of a
MultiWorkerMirroredStrategy on 127.0.0.1. TensorFlow splits a CPU only before it starts, so
every strategy run is a subprocess of its own.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import NET, OPT, REPO_DIR, assert_same_training_state, make_dataset
from dnnlib import legacy_pickle
from training import distribute
from training import training_loop as tl

DRIVER = """
import json, sys
from training import training_loop as tl
kwargs = json.loads(sys.argv[1])
print(json.dumps(tl.training_loop(**kwargs)))
"""


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp('data_dist') / 'tiny8'))


def v2_layout_kwargs(dataset_dir, run_dir, distribute_args, total_kimg=0.032, **overrides):
    """A StyleGAN2 run with every random element on (noise, style mixing, mirror flips), both
    lazy regularisers inside the tick, 8 images per minibatch as 2 official GPUs x 2 rounds of
    2 images: 4 shards. One tick (4 minibatches), a snapshot at its end."""
    kwargs = dict(
        run_dir=run_dir,
        G_args=dict(func_name='G_main', **NET),
        D_args=dict(func_name='D_stylegan2', fmap_base=32, fmap_max=8),
        G_opt_args=dict(OPT), D_opt_args=dict(OPT),
        G_loss_args=dict(func_name='training.loss.G_logistic_ns_pathreg'),
        D_loss_args=dict(func_name='training.loss.D_logistic_r1', gamma=10.0),
        dataset_args=dict(tfrecord_dir=dataset_dir),
        sched_args=dict(lod_initial_resolution='full', minibatch_base=8, minibatch_gpu_base=2,
                        G_lrate_base=0.002, D_lrate_base=0.002, tick_kimg_base=0.032, tick_kimg_dict={}),
        grid_args=dict(size='2x1', layout='random'), image_snapshot_ticks=10,
        total_kimg=total_kimg, network_snapshot_ticks=1, mirror_augment=True,
        loop_order='v2', G_reg_interval=2, D_reg_interval=2, num_gpus=2,
        distribute_args=distribute_args)
    kwargs.update(overrides)
    return kwargs


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO_DIR, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='-1')
    env.pop('TF_CONFIG', None)
    env.update(extra)
    return env


def run_training_process(kwargs, **popen):
    return subprocess.Popen([sys.executable, '-c', DRIVER, json.dumps(kwargs)], cwd=REPO_DIR,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def finish(proc, timeout=900):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def assert_close_networks(run_a, run_b, kimg, rtol=1e-5):
    """Every variable of (G, D, Gs) within rtol of the largest magnitude of that variable."""
    nets_a = legacy_pickle.load(tl.snapshot_paths(run_a, kimg)[0])
    nets_b = legacy_pickle.load(tl.snapshot_paths(run_b, kimg)[0])
    for a, b in zip(nets_a, nets_b):
        va, vb = a.all_variables(), b.all_variables()
        assert list(va) == list(vb)
        for name in va:
            scale = max(float(np.abs(va[name]).max()), 1e-30)
            np.testing.assert_allclose(va[name], vb[name], rtol=0, atol=rtol * scale,
                                       err_msg=f'{a.name}/{name}')


# ------------------------------------------------------------------------------------------------
# Options and strategy creation.

def test_parse_workers_and_resolve():
    assert distribute.parse_workers('a:1, b:2') == ['a:1', 'b:2']
    for bad, msg in (('a', 'not host:port'), ('a:x', 'not host:port'), ('a:1,a:1', 'listed twice'), ('', 'expected')):
        with pytest.raises(distribute.DistributeError, match=msg):
            distribute.parse_workers(bad)
    assert distribute.resolve(use_tf_config=False) is None
    assert distribute.resolve(gpus=2, use_tf_config=False) == {'gpus': 2}
    assert distribute.resolve(cpu_devices=2, use_tf_config=False) == {'cpu_devices': 2}
    with pytest.raises(distribute.DistributeError, match='--gpus and --cpu-devices'):
        distribute.resolve(gpus=1, cpu_devices=2)
    with pytest.raises(distribute.DistributeError, match='--workers and --worker-index go together'):
        distribute.resolve(workers=['a:1', 'b:2'])
    with pytest.raises(distribute.DistributeError, match='--worker-index 2: must be in 0..1'):
        distribute.resolve(workers=['a:1', 'b:2'], worker_index=2)
    with pytest.raises(distribute.DistributeError, match='a worker uses its CPU as one device'):
        distribute.resolve(cpu_devices=2, workers=['a:1', 'b:2'], worker_index=0)
    args = distribute.resolve(gpus=4, workers=['a:1', 'b:2'], worker_index=1)
    layout = distribute.layout_of(args)
    assert (layout.num_replicas, layout.is_chief) == (8, False)
    assert distribute.layout_of(None).num_replicas == 1 and distribute.layout_of(None).is_chief


def test_tf_config(monkeypatch):
    monkeypatch.setenv('TF_CONFIG', json.dumps({'cluster': {'worker': ['h0:1', 'h1:2']},
                                                'task': {'type': 'worker', 'index': 1}}))
    args = distribute.resolve(gpus=2)
    assert args == {'gpus': 2, 'tf_config': True, 'workers': ['h0:1', 'h1:2'], 'worker_index': 1}
    assert distribute.layout_of(args).num_replicas == 4
    # --workers on the command line wins over TF_CONFIG.
    assert distribute.resolve(workers=['x:1'], worker_index=0)['workers'] == ['x:1']
    monkeypatch.setenv('TF_CONFIG', json.dumps({'cluster': {'chief': ['h:1'], 'worker': ['h0:1']},
                                                'task': {'type': 'worker', 'index': 0}}))
    with pytest.raises(distribute.DistributeError, match='only a cluster of "worker" tasks'):
        distribute.resolve()
    monkeypatch.setenv('TF_CONFIG', '{"cluster": 3}')
    with pytest.raises(distribute.DistributeError, match='TF_CONFIG: expected'):
        distribute.resolve()


def test_too_many_gpus_says_how_many_exist():
    have = len(tf.config.list_physical_devices('GPU'))
    with pytest.raises(distribute.DistributeError,
                       match=rf'--gpus {have + 1}: this machine has {have} GPUs? visible'):
        distribute._local_devices({'gpus': have + 1})


def test_cpu_split_after_tensorflow_started_is_refused():
    tf.constant(1.0) + 1.0                        # the runtime of this process is running
    with pytest.raises(distribute.DistributeError, match='--cpu-devices 3: TensorFlow was already started'):
        distribute.split_cpu(3)


def test_intra_op_threads_follow_the_preset_the_environment_and_the_cores():
    """One thread per op only where a preset asks for it, TF_NUM_INTRAOP_THREADS is unset and the
    machine has at most ONE_THREAD_PER_OP_MAX_CORES cores (where it was measured)."""
    few = distribute.ONE_THREAD_PER_OP_MAX_CORES
    assert distribute.choose_intra_op_threads(1, environ={}, cores=few) == 1
    assert distribute.choose_intra_op_threads(1, environ={}, cores=1) == 1
    assert distribute.choose_intra_op_threads(None, environ={}, cores=few) is None
    assert distribute.choose_intra_op_threads(1, environ={'TF_NUM_INTRAOP_THREADS': '2'}, cores=few) is None
    assert distribute.choose_intra_op_threads(1, environ={}, cores=few + 1) is None
    assert distribute.set_intra_op_threads(None) == ''


def test_intra_op_threads_after_tensorflow_started_are_reported_not_changed():
    tf.constant(1.0) + 1.0                        # the runtime of this process is running
    before = tf.config.threading.get_intra_op_parallelism_threads()
    line = distribute.set_intra_op_threads(before + 1)
    assert line.startswith('TensorFlow was already started in this process: intra-op threads stay')
    assert tf.config.threading.get_intra_op_parallelism_threads() == before


def test_shard_random_depends_on_seed_shard_and_draw_order_only():
    seed = tf.constant([5, 6], tf.int64)
    a, b = tl.ShardRandom(seed, 3), tl.ShardRandom(seed, 3)
    x = [a.normal([4]), a.uniform([4], 0, 10, dtype=tf.int32), a.uniform([2, 2])]
    y = [b.normal([4]), b.uniform([4], 0, 10, dtype=tf.int32), b.uniform([2, 2])]
    for u, v in zip(x, y):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not np.array_equal(x[0].numpy(), tl.ShardRandom(seed, 4).normal([4]).numpy())
    assert not np.array_equal(x[0].numpy(), tl.ShardRandom(tf.constant([5, 7], tf.int64), 3).normal([4]).numpy())
    assert not np.array_equal(x[0].numpy(), x[2].numpy().ravel())
    # The same numbers inside a tf.function (the compiled steps draw there).
    f = tf.function(lambda s: tl.ShardRandom(seed, s).normal([4]))
    np.testing.assert_array_equal(f(tf.constant(3)).numpy(), x[0].numpy())


def test_num_gpus_must_be_a_multiple_of_the_replicas(dataset_dir, tmp_path):
    proc = run_training_process(v2_layout_kwargs(dataset_dir, str(tmp_path), {'cpu_devices': 2},
                                                 num_gpus=1))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert 'num_gpus 1: the minibatch preset must be for a multiple of the 2 replicas' in err
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# Same numbers whatever the layout.

def test_one_tick_gives_the_same_weights_in_every_layout(dataset_dir, tmp_path):
    rounds_dir, replicas_dir = str(tmp_path / 'rounds'), str(tmp_path / 'replicas')
    chief_dir, other_dir = str(tmp_path / 'chief'), str(tmp_path / 'worker1')
    for d in (rounds_dir, replicas_dir, chief_dir, other_dir):
        os.makedirs(d)
    workers = [f'127.0.0.1:{p}' for p in free_ports(2)]
    # Four processes: the shards as rounds on one device, on two replicas, on two workers.
    procs = [run_training_process(v2_layout_kwargs(dataset_dir, rounds_dir, {'cpu_devices': 1})),
             run_training_process(v2_layout_kwargs(dataset_dir, replicas_dir, {'cpu_devices': 2}))]
    procs += [run_training_process(v2_layout_kwargs(dataset_dir, d, {'workers': workers, 'worker_index': i}))
              for i, d in enumerate((chief_dir, other_dir))]
    summaries = [json.loads(finish(p).strip().splitlines()[-1]) for p in procs]
    assert [s['ticks'] for s in summaries] == [1, 1, 1, 1]
    for other in (replicas_dir, chief_dir):
        assert_close_networks(rounds_dir, other, 0)
    # In fact the sums are order-independent (float64), so the layouts agree bit for bit,
    # training state included (Adam moments, per-GPU pl_mean, random streams).
    assert_same_training_state(rounds_dir, replicas_dir, 0)
    assert_same_training_state(rounds_dir, chief_dir, 0)
    with np.load(tl.snapshot_paths(rounds_dir, 0)[1]) as f:
        pl_mean = f['G_loss/pl_mean']
    assert pl_mean.shape == (2,) and np.all(pl_mean > 0) and pl_mean[0] != pl_mean[1]   # one per GPU
    # The second worker wrote nothing.
    assert os.listdir(other_dir) == []


# ------------------------------------------------------------------------------------------------
# Exact resume under a strategy: kill -9 of a two-replica run, resumed in a new process, equals
# an uninterrupted two-replica run bit for bit.

def two_replica_kill_kwargs(dataset_dir, run_dir):
    """The short kill test's tiny 4x4 run (no growing, no R1), as 2 GPUs on 2 logical CPUs."""
    from test_training_loop import short_kill_kwargs
    return dict(short_kill_kwargs(dataset_dir, run_dir), num_gpus=2,
                distribute_args={'cpu_devices': 2})


def test_sigkill_then_resume_two_replicas_short(dataset_dir, tmp_path):
    from test_training_loop import kill_and_resume
    ref_dir, run_dir = str(tmp_path / '00000-reference'), str(tmp_path / '00001-killed')
    os.makedirs(ref_dir)
    os.makedirs(run_dir)
    kwargs = two_replica_kill_kwargs(dataset_dir, run_dir)
    kill_and_resume(kwargs, max_delay=0.5,
                    meanwhile=lambda: finish(run_training_process(dict(kwargs, run_dir=ref_dir))))
    assert os.path.isfile(tl.snapshot_paths(ref_dir, 1)[0])
    assert_same_training_state(ref_dir, run_dir, 1)


@pytest.mark.slow
def test_sigkill_then_resume_two_replicas_stylegan2(dataset_dir, tmp_path):
    """The StyleGAN2 layout run (R1, path length with per-GPU pl_mean, noise, mixing, mirror)
    over two ticks of 0.512 kimg, killed at a random moment after its first snapshot."""
    from test_training_loop import kill_and_resume
    ref_dir, run_dir = str(tmp_path / '00000-reference'), str(tmp_path / '00001-killed')
    os.makedirs(ref_dir)
    os.makedirs(run_dir)
    kwargs = v2_layout_kwargs(dataset_dir, run_dir, {'cpu_devices': 2}, total_kimg=1.0)
    kwargs['sched_args'] = dict(kwargs['sched_args'], tick_kimg_base=0.512)
    kill_and_resume(kwargs, max_delay=10.0,
                    meanwhile=lambda: finish(run_training_process(dict(kwargs, run_dir=ref_dir))))
    assert_same_training_state(ref_dir, run_dir, 1)


# ------------------------------------------------------------------------------------------------
# Mixed precision.

def test_mixed_precision_bfloat16_losses_finite_and_float32_snapshots(dataset_dir, tmp_path):
    """bfloat16 compute on one logical CPU device (TensorFlow emulates it where the CPU has no
    bfloat16 instructions, so this checks the numbers, not the speed)."""
    run_dir = str(tmp_path / 'bf16')
    os.makedirs(run_dir)
    summary = json.loads(finish(run_training_process(v2_layout_kwargs(
        dataset_dir, run_dir, {'cpu_devices': 1}, mixed_precision='bfloat16'))).strip().splitlines()[-1])
    assert summary['ticks'] == 1
    line = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))][-1]
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/G_reg/loss', 'Loss/D_reg/loss', 'Loss/pl_lengths'):
        assert line[key] is not None and np.isfinite(line[key]), key
    pkl = tl.snapshot_paths(run_dir, 0)[0]
    for net in legacy_pickle.load(pkl):
        assert all(v.dtype == np.float32 for v in net.all_variables().values()), net.name
    import tf2
    _, _, Gs = tf2.load_network(pkl)
    images = Gs.run(np.random.RandomState(0).randn(2, 8), None, truncation_psi=1.0)
    assert images.dtype == np.float32 and np.all(np.isfinite(images))


def test_mixed_precision_refusals():
    v2, v1 = dict(func_name='G_main'), dict(func_name='G_style')
    tl.check_mixed_precision(None, None, v1)
    tl.check_mixed_precision('bfloat16', {'cpu_devices': 1}, v2)
    with pytest.raises(ValueError, match="mixed_precision 'half': expected one of bfloat16, float16"):
        tl.check_mixed_precision('half', {'cpu_devices': 1}, v2)
    with pytest.raises(ValueError, match='give distribute_args'):
        tl.check_mixed_precision('float16', None, v2)
    with pytest.raises(ValueError, match=r'only the StyleGAN2 networks \(G_main\).*G_style'):
        tl.check_mixed_precision('bfloat16', {'cpu_devices': 1}, v1)


# ------------------------------------------------------------------------------------------------
# The launcher: --gpus, --cpu-devices, --workers / --worker-index, --mixed-precision.

def test_launcher_resolves_the_layout(monkeypatch):
    from training import training_options as to
    monkeypatch.delenv('TF_CONFIG', raising=False)
    desc, kw = to.resolve_options(dict(config='ffhq', gpus=1))
    assert 'distribute_args' not in kw and kw['num_gpus'] == 1          # the one-device loop
    desc, kw = to.resolve_options(dict(config='ffhq', cpu_devices=2))
    assert kw['distribute_args'] == {'cpu_devices': 2} and kw['num_gpus'] == 2
    assert desc == 'sgan-ffhq-2gpu' and kw['sched_args']['minibatch_base'] == 8     # the 2-GPU preset
    desc, kw = to.resolve_options(dict(config='ffhq', gpus=4, workers='h0:1,h1:2', worker_index=1))
    assert kw['distribute_args'] == {'gpus': 4, 'workers': ['h0:1', 'h1:2'], 'worker_index': 1}
    assert kw['num_gpus'] == 8 and desc == 'sgan-ffhq-8gpu' and kw['sched_args']['minibatch_base'] == 32
    monkeypatch.setenv('TF_CONFIG', json.dumps({'cluster': {'worker': ['h0:1', 'h1:2']},
                                                'task': {'type': 'worker', 'index': 0}}))
    desc, kw = to.resolve_options(dict(config='ffhq', gpus=2))
    assert kw['num_gpus'] == 4 and kw['distribute_args']['tf_config'] is True
    monkeypatch.delenv('TF_CONFIG')
    for launch, msg in ((dict(gpus=2, cpu_devices=2), '--gpus 2 and --cpu-devices exclude each other'),
                        (dict(cpu_devices=3), '3 replicas in all'),
                        (dict(workers='h0:1,h1:2'), '--workers and --worker-index go together'),
                        (dict(workers='h0', worker_index=0), "'h0' is not host:port"),
                        (dict(mixed_precision=True), '--mixed-precision: only the StyleGAN2 configs')):
        with pytest.raises(to.OptionsError, match=msg):
            to.resolve_options(dict(config='ffhq', **launch))


def test_mixed_precision_dtype_follows_the_hardware(tmp_path):
    flags = tmp_path / 'cpuinfo'
    flags.write_text('flags\t\t: fpu sse avx512f avx512_bf16\n')
    plain = tmp_path / 'cpuinfo-plain'
    plain.write_text('flags\t\t: fpu sse avx2\n')
    assert distribute.mixed_precision_dtype({'gpus': 1}, str(plain)) == 'float16'
    assert distribute.mixed_precision_dtype({'cpu_devices': 1}, str(flags)) == 'bfloat16'
    with pytest.raises(distribute.DistributeError, match='this CPU has no bfloat16 instructions'):
        distribute.mixed_precision_dtype({'cpu_devices': 1}, str(plain))


def test_cli_too_many_gpus_writes_nothing(tmp_path):
    from conftest import run_script
    have = len(tf.config.list_physical_devices('GPU'))
    out = run_script('run_training.py', '--gpus', str(have + 1) if have + 1 in (2, 4, 8) else '8', '--batch', '8',
                     '--result-dir', str(tmp_path / 'r'), '--data-dir', str(tmp_path / 'data'),
                     env={'CUDA_VISIBLE_DEVICES': os.environ.get('CUDA_VISIBLE_DEVICES', '')})
    assert out.returncode == 2, out.stderr[-2000:]
    assert f'this machine has {have} GPU' in out.stderr and 'Traceback' not in out.stderr
    assert not os.path.exists(tmp_path / 'r') and not os.path.exists(tmp_path / 'data')
