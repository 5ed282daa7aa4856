"""bench/bench_training_start.py: which ticks count as a stable phase, and the run-by-run ratios
(issue 20, item 5: the figures of the training comparison against the baseline)."""
import pytest

from conftest import load_bench_script


def _module():
    return load_bench_script('bench_training_start')


def _run(*lod_spk):
    return {'ticks': [(i + 1, lod, spk) for i, (lod, spk) in enumerate(lod_spk)]}


def test_stable_ticks_leave_out_each_phase_first_tick_and_the_fades():
    ticks = _run((1, 9.0), (1, 4.0), (0.5, 7.0), (0, 12.0), (0, 6.0), (0, 8.0))['ticks']
    assert dict(_module().stable_ticks(ticks)) == {1: [4.0], 0: [6.0, 8.0]}


def test_stable_ratios_by_run_pair_the_repeats():
    m = _module()
    base = [_run((0, 30.0), (0, 26.0), (0, 27.0), (0, 25.0)), _run((0, 30.0), (0, 24.0), (0, 24.0))]
    this = [_run((0, 16.0), (0, 13.0), (0, 12.0), (0, 14.0)), _run((0, 16.0), (0, 12.0), (0, 13.0))]
    ratios = m.stable_ratios_by_run(base, this)
    # Run 1: median 26 / median 13; run 2: 24 / 12.5. A lod only one tree has is left out.
    assert ratios[0] == pytest.approx([2.0, 24.0 / 12.5])
    one_sided = m.stable_ratios_by_run([_run((1, 5.0), (1, 5.0))], [_run((0, 5.0), (0, 5.0))])
    assert dict(one_sided) == {}
