"""tf2 StyleGAN2 architectures the fixture lacks, against the independent NumPy reference.

tests/reference_sg2_numpy.py was written from the spec alone (it matches NVIDIA's fixture outputs
to ~1e-6) and shares no code with tf2/. Each test builds a small tf2 network (32 px, few feature
maps), moves every variable (noise_strength, mod_bias, const, noise inputs, dlatent_avg, ...) to
non-trivial random values, converts it to an official NetworkState with tf2.checkpoint and runs
the reference on that state. Covered: G 'orig'/'skip'/'resnet' with fused_modconv on and off,
D 'orig'/'skip'/'resnet', labels, the progressive-growing configs b-d networks
(G_synthesis_stylegan_revised, D_stylegan) and gradients of the training losses' kinds.
"""

import types

import numpy as np
import pytest
import tensorflow as tf

import reference_sg2_numpy as R2
import tf2
from tf2.network import Network
import tf2.ops
from tf2 import checkpoint
from tf2 import networks_stylegan2 as nets2
from conftest import rel, d_kwargs

TOL = 1e-4
KW = dict(num_channels=3, resolution=32, label_size=0, latent_size=16, dlatent_size=16,
          mapping_fmaps=16, mapping_layers=2, fmap_base=64, fmap_max=16)   # nf: 16 16 8 4


def randomize(model, seed=0):
    """Every official variable (lod excepted) to N(0,1), biases and strengths scaled by 0.3."""
    rng = np.random.RandomState(seed)
    for name, v in model.official_variables().items():
        if name.endswith('lod'):
            continue
        scale = 0.3 if name.split('/')[-1] in ('bias', 'mod_bias', 'noise_strength') else 1.0
        v.assign(np.asarray(rng.randn(*v.shape), np.float32) * scale)
    return model


def latents(n, seed=5, size=16):
    return np.random.RandomState(seed).randn(n, size).astype(np.float32)


def _state(variables, **static_kwargs):
    return types.SimpleNamespace(variables=dict(variables), static_kwargs=dict(static_kwargs))


# ------------------------------------------------------------------------------------------------
# Generator architectures.

@pytest.mark.parametrize('fused_modconv', [True, False])
@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_generator_matches_reference(architecture, fused_modconv):
    G = randomize(nets2.G_main(architecture=architecture, fused_modconv=fused_modconv, **KW),
                  seed=1)
    state = checkpoint.state_from_model(G, 'Gs')
    Gs = Network(G)
    z = latents(3)
    for psi, cutoff in ((1.0, None), (0.5, None), (0.7, 3)):
        expect, _ = R2.G_main(state, z, truncation_psi=psi, truncation_cutoff=cutoff)
        out = Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff,
                     randomize_noise=False)
        assert out.shape == (3, 3, 32, 32)
        assert rel(out, expect) <= TOL, (psi, cutoff)


def test_generator_variables_per_architecture():
    names = {a: list(nets2.G_main(architecture=a, **KW).synthesis.own_official_variables())
             for a in ('orig', 'skip', 'resnet')}
    assert [n for n in names['skip'] if 'ToRGB' in n][::4] == [
        '4x4/ToRGB/weight', '8x8/ToRGB/weight', '16x16/ToRGB/weight', '32x32/ToRGB/weight']
    for a in ('orig', 'resnet'):
        assert [n for n in names[a] if 'ToRGB' in n] == [
            '32x32/ToRGB/weight', '32x32/ToRGB/mod_weight', '32x32/ToRGB/mod_bias',
            '32x32/ToRGB/bias']
    assert [n for n in names['resnet'] if 'Skip' in n] == [
        '8x8/Skip/weight', '16x16/Skip/weight', '32x32/Skip/weight']
    i = names['resnet'].index('16x16/Skip/weight')      # after Conv1, before the next block
    assert names['resnet'][i - 1] == '16x16/Conv1/bias'
    assert names['resnet'][i + 1] == '32x32/Conv0_up/weight'
    assert not any('Skip' in n for n in names['skip'] + names['orig'])
    assert names['skip'][:8] == [f'noise{i}' for i in range(7)] + ['4x4/Const/const']


