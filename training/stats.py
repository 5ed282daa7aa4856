"""Training statistics: `report(name, value)` in, tick line / stats.jsonl / TensorBoard out.

One `StatsCollector` per training run replaces the official `autosummary`: values reported
during a tick are averaged over everything reported under the same name, and `flush()` writes
those averages once per tick to `stats.jsonl` (one JSON object per tick) and to TensorBoard
(`tf.summary` scalars at step = kimg), then starts the next tick. No module-level state.
"""

import json
import os
import time
from typing import Dict, Optional

import numpy as np

from dnnlib.util import atomic_write


class StatsCollector:
    """Accumulates named scalar statistics between ticks.

    Args:
        run_dir: folder for `stats.jsonl` and the TensorBoard event files; None keeps the
            statistics in memory only (tests, dry runs).
        tensorboard: write TensorBoard event files (needs TensorFlow).
    """

    def __init__(self, run_dir: Optional[str], tensorboard: bool = True):
        self.run_dir = run_dir
        self._sums: Dict[str, float] = {}
        self._counts: Dict[str, int] = {}
        self._writer = None
        if run_dir is not None and tensorboard:
            import tensorflow as tf    # only the TensorBoard writer needs TensorFlow
            from tensorflow.core.framework import summary_pb2
            self._tf = tf
            self._writer = tf.summary.create_file_writer(run_dir)
            # What tensorboard's scalar summary writes, without needing the tensorboard package.
            self._scalar_metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name='scalars'),
                data_class=summary_pb2.DATA_CLASS_SCALAR)

    def report(self, name: str, value) -> None:
        """Adds a value (scalar or array: every element counts) to the running mean of `name`."""
        arr = np.asarray(value, dtype=np.float64)
        if arr.size == 0:
            return
        self._sums[name] = self._sums.get(name, 0.0) + float(arr.sum())
        self._counts[name] = self._counts.get(name, 0) + int(arr.size)

    def mean(self, name: str) -> float:
        """The current mean of `name` in this tick; NaN when nothing was reported."""
        count = self._counts.get(name, 0)
        return self._sums[name] / count if count else float('nan')

    def as_dict(self) -> Dict[str, float]:
        """Name -> mean of this tick, in the order the names were first reported."""
        return {name: self.mean(name) for name in self._sums}

    def flush(self, kimg: float, extra: Optional[dict] = None) -> Dict[str, float]:
        """Writes this tick's means to stats.jsonl and TensorBoard, then clears them.

        Args:
            kimg: training progress; the TensorBoard step is int(kimg * 1000) images.
            extra: additional non-statistic fields for the stats.jsonl line.

        Returns:
            The means that were written.
        """
        values = self.as_dict()
        if self.run_dir is not None:
            line = {'kimg': kimg, 'timestamp': time.time(), **(extra or {}),
                    **{k: (None if not np.isfinite(v) else v) for k, v in values.items()}}
            with open(os.path.join(self.run_dir, 'stats.jsonl'), 'a', encoding='utf-8') as f:
                f.write(json.dumps(line) + '\n')
        if self._writer is not None:
            with self._writer.as_default():
                for name, value in values.items():
                    self._tf.summary.write(name, self._tf.constant(value, self._tf.float32),
                                           step=int(round(kimg * 1000)), metadata=self._scalar_metadata)
            self._writer.flush()
        self._sums.clear()
        self._counts.clear()
        return values

    def close(self) -> None:
        """Closes the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def truncate_stats_file(run_dir: str, max_kimg: float) -> None:
    """Drops stats.jsonl lines past `max_kimg` (work lost by a crash, redone after a resume)."""
    truncate_jsonl(os.path.join(run_dir, 'stats.jsonl'), max_kimg)


def truncate_jsonl(path: str, max_kimg: float) -> None:
    """Keeps the JSON lines of `path` whose 'kimg' is at most `max_kimg` (a line without one
    counts as 0); a line cut short by a kill is dropped. Rewritten atomically."""
    if not os.path.isfile(path):
        return
    kept = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            try:
                if json.loads(line).get('kimg', 0.0) <= max_kimg + 1e-9:
                    kept.append(line if line.endswith('\n') else line + '\n')
            except (ValueError, AttributeError, TypeError):
                continue     # a line cut short by a kill: drop it
    with atomic_write(path, 'w') as f:
        f.writelines(kept)
