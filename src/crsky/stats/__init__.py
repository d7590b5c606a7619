"""Statistics of the evaluation stage (DESIGN.md section 5):

- :mod:`crsky.stats.two_point`: cumulative pair counts within ψ per map (the two-point
  auto-correlation) and the baseline statistic built from them;
- :mod:`crsky.stats.significance`: p-values against an isotropic reference set, Gaussian σ
  equivalents, and the signal strength where σ crosses given levels.
"""

__all__: list[str] = []
