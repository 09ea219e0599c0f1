"""The "bare loop" beside each drain figure: the same task body in the same
number of processes, with no queue, timed the same way (from the spawn of the
processes until the last one is done). A drain's ratio to it is the share of
the machine the queue leaves to the work; the bare loop is measured in the
same sitting, so a loaded machine slows both alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

#: Worker processes of every drain bench/run.py and bench/versus.py run.
PROCESSES = 2


def bare_loop(n: int, setup: str, body: str, env: Mapping[str, str] | None = None,
              python: str = sys.executable, cwd: str | None = None) -> tuple[float, float]:
    """Tasks per second when PROCESSES fresh interpreters each run ``setup``
    (the imports a worker would do) and then ``body`` n/PROCESSES times:
    from the spawn (as a drain is counted), and over the loops alone (as a
    drain's "steady" figure leaves its start-up out)."""
    each = n // PROCESSES
    code = (f"import time\n{setup}\nstarted = time.perf_counter()\nfor _ in range({each}):\n    {body}\n"
            "print(time.perf_counter() - started)\n")
    spawned = time.perf_counter()
    procs = [subprocess.Popen([python, "-c", code], env=dict(env or os.environ), cwd=cwd, stdout=subprocess.PIPE)
             for _ in range(PROCESSES)]
    outs = [p.communicate()[0] for p in procs]
    elapsed = time.perf_counter() - spawned
    if any(p.returncode for p in procs):
        raise RuntimeError(f"bare loop exited with {[p.returncode for p in procs]}")
    loops = max(float(out.split()[-1]) for out in outs)
    return each * PROCESSES / elapsed, each * PROCESSES / loops