@pytest.mark.parametrize('impl', ['ref', 'cpp'])
def test_fused_and_unfused_modconv_agree_with_dynamic_batch(impl):
    """Same variables, fused_modconv True/False: equal values, eagerly and in a tf.function
    with a free batch dimension (the grouped conv then has an unknown channel count)."""
    if impl == 'cpp':
        try:
            tf2.ops.upfirdn2d(tf.zeros([1, 2, 2, 1]), np.ones([1, 1]), impl='cpp')
        except tf2.ops.OpBuildError as e:
            pytest.fail(f'compiled ops unavailable: {e}', pytrace=False)
    Ga = randomize(nets2.G_main(architecture='resnet', fused_modconv=True, impl=impl, **KW), 3)
    Gb = nets2.G_main(architecture='resnet', fused_modconv=False, impl=impl, **KW)
    checkpoint.copy_vars(Gb, Ga)
    z = latents(4)
    a = Ga(z, None, randomize_noise=False).numpy()
    b = Gb(z, None, randomize_noise=False).numpy()
    assert rel(a, b) <= 1e-5
    spec = [tf.TensorSpec([None, 16], tf.float32)]
    fa = tf.function(lambda x: Ga(x, None, randomize_noise=False), input_signature=spec)
    assert rel(fa(z[:3]).numpy(), a[:3]) <= 1e-5
    assert rel(fa(z).numpy(), a) <= 1e-5


def test_modulated_conv_up_matches_reference_per_sample():
    rng = np.random.RandomState(0)
    x = rng.randn(2, 5, 5, 3).astype(np.float32)                     # NHWC
    w = rng.randn(3, 3, 3, 4).astype(np.float32)
    s = rng.rand(2, 3).astype(np.float32) + 0.5
    for fused in (True, False):
        y = nets2.modulated_conv2d(tf.constant(x), tf.constant(w), tf.constant(s), up=True,
                                   fused_modconv=fused).numpy()
        for n in range(2):
            ww = w * s[n][None, None, :, None]
            ww = ww / np.sqrt(np.sum(ww.astype(np.float64) ** 2, axis=(0, 1, 2)) + 1e-8)
            expect = R2.upsample_conv_2d(x[n:n + 1].transpose(0, 3, 1, 2), ww)
            assert rel(y[n:n + 1].transpose(0, 3, 1, 2), expect) <= 1e-5


# ------------------------------------------------------------------------------------------------
# Discriminator architectures.

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_discriminator_matches_reference(architecture):
    D = randomize(nets2.D_stylegan2(architecture=architecture, **d_kwargs(KW)), seed=2)
    state = checkpoint.state_from_model(D)
    imgs = np.random.RandomState(3).randn(8, 3, 32, 32).astype(np.float32)
    Dn = Network(D)
    for n in (8, 2):                           # minibatch-stddev groups of 4 and of 2
        expect = R2.D_stylegan2(state, imgs[:n])
        assert rel(Dn.run(imgs[:n], None), expect) <= TOL


def test_discriminator_variables_per_architecture():
    names = {a: list(nets2.D_stylegan2(architecture=a, **d_kwargs(KW)).own_official_variables())
             for a in ('orig', 'skip', 'resnet')}
    assert [n for n in names['skip'] if 'FromRGB/weight' in n] == [
        '32x32/FromRGB/weight', '16x16/FromRGB/weight', '8x8/FromRGB/weight',
        '4x4/FromRGB/weight']
    assert [n for n in names['orig'] if 'FromRGB' in n] == ['32x32/FromRGB/weight',
                                                            '32x32/FromRGB/bias']
    assert names['resnet'][-7:] == ['8x8/Skip/weight', '4x4/Conv/weight', '4x4/Conv/bias',
                                    '4x4/Dense0/weight', '4x4/Dense0/bias', 'Output/weight',
                                    'Output/bias']


# ------------------------------------------------------------------------------------------------
# Labels: LabelConcat in the mapping, label switch on D's output.

