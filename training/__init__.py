"""PyTorch person re-identification training that exports ONNX models the app loads.

Subpackages: ``data`` (datasets, transforms, PK sampler, loaders), ``modeling``
(ResNet-50 / IBN-a and OSNet backbones, pooling, BNNeck head), ``evaluation``
(CMC / mAP / mINP, re-ranking, plots). Commands: ``python -m training.train``,
``python -m training.evaluate``, ``python -m training.export``,
``python -m training.mine_tracks``.

This package imports torch; the app (``core/``, ``GUI/``) never imports it.
"""
