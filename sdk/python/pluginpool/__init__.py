"""Write pluginpool plugins in Python.

A plugin is a script that hands a function to ``serve``::

    import pluginpool

    def process_task(x: int) -> int:
        return x * 2

    pluginpool.serve(process_task, name="double", idempotent=True)

and runs under the pluginpool host: ``pluginpool map double.py 1 2 3``.
The host keeps one process per core alive and sends each batches of items;
the SDK decodes each item's JSON into the type the function's parameter is
annotated with, calls it, and encodes what it returns. An exception fails
that item only (its message and traceback go back to the host) and the
process lives on; ``print()`` inside a task becomes the item's output lines,
written whole and in order by the host; ``logging`` reaches the host's log at
its level. See ``serve`` for the options and ``context()`` for the task's id,
attempt, deadline and cancellation.

Importing this package needs nothing but the standard library; ``serve``
needs grpcio and protobuf.
"""

from ._context import Context, context
from ._errors import Cancelled, DecodeError, Retry
from ._serve import VERSION as __version__
from ._serve import serve

__all__ = ["serve", "context", "Context", "DecodeError", "Retry", "Cancelled", "__version__"]
