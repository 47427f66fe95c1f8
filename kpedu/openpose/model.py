"""OpenPose (Cao et al., CVPR 2017; TPAMI 2021): the multi-stage network and its loss.

OpenPose chapter (``book/ch02-openpose``). The layout is that of the TPAMI version
("PAF-only refinement"); equation numbers are the TPAMI ones:

* a backbone ``F``: for ``backbone="vgg19"``, the first 10 convolutions of VGG-19
  (64, 64, pool, 128, 128, pool, 256, 256, 256, 256, pool, 512, 512; 3x3, ReLU) followed,
  as in the released models, by two 3x3 convolutions 512 -> 256 -> 128 (``conv4_3_CPM``,
  ``conv4_4_CPM``); for ``backbone="small"``, a cheaper conv-BN-ReLU stack with the same
  overall stride 8, for training from scratch on the book's synthetic scenes;
* ``paf_stages`` PAF stages ``phi^t``: :math:`L^1 = \\phi^1(F)` and
  :math:`L^t = \\phi^t(F, L^{t-1})`;
* then ``cm_stages`` confidence-map stages ``rho^t``: the first takes ``F`` and the final
  PAFs, :math:`S = \\rho(F, L^{T_P})`, each later one also the previous maps,
  :math:`S^t = \\rho^t(F, L^{T_P}, S^{t-1})`;
* every stage is the same block (:class:`Stage`): ``stage_blocks`` (5) conv blocks, each
  three 3x3 convolutions in a row whose three outputs are concatenated (the paper's
  replacement for the CVPR model's 7x7 convolutions, :class:`ConvBlock`), then a 1x1
  convolution to ``stage_hidden`` (512 in the paper) and a 1x1 convolution to the
  outputs; PReLU non-linearities as in the paper. No weights are shared between stages.

Inputs are concatenated in the order of the released BODY_25 model: ``[F, L]`` for a
PAF stage, ``[F, L^{T_P}]`` for the first CM stage and ``[F, S^{t-1}, L^{T_P}]`` for a
later one (the paper writes the arguments in another order; for a fresh network the
order does not matter, for the released weights it does).

``forward(images)`` returns ``(pafs, cms)``: lists with one ``(B, 2C, H/8, W/8)`` PAF
tensor per PAF stage and one ``(B, K, H/8, W/8)`` map tensor per CM stage, all
supervised by :func:`openpose_loss` (intermediate supervision at every stage, TPAMI Sec. 3.1).
PAF channel ``2c`` is the ``x`` and ``2c + 1`` the ``y`` component of limb ``c``
(:mod:`kpedu.openpose.targets`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn

from .. import checks

__all__ = [
    "ConvBlock",
    "Stage",
    "VGG19Backbone",
    "SmallBackbone",
    "OpenPoseNet",
    "openpose_paper",
    "openpose_loss",
    "VGG19_LAYERS",
]

#: The first ten convolutions of VGG-19 ("M" is a 2x2 max-pool), as used by OpenPose.
VGG19_LAYERS: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512)

_ACTIVATIONS = ("prelu", "relu")


def _act(kind: str, channels: int) -> nn.Module:
    """PReLU with one slope per channel (Caffe's default, as in the released models) or ReLU."""
    return nn.PReLU(channels) if kind == "prelu" else nn.ReLU(inplace=True)


def _check_int(value, name: str, minimum: int = 1) -> int:
    return checks.integer(value, name, minimum=minimum)


def _activation(activation) -> str:
    return checks.choice(activation, "activation", _ACTIVATIONS)




class ConvBlock(nn.Module):
    """Three 3x3 convolutions in a row whose outputs are concatenated (TPAMI Sec. 3.1).

    The paper replaces each 7x7 convolution of the CVPR model by three 3x3 ones (same
    receptive field, fewer operations) and concatenates the three outputs, DenseNet
    style, so the block's output keeps both shallow and deep features:
    ``c_in -> (width, width, width)``, output ``3 * width`` channels. Every convolution
    is followed by the activation (and by BatchNorm before it with ``batch_norm``).
    """

    def __init__(self, c_in: int, width: int, activation: str = "prelu", batch_norm: bool = False,
                 num_convs: int = 3):
        super().__init__()
        c_in = _check_int(c_in, "c_in")
        width = _check_int(width, "width")
        num_convs = _check_int(num_convs, "num_convs")
        _activation(activation)
        layers = []
        for i in range(num_convs):
            mods: list[nn.Module] = [nn.Conv2d(c_in if i == 0 else width, width, 3, padding=1)]
            if batch_norm:
                mods.append(nn.BatchNorm2d(width))
            mods.append(_act(activation, width))
            layers.append(nn.Sequential(*mods))
        self.convs = nn.ModuleList(layers)
        self.out_channels = num_convs * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for conv in self.convs:
            x = conv(x)
            outs.append(x)
        return torch.cat(outs, dim=1)


class Stage(nn.Module):
    """One refinement stage ``phi^t`` or ``rho^t`` (TPAMI Fig. 3).

    ``num_blocks`` :class:`ConvBlock` s of ``width`` (each outputs ``3 * width``), a 1x1
    convolution to ``hidden`` with activation, and a 1x1 convolution to ``c_out`` with no
    activation (PAFs are signed, maps are regressed).
    """

    def __init__(self, c_in: int, c_out: int, width: int = 128, hidden: int = 512, num_blocks: int = 5,
                 activation: str = "prelu", batch_norm: bool = False):
        super().__init__()
        c_in, c_out, width, hidden, num_blocks = (
            _check_int(v, n) for v, n in ((c_in, "c_in"), (c_out, "c_out"), (width, "width"), (hidden, "hidden"),
                                          (num_blocks, "num_blocks")))
        _activation(activation)
        blocks = []
        c = c_in
        for _ in range(num_blocks):
            blocks.append(ConvBlock(c, width, activation, batch_norm))
            c = blocks[-1].out_channels
        self.blocks = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Conv2d(c, hidden, 1)]
        if batch_norm:
            head.append(nn.BatchNorm2d(hidden))
        head += [_act(activation, hidden), nn.Conv2d(hidden, c_out, 1)]
        self.head = nn.Sequential(*head)
        self.in_channels, self.out_channels = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class VGG19Backbone(nn.Module):
    """``F`` of the paper: VGG-19's first 10 convolutions plus ``512 -> 256 -> out``.

    ``self.vgg`` has exactly the module layout of ``torchvision.models.vgg19().features[:23]``
    (conv, ReLU, conv, ReLU, pool, ...), so ImageNet weights load by index (see
    :meth:`OpenPoseNet.load_vgg19`). The two extra convolutions (``conv4_3_CPM``,
    ``conv4_4_CPM`` in the released models) use ``activation``. Stride 8.
    """

    def __init__(self, out_channels: int = 128, activation: str = "prelu"):
        super().__init__()
        out_channels = _check_int(out_channels, "out_channels")
        _activation(activation)
        layers: list[nn.Module] = []
        c = 3
        for v in VGG19_LAYERS:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.vgg = nn.Sequential(*layers)
        self.cpm = nn.Sequential(
            nn.Conv2d(512, 256, 3, padding=1), _act(activation, 256),
            nn.Conv2d(256, out_channels, 3, padding=1), _act(activation, out_channels),
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cpm(self.vgg(x))


class SmallBackbone(nn.Module):
    """A cheap stride-8 backbone for the book's experiments (not in the paper).

    Three resolution levels of two 3x3 conv-BN-ReLU layers of widths ``width``,
    ``2 width``, ``4 width``, each followed by a 2x2 max-pool, then a 3x3 conv-BN-ReLU
    at ``4 width`` and one to ``out_channels``: the VGG pattern, shallower and narrower,
    with BatchNorm so that it trains from scratch.
    """

    def __init__(self, width: int = 32, out_channels: int = 128):
        super().__init__()
        width = _check_int(width, "width")
        out_channels = _check_int(out_channels, "out_channels")
        layers: list[nn.Module] = []
        c = 3
        for v in (width, width, "M", 2 * width, 2 * width, "M", 4 * width, 4 * width, "M", 4 * width,
                  out_channels):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class OpenPoseNet(nn.Module):
    """The OpenPose network, TPAMI layout: PAF stages first, then confidence-map stages.

    Args:
        num_keypoints: ``K``, confidence maps per CM stage (17 for COCO-17; the paper's
            COCO model has 18 parts, with the neck; the released models add one
            background map, i.e. ``K + 1``).
        num_limbs: ``C``; each PAF stage outputs ``2C`` channels (19 limbs for COCO-17).
        backbone: ``"vgg19"`` (the paper's) or ``"small"`` (:class:`SmallBackbone`).
        paf_stages: ``T_P >= 1`` PAF stages (the paper's ablation: 5 PAF + 1 CM is best;
            the released BODY_25 model has 4 + 2).
        cm_stages: ``T_C >= 1`` confidence-map stages.
        stage_channels: width of every 3x3 convolution in a stage (the paper: 128).
        stage_hidden: width of the first 1x1 convolution of a stage; ``None`` gives
            ``4 * stage_channels`` (the paper: 512).
        stage_blocks: conv blocks per stage (the paper: 5).
        feature_channels: channels of ``F`` (the paper: 128).
        backbone_width: base width of the ``"small"`` backbone (ignored for ``"vgg19"``).
        activation: ``"prelu"`` (the paper) or ``"relu"``, in the stages and the two
            convolutions after VGG.
        batch_norm: BatchNorm after every 3x3 and hidden 1x1 convolution of the stages
            (not in the paper; helps training from scratch).

    ``forward(images)`` takes ``(B, 3, H, W)``, ``H`` and ``W`` multiples of 8 (float in
    ``[0, 1]``, or ``uint8``, scaled by 1/255; on the model's device), and returns
    ``(pafs, cms)``: lists of ``paf_stages`` tensors ``(B, 2C, H/8, W/8)`` and
    ``cm_stages`` tensors ``(B, K, H/8, W/8)``. The book's small configuration is
    ``OpenPoseNet(backbone="small", paf_stages=3, cm_stages=1, stage_channels=64)``; the
    paper's is :func:`openpose_paper`.
    """

    def __init__(
        self,
        num_keypoints: int = 17,
        num_limbs: int = 19,
        backbone: str = "vgg19",
        paf_stages: int = 5,
        cm_stages: int = 1,
        stage_channels: int = 128,
        stage_hidden: int | None = None,
        stage_blocks: int = 5,
        feature_channels: int = 128,
        backbone_width: int = 32,
        activation: str = "prelu",
        batch_norm: bool = False,
    ):
        super().__init__()
        num_keypoints = _check_int(num_keypoints, "num_keypoints")
        num_limbs = _check_int(num_limbs, "num_limbs")
        paf_stages = _check_int(paf_stages, "paf_stages")
        cm_stages = _check_int(cm_stages, "cm_stages")
        stage_channels = _check_int(stage_channels, "stage_channels")
        stage_blocks = _check_int(stage_blocks, "stage_blocks")
        feature_channels = _check_int(feature_channels, "feature_channels")
        backbone_width = _check_int(backbone_width, "backbone_width")
        if stage_hidden is None:
            stage_hidden = 4 * stage_channels
        stage_hidden = _check_int(stage_hidden, "stage_hidden")
        _activation(activation)
        checks.choice(backbone, "backbone", ("vgg19", "small"))
        if backbone == "vgg19":
            self.backbone: nn.Module = VGG19Backbone(feature_channels, activation)
        else:
            self.backbone = SmallBackbone(backbone_width, feature_channels)
        self.num_keypoints, self.num_limbs = num_keypoints, num_limbs
        self.backbone_name = backbone
        f, k, p = feature_channels, num_keypoints, 2 * num_limbs
        kw = dict(width=stage_channels, hidden=stage_hidden, num_blocks=stage_blocks, activation=activation,
                  batch_norm=batch_norm)
        self.paf_stages = nn.ModuleList(Stage(f if t == 0 else f + p, p, **kw) for t in range(paf_stages))
        self.cm_stages = nn.ModuleList(Stage(f + p if t == 0 else f + k + p, k, **kw) for t in range(cm_stages))

    @property
    def stride(self) -> int:
        """Input pixels per output pixel (8)."""
        return 8

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        images = checks.network_images(images, self, multiple=8, why=" (the output stride)")
        feats = self.backbone(images)
        pafs: list[torch.Tensor] = []
        x = feats
        for stage in self.paf_stages:            # L^t = phi^t(F, L^{t-1})
            pafs.append(stage(x))
            x = torch.cat([feats, pafs[-1]], dim=1)
        last = pafs[-1]
        cms: list[torch.Tensor] = []
        for stage in self.cm_stages:             # S^t = rho^t(F, L^{T_P}, S^{t-1})
            x = torch.cat([feats, last] if not cms else [feats, cms[-1], last], dim=1)
            cms.append(stage(x))
        return pafs, cms

    def load_vgg19(self, state_dict: Mapping[str, torch.Tensor]) -> int:
        """Copy ImageNet VGG-19 weights into the backbone's first ten convolutions.

        ``state_dict`` is that of ``torchvision.models.vgg19`` (keys ``features.N.weight``)
        or of its ``features`` (keys ``N.weight``); layers beyond ``conv4_2`` and the
        classifier are ignored. Returns the number of tensors copied (20). Only for
        ``backbone="vgg19"``; nothing is downloaded here.
        """
        if not isinstance(self.backbone, VGG19Backbone):
            raise ValueError("load_vgg19 needs backbone='vgg19'")
        own = self.backbone.vgg.state_dict()
        picked = {}
        for key, value in state_dict.items():
            name = key[len("features."):] if key.startswith("features.") else key
            if name in own:
                if tuple(value.shape) != tuple(own[name].shape):
                    raise ValueError(f"{key}: shape {tuple(value.shape)} does not match {tuple(own[name].shape)}")
                picked[name] = value
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"state_dict lacks VGG-19 weights for {missing}")
        self.backbone.vgg.load_state_dict(picked)
        return len(picked)


