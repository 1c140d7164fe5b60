# The seed notebook's Pool example, verbatim in spirit: prints [2, 4, 6, 8, 10].
from multiprocessing import Pool


def process_task(x):
    return x * 2


if __name__ == "__main__":
    with Pool(processes=3) as pool:
        print(pool.map(process_task, [1, 2, 3, 4, 5]))
