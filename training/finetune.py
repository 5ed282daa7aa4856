"""Fine-tuning on small datasets: frozen blocks, layer transfer, and the training-loop augmenters.

Used by `training.training_loop.training_loop` (keyword arguments `D_freeze_blocks`,
`G_freeze_blocks`, `G_freeze_mapping`, `transfer_mismatched`, `reals_augment_args`,
`D_augment_args`) and exposed by run_training.py as `--freeze-d`, `--freeze-g`,
`--freeze-mapping`, `--transfer-mismatched` and `--augment`.

Freezing (FreezeD, Mo et al. 2020; FreezeG) works on official variable names, so the same rule
holds for our snapshots and NVIDIA's pickles. A *block* is everything that works at one
resolution R (written `RxR`); with `rl = log2(resolution)` and `k = rl - log2(R)` (the lod of
that block):

* v1 `D_basic`: block R = the `RxR/` scope plus `FromRGB_lod<k>` (its input layer). Blocks are
  counted from the input side: `--freeze-d 1` freezes the full-resolution block, `--freeze-d 2`
  also the next lower one, ... up to rl - 1 blocks (the last being `4x4/`, which holds the
  minibatch-stddev conv and the dense layers, so freezing all of D is allowed but pointless).
* v2 `D_stylegan2`: block R = the `RxR/` scope, which includes `RxR/FromRGB` where the
  architecture has one and the `RxR/Skip` of the resnet. The final `Output/` layer belongs to no
  block and is never frozen by `--freeze-d`. (`D_stylegan`, StyleGAN2's configs B-D, names its
  layers like `D_basic` and follows the v1 rule.)
* v1 `G_style`: block R = `G_synthesis/RxR/` (its convolutions with their noise strengths, biases
  and style modulations; at 4x4 the learned constant) plus `G_synthesis/ToRGB_lod<k>`. Blocks
  are counted from 4x4 up: `--freeze-g 1` freezes 4x4, `--freeze-g 2` also 8x8, ...
* v2 `G_main`: block R = `G_synthesis/RxR/`, which includes `RxR/ToRGB` (with the configs B-D
  synthesis, `G_synthesis/ToRGB_lod<k>` as in v1).
* `--freeze-mapping`: every trainable variable of `G_mapping/` (the 8 dense layers and, with
  labels, the label embedding).

Frozen variables are left out of the optimizer's variable list and of the gradient, so no
update, weight decay or optimizer reset can change them: they are bit-for-bit the starting
values in every snapshot. Gs keeps averaging *all* of G (as officially): G's frozen variables are
constant, so Gs's copies of them converge to those values (exactly equal only once the moving
average has forgotten Gs's starting values, which for a pickle whose Gs was itself an average of
G differ slightly).
"""

import importlib
import re
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


class TransferError(ValueError):
    """A resume pickle does not fit the dataset and transfer was not asked for (or is impossible)."""


_LOD_LAYER = re.compile(r'^(?P<prefix>(?:G_synthesis/)?)(?P<kind>ToRGB|FromRGB)_lod(?P<lod>\d+)(?P<rest>/.*)$')


# ------------------------------------------------------------------------------------------------
# Freezing.

def _resolution_log2(model) -> int:
    kwargs = _resolved_kwargs(model)
    return int(np.log2(int(kwargs['resolution'])))


def _resolved_kwargs(model) -> dict:
    module = importlib.import_module(type(model).__module__)
    return module.resolved_kwargs(model)


def block_resolutions(model) -> List[int]:
    """Resolutions of a network's blocks, 4 .. resolution, in ascending order."""
    return [2 ** r for r in range(2, _resolution_log2(model) + 1)]


def _block_prefixes(model, res: int, rl: int, role: str) -> Tuple[str, ...]:
    """Official-name prefixes of the block at resolution `res` (see the module docstring).

    One rule serves every supported network: the `RxR/` scope, plus the block's lod-numbered
    FromRGB (D) / ToRGB (G) of the progressive-growing networks; networks without lod-numbered
    layers simply have no variable under the second prefix.
    """
    from tf2 import checkpoint
    if checkpoint.kind_of(model).role != role:
        raise ValueError(f'freezing: {role} network built by {model.build_func_name!r} is not '
                         f'supported (it is a {checkpoint.kind_of(model).role} network)')
    lod = rl - int(np.log2(res))
    if role == 'D':
        return f'{res}x{res}/', f'FromRGB_lod{lod}/'
    return f'G_synthesis/{res}x{res}/', f'G_synthesis/ToRGB_lod{lod}/'


