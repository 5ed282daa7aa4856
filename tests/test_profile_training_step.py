"""bench/profile_training_step.py: the profile of a demo training step (issue 20, item 1).

Its --profile reduces a tf.profiler capture of the step training runs (`minibatch_v1`) to op
types and to the share of the wall clock with 0, 1 or 2+ op kernels in flight; these tests pin the
interval arithmetic and run the tool once at 8x8 as a user would.
"""
import os
import subprocess
import sys

import pytest

from conftest import REPO_DIR, load_bench_script

SCRIPT = os.path.join(REPO_DIR, 'bench', 'profile_training_step.py')


def _module():
    return load_bench_script('profile_training_step')


def test_kernels_in_flight_counts_overlaps():
    in_flight = _module().kernels_in_flight
    # Kernels 0-4 and 1-3, none 4-5, kernels 5-6 and 5.5-6: one in flight during 0-1, 3-4 and
    # 5-5.5; two during 1-3 and 5.5-6; none during 4-5.
    out = in_flight([(0.0, 4.0), (1.0, 3.0), (5.0, 6.0), (5.5, 6.0)])
    assert out == pytest.approx({0: 1.0, 1: 2.5, 2: 2.5})
    assert sum(out.values()) == pytest.approx(6.0)       # first start to last end
    assert in_flight([]) == {}


def test_profile_of_the_training_step_runs(tmp_path):
    # The demo networks at 8x8 (the cheapest stable phase), one timed repetition, one profiled
    # step: the tool must time the one-call v1 step and print where its kernels ran.
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--resolutions', '8', '--steps', '1', '--profile',
         '--profile-steps', '1'],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    header = next(line for line in out.splitlines() if line.lstrip().startswith('res'))
    assert 'v1 step' in header and 'sec/kimg' in header
    row = next(line for line in out.splitlines() if line.split()[:2] == ['8', '3'])
    v1_ms, sec_per_kimg = float(row.split()[11]), float(row.split()[12])
    assert v1_ms > 0 and sec_per_kimg == pytest.approx(v1_ms / 4, abs=0.06)   # 4 images per step
    assert 'tf.profiler at 8 px, 1 v1 steps' in out
    line = next(line for line in out.splitlines() if 'op kernels in flight' in line)
    shares = [int(part.split(':')[1].strip().rstrip('%').strip()) for part in line.split('last: ')[1].split(', ')]
    assert len(shares) == 3 and 98 <= sum(shares) <= 102, line
