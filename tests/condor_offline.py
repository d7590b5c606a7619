"""Run Snakemake with the real HTCondor executor plugin, minus the pool (test support).

No HTCondor daemons can run here. This entry point replaces only the two things that need a pool:
``htcondor2.Schedd`` (its ``submit`` records the submit description as one JSON line in
``$CRSKY_CONDOR_RECORD`` and returns a cluster id) and the plugin's job-status polling (every
submitted job "finishes" at once, with its output files touched, so the scheduler walks the whole
DAG). Everything else -- the profile, the rules' resources, the plugin's translation of them into
a submit description -- is the code a user's submission runs.

    CRSKY_CONDOR_RECORD=submits.jsonl python tests/condor_offline.py --profile profiles/condor ...
"""

import itertools
import json
import os
import sys
import types
from pathlib import Path

import htcondor2
import snakemake_executor_plugin_htcondor as plugin
from snakemake.cli import main

RECORD = Path(os.environ["CRSKY_CONDOR_RECORD"])
_cluster_ids = itertools.count(1)


class RecordingSubmit(htcondor2.Submit):
    """A real ``htcondor2.Submit`` that remembers the dict it was made from."""

    def __init__(self, description: dict):
        super().__init__(description)
        self.description = dict(description)

    def issue_credentials(self):  # needs a credd; nothing to issue without a pool
        return None


class RecordingSchedd:
    """Stands in for the schedd: records each submit description, returns a cluster id."""

    def submit(self, description: RecordingSubmit, *args, **kwargs):
        with RECORD.open("a", encoding="utf-8") as f:
            f.write(json.dumps({k: str(v) for k, v in description.description.items()}) + "\n")
        cluster = next(_cluster_ids)
        return types.SimpleNamespace(cluster=lambda: cluster)


async def finish_at_once(self, active_jobs):
    """Every submitted job succeeds immediately, with its outputs touched."""
    for info in active_jobs:
        for output in info.job.output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).touch()
        self.report_job_success(info)
    for _ in ():
        yield


plugin.htcondor = types.SimpleNamespace(
    **{name: getattr(htcondor2, name) for name in dir(htcondor2) if not name.startswith("_")}
)
plugin.htcondor.Submit = RecordingSubmit
plugin.htcondor.Schedd = RecordingSchedd
plugin.Executor.check_active_jobs = finish_at_once

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