def test_labels_in_mapping_and_discriminator():
    kw = dict(KW, label_size=3)
    G = randomize(nets2.G_main(**kw), seed=4)
    D = randomize(nets2.D_stylegan2(architecture='skip', **d_kwargs(kw)), seed=5)
    assert list(G.mapping.own_official_variables())[0] == 'LabelConcat/weight'
    assert G.mapping.own_official_variables()['Dense0/weight'].shape == (32, 16)
    assert D.own_official_variables()['Output/weight'].shape == (16, 3)
    z = latents(4)
    labels = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    state = checkpoint.state_from_model(G)
    mp = state.components['mapping']
    x = np.concatenate([z, labels @ mp.variables['LabelConcat/weight']], axis=1)
    dl = R2.mapping(mp.variables, x, mp.static_kwargs, 8)
    Gn = Network(G)
    assert rel(Gn.components.mapping.run(z, labels), dl) <= TOL
    expect = R2.synthesis(state.components['synthesis'].variables, dl,
                          state.components['synthesis'].static_kwargs)
    assert rel(Gn.run(z, labels, truncation_psi=1.0, randomize_noise=False), expect) <= TOL
    imgs = np.random.RandomState(6).randn(4, 3, 32, 32).astype(np.float32)
    raw = R2.D_stylegan2(checkpoint.state_from_model(D), imgs)              # [N, 3]
    scores = Network(D).run(imgs, labels)
    assert scores.shape == (4, 1)
    assert rel(scores, np.sum(raw * labels, axis=1, keepdims=True)) <= TOL


# ------------------------------------------------------------------------------------------------
# Configs b-d: progressive growing with v2 layers.

def _progressive_as_orig(state, resolution, rgb='ToRGB'):
    """Variables of a G_synthesis_stylegan_revised (rgb 'ToRGB') or D_stylegan ('FromRGB') state
    seen as an 'orig' network at ``resolution``: {rgb}_lod{k} of that resolution becomes
    ``RxR/{rgb}``, the other levels' and ``lod`` are left out."""
    rl_full = int(np.log2(state.static_kwargs['resolution']))
    rl = int(np.log2(resolution))
    out = {}
    for name, value in state.variables.items():
        if name.startswith(f'{rgb}_lod{rl_full - rl}/'):
            out[f'{resolution}x{resolution}/{rgb}/' + name.split('/')[-1]] = value
        elif not name.startswith(f'{rgb}_lod') and name != 'lod':
            out[name] = value
    return out


def test_revised_synthesis_progressive_growing_matches_reference():
    G = randomize(nets2.G_main(synthesis_func='G_synthesis_stylegan_revised', **KW), seed=7)
    syn = G.synthesis
    assert isinstance(syn, nets2.SynthesisStyleGANRevised)
    names = list(syn.own_official_variables())
    assert names[:8] == ['lod'] + [f'noise{i}' for i in range(7)]
    assert [n for n in names if 'ToRGB_lod' in n][::4] == [
        'ToRGB_lod3/weight', 'ToRGB_lod2/weight', 'ToRGB_lod1/weight', 'ToRGB_lod0/weight']
    assert G.static_kwargs['synthesis_func'] == 'G_synthesis_stylegan_revised'
    state = checkpoint.state_from_model(syn)
    dl = np.random.RandomState(8).randn(2, 8, 16).astype(np.float32)
    kw = dict(KW, architecture='orig')
    img0 = R2.synthesis(_progressive_as_orig(state, 32), dl, dict(kw, resolution=32))
    img1 = R2.synthesis(_progressive_as_orig(state, 16), dl[:, :6], dict(kw, resolution=16))
    img1 = img1.repeat(2, axis=2).repeat(2, axis=3)                        # nearest x2
    img2 = R2.synthesis(_progressive_as_orig(state, 8), dl[:, :4], dict(kw, resolution=8))
    img2 = img2.repeat(4, axis=2).repeat(4, axis=3)
    Gn = Network(G)
    for lod, expect in ((0.0, img0), (1.0, img1), (0.5, 0.5 * (img0 + img1)),
                        (1.75, 0.25 * img1 + 0.75 * img2), (2.0, img2)):
        G.lod.assign(lod)                  # G copies its lod into the synthesis (official)
        out = Gn.components.synthesis.run(dl, randomize_noise=False) if lod == 0 else None
        syn.lod.assign(lod)
        got = Gn.components.synthesis.run(dl, randomize_noise=False)
        assert rel(got, expect) <= TOL, lod
        if out is not None:
            assert rel(out, expect) <= TOL
    # Through G_main: lod copied from G, truncation psi 0.5 on all rows by default.
    syn.lod.assign(0.0)
    G.lod.assign(1.0)
    z = latents(2)
    mp = checkpoint.state_from_model(G.mapping)
    w = R2.mapping(mp.variables, z, mp.static_kwargs, 8)
    avg = G.dlatent_avg.numpy()
    w = avg + (w - avg) * 0.5
    expect = R2.synthesis(_progressive_as_orig(state, 16), w[:, :6], dict(kw, resolution=16))
    got = Gn.run(z, None, randomize_noise=False)
    assert syn.lod.numpy() == 1.0
    assert rel(got, expect.repeat(2, axis=2).repeat(2, axis=3)) <= TOL


