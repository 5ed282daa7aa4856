"""tf.distribute strategies for data-parallel training (issue 19; spec editing-metrics-scale 6.4-6.5).

`distribute_args` is the JSON-able description the launcher saves in training_options.json:

    {'gpus': N}                    MirroredStrategy over N local GPUs
    {'cpu_devices': N}             the CPU split into N logical devices, MirroredStrategy over them
    {..., 'workers': ['host:port', ...], 'worker_index': i}
                                   MultiWorkerMirroredStrategy over those workers (each with
                                   `gpus` GPUs, or its CPU as one device)
    {..., 'tf_config': True}       MultiWorkerMirroredStrategy from the TF_CONFIG variable

`get_strategy(distribute_args)` creates the strategy once per process (TensorFlow allows the
logical-device split and the collective setup only before its runtime starts) and returns the
same object on later calls. `Layout` says how many replicas there are and whether this process
is the chief (worker 0), which alone writes files. Parsing needs no TensorFlow (the launcher's
--dry-run does not load it); creating a strategy does.
"""

import dataclasses
import json
import os
import re
from typing import List, Optional, Sequence

_CREATED = {}      # 'key' -> (json of distribute_args, strategy): one strategy per process


class DistributeError(ValueError):
    """A device or cluster request this machine cannot serve; the message names the flag."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the replicas are: `num_workers` processes of `local_replicas` devices each."""
    num_workers: int
    worker_index: int
    local_replicas: int

    @property
    def num_replicas(self) -> int:
        return self.num_workers * self.local_replicas

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0


def parse_workers(spec: str) -> List[str]:
    """'host:port,host:port' -> ['host:port', ...], checked."""
    workers = [w.strip() for w in str(spec).split(',') if w.strip()]
    if len(workers) < 1:
        raise DistributeError(f'--workers {spec!r}: expected host:port,host:port,...')
    for w in workers:
        host, _, port = w.rpartition(':')
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DistributeError(f'--workers: {w!r} is not host:port')
    if len(set(workers)) != len(workers):
        raise DistributeError(f'--workers {spec!r}: a worker is listed twice')
    return workers


def tf_config_workers() -> Optional[tuple]:
    """(workers, index) from the TF_CONFIG environment variable, or None when it is not set."""
    raw = os.environ.get('TF_CONFIG')
    if not raw:
        return None
    try:
        config = json.loads(raw)
        workers = list(config['cluster']['worker'])
        task = config['task']
        index = int(task['index'])
    except (ValueError, KeyError, TypeError) as e:
        raise DistributeError(f'TF_CONFIG: expected {{"cluster": {{"worker": [...]}}, "task": '
                              f'{{"type": "worker", "index": i}}}}; {e}') from e
    if set(config['cluster']) - {'worker'} or task.get('type') != 'worker':
        raise DistributeError('TF_CONFIG: only a cluster of "worker" tasks is supported '
                              '(worker 0 is the chief)')
    if not 0 <= index < len(workers):
        raise DistributeError(f'TF_CONFIG: task index {index} outside the {len(workers)} workers')
    return workers, index


def resolve(gpus: Optional[int] = None, cpu_devices: Optional[int] = None,
            workers: Optional[Sequence[str]] = None, worker_index: Optional[int] = None,
            use_tf_config: bool = True) -> Optional[dict]:
    """The launcher's flags -> distribute_args (None: one device, no strategy), checked.

    `gpus` counts the GPUs of one machine. TF_CONFIG is used when set and `workers` is not.
    """
    if gpus is not None and cpu_devices is not None:
        raise DistributeError('--gpus and --cpu-devices exclude each other')
    if (workers is None) != (worker_index is None):
        raise DistributeError('--workers and --worker-index go together')
    args = {}
    if gpus is not None:
        if int(gpus) < 1:
            raise DistributeError(f'--gpus {gpus}: must be >= 1')
        args['gpus'] = int(gpus)
    if cpu_devices is not None:
        if int(cpu_devices) < 1:
            raise DistributeError(f'--cpu-devices {cpu_devices}: must be >= 1')
        args['cpu_devices'] = int(cpu_devices)
    if workers is None and use_tf_config:
        found = tf_config_workers()
        if found is not None:
            workers, worker_index = found
            args['tf_config'] = True
    if workers is not None:
        workers = list(workers)
        if not 0 <= int(worker_index) < len(workers):
            raise DistributeError(f'--worker-index {worker_index}: must be in 0..{len(workers) - 1}')
        if args.get('cpu_devices', 1) != 1:
            raise DistributeError(f'--cpu-devices {cpu_devices} with several workers: a worker '
                                  'uses its CPU as one device (use 1, or GPUs)')
        args.update(workers=workers, worker_index=int(worker_index))
    return args or None


def layout_of(distribute_args: Optional[dict]) -> Layout:
    """The replica layout distribute_args asks for (without creating anything)."""
    args = distribute_args or {}
    local = int(args.get('gpus', args.get('cpu_devices', 1)))
    workers = args.get('workers')
    if workers:
        return Layout(len(workers), int(args['worker_index']), local)
    return Layout(1, 0, local)


