"""Seeded random streams: one independent generator per (config seed, stage, indices)."""

import numpy as np

__all__ = ["STAGE_IDS", "job_rng"]

# Fixed stage ids: changing one changes every random number of that stage.
STAGE_IDS = {"backtrack": 1, "lens": 2, "skymaps": 3, "train": 4, "evaluate": 5}


def job_rng(seed: int, stage: str, *indices: int) -> np.random.Generator:
    """``default_rng(SeedSequence([seed, stage_id, *indices]))`` (DESIGN.md section 3)."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), STAGE_IDS[stage], *map(int, indices)])
    )