def test_d_stylegan_progressive_growing_matches_reference():
    D = randomize(nets2.D_stylegan(**d_kwargs(KW)), seed=9)
    names = list(D.own_official_variables())
    assert names[:3] == ['lod', 'FromRGB_lod0/weight', 'FromRGB_lod0/bias']
    assert names[3:9] == ['32x32/Conv0/weight', '32x32/Conv0/bias', '32x32/Conv1_down/weight',
                          '32x32/Conv1_down/bias', 'FromRGB_lod1/weight', 'FromRGB_lod1/bias']
    assert names[-6:] == ['4x4/Conv/weight', '4x4/Conv/bias', '4x4/Dense0/weight',
                          '4x4/Dense0/bias', 'Output/weight', 'Output/bias']
    state = checkpoint.state_from_model(D)
    imgs = np.random.RandomState(10).randn(4, 3, 32, 32).astype(np.float32)
    box = lambda x, f: x.reshape(4, 3, 32 // f, f, 32 // f, f).mean(axis=(3, 5))  # noqa: E731
    Dn = Network(D)
    for lod in (0, 1, 2):
        res = 32 >> lod
        expect = R2.D_stylegan2(_state(_progressive_as_orig(state, res, 'FromRGB'), **dict(
            KW, resolution=res, architecture='orig')), box(imgs, 2 ** lod))
        D.lod.assign(float(lod))
        assert rel(Dn.run(imgs, None), expect) <= TOL, lod
    D.lod.assign(0.0)


def test_configs_b_to_d_snapshot_roundtrip(tmp_path):
    G = randomize(nets2.G_main(synthesis_func='G_synthesis_stylegan_revised', **KW), 11)
    D = randomize(nets2.D_stylegan(**d_kwargs(KW)), 12)
    G.lod.assign(0.5)
    D.lod.assign(0.5)
    path = str(tmp_path / 'snap.pkl')
    checkpoint.save_networks(path, G, D, G)
    G2, D2, _ = tf2.load_network(path)
    assert G2.model.synthesis.build_func_name == 'G_synthesis_stylegan_revised'
    assert D2.build_func_name == 'D_stylegan' and D2.get_var('lod') == 0.5
    z = latents(2)
    assert rel(G2.run(z, None, randomize_noise=False),
               G(z, None, randomize_noise=False).numpy()) <= 1e-5
    imgs = np.random.RandomState(1).randn(2, 3, 32, 32).astype(np.float32)
    assert rel(D2.run(imgs, None), D(imgs).numpy()) <= 1e-5


# ------------------------------------------------------------------------------------------------
# Training mode and gradients.

def test_training_mode_dlatent_avg_and_style_mixing():
    G = randomize(nets2.G_main(**KW), seed=13)
    z = latents(4)
    w = G.mapping(z).numpy()
    avg0 = G.dlatent_avg.numpy()
    _, dl = G(z, None, is_training=True, style_mixing_prob=0.0, return_dlatents=True)
    np.testing.assert_allclose(dl.numpy(), w, rtol=1e-5, atol=1e-6)      # no truncation
    expect_avg = w[:, 0].mean(axis=0) + (avg0 - w[:, 0].mean(axis=0)) * 0.995
    np.testing.assert_allclose(G.dlatent_avg.numpy(), expect_avg, rtol=1e-5, atol=1e-6)
    cutoffs = set()
    for _ in range(12):
        _, dl = G(z, None, is_training=True, style_mixing_prob=1.0, return_dlatents=True)
        dl = dl.numpy()
        same = np.all(np.isclose(dl, w, rtol=1e-5, atol=1e-6), axis=(0, 2))   # [L]
        cutoff = int(np.argmin(same))
        assert 1 <= cutoff < 8 and same[:cutoff].all() and not same[cutoff:].any()
        np.testing.assert_allclose(dl[:, cutoff:], np.repeat(dl[:, cutoff:cutoff + 1],
                                                             8 - cutoff, axis=1))
        cutoffs.add(cutoff)
    assert len(cutoffs) > 1


def test_gradients_first_and_second_order_in_tf_function():
    """Gradients the StyleGAN2 losses need: G non-saturating + path-length style double
    gradient through the fused modulated convs, D R1 through conv_downsample_2d."""
    kw = dict(KW, resolution=16)          # small: tracing the double gradients dominates
    G = randomize(nets2.G_main(**kw), seed=14)
    D = randomize(nets2.D_stylegan2(**d_kwargs(kw)), seed=15)
    gen = tf.random.Generator.from_seed(1)

    @tf.function
    def step(z):
        with tf.GradientTape(persistent=True) as outer:
            images, dl = G(z, None, is_training=True, return_dlatents=True, rng=gen)
            with tf.GradientTape() as inner:
                inner.watch(dl)
                img2 = G.synthesis(dl, rng=gen)
                pl = tf.reduce_sum(img2 * 0.1)
            pl_grad = inner.gradient(pl, dl)
            pl_len = tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(pl_grad), axis=2)))
            g_loss = tf.reduce_mean(tf.nn.softplus(-D(images)))
            reals = tf.random.normal([4, 3, 16, 16])
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(reals)
                real_scores = tf.reduce_sum(D(reals))
            r1 = tf.reduce_sum(tf.square(r1_tape.gradient(real_scores, reals)))
        return (outer.gradient(g_loss, G.trainable_variables),
                outer.gradient(pl_len, G.synthesis.trainable_variables),
                outer.gradient(r1, D.trainable_variables))

    g_grads, pl_grads, r1_grads = step(tf.constant(latents(4)))
    for grads in (g_grads, pl_grads, r1_grads):
        assert all(g is not None for g in grads)
        assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in pl_grads) > 0
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in r1_grads) > 0


