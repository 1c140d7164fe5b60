"""W3: sequential Pool.apply round trips.

    python3 w3_apply.py [CALLS] [WARMUP]

Prints {"p50_us": ..., "p99_us": ...} over CALLS timed calls of
pool.apply(double, (i,)) after WARMUP untimed ones, on Pool() (default
processes).
"""
import json
import sys
import time
from multiprocessing import Pool


def double(x):
    return 2 * x


def percentile(sorted_ns, q):
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))]


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    clock = time.perf_counter_ns
    with Pool() as pool:
        for i in range(warmup):
            pool.apply(double, (i,))
        ns = []
        for i in range(calls):
            t0 = clock()
            r = pool.apply(double, (i,))
            ns.append(clock() - t0)
            assert r == 2 * i
    ns.sort()
    print(json.dumps({"p50_us": percentile(ns, 0.50) / 1e3, "p99_us": percentile(ns, 0.99) / 1e3}))


if __name__ == "__main__":
    main()
