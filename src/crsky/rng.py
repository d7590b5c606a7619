"""Seeded random streams: one independent generator per (config seed, stage, indices)."""

import hashlib

import numpy as np

__all__ = ["STAGE_IDS", "job_rng", "name_stream_id"]

# Fixed stage ids: changing one changes every random number of that stage.
STAGE_IDS = {"backtrack": 1, "lens": 2, "skymaps": 3, "train": 4, "evaluate": 5, "search": 6}


def job_rng(seed: int, stage: str, *indices: int) -> np.random.Generator:
    """``default_rng(SeedSequence([seed, stage_id, *indices]))`` (DESIGN.md section 3)."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), STAGE_IDS[stage], *map(int, indices)])
    )


def name_stream_id(name: str) -> int:
    """Stable 63-bit integer of a name (dataset, model): its entry in a job's SeedSequence."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1