def frozen_variable_names(model, role: str, blocks: int, mapping: bool = False) -> List[str]:
    """Official names of the trainable variables that `--freeze-d` / `--freeze-g` freeze.

    Args:
        model: G or D (Keras model of networks_stylegan or networks_stylegan2).
        role: 'D' (blocks counted from the highest resolution down) or 'G' (from 4x4 up).
        blocks: number of blocks to freeze, 0 .. log2(resolution) - 1.
        mapping: with role 'G', also freeze every trainable variable of G_mapping.

    Returns:
        Names in the network's variable order.

    Raises:
        ValueError: `blocks` out of range or an unsupported network.
    """
    resolutions = block_resolutions(model)
    flag = '--freeze-d' if role == 'D' else '--freeze-g'
    if not 0 <= int(blocks) <= len(resolutions):
        raise ValueError(f'{flag} {blocks}: {model.build_func_name} at {resolutions[-1]}x'
                         f'{resolutions[-1]} has {len(resolutions)} blocks '
                         f'({resolutions[0]}x{resolutions[0]} .. {resolutions[-1]}x{resolutions[-1]}); '
                         f'choose 0 .. {len(resolutions)}')
    chosen = resolutions[::-1][:blocks] if role == 'D' else resolutions[:blocks]
    rl = _resolution_log2(model)
    prefixes = tuple(p for res in chosen for p in _block_prefixes(model, res, rl, role))
    if mapping:
        prefixes += ('G_mapping/',)
    return [name for name, var in model.official_variables().items()
            if var.trainable and name.startswith(prefixes)]


def split_trainable(model, frozen_names: Sequence[str]) -> Tuple[list, list]:
    """(trainable variables not frozen, frozen ones), both in `model.trainable_variables` order."""
    official = model.official_variables()
    frozen_ids = {id(official[name]) for name in frozen_names}
    train, frozen = [], []
    for var in model.trainable_variables:
        (frozen if id(var) in frozen_ids else train).append(var)
    if len(frozen) != len(frozen_ids):
        raise ValueError(f'{model.name}: {len(frozen_ids) - len(frozen)} frozen variables are not '
                         'trainable variables of the model')
    return train, frozen


def select_trainable(G, D, D_freeze_blocks: int = 0, G_freeze_blocks: int = 0,   # noqa: N803
                     G_freeze_mapping: bool = False, log=print) -> Tuple[list, list]:
    """The variables the G and D optimizers train after FreezeD / FreezeG / frozen mapping.

    Returns:
        (G variables, D variables): the models' trainable variables minus the frozen ones.
    """
    G_frozen = frozen_variable_names(G, 'G', G_freeze_blocks, G_freeze_mapping)
    D_frozen = frozen_variable_names(D, 'D', D_freeze_blocks)
    G_vars, _ = split_trainable(G, G_frozen)
    D_vars, _ = split_trainable(D, D_frozen)
    if log is not None:
        for role, names, net in (('G', G_frozen, G), ('D', D_frozen, D)):
            if names:
                log(f'Frozen in {role} ({len(names)} of {len(net.trainable_variables)} trainable '
                    f'variables): {", ".join(_layer_names(names))}')
    return G_vars, D_vars


def _layer_names(names: Sequence[str]) -> List[str]:
    """Variable names -> their layers' names (the scope without the last part), in order."""
    out = []
    for name in names:
        layer = name.rsplit('/', 1)[0] if '/' in name else name
        if not out or out[-1] != layer:
            out.append(layer)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------
# Starting from a pickle: check against the dataset, or transfer the matching layers.

def _data_kwargs(model) -> Dict[str, int]:
    kwargs = _resolved_kwargs(model)
    return {k: int(kwargs[k]) for k in ('num_channels', 'resolution', 'label_size')}


def canonical_name(name: str, resolution_log2: int) -> str:
    """A variable's identity across resolutions.

    Official names are resolution-independent except v1's `ToRGB_lod<k>` / `FromRGB_lod<k>`,
    numbered from the full resolution down: the same name means a different layer in a network
    of another resolution. They are compared by the resolution they serve instead.
    """
    m = _LOD_LAYER.match(name)
    if m is None:
        return name
    res = 2 ** (resolution_log2 - int(m.group('lod')))
    return f'{m.group("prefix")}{m.group("kind")}@{res}x{res}{m.group("rest")}'


