"""Checks against NVIDIA's fixture outputs and the official variable lists, shared by the
legacy_tf and tf2 tests of StyleGAN and StyleGAN2 (import them with `from fixture_checks import ...`).

The tests of the two implementations and the two versions compare the same reference keys
(tests/data/official/*_ref.npz) the same way; the comparisons live here once, each test module
keeps its own assertions about what differs.
"""
import re

import numpy as np
import pytest

from conftest import TOL, fixture_path, rel, spec_path, uint8_mismatch

UINT8_TOL = 0.001     # fraction of uint8 values allowed to differ (by one)


# ------------------------------------------------------------------------------------------------
# Fixtures: the networks and reference outputs of an official fixture, once per test module.

def fixture_networks(pkl_name, load):
    """A module-scoped pytest fixture returning ``load(fixture_path(pkl_name))``; assign it to
    the fixture's name in the test module (``sg1 = fixture_networks('sg1_r64.pkl', load)``)."""
    @pytest.fixture(scope='module')
    def networks():
        return load(fixture_path(pkl_name))
    return networks


def reference_outputs(npz_name):
    """A module-scoped pytest fixture: NVIDIA's outputs ``np.load(fixture_path(npz_name))``."""
    @pytest.fixture(scope='module')
    def ref():
        return np.load(fixture_path(npz_name))
    return ref


def own_tflib_graph(scope='module'):
    """An autouse pytest fixture giving the module's (scope 'module') or each test's ('function')
    legacy_tf networks a graph of their own (tflib.reset_tf): TensorFlow prunes the whole graph
    for every new fetch signature, so a graph shared by all tests gets slow."""
    @pytest.fixture(scope=scope, autouse=True)
    def own_graph():
        from legacy_tf import tflib
        tflib.reset_tf()
    return own_graph


@pytest.fixture
def fresh_tf_context():
    """A legacy_tf graph and session for big throw-away networks, closed (memory freed) after."""
    from legacy_tf import tflib
    tflib.reset_tf()
    yield
    tflib.get_session().close()
    tflib.reset_tf()


def d_images(ref):
    """The discriminator inputs of the fixtures: images_psi1 and their mirror images."""
    imgs = ref['images_psi1']
    return np.concatenate([imgs, imgs[:, :, :, ::-1]])


# (reference key, Gs.run keyword arguments) of each fixture's images; the version's default
# truncation included (v1: psi 0.7 on rows < 8, v2: psi 0.5 on all rows).
GS_IMAGES = {
    'sg1_r64': [
        ('images_psi1', dict(truncation_psi=1.0)),
        ('images_psi07', dict(truncation_psi=0.7)),
        ('images_psi07', dict()),                               # G_style defaults: 0.7, rows < 8
        ('images_psi05_cutoffall', dict(truncation_psi=0.5, truncation_cutoff=10)),
    ],
    'sg2_r64': [
        ('images_psi1', dict(truncation_psi=1.0)),
        ('images_psi05', dict()),                               # G_main defaults: 0.5, all rows
        ('images_psi05', dict(truncation_psi=0.5, truncation_cutoff=None)),
        ('images_psi07_cutoff8', dict(truncation_psi=0.7, truncation_cutoff=8)),
    ],
}


# ------------------------------------------------------------------------------------------------
# Comparisons.

def assert_matches(out, expected, tol=TOL):
    """A float32 output of the reference's shape within ``tol`` of it."""
    assert out.shape == expected.shape and out.dtype == np.float32
    assert rel(out, expected) <= tol


def assert_gs_images(Gs, ref, key, kwargs):
    """Gs on the fixture's latents with its stored noise and ``kwargs`` (a GS_IMAGES case)."""
    assert_matches(Gs.run(ref['latents'], None, randomize_noise=False, **kwargs), ref[key])


def assert_mapping_and_dlatent_avg(Gs, ref):
    """Gs's mapping of the fixture's latents and its W average, as NVIDIA's."""
    assert rel(Gs.components.mapping.run(ref['latents'], None), ref['dlatents']) <= TOL
    assert rel(Gs.get_var('dlatent_avg'), ref['dlatent_avg']) <= TOL


def assert_synthesis(Gs, ref, dlatents_key, images_key):
    """Gs's synthesis of ref[dlatents_key] with the stored noise gives NVIDIA's ref[images_key]."""
    out = Gs.components.synthesis.run(ref[dlatents_key], randomize_noise=False)
    assert rel(out, ref[images_key]) <= TOL


def assert_uint8_matches(out, expected):
    """A uint8 output of the reference's shape, off by at most one, in few values (UINT8_TOL)."""
    assert out.dtype == np.uint8 and out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert uint8_mismatch(out, expected) <= UINT8_TOL