def split_cpu(n: int) -> None:
    """Splits the first CPU into `n` logical devices; must run before TensorFlow starts."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    have = tf.config.get_logical_device_configuration(cpu)
    if have is not None and len(have) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as e:
        raise DistributeError(f'--cpu-devices {n}: TensorFlow was already started in this process, '
                              f'so its CPU can no longer be split ({e}); create the strategy '
                              '(training.distribute.get_strategy) before any other TensorFlow op') from e


# Training whose ops are small (the demo presets' networks) runs each op on one thread and lets
# TensorFlow's inter-op pool run independent ops side by side, on machines with at most this many
# cores. Measured on 2 cores (issue 20, docs/performance.md "One thread per op"): a oneDNN
# convolution of the demo at 8x8 costs about 135 us of thread hand-over whatever its size when
# split over both cores, and the demo's step is 1.2-1.4x faster at every resolution on one thread
# per op; convolutions of 512-channel networks are about 1.2x slower so, hence presets opt in.
ONE_THREAD_PER_OP_MAX_CORES = 2


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not Linux
        return os.cpu_count() or 1


def choose_intra_op_threads(preset_threads: Optional[int], environ=None,
                            cores: Optional[int] = None) -> Optional[int]:
    """TensorFlow's intra-op thread count for a training run, or None for TensorFlow's default.

    preset_threads: the config's `intra_op_threads` (None: the default). TF_NUM_INTRAOP_THREADS in
    the environment wins (TensorFlow reads it itself); more than ONE_THREAD_PER_OP_MAX_CORES cores
    keep the default (not measured there).
    """
    environ = os.environ if environ is None else environ
    cores = cpu_cores() if cores is None else cores
    if preset_threads is None or 'TF_NUM_INTRAOP_THREADS' in environ or cores > ONE_THREAD_PER_OP_MAX_CORES:
        return None
    return int(preset_threads)


def set_intra_op_threads(threads: Optional[int]) -> str:
    """Sets TensorFlow's intra-op threads before its runtime starts; returns the line for the log."""
    if threads is None:
        return ''
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:        # started already: training called from Python after other TF work
        return (f'TensorFlow was already started in this process: intra-op threads stay '
                f'{tf.config.threading.get_intra_op_parallelism_threads() or "default"} (the config '
                f'asks for {threads})')
    return (f'TensorFlow intra-op threads: {threads} (small ops on {cpu_cores()} cores; '
            'TF_NUM_INTRAOP_THREADS overrides)')


def _local_devices(args: dict) -> List[str]:
    import tensorflow as tf
    if 'gpus' in args:
        n = args['gpus']
        found = tf.config.list_physical_devices('GPU')
        if n > len(found):
            raise DistributeError(f'--gpus {n}: this machine has {len(found)} GPU'
                                  f'{"" if len(found) == 1 else "s"} visible to TensorFlow')
        return [f'/gpu:{i}' for i in range(n)]
    n = args.get('cpu_devices', 1)
    if n > 1:
        split_cpu(n)
    return [f'/cpu:{i}' for i in range(n)]


def get_strategy(distribute_args: Optional[dict]):
    """The strategy for distribute_args, created at the first call of the process.

    Raises:
        DistributeError: more GPUs asked for than exist, a second different request in one
            process, or a CPU split after TensorFlow started.
    """
    if distribute_args is None:
        raise DistributeError('get_strategy: no distribute_args (the single-device loop needs no strategy)')
    key = json.dumps(distribute_args, sort_keys=True)
    if 'strategy' in _CREATED:
        if _CREATED['strategy'][0] != key:
            raise DistributeError(f'a strategy for {_CREATED["strategy"][0]} exists in this process; '
                                  f'cannot create one for {key}')
        return _CREATED['strategy'][1]
    import tensorflow as tf
    args = dict(distribute_args)
    if args.get('workers'):
        strategy = _multi_worker(args)
    else:
        strategy = tf.distribute.MirroredStrategy(_local_devices(args))
    _CREATED['strategy'] = (key, strategy)
    return strategy


def _multi_worker(args: dict):
    import tensorflow as tf
    workers, index = args['workers'], args['worker_index']
    gpus = args.get('gpus', 0)
    if gpus:
        _local_devices(args)                       # the error naming the GPU count
    cluster = tf.train.ClusterSpec({'worker': workers})
    if args.get('tf_config'):
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    else:
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            cluster, task_type='worker', task_id=index, num_accelerators={'GPU': gpus} if gpus else None,
            rpc_layer='grpc')
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                     communication_options=options)


def cpu_has_bfloat16(cpuinfo: str = '/proc/cpuinfo') -> bool:
    """Whether the CPU has bfloat16 instructions (avx512_bf16 or amx_bf16 among its flags)."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError:
        return False
    return re.search(r'\b(avx512_bf16|amx_bf16)\b', text) is not None


def mixed_precision_dtype(distribute_args: Optional[dict], cpuinfo: str = '/proc/cpuinfo') -> str:
    """--mixed-precision: 'float16' (with loss scaling) on GPUs, 'bfloat16' on CPUs that have it.

    Raises:
        DistributeError: on a CPU without bfloat16 instructions, naming the reason.
    """
    if distribute_args is not None and 'gpus' in distribute_args:
        return 'float16'
    if cpu_has_bfloat16(cpuinfo):
        return 'bfloat16'
    raise DistributeError('--mixed-precision: this CPU has no bfloat16 instructions (avx512_bf16 or '
                          'amx_bf16 in /proc/cpuinfo); TensorFlow would emulate bfloat16, slower than '
                          'float32. Train without --mixed-precision, or on GPUs')
