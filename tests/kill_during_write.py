"""Run ``crsky ARGS`` and kill it with SIGKILL while it writes its N-th output file.

    python tests/kill_during_write.py N crsky-args...

N = 0 runs the command to the end and prints ``renames: K`` (the number of output files and
folders it moved into place) as the last line of stdout.

Every crsky output reaches its final name through ``os.replace`` in crsky.io (after it was
written under a temporary name). This wrapper counts those renames; at the N-th it cuts the
temporary file to half its length (the bytes on disk when a kill hits mid-write) and sends
SIGKILL to its own process, so the job dies exactly as a batch system or a power cut would kill
it while writing. A folder rename (crsky.io.atomic_folder) is killed without cutting. The
production code runs unchanged; only the module's view of ``os`` is wrapped.
"""

import os
import signal
import sys
import types
from pathlib import Path

import crsky.io


def _kill_at(n: int) -> list[int]:
    calls = [0]

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == n:
            if Path(src).is_file():
                os.truncate(src, Path(src).stat().st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return os.replace(src, dst)

    crsky.io.os = types.SimpleNamespace(**{**vars(os), "replace": replace})
    return calls


def main() -> None:
    calls = _kill_at(int(sys.argv[1]))
    from crsky.cli import main as crsky_main

    status = crsky_main(sys.argv[2:])
    print(f"renames: {calls[0]}")
    sys.exit(status)


if __name__ == "__main__":
    main()
