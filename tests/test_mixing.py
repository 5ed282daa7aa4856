"""Tests for editing/mixing.py: schemes, truncation, row reconciliation, mixing, figures, npz.

Library logic is tested on a tiny numpy network with the official API (``FakeGs`` in conftest,
also used by the CLI tests); the accuracy tests run the real networks loaded by ``tf2`` and ``legacy_tf``
against the official fixtures.
"""
import os

import numpy as np
import pytest

from conftest import IMPLS, TOL, FakeGs, fixture_path, load_real_gs, rel, seed_latents, use_fake_networks
from editing import mixing
from dnnlib.util import parse_seeds
from editing import dlatents_io
from editing import figures
from editing import mixing_schemes


# ------------------------------------------------------------------------------------------------
# Scheme grammar and rows.

def test_parse_scheme_names_and_custom_lists():
    assert [s.name for s in mixing_schemes.parse_scheme('coarse,middle,fine,even,odd')] == \
        ['coarse', 'middle', 'fine', 'even', 'odd']
    assert [s.name for s in mixing_schemes.parse_scheme('0-3,8,10-11')] == ['rows0-3_8_10-11']
    assert [s.name for s in mixing_schemes.parse_scheme('rows:0-3,8')] == ['rows0-3_8']
    assert [s.name for s in mixing_schemes.parse_scheme('coarse,rows:0-3,8;odd')] == \
        ['coarse', 'rows0-3_8', 'odd']
    assert [s.name for s in mixing_schemes.parse_scheme('0-3;8-')] == ['rows0-3', 'rows8-']
    assert [s.name for s in mixing_schemes.parse_scheme('rows:1,rows:2')] == ['rows1', 'rows2']
    assert [s.name for s in mixing_schemes.parse_scheme(' Middle-Wide , all;none ')] == \
        ['middle-wide', 'all', 'none']


@pytest.mark.parametrize('text, words', [
    ('coarse,bogus', 'unknown scheme'),
    ('5-3', 'backwards'),
    ('coarse,coarse', 'given twice'),
    ('coarse;;fine', 'empty'),
    ('rows:', 'empty'),
    ('1,,2', 'empty'),
    ('-3', 'unknown scheme'),
])
def test_parse_scheme_errors(text, words):
    with pytest.raises(ValueError, match=words):
        mixing_schemes.parse_scheme(text)


# Expected rows written from the spec (paper Figure 3 and the issue), not from the code.
@pytest.mark.parametrize('scheme, num_rows, expected', [
    ('coarse', 10, [0, 1, 2, 3]),
    ('coarse', 18, [0, 1, 2, 3]),
    ('middle', 14, [4, 5, 6, 7]),
    ('fine', 10, [8, 9]),
    ('fine', 14, [8, 9, 10, 11, 12, 13]),
    ('fine', 18, list(range(8, 18))),
    ('middle-wide', 18, list(range(4, 13))),
    ('middle-wide', 14, list(range(4, 13))),
    ('middle-wide', 10, [4, 5, 6, 7, 8, 9]),
    ('even', 10, [0, 2, 4, 6, 8]),
    ('odd', 14, [1, 3, 5, 7, 9, 11, 13]),
    ('all', 16, list(range(16))),
    ('none', 18, []),
    ('0-3,8,10-11', 18, [0, 1, 2, 3, 8, 10, 11]),
    ('0-3,8,10-11', 10, [0, 1, 2, 3, 8]),
    ('8-', 14, [8, 9, 10, 11, 12, 13]),
    ('rows:2,2,1-2', 10, [1, 2]),
])
def test_scheme_rows(scheme, num_rows, expected):
    assert mixing_schemes.scheme_rows(scheme, num_rows, log=None).tolist() == expected


def test_scheme_rows_cut_prints_a_note():
    notes = []
    mixing_schemes.scheme_rows('middle-wide', 10, log=notes.append)
    assert len(notes) == 1 and 'middle-wide' in notes[0] and '10-12' in notes[0]
    notes.clear()
    mixing_schemes.scheme_rows('fine', 18, log=notes.append)       # to the end: nothing is cut
    assert notes == []
    mixing_schemes.scheme_rows('fine', 8, log=notes.append)        # a 16 px network has no fine rows
    assert notes and 'fine' in notes[-1]


