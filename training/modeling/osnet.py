"""OSNet (Zhou et al., ICCV 2019) in plain torch, with torchreid's parameter names.

The module tree (``conv1``, ``conv2.0.conv2a.conv1``, ..., ``conv5``, ``fc``,
``classifier``) mirrors torchreid's ``osnet.py``, so the published torchreid
model-zoo state dicts load with ``strict=True`` into the default configuration
(``fc_dim=512``, ``bnneck=False``, ``pooling="avg"``). The inference output is then
torchreid's 512-d feature (after ``fc``'s ReLU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.modeling.head import ReidHeadMixin


class ConvLayer(nn.Module):
    """Conv (k x k) + BatchNorm (or InstanceNorm) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, IN: bool = False) -> None:  # noqa: N803
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False, groups=groups)
        self.bn = nn.InstanceNorm2d(out_channels, affine=True) if IN else nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """1x1 conv + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, padding=0, bias=False,
                              groups=groups)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.relu(self.bn(self.conv(x)))


class Conv1x1Linear(nn.Module):
    """1x1 conv + BatchNorm (no activation)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.bn(self.conv(x))


class LightConv3x3(nn.Module):
    """Lite 3x3: 1x1 conv (linear) + depth-wise 3x3 conv + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False,
                               groups=out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: GAP -> fc1 (C/16) -> ReLU -> fc2 (C) -> sigmoid, times the input."""

    def __init__(self, in_channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(in_channels, in_channels // reduction, kernel_size=1, bias=True, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(in_channels // reduction, in_channels, kernel_size=1, bias=True, padding=0)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        g = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))
        return x * g


class OSBlock(nn.Module):
    """Omni-scale residual block: four streams of 1-4 lite 3x3 convs fused by a shared gate."""

    def __init__(self, in_channels: int, out_channels: int, IN: bool = False,  # noqa: N803
                 bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = out_channels // bottleneck_reduction
        self.conv1 = Conv1x1(in_channels, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(LightConv3x3(mid, mid), LightConv3x3(mid, mid))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, out_channels)
        self.downsample = Conv1x1Linear(in_channels, out_channels) if in_channels != out_channels else None
        self.IN = nn.InstanceNorm2d(out_channels, affine=True) if IN else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        identity = x
        x1 = self.conv1(x)
        x2 = (self.gate(self.conv2a(x1)) + self.gate(self.conv2b(x1)) + self.gate(self.conv2c(x1))
              + self.gate(self.conv2d(x1)))
        x3 = self.conv3(x2)
        if self.downsample is not None:
            identity = self.downsample(identity)
        out = x3 + identity
        if self.IN is not None:
            out = self.IN(out)
        return F.relu(out)


class OSNet(ReidHeadMixin, nn.Module):
    """OSNet backbone with the ReID head of :class:`~training.modeling.head.ReidHeadMixin`.

    Args:
        num_classes: Classifier size (0: no classifier, for inference/export).
        channels: Four channel widths, e.g. ``(64, 256, 384, 512)`` for x1.0.
        layers: OS blocks per stage, ``(2, 2, 2)`` in all published variants.
        IN: Instance normalisation in the first layers (``osnet_ibn_x1_0``).
        pooling: ``"avg"`` or ``"gem"``.
        fc_dim: Size of torchreid's ``fc`` embedding layer (512); 0/None: no fc.
        bnneck: Add a BNNeck (BoT head) after the feature.
    """

    def __init__(self, num_classes: int = 0, channels: tuple[int, int, int, int] = (64, 256, 384, 512),
                 layers: tuple[int, int, int] = (2, 2, 2), IN: bool = False, pooling: str = "avg",  # noqa: N803
                 fc_dim: int | None = 512, bnneck: bool = False) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, channels[0], 7, stride=2, padding=3, IN=IN)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._make_layer(layers[0], channels[0], channels[1], reduce_spatial_size=True, IN=IN)
        self.conv3 = self._make_layer(layers[1], channels[1], channels[2], reduce_spatial_size=True)
        self.conv4 = self._make_layer(layers[2], channels[2], channels[3], reduce_spatial_size=False)
        self.conv5 = Conv1x1(channels[3], channels[3])
        self._init_params()
        self._build_head(channels[3], num_classes, pooling=pooling, fc_dim=fc_dim, bnneck=bnneck)
        if self.fc is not None:
            nn.init.normal_(self.fc[0].weight, 0, 0.01)
            nn.init.constant_(self.fc[0].bias, 0)

    @staticmethod
    def _make_layer(layer: int, in_channels: int, out_channels: int, reduce_spatial_size: bool,
                    IN: bool = False) -> nn.Sequential:  # noqa: N803
        blocks: list[nn.Module] = [OSBlock(in_channels, out_channels, IN=IN)]
        blocks += [OSBlock(out_channels, out_channels, IN=IN) for _ in range(1, layer)]
        if reduce_spatial_size:
            blocks.append(nn.Sequential(Conv1x1(out_channels, out_channels), nn.AvgPool2d(2, stride=2)))
        return nn.Sequential(*blocks)

    def _init_params(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, C, H/16, W/16)``."""
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))


OSNET_CHANNELS = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}
