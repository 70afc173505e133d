"""The Explain tools: deconvnet projections checked by hand, top-9 by brute force, invariance curves, previews."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

import perceptual_studio.webapp.handlers.explain as handlers
from perceptual_studio.explain import (
    Deconvnet,
    evolution_strip,
    find_previews,
    invariance_curves,
    receptive_fields,
    to_display,
    top9,
    top_activations,
    transform_images,
)
from perceptual_studio.explain.deconvnet import conv_transpose
from perceptual_studio.explain.samples import load_sample, sample_images, square, stack
from perceptual_studio.imaging.figures import line_plot
from perceptual_studio.imaging.io import image_to_tensor
from perceptual_studio.networks.vgg import LAYER_NAMES, LossNetwork, _build_features
from perceptual_studio.webapp.handlers.explain import (
    explain_evolution,
    explain_invariance,
    explain_top9,
    parse_channels,
)

LOSS_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def tiny_net(inplace: bool = False) -> nn.Sequential:
    """conv 2x2 (weights 1 2 / 3 4, no bias) -> ReLU -> 2x2 max-pool, on one channel."""
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    return nn.Sequential(conv, nn.ReLU(inplace=inplace), nn.MaxPool2d(2))


def two_block_net(inplace: bool) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(inplace=inplace), nn.MaxPool2d(2),
    )
    return net.requires_grad_(False)


def no_hooks(net: nn.Module) -> bool:
    return all(not module._forward_hooks for module in net.modules())


@pytest.fixture(scope="module")
def vgg(random_vgg_weights) -> LossNetwork:
    return LossNetwork(("pool5",), random_vgg_weights)


# Deconvnet -------------------------------------------------------------------------------------------------


def test_projection_of_one_activation_matches_hand_calculation() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 2] = 1.0
    # conv (cross-correlation) of a single 1 at (1, 2): y[0,1]=4, y[0,2]=3, y[1,1]=2, y[1,2]=1.
    # Pool window (0,0) holds 4 at (0,1) (its switch); window (0,1) holds 3 at (0,2).
    with Deconvnet(tiny_net(), ["conv", "relu", "pool"]) as deconv:
        pooled = deconv.forward(x, "pool")
        assert pooled[0, 0].tolist() == [[4.0, 3.0], [0.0, 0.0]]
        projection = deconv.project(x, "pool", channel=0)  # the strongest: 4 at pool (0, 0)
    # Unpool puts 4 at conv position (0, 1); the transposed filter spreads it as 4 * w over rows 0-1, cols 1-2.
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 0, 1:3] = torch.tensor([4.0, 8.0])
    expected[0, 0, 1, 1:3] = torch.tensor([12.0, 16.0])
    assert torch.equal(projection, expected)


def test_projection_of_a_chosen_position() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 2] = 1.0
    with Deconvnet(tiny_net(), ["conv", "relu", "pool"]) as deconv:
        projection = deconv.project(x, "pool", channel=0, position=(0, 1))  # value 3, switch at conv (0, 2)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 0, 2:4] = torch.tensor([3.0, 6.0])
    expected[0, 0, 1, 2:4] = torch.tensor([9.0, 12.0])
    assert torch.equal(projection, expected)


def test_unpooling_puts_values_at_the_switches_only() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 7, 6)
    pool = nn.Sequential(nn.MaxPool2d(2))
    signal = torch.rand(2, 3, 3, 3) + 0.1
    with Deconvnet(pool) as deconv:
        deconv.forward(x, 0)
        unpooled = deconv.down(signal)
    # Max-pooling's gradient routes each output's gradient to its argmax: the same thing, done by autograd.
    x_grad = x.clone().requires_grad_(True)
    (nn.functional.max_pool2d(x_grad, 2) * signal).sum().backward()
    assert torch.equal(unpooled, x_grad.grad)
    assert int((unpooled != 0).sum()) == signal.numel()
    # Every non-zero sits where the input is the maximum of its 2x2 window.
    windows = x[..., :6, :6].unfold(2, 2, 2).unfold(3, 2, 2).amax(dim=(-1, -2))
    for n, c, i, j in (unpooled != 0).nonzero().tolist():
        assert x[n, c, i, j] == windows[n, c, i // 2, j // 2]


@pytest.mark.parametrize(
    "stride, padding, dilation, size, groups",
    [(1, 1, 1, (9, 7), 1), (2, 1, 1, (9, 8), 1), (2, 0, 1, (10, 11), 2), (1, 2, 2, (8, 8), 1), (3, 1, 1, (11, 10), 1)],
)
def test_transposed_filtering_is_the_convs_adjoint(stride, padding, dilation, size, groups) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=True)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    conv = conv.double()
    y_shape = nn.functional.conv2d(x, conv.weight, None, stride, padding, dilation, groups).shape
    y = torch.randn(y_shape, dtype=torch.float64)
    forward = nn.functional.conv2d(x, conv.weight, None, stride, padding, dilation, groups)
    back = conv_transpose(y, conv, x.shape)
    assert back.shape == x.shape
    assert torch.allclose((forward * y).sum(), (x * back).sum(), rtol=1e-10)


def test_hooks_are_removed_afterwards() -> None:
    net = two_block_net(inplace=False)
    with Deconvnet(net) as deconv:
        assert sum(len(m._forward_hooks) for m in net) == len(net)
        deconv.project(torch.rand(1, 3, 8, 8), 4, channel=1)
    assert no_hooks(net)
    with pytest.raises(RuntimeError, match="with"):
        deconv.forward(torch.rand(1, 3, 8, 8), 4)


def test_hooks_are_removed_when_the_block_raises() -> None:
    net = two_block_net(inplace=False)
    with pytest.raises(ZeroDivisionError):
        with Deconvnet(net) as deconv:
            deconv.forward(torch.rand(1, 3, 8, 8), 5)
            1 / 0
    assert no_hooks(net)
    with pytest.raises(ValueError, match="channel"):
        with Deconvnet(net) as deconv:
            deconv.project(torch.rand(1, 3, 8, 8), 5, channel=99)
    assert no_hooks(net)


def test_hooks_are_removed_when_entering_fails_halfway(monkeypatch) -> None:
    net = two_block_net(inplace=False)

    def refuse(*args, **kwargs):
        raise RuntimeError("no more hooks")

    monkeypatch.setattr(net[3], "register_forward_hook", refuse)
    with pytest.raises(RuntimeError, match="no more hooks"):
        with Deconvnet(net):
            pass
    assert no_hooks(net)


def test_in_place_relus_give_the_same_projections_and_leave_the_input_alone() -> None:
    plain, inplace = two_block_net(inplace=False), two_block_net(inplace=True)
    image = torch.rand(1, 3, 12, 12)
    before = image.clone()
    with Deconvnet(plain) as a, Deconvnet(inplace) as b:
        for layer in range(len(plain)):
            acts_a, acts_b = a.forward(image, layer), b.forward(image, layer)
            assert torch.equal(acts_a, acts_b)  # a conv's output, not overwritten by the ReLU after it
            for channel in (0, 3):
                assert torch.equal(a.project(image, layer, channel), b.project(image, layer, channel))
    assert torch.equal(image, before)
    # A network that starts with an in-place ReLU must not rectify the caller's tensor.
    first = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(3, 2, 3, padding=1))
    signed = torch.randn(1, 3, 6, 6)
    kept = signed.clone()
    with Deconvnet(first) as deconv:
        deconv.project(signed, 1, channel=0)
    assert torch.equal(signed, kept)


def test_unsupported_layers_are_refused() -> None:
    with pytest.raises(ValueError, match="BatchNorm2d"):
        Deconvnet(nn.Sequential(nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3)))
    with pytest.raises(ValueError, match="zero padding"):
        Deconvnet(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")))


def test_vgg_receptive_fields() -> None:
    fields = receptive_fields(_build_features(len(LAYER_NAMES)), LAYER_NAMES)
    table = {name: (fields[name].size, fields[name].stride, fields[name].offset) for name in (*LOSS_TAPS, "pool5")}
    assert table == {
        "relu1_2": (5, 1, -2),
        "relu2_2": (14, 2, -6),
        "relu3_3": (40, 4, -18),
        "relu4_3": (92, 8, -42),
        "relu5_3": (196, 16, -90),
        "pool5": (212, 32, -90),
    }


@pytest.mark.parametrize("layer", LOSS_TAPS)
def test_deconvnet_on_the_loss_network_stays_inside_the_receptive_field(vgg, random_vgg_weights, layer) -> None:
    torch.manual_seed(3)
    image = torch.rand(1, 3, 48, 40)
    with Deconvnet(vgg) as deconv:
        acts = deconv.forward(image, layer)
        assert torch.allclose(acts, LossNetwork((layer,), random_vgg_weights)(image)[layer])
        channel = int(acts.amax(dim=(0, 2, 3)).argmax())
        y, x = divmod(int(acts[0, channel].argmax()), acts.shape[3])
        projection = deconv.project(image, layer, channel)
        top, left, bottom, right = deconv.receptive_field(layer).box(y, x)
    assert projection.shape == (1, 3, 48, 40)
    assert torch.isfinite(projection).all() and projection.abs().max() > 0
    outside = projection.clone()
    outside[..., max(top, 0) : bottom, max(left, 0) : right] = 0
    assert outside.abs().max() == 0
    assert no_hooks(vgg)


def test_to_display_maps_zero_to_grey() -> None:
    assert torch.equal(to_display(torch.zeros(1, 3, 4, 4)), torch.full((1, 3, 4, 4), 0.5))
    shown = to_display(torch.tensor([[[[-2.0, 0.0, 1.0]]]]))
    assert torch.allclose(shown, torch.tensor([[[[0.0, 0.5, 0.75]]]]))


# Top-9 -----------------------------------------------------------------------------------------------------


def _brute_force(maps: torch.Tensor, k: int, peaks_only: bool) -> list[tuple[int, int, int, float]]:
    n, h, w = maps.shape
    found = []
    for i in range(n):
        for y in range(h):
            for x in range(w):
                value = float(maps[i, y, x])
                if value <= 0:
                    continue
                if peaks_only:
                    neighbours = maps[i, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                    if float(neighbours.max()) > value:
                        continue
                found.append((i, y, x, value))
    return sorted(found, key=lambda t: -t[3])[:k]


@pytest.mark.parametrize("peaks_only", [False, True])
def test_top_activations_match_brute_force(peaks_only) -> None:
    torch.manual_seed(4)
    maps = torch.randn(4, 9, 7)
    got = [(a.image_index, a.y, a.x, a.value) for a in top_activations(maps, 9, peaks_only)]
    assert got == _brute_force(maps, 9, peaks_only)
    assert len(got) == 9


def test_top_activations_skip_non_positive_values() -> None:
    maps = torch.zeros(2, 4, 4)
    maps[1, 2, 3] = 5.0
    maps[0, 0, 0] = 1.0
    got = top_activations(maps, 9)
    assert [(a.image_index, a.y, a.x, a.value) for a in got] == [(1, 2, 3, 5.0), (0, 0, 0, 1.0)]


def test_top9_on_the_loss_network_matches_brute_force_over_the_images(vgg, random_vgg_weights) -> None:
    torch.manual_seed(5)
    images = torch.rand(3, 3, 32, 32)
    reference = LossNetwork(("relu2_2",), random_vgg_weights)(images)["relu2_2"]
    calls = []
    with Deconvnet(vgg) as deconv:
        result = top9(deconv, images, "relu2_2", [0, 7], peaks_only=False, tile=24,
                      progress=lambda fraction, desc: calls.append(fraction))
    for channel in (0, 7):
        expected = _brute_force(reference[:, channel], 9, peaks_only=False)
        got = [(a.image_index, a.y, a.x, a.value) for a in result.activations[channel]]
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], rel=1e-5)
    assert isinstance(result.grid, Image.Image)
    assert calls and calls == sorted(calls) and calls[-1] == 1.0
    assert no_hooks(vgg)


def test_top9_picks_the_strongest_maps_and_checks_channels(vgg) -> None:
    images = torch.rand(2, 3, 32, 32)
    with Deconvnet(vgg) as deconv:
        result = top9(deconv, images, "relu1_2", n_channels=3, tile=16)
        strongest = deconv.forward(images, "relu1_2").amax(dim=(0, 2, 3))
        assert result.channels == strongest.argsort(descending=True)[:3].tolist()
        with pytest.raises(ValueError, match="0..63"):
            top9(deconv, images, "relu1_2", [64])


# Invariance ------------------------------------------------------------------------------------------------


def test_integer_translation_shifts_pixels_exactly() -> None:
    image = torch.rand(1, 3, 16, 12)
    moved = transform_images(image, "translate", [3.0, -2.0])
    assert torch.allclose(moved[0, :, 3:], image[0, :, :-3], atol=1e-6)
    assert torch.allclose(moved[1, :, :-2], image[0, :, 2:], atol=1e-6)
    for kind, identity in (("scale", 1.0), ("rotate", 0.0), ("rotate", 360.0)):
        assert torch.allclose(transform_images(image, kind, [identity])[0], image[0], atol=1e-5)


@pytest.fixture(scope="module")
def taps(random_vgg_weights) -> LossNetwork:
    return LossNetwork(LOSS_TAPS, random_vgg_weights)


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    return image_to_tensor(square(load_sample("chelsea"), 64))


def test_invariance_curves_are_zero_at_the_identity_and_grow_with_the_shift(taps, cat) -> None:
    values = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    result = invariance_curves(taps, cat, "translate", values)
    for name, curve in result.distances.items():
        assert curve[0] == pytest.approx(0.0, abs=1e-5), name
        assert all(d > 0 for d in curve[1:]), name
    relu1_2 = result.distances["relu1_2"]
    assert relu1_2 == sorted(relu1_2)  # monotone for the lowest loss layer
    assert result.distances["pixels"] == sorted(result.distances["pixels"])
    assert isinstance(result.plot, Image.Image) and result.plot.size == (720, 420)
    assert "relu2_2" in result.summary and "pixels" in result.summary


@pytest.mark.parametrize("kind", ["scale", "rotate"])
def test_invariance_curves_for_scale_and_rotation(taps, cat, kind) -> None:
    values = [1.0, 1.1, 1.4] if kind == "scale" else [0.0, 15.0, 90.0, 360.0]
    result = invariance_curves(taps, cat, kind, values)
    curve = result.distances["relu1_2"]
    assert curve[0] == pytest.approx(0.0, abs=1e-5)
    assert 0 < curve[1] < curve[2]
    if kind == "rotate":
        assert curve[3] == pytest.approx(0.0, abs=1e-4)


def test_summary_follows_the_numbers(taps, cat) -> None:
    from perceptual_studio.explain.invariance import InvarianceResult, summarise

    def fake(feature: float) -> InvarianceResult:
        distances = {"relu1_2": [0, 0.5, 0.9], "relu2_2": [0, feature, 0.8], "relu3_3": [0, feature, 0.7], "pixels": [0, 0.3, 0.6]}
        return InvarianceResult("translate", [0, 2, 8], distances, (64, 64), Image.new("RGB", (1, 1)))

    assert "tolerates a small misalignment" in summarise(fake(0.1))
    assert "does not tolerate" in summarise(fake(0.6))
    assert "falls with depth" in summarise(fake(0.1))


# Training evolution ----------------------------------------------------------------------------------------


def test_find_previews_sorts_by_step_and_skips_unnumbered_files(tmp_path) -> None:
    (tmp_path / "previews").mkdir()
    for name in ("previews/step_000100.png", "previews/step_000020.png", "preview_000050.png", "preview.jpg"):
        Image.new("RGB", (8, 6), (200, 10, 10)).save(tmp_path / name)
    (tmp_path / "previews" / "notes.txt").write_text("not an image")
    previews = find_previews(tmp_path)
    assert [p.step for p in previews] == [20, 50, 100]
    assert [p.path.name for p in previews] == ["step_000020.png", "preview_000050.png", "step_000100.png"]
    strip, text = explain_evolution(tmp_path)
    assert strip.height > 40 and "steps 20 to 100" in text
    assert explain_evolution(tmp_path / "nowhere")[0] is None


def test_evolution_strip_layout_and_errors(tmp_path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 20), (i * 80, 0, 0)).save(paths[-1])
    strip = evolution_strip(paths, ["step 1", "step 2", "step 3"], height=50, columns=2)
    assert strip.size == (6 * 2 + 100 * 2 + 6, 6 * 2 + 2 * (50 + 20) + 6)
    with pytest.raises(ValueError, match="labels"):
        evolution_strip(paths, ["only one"])
    with pytest.raises(ValueError, match="no images"):
        evolution_strip([], [])


# Handlers --------------------------------------------------------------------------------------------------


@pytest.fixture
def random_default(monkeypatch, random_vgg_weights):
    monkeypatch.setattr(handlers, "default_vgg16_weights", lambda: random_vgg_weights)
    return random_vgg_weights


def test_explain_top9_handler(random_default) -> None:
    upload = Image.new("RGB", (90, 60), (250, 250, 250))
    upload.paste((0, 0, 0), (30, 10, 60, 50))
    grid, text = explain_top9("relu2_2", "3, 5", [upload], size=48)
    assert isinstance(grid, Image.Image)
    assert "relu2_2" in text and "vgg16:random(seed=0)" in text and "RANDOM-weight VGG-16" in text
    assert "upload" in text and "| 3 |" in text and "| 5 |" in text
    with pytest.raises(ValueError, match="do not exist"):
        explain_top9("relu1_2", [64], size=48)
    _, text = explain_top9("relu1_2", None, size=48, n_channels=2)
    assert text.count("\n| ") == 3  # the header row and two maps
    with pytest.raises(ValueError, match="unknown layer"):
        explain_top9("relu9_9", size=48)


def test_explain_invariance_handler(random_default) -> None:
    plot, text = explain_invariance(None, "translate", size=64)
    assert isinstance(plot, Image.Image)
    assert "vgg16:random(seed=0)" in text and "RANDOM-weight VGG-16" in text
    assert "| 0 px | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 |" in text
    _, text = explain_invariance(Image.new("RGB", (64, 48), (30, 120, 200)), "rotate", size=64)
    assert "your image" in text
    with pytest.raises(ValueError, match="transform"):
        explain_invariance(None, "shear")


def test_parse_channels() -> None:
    assert parse_channels(None) is None and parse_channels("") is None and parse_channels([]) is None
    assert parse_channels("3, 17 3") == [3, 17]
    assert parse_channels([4.0, "5"]) == [4, 5]
    with pytest.raises(ValueError, match="whole numbers"):
        parse_channels("1.5")


def test_sample_images_are_square_and_bundled() -> None:
    samples = sample_images(32)
    assert len(samples) >= 5
    assert all(image.size == (32, 32) and image.mode == "RGB" for _, image in samples)
    assert stack([image for _, image in samples]).shape == (len(samples), 3, 32, 32)


def test_line_plot_survives_missing_values() -> None:
    plot = line_plot([0, 1, 2], {"a": [0, math.nan, 1], "b": [0, 0.5, 0.2]}, title="t", xlabel="x", ylabel="y", dashed=("b",))
    assert plot.size == (720, 420)


def test_other_forward_passes_inside_the_block_do_not_disturb_the_projection() -> None:
    net = two_block_net(inplace=True)
    image = torch.rand(1, 3, 12, 12)
    with Deconvnet(net) as deconv:
        expected = deconv.project(image, 5, channel=2)
        acts = deconv.forward(image, 5)
        signal = torch.zeros_like(acts)
        y, x = divmod(int(acts[0, 2].argmax()), acts.shape[3])
        signal[0, 2, y, x] = acts[0, 2, y, x]
        net(torch.rand(2, 3, 20, 16))  # someone else runs the network: other sizes, other switches
        assert torch.equal(deconv.down(signal), expected)


def test_deconvnet_applies_the_caffe_convention_and_returns_rgb() -> None:
    """With the Oxford weights' convention (BGR, 0-255, mean), the deconvnet's forward pass is the loss
    network's own, and a projection comes back in RGB order (checked on a conv1_1 activation, whose
    projection is the filter itself, channel-reversed)."""
    from perceptual_studio.networks.vgg import CAFFE_CONVENTION, LossNetworkWeights, random_vgg16_state

    weights = LossNetworkWeights(random_vgg16_state(4), "vgg16:test-caffe", "test", convention=CAFFE_CONVENTION)
    net = LossNetwork(("relu2_2",), weights)
    image = torch.rand(1, 3, 20, 24)
    with Deconvnet(net) as deconv:
        assert torch.allclose(deconv.forward(image, "relu2_2"), net(image)["relu2_2"])
        sign = deconv.forward(image, "conv1_1")[0, 3, 10, 12].sign()
        projection = deconv.project(image, "conv1_1", channel=3, position=(10, 12))
    kernel = net.features[0].weight[3]  # (3, 3, 3) in the network's BGR order
    patch = projection[0, :, 9:12, 11:14] / projection[0, :, 9:12, 11:14].abs().max()
    expected = sign * kernel.flip(0) / kernel.abs().max()  # back to RGB, scaled by the activation's sign
    assert torch.allclose(patch, expected, atol=1e-5)
