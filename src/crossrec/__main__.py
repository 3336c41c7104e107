"""``python -m crossrec`` runs the command-line interface (also under torchrun).

A torchrun rank (``WORLD_SIZE`` > 1) ends with ``os._exit`` once the command has returned and its
output is flushed: native libraries' thread teardown during interpreter shutdown (gloo, LLVM/numba)
was seen to abort a finished rank with ``terminate called without an active exception`` in about one
2-rank run in ten, which torchrun then reports as a failed run. Everything a rank writes is closed
before the command returns, so skipping the interpreter's own teardown loses nothing.
"""

import logging
import os
import sys

from crossrec.cli.main import app, main


def _main() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        main()
        return
    try:
        returned = app(standalone_mode=False)  # typer.Exit(n) comes back as n
    except BaseException:
        logging.shutdown()
        raise  # a failing rank keeps its traceback and the normal exit path
    code = returned if isinstance(returned, int) else 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_main()
