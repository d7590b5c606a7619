"""The one JSON layout of every crsky benchmark (imported by the scripts beside it; not a test).

Every script under benchmarks/ prints one object made by :func:`record` (``emit``)::

    {
      "layout": "crsky-benchmark/1",
      "name": "skymaps",                       # the benchmark
      "sizes": {...},                          # problem sizes and settings
      "wall_s": {...},                         # seconds of the timed parts
      "throughput": {...},                     # rates (units in the key: maps_per_s, ms_per_map)
      "ratios": [                              # crsky against an anchor, if any
        {"what": "chunk job maps/s", "anchor": "astrotools 1.5 ObservedBound (isotropic)",
         "source": "measured in this run",     # or "stored" (a figure quoted from elsewhere)
         "crsky": 2100.0, "anchor_value": 350.0, "ratio": 6.0,
         "crsky_settings": {...}, "anchor_settings": {...}}
      ],
      "details": {...},                        # anything else the benchmark reports
      "versions": {"crsky": ..., "python": ..., "numpy": ..., ...},
      "host": {"node": ..., "machine": ..., "processor": ..., "cpus": ..., "cpus_used": ...,
               "load_average_start": [...], "load_average_end": [...]}
    }

A ratio is "measured in this run" only when both sides were timed by the same invocation (the
anchor in its side environment, see anchors/); otherwise it is "stored" and says where the
anchor's figure comes from. Anchors run through :func:`run_anchor`; where the side environment is
missing the ratio is left out and ``details.anchor`` says why (never a stale number).
"""

import importlib
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

LAYOUT = "crsky-benchmark/1"
MEASURED, STORED = "measured in this run", "stored"
ANCHORS = Path(__file__).resolve().parent / "anchors"
ASTROTOOLS_PYTHON = ANCHORS / ".venv-astrotools" / "bin" / "python"
_START_LOAD = os.getloadavg()


def versions(*modules: str) -> dict:
    """Versions of crsky, Python and the named modules (those that import)."""
    out = {"python": platform.python_version()}
    for name in ("crsky", "numpy", *modules):
        try:
            out[name] = importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            out[name] = "not importable"
    return out


def host(cpus_used: int | None = None) -> dict:
    """The machine and its load (1-minute averages when the script started and now)."""
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_used": cpus_used,
        "load_average_start": [round(x, 2) for x in _START_LOAD],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def ratio(
    what: str,
    crsky: float,
    anchor: str,
    anchor_value: float,
    source: str,
    crsky_settings: dict,
    anchor_settings: dict,
    higher_is_better: bool = True,
) -> dict:
    """One crsky-vs-anchor entry; ``ratio`` > 1 means crsky is better (faster)."""
    if source not in (MEASURED, STORED):
        raise ValueError(f"source must be {MEASURED!r} or {STORED!r}, got {source!r}")
    value = crsky / anchor_value if higher_is_better else anchor_value / crsky
    return {
        "what": what,
        "anchor": anchor,
        "source": source,
        "crsky": crsky,
        "anchor_value": anchor_value,
        "ratio": round(value, 2),
        "crsky_settings": crsky_settings,
        "anchor_settings": anchor_settings,
    }


def record(
    name: str,
    sizes: dict,
    wall_s: dict,
    throughput: dict,
    ratios: list[dict] = (),
    details: dict | None = None,
    modules: tuple[str, ...] = (),
    cpus_used: int | None = None,
) -> dict:
    """The benchmark's JSON object in the shared layout (module docstring)."""
    return {
        "layout": LAYOUT,
        "name": name,
        "sizes": sizes,
        "wall_s": wall_s,
        "throughput": throughput,
        "ratios": list(ratios),
        "details": details or {},
        "versions": versions(*modules),
        "host": host(cpus_used),
    }


def peak_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM (Linux), which starts afresh at exec,
    unlike ru_maxrss, which a child inherits from the parent it was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(rec: dict) -> None:
    """Print the record (one JSON object, indented) on stdout."""
    json.dump(rec, sys.stdout, indent=1)
    print()


def run_child(command: list[str]) -> dict:
    """Run a benchmark's child process (a fresh interpreter, so that its peak memory is its own)
    and return the JSON object on the last line of its stdout; exit with the child's last error
    line if it fails."""
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"benchmark child failed (exit {result.returncode}): {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_anchor(python: str | os.PathLike | None, script: str, args: list[str]) -> dict:
    """Run ``anchors/<script>`` with the side environment's ``python`` (default: the venv made
    by anchors/install-astrotools.sh) and return its JSON object, or ``{"unavailable": why}``."""
    interpreter = Path(python) if python else ASTROTOOLS_PYTHON
    if not interpreter.exists():
        return {
            "unavailable": f"no anchor interpreter {str(interpreter)!r}: run "
            "benchmarks/anchors/install-astrotools.sh (or pass --astrotools-python)"
        }
    command = [str(interpreter), str(ANCHORS / script), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return {"unavailable": f"{script} failed (exit {result.returncode}): {tail}"}
    return json.loads(result.stdout.strip().splitlines()[-1])
