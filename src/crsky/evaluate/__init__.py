"""The evaluation stage (DESIGN.md section 4, "Evaluation folder"): scores every test and
isotropic map with a trained model and with the two-point auto-correlation baseline, and turns
the scores into p-values and σ per signal fraction (crsky.stats).

- :mod:`crsky.evaluate.data`: the test and isotropy chunk sets, checked to fit together;
- :mod:`crsky.evaluate.pair_counts`: per-chunk two-point pair counts (``crsky paircounts``);
- :mod:`crsky.evaluate.scoring`: a model folder and its scores (imports TensorFlow);
- :mod:`crsky.evaluate.plots`: the figures of the evaluation folder;
- :mod:`crsky.evaluate.run`: the ``crsky evaluate`` job, which writes the folder.
"""

__all__: list[str] = []
