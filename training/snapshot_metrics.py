"""Metrics at every network snapshot (``run_training.py --metrics fid1k,kid1k``).

As NVIDIA's training loops do: after each ``network-snapshot-<kimg>.pkl`` the metrics are computed
on the in-memory Gs against the training dataset. Each result is one JSON line appended to
``<run_dir>/metric-<name>.jsonl`` (the same object as ``calc_metrics.py`` prints, plus ``kimg``
and ``snapshot``), one line of ``stats.jsonl`` and TensorBoard scalars ``Metrics/<name>/<key>``.
The metric contexts are prepared once (the dataset's statistics are cached on disk), so later
snapshots only generate and measure. On ``--resume`` the lines of snapshots after the resumed one
(work lost by the interruption, done again) are dropped.
"""

import os
from typing import Dict, List, Optional, Sequence

from dnnlib.util import format_time
from metrics import metric_base
from training.stats import truncate_jsonl


def parse_metric_names(text) -> List[str]:
    """'fid1k,kid1k' (or a list) -> names, each checked by metric_base.parse_metric_name."""
    names = [n.strip() for n in (text.split(',') if isinstance(text, str) else text) if n.strip()]
    for name in names:
        metric_base.parse_metric_name(name)        # MetricError naming the metric
    return names


class SnapshotMetrics:
    """The metrics a training run computes at each network snapshot.

    Args:
        run_dir: where ``metric-<name>.jsonl`` goes.
        data: the training dataset (TFRecord folder): the reals.
        names: metric names, e.g. ``['fid1k', 'kid1k']`` (counts as in calc_metrics.py).
        inception, vgg16, lpips: weight files (None: default_1.pt for Inception; PPL needs vgg16).
        seed: seeds the metrics' latents (the same images at every snapshot, so curves compare).
        minibatch_size: images per forward pass.
    """

    def __init__(self, run_dir: str, data: str, names: Sequence[str], inception: Optional[str] = None,
                 vgg16: Optional[str] = None, lpips: Optional[str] = None, seed: int = 0,
                 minibatch_size: int = 16):
        self.run_dir, self.data, self.names = run_dir, data, list(names)
        self.inception_arg, self.vgg16, self.lpips = inception, vgg16, lpips
        self.seed, self.minibatch_size = seed, minibatch_size
        self._contexts: Dict[str, metric_base.Context] = {}
        self._inception = None

    def _context(self, name: str, Gs) -> metric_base.Context:
        if name not in self._contexts:
            inception = None
            if metric_base.parse_metric_name(name)[0] not in metric_base.PPL_METRICS:
                if self._inception is None:       # one Inception network for every metric
                    from metrics.inception import InceptionFeatures
                    self._inception = InceptionFeatures(self.inception_arg)
                inception = self._inception
            self._contexts[name] = metric_base.prepare(
                name, Gs=Gs, data=self.data, inception=inception, vgg16=(self.vgg16, self.lpips),
                seed=self.seed, minibatch_size=self.minibatch_size, progress=False)
        return self._contexts[name]

    def evaluate(self, Gs, kimg: float, snapshot_pkl: str, stats=None, log=print) -> List[dict]:
        """Computes every metric on ``Gs`` (official API) for the snapshot just written."""
        results = []
        for name in self.names:
            ctx = self._context(name, Gs)
            ctx.network = snapshot_pkl
            result = metric_base.run(ctx)
            result.update(kimg=kimg, snapshot=os.path.basename(snapshot_pkl))
            metric_base.append_jsonl(result, self.run_dir)
            values = ' '.join(f'{k} {v:<10.4f}' for k, v in result['results'].items())
            log(f'{os.path.basename(snapshot_pkl)}  {name:<12s} time {format_time(result["total_time"]):<8s} {values}')
            if stats is not None:
                for key, value in result['results'].items():
                    stats.report(f'Metrics/{name}/{key}', value)
            results.append(result)
        if stats is not None and results:
            stats.flush(kimg, extra={'metrics': True})   # a stats.jsonl line of its own
        return results

    def truncate(self, max_kimg: float) -> None:
        """Drops metric lines of snapshots after ``max_kimg`` (redone after a resume)."""
        for name in self.names:
            truncate_jsonl(os.path.join(self.run_dir, f'metric-{name}.jsonl'), max_kimg)
