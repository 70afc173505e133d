"""Steadier video at inference time, for any style network: each stylised frame is mixed with the previous
*result* moved along the input's optical flow, wherever the input agrees with the previous input so moved.

A feed-forward network repaints every frame from scratch, so strokes it draws from tiny input changes (sensor
noise over a flat wall, compression) flicker even when nothing moves. Mixing recursively keeps what it paints
consistently and averages away what it re-decides each frame; where something new appears (or the flow is wrong)
the input disagrees and the new frame is shown as it is, so moving things leave no trail. The flow is DIS
(``imaging.motion.optical_flow``, a few milliseconds a frame).

It is a trade, measured by ``benchmarks.video`` (woodcut's stable network, share 0.25): the warping error falls
by a fifth to two fifths on every clip (71% -> 44% of the per-frame network's on a still, noisy scene), but the
style objective of the frames rises by 4-16% on moving clips and 41% on that still scene, because averaging two
paintings of one picture softens the strokes. So it is an option, off by default.
"""
from __future__ import annotations

import numpy as np

from perceptual_studio.imaging.motion import optical_flow

DEFAULT_STEADY = 0.25  # the previous result's share where the input agrees; the app's switch sets this
AGREEMENT = 0.05  # mean absolute difference (in [0, 1]) under which the moved previous input "agrees"


class FlowGuidedBlend:
    """Called once per frame, in order: ``blend(content, stylised)`` (RGB uint8 arrays of one size) returns the
    frame to show. ``weight`` in [0, 1): the previous result's share (0 returns every frame unchanged)."""

    def __init__(self, weight: float = DEFAULT_STEADY, agreement: float = AGREEMENT) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"the steadiness must be at least 0 and below 1, got {weight}")
        self.weight, self.agreement = float(weight), float(agreement)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (content uint8, result float32 in [0, 255])

    def reset(self) -> None:
        """Forget the previous frame (a new clip, or a cut)."""
        self._previous = None

    def __call__(self, content: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        if content.shape != stylised.shape:
            raise ValueError(f"content {content.shape} and stylised frame {stylised.shape} differ in size")
        current = stylised.astype(np.float32)
        if self._previous is not None and self._previous[0].shape != content.shape:
            self._previous = None  # the frame size changed (the webcam's size slider): start again
        if self.weight > 0 and self._previous is not None:
            previous_content, previous_result = self._previous
            # For each pixel now, where it was a frame ago (OpenCV's remap: OpenCV arrays, a few ms at 512 px).
            flow = optical_flow(content, previous_content)[0].permute(1, 2, 0).numpy()
            moved_result, inside = _moved(previous_result, flow)
            moved_content, _ = _moved(previous_content.astype(np.float32), flow)
            difference = np.abs(moved_content - content.astype(np.float32)).mean(axis=2)
            share = (self.weight * ((difference < 255.0 * self.agreement) & inside)).astype(np.float32)[..., None]
            current += share * (moved_result - current)
        self._previous = (content, current)
        return np.clip(np.rint(current), 0, 255).astype(np.uint8)


def _moved(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` sampled at ``p + flow(p)`` (bilinear, as ``imaging.motion.warp``), and where that point lies
    inside the image."""
    import cv2

    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), inside
