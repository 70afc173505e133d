"""Network interpolation: ``sum(w_i * theta_i)`` for networks of one architecture (two: ``(1 - a) * theta_a + a * theta_b``).

Between a pixel-loss and a feature-loss super-resolution model it trades distortion for perceptual quality
(the perception-distortion idea of ESRGAN's network interpolation); between two or more style models of one
architecture it blends their styles.
"""
from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

# key -> (weak references to the source networks, the blend). The key holds ``id``s, which Python reuses once a
# network is freed (a model reloaded after its folder changed): a hit counts only while the sources are alive.
_CACHE: "OrderedDict[tuple, tuple[tuple[weakref.ref, ...], nn.Module]]" = OrderedDict()
_CACHE_SIZE = 4
_lock = threading.Lock()


def interpolate_networks(networks: Sequence[nn.Module], weights: Sequence[float]) -> nn.Module:
    """A new eval-mode network whose floating-point tensors are ``sum(w_i * theta_i)`` (integer buffers, such as
    batch-norm counters, come from the first network). Weights must be non-negative and sum to 1.

    Raises ``ValueError`` unless every network has the same state-dict names and shapes. The few most recent
    blends are cached (a slider moving back and forth rebuilds nothing).
    """
    if len(networks) < 2 or len(networks) != len(weights):
        raise ValueError("interpolation needs two or more networks, each with a weight")
    weights = [float(w) for w in weights]
    if any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"interpolation weights must be non-negative and sum to 1, got {weights}")
    states = [net.state_dict() for net in networks]
    first = states[0]
    for state in states[1:]:
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise ValueError("Network interpolation needs models with identical architectures: their weights differ "
                             "in names or shapes.")
    key = (tuple(id(net) for net in networks), tuple(round(w, 4) for w in weights))
    with _lock:
        hit = _CACHE.get(key)
        if hit is not None and all(ref() is net for ref, net in zip(hit[0], networks)):
            _CACHE.move_to_end(key)
            return hit[1]
    mixed = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(w * state[name].float() for w, state in zip(weights, states))
            mixed[name] = torch.as_tensor(total).to(tensor.dtype)
        else:
            mixed[name] = tensor.clone()
    model = copy.deepcopy(networks[0])
    model.load_state_dict(mixed, strict=True)
    model.eval()
    with _lock:
        _CACHE[key] = (tuple(weakref.ref(net) for net in networks), model)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model
