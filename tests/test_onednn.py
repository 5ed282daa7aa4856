"""The network, ops and training tests once more with oneDNN on (TF_ENABLE_ONEDNN_OPTS=1).

TensorFlow 2.21 turns oneDNN on by itself only on CPUs with AVX-512; elsewhere it is off. The two
settings run different CPU kernels (grouped and NCHW convolutions exist only with oneDNN), so
every path must work, with the same numbers, both ways. The suite itself runs with oneDNN off
(conftest.py); here a child pytest runs each group with it on and must pass entirely.
"""
import os
import subprocess
import sys

import pytest

from conftest import REPO_DIR, make_dataset, run_script

GROUPS = {
    'ops': ['tests/test_ops_fused_bias_act.py', 'tests/test_ops_upfirdn2d.py',
            'tests/test_legacy_tf_stylegan2_ops.py'],
    'networks_v1': ['tests/test_tf2_fixture.py', 'tests/test_legacy_tf_fixture.py',
                    'tests/test_tf2_networks.py', 'tests/test_legacy_tf_networks.py'],
    'networks_v2': ['tests/test_tf2_stylegan2.py', 'tests/test_legacy_tf_stylegan2.py',
                    'tests/test_tf2_stylegan2_arch.py'],
    'fidelity': ['tests/test_fidelity_highres.py'],
    'training': ['tests/test_loss.py', 'tests/test_loss_stylegan2.py', 'tests/test_lod_phase.py',
                 'tests/test_training_loop.py', 'tests/test_training_stylegan2.py'],
}


@pytest.mark.parametrize('group', sorted(GROUPS))
def test_group_passes_with_onednn_on(group):
    if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '1':
        pytest.fail('this suite already runs with oneDNN on: run it with TF_ENABLE_ONEDNN_OPTS=0 '
                    '(the default of tests/conftest.py)', pytrace=False)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='1')
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *GROUPS[group]],
                          cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=3000)
    tail = proc.stdout[-5000:]
    assert proc.returncode == 0, f'{group} with TF_ENABLE_ONEDNN_OPTS=1:\n{tail}\n{proc.stderr[-2000:]}'
    assert ' passed' in tail and ' failed' not in tail and ' error' not in tail, tail


def test_training_log_has_no_grappler_errors_with_onednn_on(tmp_path):
    """With oneDNN on, Grappler's remapper fails on every D/G gradient graph and prints an
    'E0000 ... remapper failed' line per lod phase into the user's training log (it then keeps the
    graph as it was). Training turns the remapper off (training_loop.disable_fragile_graph_rewrite):
    a short demo run must print no such line."""
    make_dataset(str(tmp_path / 'data' / 'toy8'), resolution=8, num_images=8)
    out = run_script('run_training.py', '--data-dir', str(tmp_path / 'data'), '--dataset', 'toy8',
                     '--kimg', '0.02', '--result-dir', str(tmp_path / 'r'), '--mixing-figure', 'false',
                     env={'TF_ENABLE_ONEDNN_OPTS': '1'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'Done: kimg' in out.stdout
    assert 'remapper failed' not in out.stderr and 'meta_optimizer' not in out.stderr, out.stderr[-3000:]
