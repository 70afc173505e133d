"""Motion between video frames: warping by a flow field, random smooth motion for training stable style networks
on still photos, exact flows of known camera motion, and the warping error that measures flicker.

A flow is a (N, 2, H, W) tensor of pixel displacements (x first, then y). ``warp(image, flow)`` samples ``image``
at ``p + flow(p)`` for every output pixel ``p`` (backward warping), so with ``flow`` the motion from frame t-1 to
frame t, ``warp(frame_t, flow)`` is frame t brought back onto frame t-1's pixels.

The warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018, ``evaluate_WarpError.py``):
for each pair of frames, output frame t is warped onto frame t-1 with the flow of the *input* frames, and the
squared difference to output frame t-1 is averaged over the pixels that are visible in both (the occlusion mask);
the clip's score is the mean over its pairs. Pixel values are in [0, 1]; a perfectly stable output scores 0.

Random smooth motion follows Wang et al. ("Consistent Video Style Transfer via Relaxation and Regularization",
TIP 2020): a second frame made from a still photo by a random smooth flow (a global shift plus a coarse random
displacement field, upsampled) and a little noise, so a network can learn stability without any video.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _base_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                            torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack((xs, ys))  # (2, H, W), x first


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` (N, C, H, W) sampled bilinearly at ``p + flow(p)``; returns it and the mask (N, 1, H, W) of the
    pixels whose sample point lies inside the image (1) or outside it (0: nothing there to compare)."""
    n, _, height, width = image.shape
    points = _base_grid(height, width, image.device).unsqueeze(0) + flow.to(image.dtype)
    inside = ((points[:, 0] >= 0) & (points[:, 0] <= width - 1) & (points[:, 1] >= 0)
              & (points[:, 1] <= height - 1)).unsqueeze(1).to(image.dtype)
    grid = torch.stack((2 * points[:, 0] / max(1, width - 1) - 1, 2 * points[:, 1] / max(1, height - 1) - 1), dim=-1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return warped, inside


def optical_flow(source: np.ndarray, target: np.ndarray, preset: str = "ultrafast") -> torch.Tensor:
    """The motion from RGB uint8 frame ``source`` to ``target`` (H, W, 3) by DIS (Kroeger et al. 2016, OpenCV's
    ``DISOpticalFlow``; "ultrafast" takes a few milliseconds at 512 px on a CPU): (1, 2, H, W), so that
    ``warp(target_tensor, flow)`` brings ``target`` onto ``source``'s pixels."""
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in (source, target)]
    flow = cv2.DISOpticalFlow_create(presets[preset]).calc(grey[0], grey[1], None)
    return torch.from_numpy(flow).permute(2, 0, 1).unsqueeze(0)


def consistent(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """The forward-backward check (Sundaram, Brox & Keutzer 2010, as Lai et al. use it): 1 where following
    ``forward`` (t-1 -> t) and then ``backward`` (t -> t-1) returns close to the start, 0 where the pixel is
    occluded or the flow unreliable. (N, 1, H, W)."""
    back_at_target, inside = warp(backward, forward)
    total = forward + back_at_target
    size = (forward ** 2).sum(1, keepdim=True) + (back_at_target ** 2).sum(1, keepdim=True)
    return ((total ** 2).sum(1, keepdim=True) <= 0.01 * size + 0.5).to(forward.dtype) * inside


def warping_error(frames: list[torch.Tensor] | torch.Tensor, flows: list[torch.Tensor],
                  masks: list[torch.Tensor] | None = None) -> float:
    """Mean warping error of a clip: ``frames`` (each (1, 3, H, W) in [0, 1]), ``flows[t-1]`` the motion from
    input frame t-1 to input frame t, ``masks[t-1]`` which of frame t-1's pixels are visible in frame t (default:
    those the flow keeps inside the frame)."""
    if len(frames) < 2:
        raise ValueError("the warping error needs at least two frames")
    if len(flows) != len(frames) - 1:
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} flows, got {len(flows)}")
    errors = []
    for t in range(1, len(frames)):
        warped, inside = warp(frames[t], flows[t - 1])
        mask = inside if masks is None else inside * masks[t - 1]
        valid = mask.sum() * frames[t].shape[1]
        if valid <= 0:
            continue
        errors.append(float((((warped - frames[t - 1]) ** 2) * mask).sum() / valid))
    return float(np.mean(errors)) if errors else 0.0


