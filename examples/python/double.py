import pluginpool

def process_task(x: int) -> int:
    return x * 2

pluginpool.serve(process_task, name="double", idempotent=True)
