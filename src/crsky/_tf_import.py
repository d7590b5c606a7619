"""Import TensorFlow without its start-up noise in the job logs.

TensorFlow 2.21 writes, from C++ while ``import tensorflow`` runs, absl's "All log messages
before absl::InitializeLog() is called are written to STDERR", the oneDNN notice (twice) and
the CPU-instructions notice. ``TF_CPP_MIN_LOG_LEVEL=2`` (set here unless the user set it)
hides TensorFlow's later C++ INFO and WARNING lines (among them tf.data's warning that repeats,
with a Python traceback, an error crsky reports in one line anyway; C++ errors stay). The
start-up lines come before it applies, so the import runs with file descriptor 2 redirected to
a temporary file, and every captured line that is not one of those notices is written back to
stderr afterwards (real warnings and errors stay visible).
"""

import os
import re
import sys
import tempfile

__all__ = ["NOISE", "import_tensorflow"]

NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions:"
    r"|This TensorFlow binary is optimized"
)


def import_tensorflow() -> None:
    """Import ``tensorflow`` (once per process) with its start-up notices filtered out of
    stderr. ModuleNotFoundError propagates (crsky.cli names the extra to install)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if not NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
