"""Networks of the kit: CIFAR-style ResNets built on torchvision, the airbench network for CPU runs, and a
small CNN for `digits`.

The paper fine-tunes ImageNet-pretrained torchvision ResNets on images upsampled to 224 px. The kit's
default trains CIFAR-style ResNets from scratch at the native 32 px instead (about 49x less compute):
the 7x7 stride-2 stem and the max-pool, made for 224 px images, become one 3x3 stride-1 convolution.
Everything else is torchvision's own ResNet: its `BasicBlock` and `Bottleneck`, its `_make_layer`
and its forward pass. `width` scales the four stages (64, 128, 256, 512 at width 64) so that the
CPU profiles can use the same architectures at a fraction of the cost.

`airbench` is the network of Keller Jordan's airbench94 (2024, MIT licence; reimplemented here), the
fastest known way to train CIFAR-10 to 94%: a frozen 2x2 patch-whitening convolution, then three groups
of (conv, max-pool, BatchNorm, GELU, conv, BatchNorm, GELU) at widths (w, 4w, 4w), a global max-pool
and a linear classifier without bias whose logits are divided by 9. Its BatchNorms keep their scale at 1
(no trainable gamma, as in airbench) and learn only a shift. Accuracy per FLOP, not per parameter, is
what a CPU pays for, and this network was designed for it (the README's recipe ablation sets it beside
the narrow ResNet the quick profile trained before). The whitening filter is a buffer set from the training images'
2x2 patches before the first step (`PatchWhitening.fit`, called by `train.fit`): not trained, not
pruned, and not counted among the weights.

Any other `nn.Module` works with the method too (scoring, masks, training, export), as long as its
forward returns the logits as one tensor. A network that returns more (logits and features, or a
torchvision Inception's named tuple) is wrapped once in `PickLogits`, which picks the logits out;
every place that calls a network passes its output through `logits_of`, which refuses anything else
with the fix in the message.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from tgkit.util.errors import InputError

RESNET_LAYOUTS = {
    "resnet10": (tv_resnet.BasicBlock, (1, 1, 1, 1)),
    "resnet18": (tv_resnet.BasicBlock, (2, 2, 2, 2)),
    "resnet34": (tv_resnet.BasicBlock, (3, 4, 6, 3)),
    "resnet50": (tv_resnet.Bottleneck, (3, 4, 6, 3)),
}
ARCHS = (*RESNET_LAYOUTS, "airbench", "smallcnn")


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


class PatchWhitening(nn.Module):
    """A fixed 2x2 convolution (no padding) that whitens the image's 2x2 patches, plus a trainable bias.

    From the covariance C of the training images' 2x2 patches (c x 2 x 2 = d values each) with
    eigenvalues l_i and eigenvectors v_i, the filters are

        f_i = v_i / sqrt(l_i + eps),   i = 1..d,   and their negatives -f_i      (2d output channels)

    so the d outputs f_i . patch have unit variance and no correlation (the negatives let the GELU
    after it pass both signs). Before `fit` the filters pick each pixel of the patch (and its negative);
    `train.fit` fits them once, on the first training, so retraining never moves them.
    """

    def __init__(self, in_channels: int, eps: float = 5e-4):
        super().__init__()
        self.in_channels, d = in_channels, 4 * in_channels
        picks = torch.eye(d).view(d, in_channels, 2, 2)
        self.register_buffer("weight", torch.cat((picks, -picks)))
        self.register_buffer("fitted", torch.tensor(False))  # in the state dict: a trained network is never refitted
        self.bias = nn.Parameter(torch.zeros(2 * d))
        self.eps = eps

    @torch.no_grad()
    def fit(self, images: Tensor) -> None:
        """Set the filters from `images` (N, c, H, W), the training images as the network sees them."""
        c = images.shape[1]
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, c, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 4 * c).double()
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors / torch.sqrt(eigenvalues + self.eps)).T.reshape(4 * c, c, 2, 2)
        self.weight.copy_(torch.cat((filters, -filters)).to(self.weight))
        self.fitted.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale stays 1 (a frozen gamma) and whose shift learns, as airbench's, with momentum 0.4
    of the new batch in the running statistics (torch's convention). Its eps is torch's 1e-5, not airbench's
    1e-12: a pruned network has channels that are constant over the batch, whose variance is rounding noise
    that an eps of 1e-12 would blow up to NaN."""

    def __init__(self, channels: int):
        super().__init__(channels, momentum=0.4)
        self.weight.requires_grad_(False)


class AirbenchNet(nn.Sequential):
    """airbench94's network at widths (width, 4 width, 4 width): 64 is airbench94's own.

    Every 3x3 convolution starts as a partial identity (`dirac_` on its first in_channels filters), as in
    airbench; images must be at least 16 px (three halvings after the 2x2 whitening).
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64):
        widths = (width, 4 * width, 4 * width)

        def conv(c_in: int, c_out: int) -> nn.Conv2d:
            layer = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            nn.init.dirac_(layer.weight.data[: min(c_in, c_out)])
            return layer

        def group(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                OrderedDict(
                    conv1=conv(c_in, c_out),
                    pool=nn.MaxPool2d(2),
                    bn1=ShiftOnlyBatchNorm(c_out),
                    act1=nn.GELU(),
                    conv2=conv(c_out, c_out),
                    bn2=ShiftOnlyBatchNorm(c_out),
                    act2=nn.GELU(),
                )
            )

        super().__init__(
            OrderedDict(
                whiten=PatchWhitening(in_channels),
                act=nn.GELU(),
                group1=group(8 * in_channels, widths[0]),
                group2=group(widths[0], widths[1]),
                group3=group(widths[1], widths[2]),
                pool=nn.AdaptiveMaxPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(widths[2], num_classes, bias=False),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 16:
            raise InputError(f"airbench takes images of at least 16 px, got {tuple(x.shape[-2:])}: use a ResNet")
        return super().forward(x) / 9  # airbench's logit scale: a cooler softmax at initialisation


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
    if arch == "airbench":
        return AirbenchNet(num_classes, in_channels, width)
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


def whitening_layers(model: nn.Module) -> list[PatchWhitening]:
    """The patch-whitening layers of `model` (airbench has one): `train.fit` sets them from the data."""
    return [module for module in model.modules() if isinstance(module, PatchWhitening)]


def in_channels_of(model: nn.Module) -> int:
    """The image channels the model takes: those of its first convolution, the whitening one included (an
    airbench network's first `nn.Conv2d` sees the whitening's 8c outputs, not the image's c channels)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, PatchWhitening)):
            return module.in_channels
    raise InputError("the model has no convolution to read its input channels from")


def num_classes_of(model: nn.Module) -> int:
    """The number of outputs of the model's final Linear layer."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise InputError("the model has no Linear classifier to read its class count from")
    return linears[-1].out_features
