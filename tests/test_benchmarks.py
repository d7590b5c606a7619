"""The benchmark scripts print one JSON object in the shared layout of benchmarks/record.py.

One tiny real invocation of the cheapest script (benchmarks/ensemble.py on the default config:
its one lens, 2 protons at 2 rigidities); no timing is asserted, only the object's shape and the
numbers that follow from the config.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from crsky.binning import Sharding

REPO = Path(__file__).resolve().parents[1]


def test_ensemble_benchmark_prints_one_record(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import record

    config = REPO / "config" / "config.yaml"
    command = [sys.executable, REPO / "benchmarks" / "ensemble.py", "--configfile", config]
    command += ["--particles", "2", "--every", "4"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)  # exactly one object: trailing output fails to parse
    assert out["layout"] == record.LAYOUT
    assert out["name"] == "ensemble"
    assert set(out) == set(record.record("x", {}, {}, {}))
    assert out["ratios"] == []  # no anchor: nothing to compare with
    settings = yaml.safe_load(config.read_text())
    n_bins = settings["rigidity_bins"]["n_bins"]
    backtrack = settings["backtrack"]
    n_shards = Sharding(backtrack["particles_per_bin"], backtrack["shard_size"]).n_shards
    assert out["details"]["jobs"] == {
        "backtrack": n_bins * n_shards,
        "lens_part": n_bins,
        "lens": 1,
    }
    (rates,) = out["throughput"]["particles_per_s_one_core"].values()
    assert len(rates) == len(out["sizes"]["sampled_log10_rigidity"]) == 2
    assert all(rate > 0 for rate in rates.values())
    assert out["host"]["cpus_used"] == 1