def transfer_variables(dst, src) -> Dict[str, List[Tuple[str, str]]]:
    """Copies each variable of `src` into `dst` when both have it (same layer, same shape).

    Layers are matched by official name (v1's lod-numbered ToRGB/FromRGB by the resolution they
    serve, see `canonical_name`). Returns lists of (dst name, note): 'transferred',
    'kept' (dst variables left at their initial values, with the reason) and 'unused' (src
    variables with no place in dst).
    """
    dst_vars, src_vars = dst.official_variables(), src.official_variables()
    rl_dst, rl_src = _resolution_log2(dst), _resolution_log2(src)
    src_by_key = {canonical_name(n, rl_src): n for n in src_vars}
    report = dict(transferred=[], kept=[], unused=[])
    used = set()
    for name, var in dst_vars.items():
        src_name = src_by_key.get(canonical_name(name, rl_dst))
        if src_name is None:
            report['kept'].append((name, 'not in the pickle'))
            continue
        used.add(src_name)
        value = src_vars[src_name]
        if tuple(value.shape) != tuple(var.shape):
            report['kept'].append((name, f'shape {list(var.shape)} != {list(value.shape)} in the pickle'))
            continue
        var.assign(value)
        report['transferred'].append((name, src_name if src_name != name else ''))
    report['unused'] = [(n, '') for n in src_vars if n not in used]
    return report


def _build_like(state, name: str, data_kwargs: Dict[str, int]):
    """A fresh Keras network with a pickled network's architecture at other data dimensions."""
    from tf2 import checkpoint
    module = checkpoint.module_for_build_func(state.build_func_name, state.version)
    kwargs = dict(state.static_kwargs)
    kwargs.update(data_kwargs)
    return checkpoint.network_kind(module, state.build_func_name).build(name=name, **kwargs)


def format_transfer_report(label: str, report: Dict[str, List[Tuple[str, str]]]) -> str:
    """Human-readable lines: transferred layers, layers kept at their initial values, unused ones."""
    def layers(items):
        return ', '.join(_layer_names([n for n, _ in items])) or '-'
    kept = '; '.join(f'{n} ({why})' for n, why in report['kept']) or '-'
    return (f'{label}: transferred {len(report["transferred"])} variables: {layers(report["transferred"])}\n'
            f'{label}: NOT transferred (initialised fresh) {len(report["kept"])}: {kept}\n'
            f'{label}: unused from the pickle {len(report["unused"])}: {layers(report["unused"])}')


def networks_for_dataset(pkl_path: str, data_kwargs: Dict[str, int], transfer_mismatched: bool,
                         dataset_name: str = 'the dataset', log=print):
    """(G, D, Gs) from a pickle for training on data of `data_kwargs`, with layer transfer.

    Args:
        pkl_path: official-format (G, D, Gs) pickle (NVIDIA's or ours).
        data_kwargs: {'num_channels', 'resolution', 'label_size'} of the dataset.
        transfer_mismatched: when the pickle was built for other data dimensions, build the same
            architecture for the dataset and copy only the matching variables (same official
            name, as in `canonical_name`, and same shape), printing what was and was not copied.
            False: such a pickle is an error.
        dataset_name: used in messages.

    Raises:
        TransferError: mismatch without `transfer_mismatched`, or nothing in common.
    """
    from dnnlib import legacy_pickle
    from tf2 import checkpoint
    G, D, Gs = checkpoint.networks_from_pickle(pkl_path)
    have = {net.name: _data_kwargs(net) for net in (G, D)}
    if all(v == data_kwargs for v in have.values()):
        return G, D, Gs
    diff = ', '.join(f'{k} {have["G"][k]} vs {data_kwargs[k]}' for k in data_kwargs
                     if have['G'][k] != data_kwargs[k] or have['D'][k] != data_kwargs[k])
    if not transfer_mismatched:
        raise TransferError(
            f'{pkl_path}: the networks were built for {have["G"]}, but {dataset_name} has '
            f'{data_kwargs} ({diff}). Make the dataset at the pickle\'s resolution '
            '(dataset_tool.py ... --resolution N, or train at a lower one with --resolution), '
            'or pass --transfer-mismatched to copy only the layers that match (same official '
            'name and shape) into networks built for the dataset.')
    log(f'Transferring matching layers of {pkl_path} ({diff}) into networks built for {dataset_name}')
    states = legacy_pickle.load(pkl_path)
    out = []
    for state, src in zip(states, (G, D, Gs)):
        dst = _build_like(state, src.name, data_kwargs)
        report = transfer_variables(dst, src)
        trainable_copied = [n for n, _ in report['transferred'] if dst.official_variables()[n].trainable]
        if not trainable_copied:
            raise TransferError(f'{pkl_path}: network {src.name} shares no trainable layer with '
                                f'networks built for {dataset_name}; nothing to transfer')
        log(format_transfer_report(src.name, report))
        out.append(dst)
    return tuple(out)