def test_fused_and_unfused_gradients_agree():
    Ga = randomize(nets2.G_main(fused_modconv=True, **KW), seed=16)
    Gb = nets2.G_main(fused_modconv=False, **KW)
    checkpoint.copy_vars(Gb, Ga)
    z = tf.constant(latents(3))
    grads = []
    for G in (Ga, Gb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(G(z, None, truncation_psi=1.0,
                                              randomize_noise=False)))
        grads.append(tape.gradient(loss, G.synthesis.trainable_variables))
    for a, b in zip(*grads):
        assert rel(a.numpy(), b.numpy()) <= 1e-4


def test_unknown_options_raise_clear_errors():
    with pytest.raises(ValueError, match='architecture'):
        nets2.G_main(architecture='fancy', **KW)
    with pytest.raises(ValueError, match='architecture'):
        nets2.D_stylegan2(architecture='fancy', **d_kwargs(KW))
    with pytest.raises(ValueError, match='nonlinearity'):
        nets2.D_stylegan2(nonlinearity='cube', **d_kwargs(KW))
    with pytest.raises(ValueError, match='synthesis_func'):
        nets2.G_main(synthesis_func='G_synthesis_nope', **KW)
    with pytest.raises(ValueError, match='data_format'):
        nets2.D_stylegan2(data_format='NWHC', **d_kwargs(KW))


@pytest.mark.nchw       # conftest: runs in a oneDNN child process where this CPU lacks NCHW convs
@pytest.mark.parametrize('fused_modconv', [True, False])
def test_nchw_resnet_generator_and_skip_discriminator(fused_modconv):
    G = randomize(nets2.G_main(architecture='resnet', fused_modconv=fused_modconv,
                               data_format='NCHW', **KW), seed=17)
    D = randomize(nets2.D_stylegan2(architecture='skip', data_format='NCHW', **d_kwargs(KW)), seed=18)
    z = latents(2)
    expect, _ = R2.G_main(checkpoint.state_from_model(G), z, truncation_psi=0.5)
    assert rel(G(z, None, randomize_noise=False).numpy(), expect) <= TOL
    imgs = np.random.RandomState(19).randn(4, 3, 32, 32).astype(np.float32)
    assert rel(D(imgs).numpy(), R2.D_stylegan2(checkpoint.state_from_model(D), imgs)) <= TOL
