"""ResNet-50 (He et al. 2016) with last stride 1 and optional IBN-a (Pan et al. 2018), plain torch.

Backbone parameter names follow torchvision's / IBN-Net's ResNet (``conv1``, ``bn1``,
``layer1.0.conv1``, ...; IBN-a blocks have ``bn1.IN`` and ``bn1.BN``), so ImageNet
weights saved from either load from a local file (their ``fc.*`` is dropped).
The default head is BoT's: GAP -> BNNeck (frozen bias) -> bias-free classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from training.modeling.head import ReidHeadMixin


class IBN(nn.Module):
    """Instance-batch normalisation: InstanceNorm on the first half of the channels, BatchNorm on the rest."""

    def __init__(self, planes: int, ratio: float = 0.5) -> None:
        super().__init__()
        self.half = int(planes * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck (stride on the 3x3 conv), optionally with IBN-a in ``bn1``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 ibn: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = IBN(planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(ReidHeadMixin, nn.Module):
    """ResNet backbone + ReID head.

    Args:
        num_classes: Classifier size (0: none).
        layers: Blocks per stage, ``(3, 4, 6, 3)`` for ResNet-50.
        last_stride: Stride of ``layer4`` (1 in BoT: 16x8 final maps for 256x128 input).
        ibn: IBN-a in layers 1-3.
        pooling: ``"avg"`` or ``"gem"``.
        bnneck: BNNeck head (BoT); False: plain classifier on the pooled feature.
        fc_dim: Optional embedding FC size (None: the 2048-d pooled feature).
    """

    def __init__(self, num_classes: int = 0, layers: tuple[int, int, int, int] = (3, 4, 6, 3),
                 last_stride: int = 1, ibn: bool = False, pooling: str = "avg", bnneck: bool = True,
                 fc_dim: int | None = None) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], 1, ibn)
        self.layer2 = self._make_layer(128, layers[1], 2, ibn)
        self.layer3 = self._make_layer(256, layers[2], 2, ibn)
        self.layer4 = self._make_layer(512, layers[3], last_stride, False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        self._build_head(2048, num_classes, pooling=pooling, fc_dim=fc_dim, bnneck=bnneck)
        if self.fc is not None:
            nn.init.kaiming_normal_(self.fc[0].weight, mode="fan_out")
            nn.init.constant_(self.fc[0].bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int, ibn: bool) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride,
                                                 bias=False), nn.BatchNorm2d(planes * 4))
        out = [Bottleneck(self.inplanes, planes, stride, downsample, ibn)]
        self.inplanes = planes * 4
        out += [Bottleneck(self.inplanes, planes, 1, None, ibn) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, 2048, H/16, W/16)`` with last stride 1."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
