"""W4: a CPU-bound task, Pool(1).map vs Pool(2).map.

    python3 w4_spin.py ITEMS TARGET_MS RUNS

The task is the same 64-bit LCG loop as bench/internal/spin, with its
iteration count calibrated here so that one item takes about TARGET_MS
milliseconds in this interpreter. Each pool is started once, warmed up, and
map (default chunksize) is timed RUNS times. Prints
{"iters": N, "item_ms": measured, "one": [seconds...], "two": [seconds...]}.
"""
import json
import sys
import time
from multiprocessing import Pool

MASK = (1 << 64) - 1
ITERS = 0


def init(iters):
    global ITERS
    ITERS = iters


def spin(seed):
    x = seed | 1
    for _ in range(ITERS):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
    return x >> 11


def calibrate(target_ms):
    """Iterations for target_ms per item: the fastest of 9 timings of 20 ms
    or more, so that a busy moment does not skew it."""
    global ITERS
    ITERS = 10_000
    for i in range(20):  # let the specializing interpreter settle
        spin(i)
    while True:
        best = float("inf")
        for _ in range(9):
            t0 = time.perf_counter()
            spin(1)
            best = min(best, time.perf_counter() - t0)
        if best > 0.02:
            break
        ITERS *= 2
    iters = max(1, int(ITERS * target_ms / 1e3 / best))
    ITERS = iters
    best = float("inf")
    for i in range(5):
        t0 = time.perf_counter()
        spin(i)
        best = min(best, time.perf_counter() - t0)
    return iters, best * 1e3


def timed_maps(processes, iters, items, runs):
    with Pool(processes, initializer=init, initargs=(iters,)) as pool:
        pool.map(spin, range(4 * processes))  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            pool.map(spin, range(items))
            times.append(time.perf_counter() - t0)
    return times


def main():
    items, target_ms, runs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    iters, item_ms = calibrate(target_ms)
    one = timed_maps(1, iters, items, runs)
    two = timed_maps(2, iters, items, runs)
    print(json.dumps({"iters": iters, "item_ms": item_ms, "one": one, "two": two}))


if __name__ == "__main__":
    main()