def random_smooth_flow(n: int, height: int, width: int, *, generator: torch.Generator | None = None,
                       shift: float = 0.03, local: float = 0.015, cells: int = 4,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """Random smooth motion for ``n`` images: a global shift of up to ``shift`` x the image side, plus a
    displacement field of standard deviation ``local`` x the side drawn on a ``cells`` x ``cells`` grid and
    upsampled bicubically (no tearing, as a camera or a slow subject moves). (n, 2, H, W) in pixels."""
    side = float(max(height, width))
    global_shift = (torch.rand(n, 2, 1, 1, generator=generator) * 2 - 1) * shift * side
    coarse = torch.randn(n, 2, cells, cells, generator=generator) * local * side
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return (global_shift + field).to(device)


def affine_flow(previous: np.ndarray, current: np.ndarray, height: int, width: int) -> torch.Tensor:
    """The exact flow from frame t-1 to frame t when each frame samples a still image through an affine map
    (``frame_t(p) = still(A_t p)``, ``A`` as a 2x3 matrix in pixels): a pixel ``p`` of frame t-1 shows the still's
    point ``A_{t-1} p``, which frame t shows at ``A_t^-1 A_{t-1} p``. (1, 2, H, W)."""
    grid = _base_grid(height, width, torch.device("cpu")).reshape(2, -1).double()
    homogeneous = torch.cat((grid, torch.ones(1, grid.shape[1], dtype=torch.float64)))
    still_points = torch.from_numpy(np.asarray(previous, dtype=np.float64)) @ homogeneous
    current = np.vstack((np.asarray(current, dtype=np.float64), (0.0, 0.0, 1.0)))
    inverse = torch.from_numpy(np.linalg.inv(current))
    target = (inverse @ torch.cat((still_points, torch.ones(1, grid.shape[1], dtype=torch.float64))))[:2]
    return (target - grid).float().reshape(1, 2, height, width)


def camera_path(kind: str, frames: int, width: int, height: int, still_width: int, still_height: int) -> list[np.ndarray]:
    """Affine maps (2x3, frame pixels -> still pixels) of a camera moving over a still: ``pan`` (left to right),
    ``zoom`` (in by 20%) or ``rotate`` (4 degrees about the centre), staying inside the still."""
    maps = []
    for t in range(frames):
        s = t / max(1, frames - 1)
        if kind == "pan":
            scale, angle = 1.0, 0.0
            cx = width / 2 + s * (still_width - width)
            cy = still_height / 2
        elif kind == "zoom":
            scale, angle = 1.0 - 0.2 * s, 0.0
            cx, cy = still_width / 2, still_height / 2
        elif kind == "rotate":
            scale, angle = 1.0, math.radians(4.0 * s)
            cx, cy = still_width / 2, still_height / 2
        else:
            raise ValueError(f"camera motion must be pan, zoom or rotate, got {kind!r}")
        cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
        # still point = R S (p - frame centre) + (cx, cy)
        maps.append(np.array([[cos, -sin, cx - cos * width / 2 + sin * height / 2],
                              [sin, cos, cy - sin * width / 2 - cos * height / 2]]))
    return maps


def render_camera(still: torch.Tensor, affine: np.ndarray, height: int, width: int) -> torch.Tensor:
    """One frame of :func:`camera_path`: ``still`` (1, 3, H, W) sampled through ``affine`` (bicubic)."""
    grid = _base_grid(height, width, still.device).reshape(2, -1).double()
    homogeneous = torch.cat((grid, torch.ones(1, grid.shape[1], dtype=torch.float64)))
    points = (torch.from_numpy(affine) @ homogeneous).float().reshape(2, height, width)
    sh, sw = still.shape[-2:]
    normalised = torch.stack((2 * points[0] / (sw - 1) - 1, 2 * points[1] / (sh - 1) - 1), dim=-1).unsqueeze(0)
    return F.grid_sample(still, normalised, mode="bicubic", padding_mode="border", align_corners=True).clamp(0, 1)


CAMERA_MOTIONS = ("pan", "zoom", "rotate")


def camera_clips(stills: dict[str, torch.Tensor], frames: int, side: int) -> dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """``"<motion> over <name>"``: (frames, exact flows) of a 16:9 camera ``side`` px wide panning, zooming and
    turning over each still ((1, 3, H, W), about 1.6 x ``side``); a still too small to pan over is left out."""
    width, height = side, round(side * 9 / 16)
    clips = {}
    for name, still in stills.items():
        sh, sw = still.shape[-2:]
        if sw < width * 1.2 or sh < height * 1.05:
            continue
        for kind in CAMERA_MOTIONS:
            maps = camera_path(kind, frames, width, height, sw, sh)
            clips[f"{kind} over {name}"] = ([render_camera(still, m, height, width) for m in maps],
                                            [affine_flow(maps[t - 1], maps[t], height, width) for t in range(1, frames)])
    return clips


STILL_SCENE_STEP = 4  # px the square moves a frame


def noisy_still_scene(frames: int, side: int, *, noise: float = 0.01, seed: int = 0
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """A webcam on a subject that sits still: a square moving over a still gradient, with fresh sensor noise (std
    ``noise``) in every frame. Returns (frames, exact flows, occlusion masks): the square moves
    :data:`STILL_SCENE_STEP` px to the right a frame and the background not at all; the strip of background the
    square covers next is masked out. A network that turns the noise into strokes flickers on it although
    nothing in the picture moves."""
    width, height = side, round(side * 9 / 16)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    top, size = height // 3, height // 3
    clip, lefts = [], [10 + STILL_SCENE_STEP * t for t in range(frames)]
    for left in lefts:
        image = np.stack([x / width, y / height, 0.4 + 0.2 * np.sin(x / 23.0)], -1)
        image[top: top + size, left: left + size] = (0.95, 0.85, 0.2)
        image = np.clip(image + rng.normal(0, noise, image.shape), 0, 1)
        clip.append(torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float())
    flows, masks = [], []
    for before, after in zip(lefts, lefts[1:]):
        flow, mask = torch.zeros(1, 2, height, width), torch.ones(1, 1, height, width)
        flow[:, 0, top: top + size, before: before + size] = after - before
        mask[:, :, top: top + size, before + size: after + size] = 0  # covered by the square in the next frame
        flows.append(flow)
        masks.append(mask)
    return clip, flows, masks
