"""Projection files (projected.npz, and ADA-PyTorch's key ``w``) in the scripts that take
dlatents: generate_images.py --dlatents renders them with their saved noise maps; cross_mixing,
sefa, local_editing and latent_walk accept them."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_user_error, fixture_path, load_real_gs, use_loaded_networks
from editing import projector as P


@pytest.fixture(scope='module')
def projection(tmp_path_factory):
    """A projected.npz for the StyleGAN fixture in the projector's format (W+ dlatents of two
    entries and their noise maps; the values need not come from an optimisation here), the
    images they render to, and the same dlatents as an ADA-PyTorch file (key ``w``, no noise)."""
    d = tmp_path_factory.mktemp('projection')
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    rng = np.random.RandomState(0)
    w = Gs.components.mapping.run(rng.randn(2, 32), None)
    dlatents = (w + 0.3 * rng.randn(*w.shape)).astype(np.float32)                # [2, 10, 48]
    syn = Gs.components.synthesis
    noises = [rng.randn(2, *syn.get_var(n).shape).astype(np.float32) for n in P.noise_names(syn)]
    result = dict(dlatents=dlatents, noises=noises, dist=np.zeros(2, np.float32),
                  images=P.render(Gs, dlatents, noises))
    path = P.save_projection(str(d / 'projected.npz'), result, 'w+', 'pixel', ['a.png', 'b.png'])
    np.savez(d / 'ada.npz', w=dlatents)
    return dict(npz=path, ada=str(d / 'ada.npz'), result=result, dir=d)


@pytest.fixture
def cached_networks(monkeypatch):
    """generate_images reuses the fixture networks conftest.load_real_gs loaded once."""
    import conftest
    from editing import impl
    real = impl.load_network

    def load(path, impl_name='tf2'):
        key = (os.path.basename(path), impl_name)
        if key not in conftest._LOADED:          # the same cache as load_real_gs
            conftest._LOADED[key] = real(path, impl_name)[2]
        return None, None, conftest._LOADED[key]
    monkeypatch.setattr(impl, 'load_network', load)


def read_pngs(paths):
    return np.stack([np.asarray(Image.open(p)) for p in paths])


def test_generate_images_renders_a_projection_with_its_noise_maps(projection, tmp_path, cached_networks):
    from editing.generate_images import generate_images
    written = generate_images(fixture_path('sg1_r64.pkl'), None, None, outdir=str(tmp_path / 'o'),
                              dlatents_npz=projection['npz'], grid=True)
    assert [os.path.basename(p) for p in written] == ['proj00.png', 'proj01.png', 'grid.png']
    want = P.to_uint8(projection['result']['images'])
    np.testing.assert_array_equal(read_pngs(written[:2]), want)
    # ADA's key w (no noise maps): the network's own noise inputs; close, but not the projection.
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    written = generate_images(fixture_path('sg1_r64.pkl'), None, None, outdir=str(tmp_path / 'a'),
                              dlatents_npz=projection['ada'])
    ada = read_pngs(written)
    np.testing.assert_array_equal(ada, P.to_uint8(P.render(Gs, projection['result']['dlatents'])))
    assert not np.array_equal(ada, want)
    # Truncation only when asked: psi 0 gives dlatent_avg on every row (with the saved noise).
    written = generate_images(fixture_path('sg1_r64.pkl'), None, 0.0, outdir=str(tmp_path / 't'),
                              dlatents_npz=projection['npz'])
    avg = np.broadcast_to(Gs.get_var('dlatent_avg'), (2, 10, 48)).astype(np.float32)
    np.testing.assert_array_equal(read_pngs(written), P.to_uint8(P.render(
        Gs, avg, [n for n in P.load_noises(projection['npz'], Gs, 2)])))


def test_generate_images_legacy_impl_applies_the_noise_maps(projection, tmp_path, cached_networks):
    from editing.generate_images import generate_images
    written = generate_images(fixture_path('sg1_r64.pkl'), None, None, outdir=str(tmp_path / 'o'),
                              dlatents_npz=projection['npz'], impl='legacy')
    got = read_pngs(written).astype(int)
    want = P.to_uint8(projection['result']['images']).astype(int)
    assert np.abs(got - want).max() <= 1                       # two implementations, float32


def _error_case_argv(projection, tmp_path, args):
    """Writes projected.npz and a copy with a wrong-sized noise map (bad_noise.npz) into tmp_path;
    returns the script's arguments with 'P:<name>' replaced by the path in tmp_path."""
    with np.load(projection['npz']) as f:
        arrays = {k: f[k] for k in f.files}
    arrays['noises_3'] = arrays['noises_3'][:, :, :, :4]
    np.savez(tmp_path / 'bad_noise.npz', **arrays)
    import shutil
    shutil.copy(projection['npz'], tmp_path / 'projected.npz')
    return ['--network', fixture_path('sg1_r64.pkl'), '--outdir', tmp_path / 'out'] + \
        [str(tmp_path / a[2:]) if str(a).startswith('P:') else a for a in args]


