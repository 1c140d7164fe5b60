"""W2: Pool(2).map(double, range(1_000_000)) in memory.

Prints one JSON object: {"seconds": start+map, "cpu": ...}. Timed inside
the script, from before Pool(2) to map's return: interpreter start-up, the
import and the pool's shutdown are excluded, as pool.Start + Map is timed
on the Go side (Close excluded). "cpu" is the CPU time of this process and
its workers from before Pool(2) to after the pool's shutdown.
"""
import json
import resource
import time
from multiprocessing import Pool


def double(x):
    return 2 * x


def cpu():
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def main():
    c0 = cpu()
    t0 = time.perf_counter()
    with Pool(2) as pool:
        results = pool.map(double, range(1_000_000))
        t1 = time.perf_counter()
    c1 = cpu()
    assert len(results) == 1_000_000 and results[-1] == 1_999_998
    print(json.dumps({"seconds": t1 - t0, "cpu": c1 - c0}))


if __name__ == "__main__":
    main()
