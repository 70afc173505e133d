"""The loss definitions of Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 3.2-3.3, as pure functions.

Each is normalised as the paper states and averaged over the batch. Images and features are (B, C, H, W).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(pred: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if pred.dim() != 4:
        raise ValueError(f"{what}: expected (B, C, H, W) tensors, got shape {tuple(pred.shape)}")
    if pred.shape[1:] != target.shape[1:] or target.shape[0] not in (1, pred.shape[0]):
        raise ValueError(f"{what}: shapes {tuple(pred.shape)} and {tuple(target.shape)} do not match")


def feature_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||phi_j(y_hat) - phi_j(y)||_2^2 / (C_j H_j W_j), mean over the batch."""
    _check_pair(pred, target, "feature reconstruction loss")
    return (pred - target).pow(2).flatten(1).mean(1).mean()


def pixel_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||y_hat - y||_2^2 / (C H W), mean over the batch."""
    _check_pair(pred, target, "pixel loss")
    return (pred - target).pow(2).flatten(1).mean(1).mean()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G[c, c'] = sum_{h,w} phi[c,h,w] phi[c',h,w] / (C H W); (B, C, H, W) -> (B, C, C).

    Computed in float32 whatever the input dtype: the sum over H*W loses too much in bfloat16.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix: expected (B, C, H, W), got shape {tuple(features.shape)}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_reconstruction_loss(pred_gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """||G_j(y_hat) - G_j(y_s)||_F^2 (squared Frobenius norm), mean over the batch."""
    if pred_gram.dim() != 3 or pred_gram.shape[-1] != pred_gram.shape[-2]:
        raise ValueError(f"style loss: expected (B, C, C) Gram matrices, got {tuple(pred_gram.shape)}")
    if target_gram.shape[-2:] != pred_gram.shape[-2:]:
        raise ValueError(f"style loss: Gram shapes {tuple(pred_gram.shape)} and {tuple(target_gram.shape)} differ")
    return (pred_gram - target_gram).pow(2).sum(dim=(1, 2)).mean()


def total_variation_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation (the authors' code; the paper gives no formula), normalised by C H W.

    sum (x[h+1,w] - x[h,w])^2 + sum (x[h,w+1] - x[h,w])^2, divided by C*H*W, mean over the batch.
    """
    if image.dim() != 4:
        raise ValueError(f"total variation: expected (B, C, H, W), got shape {tuple(image.shape)}")
    _, c, h, w = image.shape
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).pow(2).sum(dim=(1, 2, 3))
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).pow(2).sum(dim=(1, 2, 3))
    return ((dx + dy) / (c * h * w)).mean()


def grid_pattern_loss(pred: torch.Tensor, target: torch.Tensor, period: int, window: int = 4) -> torch.Tensor:
    """A pattern of ``pred`` locked to a ``period``-pixel grid, beyond the target's (not in the paper).

    The difference pred - target is split into its period x period phases (pixel unshuffle), each phase is
    averaged over ``window`` x ``window`` cells, and the loss is the variance of those local means across the
    phases, mean over cells, channels and batch. A super-resolution network that makes each output phase with
    its own channels (sub-pixel convolution) can add such a pattern almost for free under a feature loss: the
    pooled VGG features hardly see it, the eye does (a dot grid over flat areas). Detail that differs from the
    target in the same way on every phase costs nothing, so the feature loss keeps its freedom elsewhere.
    """
    _check_pair(pred, target, "grid pattern loss")
    if period < 2 or window < 1:
        raise ValueError(f"grid pattern loss: period must be >= 2 and window >= 1, got {period} and {window}")
    cell = period * window
    h, w = pred.shape[-2] // cell * cell, pred.shape[-1] // cell * cell
    if not (h and w):
        raise ValueError(f"grid pattern loss: images of {tuple(pred.shape[-2:])} are smaller than one {cell}-pixel cell")
    diff = (pred[..., :h, :w] - target[..., :h, :w]).float()
    phases = F.pixel_unshuffle(diff, period)  # (B, C * period^2, h / period, w / period)
    b, c = pred.shape[:2]
    local = F.avg_pool2d(phases, window).view(b, c, period * period, h // cell, w // cell)
    return local.var(dim=2, unbiased=False).mean()
