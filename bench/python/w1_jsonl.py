"""W1: JSON Lines in, Pool.map, JSON Lines out -- the script a user would write.

    python3 w1_jsonl.py < numbers.jsonl > doubled.jsonl

Reads every line with json.loads, doubles the values with
multiprocessing.Pool().map (default processes and chunksize), writes one
json.dumps per line. The bench times the whole process, like pluginpool's.
"""
import json
import sys
from multiprocessing import Pool


def double(x):
    return 2 * x


def main():
    items = [json.loads(line) for line in sys.stdin]
    with Pool() as pool:
        results = pool.map(double, items)
    out = sys.stdout
    for r in results:
        out.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