def test_parse_seeds():
    assert parse_seeds('1,2,5-7') == [1, 2, 5, 6, 7]
    for bad in ('1,x', '3-1', '-1', '4294967296'):
        with pytest.raises(ValueError, match='seed'):
            parse_seeds(bad)


def test_format_rows():
    assert mixing_schemes.format_rows([3, 0, 1, 2, 8, 10, 11]) == '0-3,8,10-11'
    assert mixing_schemes.format_rows([]) == '-'


# ------------------------------------------------------------------------------------------------
# Array operations against the fixtures and hand-computed values.

def test_truncate_matches_official_v1_cutoff8():
    ref = np.load(fixture_path('sg1_r64_ref.npz'))
    out = mixing.truncate(ref['dlatents'], ref['dlatent_avg'], 0.7, 8)
    np.testing.assert_array_equal(out, ref['dlatents_trunc07'])


def test_truncate_matches_official_v2_all_rows():
    ref = np.load(fixture_path('sg2_r64_ref.npz'))
    out = mixing.truncate(ref['dlatents'], ref['dlatent_avg'], 0.5, None)
    np.testing.assert_array_equal(out, ref['dlatents_trunc05'])


def test_truncate_psi_one_or_none_is_identity():
    w = np.random.RandomState(0).randn(2, 4, 3).astype(np.float32)
    avg = np.ones(3, np.float32)
    assert np.array_equal(mixing.truncate(w, avg, 1.0, 2), w)
    assert np.array_equal(mixing.truncate(w, avg, None), w)
    out = mixing.truncate(w, avg, 0.0, 2)
    assert np.array_equal(out[:, :2], np.ones((2, 2, 3)))
    np.testing.assert_allclose(out[:, 2:], w[:, 2:], atol=1e-6)
    with pytest.raises(ValueError, match='cutoff'):
        mixing.truncate(w, avg, 0.5, -1)


def test_reconcile_rows():
    w = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    out, note = mixing_schemes.reconcile_rows(w, 5)
    assert out.shape == (2, 5, 2) and note and 'repeated' in note
    assert np.array_equal(out[:, :3], w) and np.array_equal(out[:, 3], w[:, 2])
    assert np.array_equal(out[:, 4], w[:, 2])
    out, note = mixing_schemes.reconcile_rows(w, 2)
    assert np.array_equal(out, w[:, :2]) and 'cut' in note
    out, note = mixing_schemes.reconcile_rows(w, 3)
    assert out is not None and np.array_equal(out, w) and note is None
    out, _ = mixing_schemes.reconcile_rows(w[:, 0], 4)                       # W [N, D]
    assert out.shape == (2, 4, 2) and np.array_equal(out[:, 3], w[:, 0])


def test_mix_dlatents_by_hand():
    dst = np.zeros((2, 5, 3), np.float32) + np.array([1, 2], np.float32)[:, None, None]
    src = np.zeros((3, 5, 3), np.float32) + np.array([10, 20, 30], np.float32)[:, None, None]
    out = mixing.mix_dlatents(dst, src, [0, 3])
    assert out.shape == (2, 3, 5, 3)
    for i in range(2):
        for j in range(3):
            assert out[i, j, :, 0].tolist() == [10 * (j + 1), i + 1, i + 1, 10 * (j + 1), i + 1]
    with pytest.raises(ValueError, match='same L'):
        mixing.mix_dlatents(dst, src[:, :4], [0])


