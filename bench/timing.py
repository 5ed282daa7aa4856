"""The timing loop the benchmarks share: one warm-up call, then the best of `reps` timed runs.

The first call of a tf.function traces and optimises its graph, so it is never timed. The best
(not the mean) is reported because the machine may be shared: other jobs only ever slow a run
down, so the fastest run is the least disturbed one. `fn` must synchronise, i.e. return only when
the work is done (call `.numpy()` on a tensor result, or return NumPy values).
"""

import time


def best_seconds(fn, reps: int, calls: int = 1, warmup: bool = True) -> float:
    """Best wall seconds per call of `fn` over `reps` timed runs of `calls` calls each, after
    one untimed warm-up call (warmup=False: the caller has already made, and timed, the first)."""
    if warmup:
        fn()
    best = float('inf')
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best
