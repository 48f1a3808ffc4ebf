"""Networks of the kit: CIFAR-style ResNets built on torchvision, and a small CNN for `digits`.

The paper fine-tunes ImageNet-pretrained torchvision ResNets on images upsampled to 224 px. The kit's
default trains CIFAR-style ResNets from scratch at the native 32 px instead (about 49x less compute):
the 7x7 stride-2 stem and the max-pool, made for 224 px images, become one 3x3 stride-1 convolution.
Everything else is torchvision's own ResNet: its `BasicBlock` and `Bottleneck`, its `_make_layer`
and its forward pass. `width` scales the four stages (64, 128, 256, 512 at width 64) so that the
CPU profiles can use the same architectures at a fraction of the cost.

Any other `nn.Module` works with the method too (scoring, masks, training, export), as long as its
forward returns the logits as one tensor. A network that returns more (logits and features, or a
torchvision Inception's named tuple) is wrapped once in `PickLogits`, which picks the logits out;
every place that calls a network passes its output through `logits_of`, which refuses anything else
with the fix in the message.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from tgkit.util.errors import InputError

RESNET_LAYOUTS = {
    "resnet10": (tv_resnet.BasicBlock, (1, 1, 1, 1)),
    "resnet18": (tv_resnet.BasicBlock, (2, 2, 2, 2)),
    "resnet34": (tv_resnet.BasicBlock, (3, 4, 6, 3)),
    "resnet50": (tv_resnet.Bottleneck, (3, 4, 6, 3)),
}
ARCHS = (*RESNET_LAYOUTS, "smallcnn")


class CifarResNet(tv_resnet.ResNet):
    """torchvision's ResNet with a 3x3 stride-1 stem, no max-pool, and stage widths scaled by `width`."""

    def __init__(self, block, layers, num_classes: int, in_channels: int = 3, width: int = 64):
        nn.Module.__init__(self)  # torchvision's __init__ hard-codes the 224 px stem and widths
        self._norm_layer = nn.BatchNorm2d
        self.dilation, self.groups, self.base_width = 1, 1, 64
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Start every residual branch as the identity: trains faster and better from scratch (Goyal et al. 2017).
        for module in self.modules():
            if isinstance(module, tv_resnet.Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, tv_resnet.BasicBlock):
                nn.init.zeros_(module.bn2.weight)


class SmallCNN(nn.Sequential):
    """Three conv-BN-ReLU blocks and a linear classifier: the smoke profile's network for 8x8 digits."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 32):
        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        super().__init__(
            *block(in_channels, width),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, num_classes),
        )


def build_model(
    arch: str, num_classes: int, *, in_channels: int = 3, width: int = 64, pretrained: bool = False
) -> nn.Module:
    """Build a network by name; see `ARCHS`.

    `pretrained=True` returns torchvision's ImageNet-pretrained ResNet (224 px layout, new `fc` for
    `num_classes`), as in the paper; it downloads weights, so it works only where there is network.
    """
    if arch not in ARCHS:
        raise InputError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if num_classes < 2:
        raise InputError(f"num_classes must be at least 2, got {num_classes}")
    if pretrained:
        return _imagenet_resnet(arch, num_classes)
    if arch == "smallcnn":
        return SmallCNN(num_classes, in_channels, width)
    block, layers = RESNET_LAYOUTS[arch]
    return CifarResNet(block, layers, num_classes, in_channels, width)


def _imagenet_resnet(arch: str, num_classes: int) -> nn.Module:
    if arch not in ("resnet18", "resnet34", "resnet50"):
        raise InputError(f"ImageNet weights exist for resnet18/34/50 only, not {arch!r}")
    weights = tv_resnet.__dict__[f"ResNet{arch[6:]}_Weights"].IMAGENET1K_V1
    try:
        model = tv_resnet.__dict__[arch](weights=weights)
    except Exception as error:  # URLError, timeouts, hash mismatch
        raise RuntimeError(
            f"could not download the ImageNet weights of {arch} ({error}). Train from scratch "
            f"(pretrained=False, the kit's default) or run where torchvision can reach its weights."
        ) from error
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


class PickLogits(nn.Module):
    """`network` with its forward's output reduced to the logits by `pick` (default: the first element).

        student = PickLogits(my_network)                              # forward returns (logits, features)
        student = PickLogits(my_network, lambda out: out["logits"])   # forward returns a dict

    The wrapped network is `self.network`, so its parameters are named `network.<name>`: masks and
    scores computed on the wrapper carry that prefix.
    """

    def __init__(self, network: nn.Module, pick: Callable[[object], Tensor] = operator.itemgetter(0)):
        super().__init__()
        self.network, self.pick = network, pick

    def forward(self, x: Tensor) -> Tensor:
        return self.pick(self.network(x))


def logits_of(output: object) -> Tensor:
    """A network's output if it is one tensor (the logits); otherwise an error naming `PickLogits`."""
    if isinstance(output, Tensor):
        return output
    raise InputError(
        f"the network returned a {type(output).__name__}, not one tensor of logits: wrap it as "
        f"tgkit.models.PickLogits(network) (keeps output[0]) or PickLogits(network, pick=...) to choose the logits"
    )


def num_classes_of(model: nn.Module) -> int:
    """The number of outputs of the model's final Linear layer."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise InputError("the model has no Linear classifier to read its class count from")
    return linears[-1].out_features