def test_images_to_uint8_matches_official():
    ref = np.load(fixture_path('sg1_r64_ref.npz'))
    out = figures.images_to_uint8(ref['mix_images'])
    diff = np.abs(out.astype(int) - ref['mix_images_uint8_nhwc'].astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 5e-4


# ------------------------------------------------------------------------------------------------
# style_mixing / cross_mixing on the fake network.

def _expected_mix(Gs, dst_seeds, src_seeds, rows, psi=None, cutoff=None):
    """Independent reference: seeds -> mapping -> truncation -> row copy, by loops."""
    latent_size = Gs.input_shape[1]
    dst = Gs.components.mapping.run(seed_latents(dst_seeds, latent_size), None)
    src = Gs.components.mapping.run(seed_latents(src_seeds, latent_size), None)
    if psi is not None:
        avg = Gs.get_var('dlatent_avg')
        for w in (dst, src):
            for r in range(w.shape[1]):
                if cutoff is None or r < cutoff:
                    w[:, r] = avg + (w[:, r] - avg) * np.float32(psi)
    mixed = np.zeros((len(dst_seeds), len(src_seeds)) + dst.shape[1:], np.float32)
    for i in range(len(dst_seeds)):
        for j in range(len(src_seeds)):
            mixed[i, j] = dst[i]
            for r in rows:
                mixed[i, j, r] = src[j, r]
    return dst, src, mixed


def test_style_mixing_fake_v1_no_truncation_by_default():
    Gs = FakeGs()
    res = mixing.style_mixing(Gs, [1, 2, 3], [4, 5], 'coarse,fine', log=None)
    assert list(res['schemes']) == ['coarse', 'fine']
    for name, rows in (('coarse', [0, 1, 2, 3]), ('fine', [8, 9])):
        dst, src, mixed = _expected_mix(Gs, [1, 2, 3], [4, 5], rows)
        mix = res['schemes'][name]
        assert mix['rows'].tolist() == rows
        np.testing.assert_allclose(mix['mixed_dlatents'], mixed, rtol=0, atol=1e-6)
        assert mix['images'].shape == (3, 2, 3, 8, 8) and mix['images'].dtype == np.float32
        for i in range(3):
            for j in range(2):
                ref = Gs.components.synthesis.run(mixed[i, j][None], randomize_noise=False)[0]
                np.testing.assert_allclose(mix['images'][i, j], ref, atol=1e-6)
    np.testing.assert_allclose(res['dst_dlatents'], dst, atol=1e-6)
    np.testing.assert_allclose(res['src_dlatents'], src, atol=1e-6)
    assert res['dst_images'].shape == (3, 3, 8, 8) and res['src_images'].shape == (2, 3, 8, 8)
    assert not any(Gs.noise_calls)           # const noise by default
    assert res['truncation'] == dict(dst=(None, None), src=(None, None))


def test_style_mixing_fake_v2_default_truncation_is_psi05_all_rows():
    Gs = FakeGs(build_func_name='G_main')
    res = mixing.style_mixing(Gs, [1], [4], 'middle', log=None)
    dst, src, mixed = _expected_mix(Gs, [1], [4], [4, 5, 6, 7], psi=0.5)
    np.testing.assert_allclose(res['schemes']['middle']['mixed_dlatents'], mixed, atol=1e-6)
    # psi 1 switches it off; an explicit psi and cutoff apply to both
    res = mixing.style_mixing(Gs, [1], [4], 'middle', truncation_psi=1, log=None)
    _, _, mixed = _expected_mix(Gs, [1], [4], [4, 5, 6, 7])
    np.testing.assert_allclose(res['schemes']['middle']['mixed_dlatents'], mixed, atol=1e-6)
    res = mixing.style_mixing(Gs, [1], [4], 'middle', truncation_psi=0.7, truncation_cutoff=6,
                              log=None)
    _, _, mixed = _expected_mix(Gs, [1], [4], [4, 5, 6, 7], psi=0.7, cutoff=6)
    np.testing.assert_allclose(res['schemes']['middle']['mixed_dlatents'], mixed, atol=1e-6)


def test_style_mixing_v1_explicit_truncation_and_cutoff_without_psi():
    Gs = FakeGs()
    res = mixing.style_mixing(Gs, [7, 8], [9], 'even', truncation_psi=0.6, truncation_cutoff=4,
                              log=None)
    _, _, mixed = _expected_mix(Gs, [7, 8], [9], [0, 2, 4, 6, 8], psi=0.6, cutoff=4)
    np.testing.assert_allclose(res['schemes']['even']['mixed_dlatents'], mixed, atol=1e-6)
    with pytest.raises(ValueError, match='cutoff'):
        mixing.style_mixing(Gs, [1], [2], 'coarse', truncation_cutoff=4, log=None)


def test_style_mixing_random_noise_is_passed_through():
    Gs = FakeGs()
    mixing.style_mixing(Gs, [1], [2], 'coarse', noise_mode='random', log=None)
    assert Gs.noise_calls and all(Gs.noise_calls)
    with pytest.raises(ValueError, match='noise mode'):
        mixing.style_mixing(Gs, [1], [2], 'coarse', noise_mode='fixed', log=None)


def test_cross_mixing_fewer_source_rows_repeats_last_row():
    A = FakeGs(num_rows=10, seed=1)
    B = FakeGs(num_rows=14, seed=2, resolution=16)
    notes = []
    res = mixing.cross_mixing(B, A, [3, 4], [5], 'fine', log=notes.append)
    src_a = A.components.mapping.run(seed_latents([5], 8), None)          # [1, 10, D]
    dst_b = B.components.mapping.run(seed_latents([3, 4], 8), None)       # [2, 14, D]
    mixed = res['schemes']['fine']['mixed_dlatents']
    assert mixed.shape == (2, 1, 14, 6)
    for i in range(2):
        np.testing.assert_allclose(mixed[i, 0, :8], dst_b[i, :8], atol=1e-6)
        np.testing.assert_allclose(mixed[i, 0, 8:10], src_a[0, 8:10], atol=1e-6)
        for r in range(10, 14):              # past A's last row: A's row 9 again
            np.testing.assert_allclose(mixed[i, 0, r], src_a[0, 9], atol=1e-6)
    ref = B.components.synthesis.run(mixed[1, 0][None], randomize_noise=False)[0]
    np.testing.assert_allclose(res['schemes']['fine']['images'][1, 0], ref, atol=1e-6)
    assert res['src_dlatents_native'].shape == (1, 10, 6)
    assert res['src_dlatents'].shape == (1, 14, 6)
    assert res['src_images'].shape == (1, 3, 8, 8) and res['dst_images'].shape == (2, 3, 16, 16)
    assert any('repeated' in n for n in notes)


def test_cross_mixing_more_source_rows_are_cut_and_each_model_truncates_to_its_avg():
    A = FakeGs(num_rows=18, seed=3)
    B = FakeGs(num_rows=14, seed=4)
    res = mixing.cross_mixing(B, A, [1], [2], 'all', truncation_psi=0.5, log=None)
    avg_a = A.get_var('dlatent_avg')
    src_a = A.components.mapping.run(seed_latents([2], 8), None)
    expected = avg_a + (src_a[0, :14] - avg_a) * np.float32(0.5)
    np.testing.assert_allclose(res['schemes']['all']['mixed_dlatents'][0, 0], expected, atol=1e-6)
    avg_b = B.get_var('dlatent_avg')
    dst_b = B.components.mapping.run(seed_latents([1], 8), None)
    np.testing.assert_allclose(res['dst_dlatents'][0], avg_b + (dst_b[0] - avg_b) * 0.5, atol=1e-6)


def test_cross_mixing_size_mismatch_names_both():
    A = FakeGs(latent_size=7)
    B = FakeGs()
    with pytest.raises(ValueError, match=r'latent sizes differ.*b\.pkl.*8.*a\.pkl.*7'):
        mixing.cross_mixing(B, A, [1], [2], 'coarse', log=None, dst_label='b.pkl',
                            src_label='a.pkl')
    A = FakeGs(dlatent_size=5)
    with pytest.raises(ValueError, match=r'dlatent sizes differ.*b\.pkl.*a\.pkl'):
        mixing.cross_mixing(B, A, [1], [2], 'coarse', log=None, dst_label='b.pkl',
                            src_label='a.pkl')


def test_cross_mixing_from_dlatents_w_and_wplus():
    B = FakeGs(num_rows=10)
    wplus = np.random.RandomState(5).randn(2, 14, 6).astype(np.float32)
    res = mixing.cross_mixing_from_dlatents(B, wplus, [1], 'coarse', src_seeds=[40, 41], log=None)
    mixed = res['schemes']['coarse']['mixed_dlatents']
    np.testing.assert_allclose(mixed[0, 1, :4], wplus[1, :4], atol=0)
    assert res['src_seeds'].tolist() == [40, 41] and res['src_names'] == ['src40', 'src41']
    w = wplus[:, 0]
    res = mixing.cross_mixing_from_dlatents(B, w, [1], 'fine', log=None)
    mixed = res['schemes']['fine']['mixed_dlatents']
    np.testing.assert_allclose(mixed[0, 0, 8:], np.stack([w[0]] * 2), atol=0)
    assert res['src_seeds'].tolist() == [-1, -1]
    with pytest.raises(ValueError, match='dlatent sizes differ'):
        mixing.cross_mixing_from_dlatents(B, w[:, :5], [1], 'fine', log=None)


def test_load_src_dlatents_accepted_keys_and_errors(tmp_path):
    w = np.random.RandomState(0).randn(3, 10, 6).astype(np.float32)
    good = tmp_path / 'good.npz'
    np.savez(good, dlatents=w, seeds=np.array([7, 8, 9]))
    dl, seeds = dlatents_io.load_src_dlatents(str(good))
    assert np.array_equal(dl, w) and seeds.tolist() == [7, 8, 9]
    dl, seeds = dlatents_io.load_src_dlatents(str(good), [9, 7])
    assert np.array_equal(dl, w[[2, 0]]) and seeds.tolist() == [9, 7]
    with pytest.raises(ValueError, match=r'good\.npz.*\[5\] are not in the file'):
        dlatents_io.load_src_dlatents(str(good), [5])
    bad = tmp_path / 'bad.npz'
    np.savez(bad, w=w)              # ADA-PyTorch's key is accepted too
    assert np.array_equal(dlatents_io.load_src_dlatents(str(bad))[0], w)
    np.savez(bad, latents=w)
    with pytest.raises(ValueError, match=r'bad\.npz: no "dlatents"'):
        dlatents_io.load_src_dlatents(str(bad))
    np.savez(bad, dlatents=w[0, 0])
    with pytest.raises(ValueError, match=r'bad\.npz: "dlatents" must be'):
        dlatents_io.load_src_dlatents(str(bad))
    np.savez(bad, dlatents=w, seeds=np.array([1, 2]))
    with pytest.raises(ValueError, match=r'bad\.npz: "seeds" must be'):
        dlatents_io.load_src_dlatents(str(bad))
    np.savez(bad, dlatents=w)
    with pytest.raises(ValueError, match='no "seeds"'):
        dlatents_io.load_src_dlatents(str(bad), [1])
    (tmp_path / 'junk.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match=r'junk\.npz: not a readable'):
        dlatents_io.load_src_dlatents(str(tmp_path / 'junk.npz'))
    with pytest.raises(ValueError, match='not found'):
        dlatents_io.load_src_dlatents(str(tmp_path / 'missing.npz'))


# ------------------------------------------------------------------------------------------------
# Figures, PNGs, npz.

def test_figure_layout_and_pngs(tmp_path):
    from PIL import Image
    Gs = FakeGs(resolution=32)
    res = mixing.style_mixing(Gs, [1, 2, 3], [4, 5], 'coarse,rows:8-', log=None)
    fig = figures.draw_mixing_figure(res, 'coarse')
    assert fig.size == (32 * 3, 32 * 4)
    grid = np.asarray(fig)
    want = figures.images_to_uint8(res['schemes']['coarse']['images'][2, 1][None])[0]
    assert np.array_equal(grid[3 * 32:4 * 32, 2 * 32:3 * 32], want)    # mix cells carry no label
    src = figures.images_to_uint8(res['src_images'][1][None])[0]
    assert np.array_equal(grid[24:32, 2 * 32:3 * 32], src[24:])       # below the label
    paths = mixing.write_mixing_pngs(res, str(tmp_path), prefix='t')
    assert sorted(os.path.basename(p) for p in paths['figures']) == ['t-coarse.png', 't-rows8-.png']
    assert len(paths['mixes']) == 12
    one = os.path.join(str(tmp_path), 't-rows8--dst3-src4.png')
    assert one in paths['mixes']
    img = np.asarray(Image.open(one))
    assert np.array_equal(img, figures.images_to_uint8(
        res['schemes']['rows8-']['images'][2, 0][None])[0])
    assert not [f for f in os.listdir(tmp_path) if '.tmp' in f]
    with pytest.raises(ValueError, match='say which'):
        figures.draw_mixing_figure(res)


def test_npz_keys_one_and_several_schemes(tmp_path):
    Gs = FakeGs()
    res = mixing.style_mixing(Gs, [1, 2], [3], 'coarse', log=None)
    path = str(tmp_path / 'one.npz')
    mixing.save_mixing_npz(res, path)
    with np.load(path) as f:
        assert {'dst_dlatents', 'src_dlatents', 'mixed_dlatents', 'images', 'rows', 'dst_seeds',
                'src_seeds'} <= set(f.files)
        assert f['images'].shape == (2, 1, 3, 8, 8) and f['images'].dtype == np.float32
        assert f['mixed_dlatents'].shape == (2, 1, 10, 6) and f['rows'].tolist() == [0, 1, 2, 3]
        assert f['dst_seeds'].tolist() == [1, 2] and f['src_seeds'].tolist() == [3]
    res = mixing.style_mixing(Gs, [1, 2], [3], 'coarse,odd', log=None)
    path = str(tmp_path / 'several')                     # no .npz suffix: written as given
    mixing.save_mixing_npz(res, path)
    with np.load(path) as f:
        assert f['rows_odd'].tolist() == [1, 3, 5, 7, 9]
        assert f['rows_coarse'].tolist() == [0, 1, 2, 3]
        assert f['images_odd'].shape == (2, 1, 3, 8, 8)
        assert np.array_equal(f['mixed_dlatents_coarse'],
                              res['schemes']['coarse']['mixed_dlatents'])
        assert np.array_equal(f['dst_dlatents_odd'], f['dst_dlatents'])
        assert f['src_seeds_coarse'].tolist() == [3] and 'images' not in f.files


def test_write_style_mixing_figure_from_pickle(tmp_path, monkeypatch):
    use_fake_networks(monkeypatch, {'snapshot.pkl': FakeGs()})
    paths = mixing.write_style_mixing_figure('snapshot.pkl', str(tmp_path / 'out'), dst_seeds=[1],
                                             src_seeds=[2, 3], log=None)
    assert [os.path.basename(p) for p in paths] == [
        'style-mixing-coarse.png', 'style-mixing-middle.png', 'style-mixing-fine.png']
    assert sorted(os.listdir(tmp_path / 'out')) == sorted(os.path.basename(p) for p in paths)


# ------------------------------------------------------------------------------------------------
# Real networks against the official fixtures.

@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_real_network_mix_matches_official(prefix, impl):
    ref = np.load(fixture_path(f'{prefix}_r64_ref.npz'))
    Gs = load_real_gs(f'{prefix}_r64.pkl', impl)
    # Seeds: A = seed 11 (source), B = seed 12 (destination); pair 0 of the fixture.
    res = mixing.style_mixing(Gs, [12], [11], 'coarse', truncation_psi=1, log=None)
    mix = res['schemes']['coarse']
    assert rel(res['dst_dlatents'][0], ref['mix_dlatents_B'][0]) <= TOL
    assert rel(res['src_dlatents'][0], ref['mix_dlatents_A'][0]) <= TOL
    assert rel(mix['mixed_dlatents'][0, 0], ref['mix_dlatents'][0]) <= TOL
    assert rel(mix['images'][0, 0], ref['mix_images'][0]) <= TOL
    # Both fixture pairs from the official dlatents (pairs on the diagonal).
    out = mixing.mix_and_render(Gs, ref['mix_dlatents_B'], ref['mix_dlatents_A'], 'coarse',
                                log=None)['coarse']
    for k in range(2):
        assert np.array_equal(out['mixed_dlatents'][k, k], ref['mix_dlatents'][k])
        assert rel(out['images'][k, k], ref['mix_images'][k]) <= TOL


@pytest.mark.parametrize('impl', IMPLS)
def test_real_network_default_truncation_per_version(impl):
    """StyleGAN2 Gs defaults to psi 0.5 on all rows for mixing, StyleGAN to none."""
    ref1 = np.load(fixture_path('sg1_r64_ref.npz'))
    Gs1 = load_real_gs('sg1_r64.pkl', impl)
    assert not mixing.is_stylegan2(Gs1)
    res = mixing.style_mixing(Gs1, [12], [11], 'none', log=None)
    assert res['truncation']['dst'] == (None, None)
    assert rel(res['dst_dlatents'][0], ref1['mix_dlatents_B'][0]) <= TOL
    ref2 = np.load(fixture_path('sg2_r64_ref.npz'))
    Gs2 = load_real_gs('sg2_r64.pkl', impl)
    assert mixing.is_stylegan2(Gs2)
    res = mixing.style_mixing(Gs2, [12], [11], 'none', log=None)
    assert res['truncation']['dst'] == (0.5, None)
    avg = ref2['dlatent_avg']
    expected = avg + (ref2['mix_dlatents_B'][0] - avg) * np.float32(0.5)
    assert rel(res['dst_dlatents'][0], expected) <= TOL
