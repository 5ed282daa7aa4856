"""run_training.py --metrics: metrics at every network snapshot, into metric-<name>.jsonl,
stats.jsonl and TensorBoard, continued by --resume (issue 16, item 4)."""

import json
import os

import numpy as np
import pytest

from conftest import assert_user_error, make_dataset
from dnnlib import submission
from test_run_training import run_cli
from training.snapshot_metrics import SnapshotMetrics


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _tensorboard_tags(run_dir):
    import tensorflow as tf
    tags = set()
    for name in os.listdir(run_dir):
        if name.startswith('events.out.tfevents'):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(run_dir, name)):
                tags.update(v.tag for v in event.summary.value)
    return tags


def test_metrics_at_every_snapshot_and_after_resume(tmp_path):
    make_dataset(str(tmp_path / 'data' / 'tiny'), num_images=24)          # 8x8
    common = ('--data-dir', str(tmp_path / 'data'), '--result-dir', str(tmp_path / 'results'),
              '--mixing-figure', '0')
    out = run_cli('--config', 'demo', '--dataset', 'tiny', '--kimg', '0.05', '--metrics', 'fid16,kid16',
                  *common)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    run_dir = submission.list_run_dirs(str(tmp_path / 'results'))[0]
    for name in ('fid16', 'kid16'):
        lines = _lines(os.path.join(run_dir, f'metric-{name}.jsonl'))
        assert [l['snapshot'] for l in lines] == ['network-snapshot-000000.pkl']
        assert lines[0]['metric'] == name and lines[0]['num_images'] == 16 and lines[0]['kimg'] >= 0.05
        assert 'default_1.pt' in lines[0]['weights']
        assert all(np.isfinite(v) for v in lines[0]['results'].values())
    fid = _lines(os.path.join(run_dir, 'metric-fid16.jsonl'))[0]['results']['fid16']
    assert fid > 0
    stats = [l for l in _lines(os.path.join(run_dir, 'stats.jsonl')) if l.get('metrics')]
    assert len(stats) == 1 and stats[0]['Metrics/fid16/fid16'] == pytest.approx(fid)
    assert {'Metrics/fid16/fid16', 'Metrics/kid16/kid16'} <= _tensorboard_tags(run_dir)
    assert 'network-snapshot-000000.pkl  fid16' in open(os.path.join(run_dir, 'log.txt')).read()

    # --resume keeps the saved --metrics and appends the next snapshot's results.
    out = run_cli('--resume', run_dir, '--kimg', '1.05', '--snapshot-ticks', '1', *common)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = _lines(os.path.join(run_dir, 'metric-fid16.jsonl'))
    assert [l['snapshot'] for l in lines] == ['network-snapshot-000000.pkl', 'network-snapshot-000001.pkl']
    assert lines[1]['kimg'] > lines[0]['kimg']


def test_resume_drops_metric_lines_of_lost_snapshots(tmp_path):
    path = tmp_path / 'metric-fid1k.jsonl'
    path.write_text(''.join(json.dumps(dict(metric='fid1k', kimg=k)) + '\n' for k in (0.0, 4.0, 8.0))
                    + '{"metric": "fid1k", "ki')                  # a line cut short by a kill
    SnapshotMetrics(str(tmp_path), 'unused', ['fid1k']).truncate(4.0)
    assert [l['kimg'] for l in _lines(path)] == [0.0, 4.0]


@pytest.mark.parametrize('args, words', [
    (['--metrics', 'fid1k,fidd'], ['--metrics', "unknown metric 'fidd'"]),
    (['--metrics', 'fid1'], ['--metrics', 'at least 2 images']),
    (['--metrics', 'ppl_wend'], ['--vgg16', 'which no package ships']),
    (['--metrics', 'fid1k', '--inception', 'missing.pt'], ['--inception', 'missing.pt', 'not found']),
    (['--vgg16', 'x.pkl'], ['--inception/--vgg16/--lpips', 'only with --metrics']),
])
def test_bad_metric_flags_are_one_line_errors_before_anything_is_written(tmp_path, args, words):
    make_dataset(str(tmp_path / 'data' / 'tiny'), num_images=4)
    assert_user_error('run_training.py', ['--config', 'demo', '--dataset', 'tiny', '--data-dir',
                                          str(tmp_path / 'data'), '--result-dir', str(tmp_path / 'results'),
                                          *args], words, untouched=[tmp_path], cwd=str(tmp_path))