def pickle_data_kwargs(pkl_path: str) -> Dict[str, Dict[str, Any]]:
    """{'G': {...}, 'D': {...}} num_channels/resolution/label_size from a pickle's static kwargs.

    No TensorFlow: for the launcher's early check. Missing kwargs are omitted.
    """
    from dnnlib import legacy_pickle
    data = legacy_pickle.load(pkl_path)
    out = {}
    for state in data[:2]:
        out[state.name] = {k: state.static_kwargs[k] for k in ('num_channels', 'resolution', 'label_size')
                           if k in state.static_kwargs}
    return out


# ------------------------------------------------------------------------------------------------
# Augmenters built by the training loop from JSON-able arguments.

def make_reals_augment(spec: str, seed: int):
    """albumentations on the reals, as a `TFRecordDataset(augment_fn=...)` hook.

    Args:
        spec: albu preset name ('default', 'mild', 'strong') or a .yaml/.json file.
        seed: the dataset's seed (the loop derives it from --seed and the kimg of the last
            snapshot, so a resumed run augments exactly as the uninterrupted one).

    Returns:
        `augment(images, index)`: uint8 NHWC batches; batch `index` of the pipeline of image size
        H is seeded from (seed, H, index), so pipelines of different lods never repeat each
        other's draws. The leak warning is the caller's to print (once per run).
    """
    from training import augment as aug
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', aug.AugmentLeakWarning)
        fn = aug.make_albu_augment_fn(spec, seed, 'NHWC')

    def reals_augment(images, index):
        size = int(images.shape[1])
        return fn(images, tf.cast(index, tf.int64) + (size << 40))
    return reals_augment


class TrainingAugment:
    """DiffAugment (fixed p or ADA) for `training_loop(D_augment_args=...)`.

    Applied by the loop to every image batch D sees (reals and fakes, in the D and G losses);
    `update(real_scores)` is called once per D step with D's scores of the (augmented) reals and
    moves the ADA probability; `get_state()` / `set_state()` carry p, the ADA accumulators and
    the augmentation's random stream through the training-state sidecar, so a resumed run
    continues exactly.

    Args:
        policy: diff ops (training.augment.DIFF_OPS), applied in order.
        aug_p: fixed probability, or None with `aug_target`.
        aug_target: ADA target of r_t = E[sign(D(real))], or None.
        seed: seed of the augmentation's own random stream.
        ada_kimg, ada_interval: ADA speed and adjustment interval (training.augment.AdaptiveAugment).
    """

    def __init__(self, policy: Sequence[str], aug_p: Optional[float] = None,
                 aug_target: Optional[float] = None, seed: int = 0, ada_kimg: float = 500.0,
                 ada_interval: int = 4):
        from training import augment as aug
        spec = 'diff:' + ','.join(policy)
        self.config = aug.parse_augment(spec, aug_p=aug_p, aug_target=aug_target,
                                        ada_kimg=ada_kimg, ada_interval=ada_interval)
        # The seed is mixed so that the augmentation's stream differs from the training stream.
        self.pipe = aug.DiffAugment.from_config(self.config, seed=int(
            np.random.SeedSequence([int(seed), 0xA06]).generate_state(1)[0]))

    def __call__(self, images):
        return self.pipe(images)

    @property
    def p(self) -> float:
        """The current augmentation probability."""
        return float(self.pipe.ada.p.numpy()) if self.pipe.ada is not None else self.pipe.fixed_p

    def update(self, real_scores) -> None:
        """Feeds one D step's real scores to ADA (nothing with a fixed p)."""
        if self.pipe.ada is not None:
            self.pipe.ada.update(real_scores)

    def get_state(self) -> Dict[str, np.ndarray]:
        """ADA state (p, r_t, accumulators, step) and the random stream, as numpy arrays."""
        state = {'rng_state': self.pipe.generator.state.numpy(),
                 'rng_alg': np.array(int(self.pipe.generator.algorithm))}
        if self.pipe.ada is not None:
            state.update({f'ada_{k}': np.array(v) for k, v in self.pipe.ada.get_state().items()})
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        """Restores `get_state()` output (values may be numpy arrays from the sidecar)."""
        if int(np.asarray(state['rng_alg'])) != int(self.pipe.generator.algorithm):
            raise ValueError('augmentation random stream: saved with another algorithm')
        self.pipe.generator.reset(np.asarray(state['rng_state']).astype(np.int64))
        ada = {k[4:]: np.asarray(v).item() for k, v in state.items() if k.startswith('ada_')}
        if (self.pipe.ada is None) != (not ada):
            raise ValueError('augmentation state: saved with a different --aug-p/--aug-target choice')
        if self.pipe.ada is not None:
            ada['step'] = int(ada['step'])
            self.pipe.ada.set_state(ada)
