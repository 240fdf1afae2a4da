"""Adapt a ReID model to the user's own footage without labels (``python -m training.adapt``).

* :mod:`training.adapt.mining`: training / held-out crops and must-not-link pairs from a library;
* :mod:`training.adapt.clustering`: tracks -> pseudo-identities (k-reciprocal Jaccard + DBSCAN);
* :mod:`training.adapt.memory`: cluster memory and its contrastive loss;
* :mod:`training.adapt.trainer`: the training loop with re-clustering, checkpoints and resume;
* :mod:`training.adapt.check`: the held-out before/after check (TMR at 1 % FMR) and its plot;
* :mod:`training.adapt.run`: :func:`~training.adapt.run.adapt`, the whole thing in one call.
"""