def openpose_paper(num_keypoints: int = 18, num_limbs: int = 19) -> OpenPoseNet:
    """The paper's configuration (TPAMI 2021): VGG-19 backbone, 5 PAF stages, 1 CM stage,
    3x3 convolutions of 128, 1x1 of 512, PReLU. Defaults: the COCO model's 18 parts (with
    the neck) and 19 limbs."""
    return OpenPoseNet(num_keypoints, num_limbs, backbone="vgg19", paf_stages=5, cm_stages=1,
                       stage_channels=128, stage_hidden=512, stage_blocks=5, feature_channels=128,
                       activation="prelu")


# ------------------------------------------------------------------------------- loss


def openpose_loss(
    pafs: Sequence[torch.Tensor],
    cms: Sequence[torch.Tensor],
    paf_target: torch.Tensor,
    cm_target: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked L2 loss with intermediate supervision (OpenPose chapter; TPAMI Sec. 3.1).

    Every PAF stage ``t`` costs :math:`f_L^t = \\sum_c \\sum_p W(p)\\,\\lVert L^t_c(p) -
    L^*_c(p) \\rVert^2`, every CM stage :math:`f_S^t = \\sum_j \\sum_p W(p)\\,
    (S^t_j(p) - S^*_j(p))^2`, and the total is their sum over all stages.
    ``W(p)`` is the binary loss mask (:func:`~kpedu.openpose.targets.loss_mask`):
    masked pixels contribute nothing, whatever the prediction there.

    Normalisation: each stage's sum over channels and pixels is divided by the batch size
    ``B`` (a per-image sum, averaged over the batch), so the value does not depend on
    the batch size but grows with the map size and the number of channels. (Caffe's
    Euclidean loss of the released training also divides by ``2B``; the factor 1/2 is
    left out here.)

    Args:
        pafs: list of ``(B, 2C, H, W)`` PAF predictions, one per PAF stage.
        cms: list of ``(B, K, H, W)`` confidence-map predictions, one per CM stage.
        paf_target: ``(B, 2C, H, W)``; cm_target: ``(B, K, H, W)``.
        mask: ``(B, H, W)`` or ``(B, 1, H, W)`` weights ``W(p)`` (0/1, float or bool);
            ``None`` uses every pixel.

    Returns:
        ``(total, logs)``: the scalar loss and a dict of floats, ``"paf1"``, ...,
        ``"cm1"``, ... per stage, their sums ``"paf"`` and ``"cm"``, and ``"loss"``.
    """
    for name, outs in (("pafs", pafs), ("cms", cms)):
        if not isinstance(outs, (list, tuple)):
            raise TypeError(f"{name} must be a list of (B, C, H, W) tensors, one per stage, got {checks.describe(outs)}"
                            + ("; wrap one stage's output in a list" if isinstance(outs, torch.Tensor) else ""))
        for t, out in enumerate(outs):
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"{name}[{t}] must be a (B, C, H, W) tensor, got {checks.describe(out)}")
    if len(pafs) == 0 or len(cms) == 0:
        raise ValueError("openpose_loss needs at least one PAF stage and one CM stage output (pafs and cms)")
    checks.same_device(pafs=pafs[0], cms=cms[0], paf_target=paf_target, cm_target=cm_target)
    paf_target = checks.maps(paf_target, "paf_target", ndim=4, shape_text="(B, 2C, H, W)")
    cm_target = checks.maps(cm_target, "cm_target", ndim=4, shape_text="(B, K, H, W)")
    b, _, h, w = cm_target.shape
    if paf_target.shape[0] != b or tuple(paf_target.shape[-2:]) != (h, w):
        raise ValueError(f"paf_target {tuple(paf_target.shape)} and cm_target {tuple(cm_target.shape)} "
                         "must share batch size and map size")
    dtype = torch.float32  # at least float32 (mixed precision), float64 stays float64
    for x in (*pafs, *cms, paf_target, cm_target):
        dtype = torch.promote_types(dtype, x.dtype)
    if mask is None:
        weight = torch.ones(b, 1, h, w, device=cm_target.device, dtype=dtype)
    else:
        weight = checks.as_tensor(mask, "mask", dtype=dtype, device=cm_target.device, allow_bool=True)
        given = tuple(weight.shape)
        if weight.ndim == 3:
            weight = weight[:, None]
        if tuple(weight.shape) != (b, 1, h, w):
            raise ValueError(f"mask must be (B, H, W) or (B, 1, H, W) = {(b, 1, h, w)}, got {given}")
        weight = checks.maps(weight, "mask", ndim=4, shape_text="(B, 1, H, W)")
    logs: dict[str, float] = {}
    losses = []
    for kind, outs, target in (("paf", pafs, paf_target), ("cm", cms, cm_target)):
        target = target.to(dtype)
        part = []
        for t, out in enumerate(outs):
            if out.shape != target.shape:
                raise ValueError(f"{kind} stage {t + 1} ({kind}s[{t}]): output {tuple(out.shape)} does not match "
                                 f"target {tuple(target.shape)}")
            value = (((out.to(dtype) - target) ** 2) * weight).sum() / b
            logs[f"{kind}{t + 1}"] = float(value.detach())
            part.append(value)
        logs[kind] = float(sum(v.detach() for v in part))
        losses += part
    total = torch.stack(losses).sum()
    logs["loss"] = float(total.detach())
    return total, logs
