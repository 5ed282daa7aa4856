"""training/resume_state.py: the structured resume state and its flat sidecar form."""

import numpy as np
import pytest

from training.resume_state import ResumeState


def _state():
    rng = np.random.RandomState(5)
    rng.randn(3)
    return ResumeState(cur_nimg=1024, cur_tick=3, prev_lod=1.5, total_time=12.5, running_mb_counter=7,
                       tf_rng_state=np.arange(3, dtype=np.int64), tf_rng_alg=1,
                       np_rng=ResumeState.np_rng_arrays(rng),
                       grid_latents=np.ones((2, 4), np.float32), grid_labels=np.zeros((2, 0), np.float32),
                       groups={'G_opt': {'0/m': np.full(3, 2.0)}, 'G_loss': {'pl_mean': np.float32(0.5)}},
                       extra={'pkl_sha256': np.array('ab')})


def test_round_trip_through_the_flat_sidecar_form():
    st = _state()
    arrays = st.to_arrays()
    assert arrays['G_opt/0/m'].tolist() == [2.0, 2.0, 2.0] and float(arrays['G_loss/pl_mean']) == 0.5
    assert int(arrays['cur_nimg']) == 1024 and str(arrays['pkl_sha256']) == 'ab'
    back = ResumeState.from_arrays(arrays)
    assert back.group('G_opt')['0/m'].tolist() == [2.0, 2.0, 2.0] and back.group('D_opt') == {}
    again = back.to_arrays()
    assert sorted(again) == sorted(arrays)
    for key in arrays:
        np.testing.assert_array_equal(again[key], arrays[key])


def test_np_rng_is_restored_exactly():
    st = _state()
    expect = np.random.RandomState(5)
    expect.randn(3)
    rng = np.random.RandomState(0)
    ResumeState.from_arrays(st.to_arrays()).restore_np_rng(rng)
    assert rng.randn(4).tolist() == expect.randn(4).tolist()


def test_old_sidecars_without_running_mb_counter_still_load():
    arrays = _state().to_arrays()
    del arrays['running_mb_counter']
    assert ResumeState.from_arrays(arrays).running_mb_counter == 0


def test_names_that_would_not_round_trip_are_refused():
    st = _state()
    st.groups['a/b'] = {'x': np.zeros(1)}
    with pytest.raises(ValueError, match='must not contain'):
        st.to_arrays()
    st = _state()
    st.extra['cur_tick'] = np.array(9)
    with pytest.raises(ValueError, match='collides'):
        st.to_arrays()