@pytest.mark.parametrize('args, words', [
    (['--seeds', '0', '--dlatents', 'P:projected.npz'], ['exactly one of --seeds and --dlatents']),
    ([], ['exactly one of --seeds and --dlatents']),
    (['--dlatents', 'P:none.npz'], ['none.npz (--dlatents)', 'not found']),
    (['--dlatents', 'P:bad_noise.npz'], ['bad_noise.npz (--dlatents)', 'noises_3', 'expected [2, 1, 1, 8, 8]']),
    (['--dlatents', 'P:projected.npz', '--trunc-cutoff', '4'], ['--trunc-cutoff needs --trunc']),
])
def test_generate_images_dlatents_errors(projection, tmp_path, args, words):
    argv = _error_case_argv(projection, tmp_path, args)
    assert_user_error('generate_images.py', argv, words, untouched=[tmp_path])


# ------------------------------------------------------------------------------------------------
# The other scripts that take dlatent files.

@pytest.mark.parametrize('kind', ['npz', 'ada'])
def test_editing_scripts_accept_projection_files(projection, tmp_path, monkeypatch, kind):
    from editing import latent_walk, local_editing, mixing, sefa
    use_loaded_networks(monkeypatch, 'tf2')
    pkl, path = fixture_path('sg1_r64.pkl'), projection[kind]
    paths = mixing.run_cross_mixing(pkl, [1], 'coarse', str(tmp_path / 'cross'),
                                    src_dlatents_npz=path, log=None)
    assert len(paths['mixes']) == 2 and all(os.path.isfile(p) for p in paths['figures'])
    out = sefa.run_sefa(pkl, outdir=str(tmp_path / 'sefa'), dlatents_npz=path, indices=[0],
                        distances=[-1, 0, 1], log=None)
    with np.load(out['edits']) as f:
        edits = f[[k for k in f.files if 'dlatent' in k][0]]
    np.testing.assert_allclose(edits.reshape(2, 3, 10, 48)[:, 1], projection['result']['dlatents'],
                               atol=1e-6)                    # distance 0 is the projection itself
    local_editing.run_local_editing(pkl, str(tmp_path / 'local'), '16', mask_half='left',
                                    src_dlatents=path, src_index=1, ref_seed=2, log=None)
    assert os.path.isfile(tmp_path / 'local' / 'local-edit-result.png')
    walk = latent_walk.run_latent_walk(pkl, str(tmp_path / 'walk.gif'), dlatents_npz=path,
                                       frames_per_keyframe=2, progress=False, log=None)
    assert walk['frames'] == 4 and os.path.isfile(tmp_path / 'walk.gif')


