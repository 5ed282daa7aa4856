"""dnnlib.legacy_pickle on mutated pickles: every outcome is a clean load or a PickleFormatError.

A seeded, time-bounded fuzzer mutates the official fixtures and small assembled networks of every
protocol (byte overwrites, bit flips, inserted opcodes, deletions, truncations, duplicated chunks,
extreme length fields) and loads each result in a child process under an address-space limit. A
crash, a hang, another exception, a result that is not plain network data, a slow load or the
reader's own last-resort messages (internal error, out of memory, recursion) fail the test.

LEGACY_PICKLE_FUZZ_SECONDS and LEGACY_PICKLE_FUZZ_SEED run it longer or differently by hand.
"""

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np

from conftest import REPO_DIR, fixture_path
from dnnlib import legacy_pickle as lp
from test_legacy_pickle_hostile import PROTOCOLS, Asm

FUZZ_SECONDS = float(os.environ.get('LEGACY_PICKLE_FUZZ_SECONDS', '12'))
FUZZ_SEED = int(os.environ.get('LEGACY_PICKLE_FUZZ_SEED', '20240613'))
MIN_CASES = 300            # far below what 12 s give even on a loaded machine (thousands)
SECONDS_PER_CASE = 2.0     # a fixture loads in milliseconds
HEADROOM_MB = 512          # address space the child may add after its imports

_CHILD = r'''
import io, json, pickletools, random, resource, sys, time
import numpy as np
from dnnlib import legacy_pickle as lp

seed, budget, outdir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
headroom, paths = int(sys.argv[4]), sys.argv[5:]
sources = [open(p, 'rb').read() for p in paths]
boundaries = [[pos for _op, _arg, pos in pickletools.genops(s)] for s in sources]
weights = [1 if len(s) > 100_000 else 4 for s in sources]   # small sources are faster to load
OPCODES = bytes(ord(op.code) for op in pickletools.opcodes) + b'\x00\xff'
EXTREMES = [b'\xff\xff\xff\xff', b'\x00\x00\x00\x80', b'\xff\xff\xff\x7f', b'\x00\x00\x00\x00']
LAST_RESORT = ('internal error', 'out of memory', 'too deeply nested')
vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, vm + headroom))
rng = random.Random(seed)


def mutate(data, bounds):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        n = len(data)
        pos = min(rng.choice(bounds) + rng.randrange(4) if rng.random() < 0.75 else rng.randrange(n + 1), n)
        kind = rng.randrange(7)
        if kind == 0 and pos < n:
            data[pos] = rng.randrange(256)
        elif kind == 1 and pos < n:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 2:
            data[pos:pos] = bytes([rng.choice(OPCODES)] + [rng.randrange(256) for _ in range(rng.randrange(3))])
        elif kind == 3:
            del data[pos:pos + rng.randint(1, 16)]
        elif kind == 4:
            del data[max(pos, 2):]
        elif kind == 5:
            start = rng.choice(bounds)
            data[pos:pos] = data[start:start + rng.randint(1, 64)]
        elif kind == 6:
            data[pos:pos + 4] = rng.choice(EXTREMES)
    return bytes(data)


def not_plain(obj):
    """Why a loaded result is not plain network data, or None."""
    stack, seen = [obj], set()
    while stack:
        o = stack.pop()
        t = type(o)
        if t in (type(None), bool, int, float, str, bytes) or id(o) in seen:
            continue
        seen.add(id(o))
        if t in (list, tuple):
            stack.extend(o)
        elif t is dict:
            stack.extend(o.values())
        elif t is lp.NetworkState:
            stack += [o.name, o.build_func_name, o.build_module_src, o.static_kwargs,
                      *o.components.values(), *o.variables.values()]
        elif isinstance(o, (np.ndarray, np.generic)):
            if o.dtype.kind not in 'biufc' or o.dtype.hasobject:
                return f'array of dtype {o.dtype}'
        else:
            return f'object of type {t.__name__}'
    return None


counts = {'loaded': 0, 'refused': 0}
failures, slowest, case = [], 0.0, 0
end = time.perf_counter() + budget
while time.perf_counter() < end:
    case += 1
    i = rng.choices(range(len(sources)), weights)[0]
    data = mutate(sources[i], boundaries[i])
    with open(f'{outdir}/current.pkl', 'wb') as f:   # left behind if this case kills the child
        f.write(data)
    t = time.perf_counter()
    try:
        problem = not_plain(lp.load(io.BytesIO(data)))
        counts['loaded'] += 1
    except lp.PickleFormatError as e:
        problem = str(e) if any(m in str(e) for m in LAST_RESORT) else None
        counts['refused'] += 1
    except BaseException as e:
        problem = f'{type(e).__name__}: {str(e)[:300]}'
    seconds = time.perf_counter() - t
    slowest = max(slowest, seconds)
    if problem or seconds > 2.0:
        kept = f'{outdir}/failure-{case}.pkl'
        with open(kept, 'wb') as f:
            f.write(data)
        failures.append({'case': case, 'source': paths[i], 'problem': problem, 'seconds': seconds,
                         'kept': kept})
print(json.dumps({'cases': case, 'counts': counts, 'slowest': slowest, 'failures': failures[:20]}))
'''


def _sources(folder) -> list:
    """The two official fixtures and a small network in every protocol and both numpy spellings."""
    paths = [fixture_path('sg1_r64.pkl'), fixture_path('sg2_r64.pkl')]
    for protocol in PROTOCOLS:
        a = Asm(protocol)
        data = a.pickle(a.tuple(a.network('G', components=a.dict((a.str('mapping'), a.network('G_mapping')))),
                                a.network('D'), a.network('Gs')))
        paths.append(folder / f'asm-p{protocol}.pkl')
        paths[-1].write_bytes(data)
    written = folder / 'written.pkl'
    lp.save(lp.NetworkState('D', 'D_basic', {'resolution': 8, 'fmaps': [1, 2]},
                            {'lod': np.float32(0), 'w': np.ones((2, 3), np.float32)}), written)
    paths.append(written)
    for path in paths[2:]:
        lp.load(path)   # every source itself loads, so refusals come from the mutations
    return [str(p) for p in paths]


def test_fuzzed_pickles_load_or_refuse_cleanly(tmp_path):
    argv = [sys.executable, '-c', _CHILD, str(FUZZ_SEED), str(FUZZ_SECONDS), str(tmp_path),
            str(HEADROOM_MB << 20), *_sources(tmp_path)]
    env = dict(os.environ, PYTHONPATH=REPO_DIR, OPENBLAS_NUM_THREADS='1')
    proc = subprocess.run(argv, cwd=REPO_DIR, env=env, capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 120)
    if proc.returncode:
        how = signal.Signals(-proc.returncode).name if proc.returncode < 0 else proc.returncode
        raise AssertionError(f'the fuzz child died ({how}); the input is {tmp_path}/current.pkl '
                             f'(seed {FUZZ_SEED})\n{proc.stderr[-3000:]}')
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert not summary['failures'], json.dumps(summary, indent=1)
    assert summary['cases'] >= MIN_CASES, summary
    assert summary['slowest'] < SECONDS_PER_CASE, summary
    # Both outcomes occur, so the mutations reach past the first refusal and into loading.
    assert summary['counts']['loaded'] > 0 and summary['counts']['refused'] > 0, summary