def assert_style_mixing_dlatents(mapping, ref):
    """The mapping of mix_latents_A/B, and rows 0-3 of A over B, as NVIDIA's; returns the mix."""
    a = mapping.run(ref['mix_latents_A'], None)
    b = mapping.run(ref['mix_latents_B'], None)
    assert rel(a, ref['mix_dlatents_A']) <= TOL and rel(b, ref['mix_dlatents_B']) <= TOL
    mixed = b.copy()
    mixed[:, 0:4] = a[:, 0:4]
    assert rel(mixed, ref['mix_dlatents']) <= TOL
    return mixed


def assert_discriminator_scores(D, ref):
    """D's scores of d_images, and of the first two (minibatch std group size 2), as NVIDIA's."""
    imgs = d_images(ref)
    assert rel(D.run(imgs, None), ref['D_scores']) <= TOL
    assert rel(D.run(imgs[:2], None), ref['D_scores_first2']) <= TOL


def assert_instantaneous_g(G, ref, apart=1e-2):
    """The training G (not Gs) gives NVIDIA's G_images_psi1, which differ from Gs's images."""
    out = G.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False)
    assert rel(out, ref['G_images_psi1']) <= TOL
    assert rel(out, ref['images_psi1']) > apart          # the fixture tells G and Gs apart
    assert rel(ref['images_psi1'], ref['G_images_psi1']) > apart


def assert_training_mode_dlatent_avg_and_mixing(G, z, **kwargs):
    """A legacy_tf G in training mode: without mixing its images are the untruncated ones
    (truncation is off in training even when asked for, ``kwargs``), and the W average moves
    with beta 0.995; always mixing changes the images; is_training and is_validation exclude
    each other. G's W average is restored."""
    w = G.components.mapping.run(z, None)
    avg0 = G.get_var('dlatent_avg')
    plain = G.run(z, None, truncation_psi=1.0, randomize_noise=False)
    try:
        out = G.run(z, None, is_training=True, style_mixing_prob=0.0, randomize_noise=False,
                    **kwargs)
        assert rel(out, plain) <= 1e-5
        batch_avg = w[:, 0].mean(axis=0)
        np.testing.assert_allclose(G.get_var('dlatent_avg'),
                                   batch_avg + (avg0 - batch_avg) * 0.995, rtol=1e-5, atol=1e-6)
        # Always mixing: rows from the cutoff on come from other latents.
        mixed = G.run(z, None, is_training=True, style_mixing_prob=1.0, randomize_noise=False)
        assert np.all(np.isfinite(mixed)) and rel(mixed, plain) > 1e-3
    finally:
        G.set_var('dlatent_avg', avg0)
    with pytest.raises(ValueError, match='mutually exclusive'):
        G.run(z, None, is_training=True, is_validation=True)


def assert_saved_pickle_equals_fixture(save, nets, pkl_name, tmp_path):
    """``save(nets, path)`` writes the fixture pickle ``pkl_name`` again: equal network states
    (kwargs, components, variables bit-exact, version, module text). Returns (original, written)
    as dnnlib.legacy_pickle states."""
    from dnnlib import legacy_pickle
    path = tmp_path / 'copy.pkl'
    save(nets, str(path))
    original = legacy_pickle.load(fixture_path(pkl_name))
    written = legacy_pickle.load(str(path))
    for a, b in zip(original, written):
        assert a == b
    return original, written


# ------------------------------------------------------------------------------------------------
# The official variable lists (tests/data/*_variables.txt).

SECTIONS = ('G (top level)', 'G.components.mapping', 'G.components.synthesis', 'D')


def parse_variable_list(path):
    """{section title: [(name, shape, trainable)]} of an official variable list."""
    sections, cur = {}, None
    for line in open(path):
        if line.startswith('## '):
            cur = sections.setdefault(line[3:].split('  ')[0].strip(), [])
        elif cur is not None and line.strip():
            m = re.match(r'(\S+)\s+(\[[\d, ]*\])\s+(trainable|non-trainable)', line)
            if m:
                cur.append((m[1], eval(m[2]), m[3] == 'trainable'))   # noqa: S307 (shape list)
    return sections


def variable_rows(variables):
    """[(name, shape, trainable)] of {name: variable} (tf.Variable or a legacy_tf graph one)."""
    return [(k, [int(d) for d in v.shape], bool(v.trainable)) for k, v in variables.items()]


def assert_official_variables(spec_name, G, mapping, synthesis, D):
    """The own variables ({name: variable}) of G, its mapping, its synthesis and D are the
    official list's: names, order, shapes, trainability. Returns the parameter counts
    (G, D) the list ends with."""
    path = spec_path(spec_name)
    expect = parse_variable_list(path)
    for title, variables in zip(SECTIONS, (G, mapping, synthesis, D)):
        assert variable_rows(variables) == expect[title], title
    counts = re.search(r'G trainable params (\d+)\s+D trainable params (\d+)', open(path).read())
    return int(counts[1]), int(counts[2])