def test_style_mixing_with_projection_files(projection, tmp_path, monkeypatch):
    from editing import mixing
    use_loaded_networks(monkeypatch, 'tf2')
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    pkl = fixture_path('sg1_r64.pkl')
    # Destinations (rows) from projected.npz, sources (columns) from seeds.
    paths = mixing.run_style_mixing(pkl, None, [4, 5], 'coarse', str(tmp_path / 'a'),
                                    out_npz=str(tmp_path / 'a.npz'), log=None,
                                    dst_dlatents_npz=projection['npz'])
    assert sorted(os.path.basename(p) for p in paths['mixes']) == [
        f'style-mixing-coarse-dst-item{i}-src{s}.png' for i in (0, 1) for s in (4, 5)]
    with np.load(tmp_path / 'a.npz') as f:
        np.testing.assert_array_equal(f['dst_dlatents'], projection['result']['dlatents'])  # not truncated
        np.testing.assert_array_equal(f['dst_images'], projection['result']['images'])      # own noise maps
        mixed, images, rows = f['mixed_dlatents'], f['images'], f['rows']
    noises = P.load_noises(projection['npz'], Gs, 2)
    for i in range(2):      # every mix of destination i is rendered with destination i's noise maps
        want = P.render(Gs, mixed[i], [np.repeat(n[i:i + 1], 2, axis=0) for n in noises])
        np.testing.assert_array_equal(images[i], want)
        keep = np.setdiff1d(np.arange(10), rows)
        np.testing.assert_array_equal(mixed[i][:, keep], np.broadcast_to(
            projection['result']['dlatents'][i][keep], (2, len(keep), 48)))
    # Sources from ADA's file (key w), destinations from seeds.
    mixing.run_style_mixing(pkl, [1], None, 'fine', str(tmp_path / 'b'), out_npz=str(tmp_path / 'b.npz'),
                            log=None, src_dlatents_npz=projection['ada'])
    with np.load(tmp_path / 'b.npz') as f:
        np.testing.assert_array_equal(f['src_dlatents'], projection['result']['dlatents'])
        assert list(f['src_seeds']) == [-1, -1] and list(f['dst_seeds']) == [1]
    with pytest.raises(ValueError, match='exactly one of --dst-seeds and --dlatents'):
        mixing.run_style_mixing(pkl, [1], [2], 'fine', str(tmp_path / 'c'), log=None,
                                dst_dlatents_npz=projection['npz'])
    assert not os.path.exists(tmp_path / 'c')


def test_style_mixing_cli_with_projection_files(projection, tmp_path):
    from conftest import run_script
    out = tmp_path / 'out'
    proc = run_script('style_mixing.py', '--network', fixture_path('sg1_r64.pkl'), '--dlatents',
                      projection['npz'], '--src-dlatents', projection['ada'], '--scheme', 'coarse',
                      '--outdir', out, '--out-npz', tmp_path / 'm.npz')
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == sorted(['style-mixing-coarse.png'] + [
        f'style-mixing-coarse-dst-item{i}-src-item{j}.png' for i in (0, 1) for j in (0, 1)])
    with np.load(tmp_path / 'm.npz') as f:
        np.testing.assert_array_equal(f['dst_images'], projection['result']['images'])


@pytest.mark.parametrize('args, words', [
    (['--dst-seeds', '1', '--dlatents', 'P:projected.npz', '--src-seeds', '2'],
     ['exactly one of --dst-seeds and --dlatents']),
    (['--src-seeds', '2'], ['exactly one of --dst-seeds and --dlatents']),
    (['--dst-seeds', '1'], ['exactly one of --src-seeds and --src-dlatents']),
    (['--dlatents', 'P:none.npz', '--src-seeds', '2'], ['none.npz (--dlatents)', 'not found']),
    (['--dst-seeds', '1', '--src-dlatents', 'P:bad_noise.npz'],
     ['bad_noise.npz (--src-dlatents)', 'noises_3']),
])
def test_style_mixing_cli_file_errors(projection, tmp_path, args, words):
    argv = _error_case_argv(projection, tmp_path, args)
    assert_user_error('style_mixing.py', argv, words, untouched=[tmp_path])
