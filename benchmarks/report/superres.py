"""Section 3: the shipped super-resolution models (``registry/builtin/sr``, ``train/shipped/sr_gallery.toml``) at x4 and
x8 against bicubic, on images none of them was trained on (paper Sec. 5).

Datasets: ``held-out`` is the image corpus's held-out photos (``python -m imaging.corpus build``; offline), or any
folder of images; ``set5``, ``set14``, ``bsd100`` (or any Hub
dataset id) are downloaded from the Hub when it answers (``train.data.resolve_image_source``). Per image and as
a mean: PSNR/SSIM on Y, the relu2_2 feature distance to the original, the gradient-energy ratio (detail), the
cross-hatch measure and the colour shift (``train/sr_eval.py``), each model also histogram-matched to its input as the paper
shows its results. Crop grids per scale show what the numbers mean.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .helpers import Quiet
from .profiles import Profile

PAPER_SR_FINDING = (
    "Paper (Sec. 5, x4 and x8 on Set5, Set14, BSD100): the pixel-loss model scores higher PSNR and SSIM than the "
    "feature-loss model, while the feature-loss model reconstructs sharper edges and finer detail (PSNR/SSIM "
    "favour the blur a per-pixel loss produces); a faint cross-hatch pattern shows under magnification."
)
PIXEL, FEATURE = "pixel loss", "feature loss"
# Held-out photos whose crops the report shows beside the preview photo's (file names of train.shipped.sr_gallery).
GRID_PHOTOS = ("erase-macaque.png", "explore_monuments-chichenItza.png")


@dataclass(frozen=True)
class Benchmark:
    """An SR benchmark on the Hub: a dataset repo and its archive of high-resolution (ground-truth) images."""

    repo_id: str
    archive: str  # path in the repo of a .tar.gz of the HR images


# The classic benchmarks as Eugene Siow's Hub datasets store them (one tarball per resolution, unpacked here;
# their loading scripts read the same files). Research-use benchmarks: Set5 (Bevilacqua et al. 2012), Set14
# (Zeyde et al. 2010), BSD100 (Martin et al. 2001).
BENCHMARKS: dict[str, Benchmark] = {
    "set5": Benchmark("eugenesiow/Set5", "data/Set5_HR.tar.gz"),
    "set14": Benchmark("eugenesiow/Set14", "data/Set14_HR.tar.gz"),
    "bsd100": Benchmark("eugenesiow/BSD100", "data/BSD100_HR.tar.gz"),
}


def _unpack(archive: Path, folder: Path) -> Path:
    """Extract a tarball's regular files (no links, nothing outside ``folder``) once."""
    import tarfile

    marker = folder / ".unpacked"
    if not marker.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if (m.isfile() or m.isdir())
                       and not Path(m.name).is_absolute() and ".." not in Path(m.name).parts]
            try:
                tar.extractall(folder, members=members, filter="data")
            except TypeError:  # Python 3.11.0-3.11.3: no extraction filters; the members are checked above
                tar.extractall(folder, members=members)
        marker.touch()
    return folder


def dataset_images(name: str, profile: Profile, work: Path) -> tuple[list, str]:
    """(name, image) pairs of one evaluation dataset and how to describe it."""
    from perceptual_studio.imaging.corpus import read_corpus
    from perceptual_studio.imaging.io import load_image
    from perceptual_studio.train.data import find_images, resolve_image_source, usable_images
    from perceptual_studio.train.shipped.corpus_photos import corpus_attribution, photo_file_name
    from perceptual_studio.train.shipped.sr_gallery import read_manifest

    if name == "held-out":
        corpus = read_corpus(profile.corpus)  # CorpusError (a RuntimeError) says how to build it
        photos = read_manifest().photos.held_out(corpus)[: profile.sr_eval_images or None]
        description = (f"the image corpus's {len(photos)} held-out photos (never trained on; corpus manifest sha256 "
                       f"`{corpus.digest[:16]}...`):\n\n" + corpus_attribution(photos))
        return [(photo_file_name(p.id), load_image(corpus.path(p))) for p in photos], description
    benchmark = BENCHMARKS.get(name.lower())
    if benchmark is None:  # any Hub dataset id (or folder) of plain image files
        folder, label = resolve_image_source(name, what="evaluation")
    else:
        snapshot, label = resolve_image_source(benchmark.repo_id, what="evaluation", patterns=[benchmark.archive])
        if not (snapshot / benchmark.archive).is_file():
            raise RuntimeError(f"{benchmark.repo_id} has no {benchmark.archive}")
        folder = _unpack(snapshot / benchmark.archive, work / "sr-datasets" / name.lower())
    paths = usable_images(find_images(folder), folder, what="evaluation")[: profile.sr_eval_images or None]
    return [(p.name, load_image(p)) for p in paths], f"`{label}` ({len(paths)} images)"


def _read_datasets(profile: Profile, work: Path, described: dict) -> dict[str, tuple[list, str]]:
    """The profile's evaluation datasets that could be read; ``described`` gets each one's description or why not."""
    import tarfile

    from perceptual_studio.imaging.io import ImageInputError
    from perceptual_studio.train.data import DataError

    datasets = {}
    for name in profile.sr_datasets:
        try:
            datasets[name] = dataset_images(name, profile, work)
        except (DataError, ImageInputError, OSError, RuntimeError, tarfile.TarError) as exc:
            # one unreadable dataset must not lose the others
            described[name] = f"not evaluated: {exc}"
            continue
        described[name] = datasets[name][1]
    if not datasets:
        raise RuntimeError("no evaluation dataset could be read: " + "; ".join(described.values()))
    return datasets


def _load_scale_models(manifest, root: Path, scale: int, device: str) -> tuple[dict, dict, float]:
    """The shipped pixel- and feature-loss models of one scale, what the report says of each, and the blur sigma
    of their training degradation (the feature-loss model's)."""
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.registry.schema import CONFIG_FILE

    models, info = {}, {}
    for method, loss in ((PIXEL, "pixel"), (FEATURE, "feature")):
        spec = manifest.model(scale, loss)
        folder = root / spec.name
        if not (folder / CONFIG_FILE).is_file():
            raise RuntimeError(f"no shipped model {spec.name} in {root}: train it with python -m train.shipped.sr_gallery")
        loaded = load_model_folder(folder, device)
        models[method] = loaded.network
        training = loaded.config.training
        info[method] = {"id": f"builtin:{spec.name}", "iterations": training.iterations,
                        "loss_network": training.loss_network, "lr": training.learning_rate,
                        "patch": training.image_size, "init": spec.init,
                        "init_shipped": spec.init is not None and manifest.spec(spec.init).shipped}
        sigma = training.blur_sigma if training.blur_sigma is not None else 1.0
    return models, info, sigma


def _evaluate_datasets(entry: dict, models: dict, datasets: dict[str, tuple[list, str]], scale: int, sigma: float,
                       profile: Profile, device: str, feature_loss) -> None:
    """Score the models on every dataset into ``entry["datasets"]`` (or ``entry["skipped"]`` when too small)."""
    from perceptual_studio.train.sr_eval import check_targets, evaluate_sr

    for name, (images, _) in datasets.items():
        evaluation = evaluate_sr(models, images, scale=scale, blur_sigma=sigma, max_side=profile.sr_eval_max_side,
                                 device=device, feature_loss=feature_loss, histogram_match=True)
        if evaluation is None:
            entry["skipped"] = {**entry.get("skipped", {}), name: f"no image large enough for x{scale}"}
            continue
        entry["datasets"][name] = {
            "methods": list(evaluation.methods), "border": evaluation.border, "degradation": evaluation.degradation,
            "images": [{"image": row.image, "size": list(row.size),
                        "scores": {m: s.as_dict() for m, s in row.scores.items()}} for row in evaluation.images],
            "mean": {m: evaluation.mean(m).as_dict() for m in evaluation.methods},
            "targets": [asdict(check) for check in check_targets(evaluation)],
            "markdown": evaluation.markdown()}


def _crop_grids(models: dict, manifest, datasets: dict[str, tuple[list, str]], scale: int, sigma: float,
                device: str, out: Path, profile: Profile) -> list[str]:
    """Crop grids of the first dataset's grid photos at one scale; their file names in ``out``."""
    first = dict(next(iter(datasets.values()))[0])
    from perceptual_studio.train.shipped.corpus_photos import photo_file_name

    # The preview photo (fur and eyes), then a close-up of fur and a textured monument, when present.
    names = [photo_file_name(manifest.photos.preview), *GRID_PHOTOS]
    picked = [n for n in dict.fromkeys(names) if n in first] or [next(iter(first))]
    return [_crop_grid(models, first[name], scale, sigma, device,
                       out / f"sr_x{scale}_crops{'' if i == 0 else f'_{i + 1}'}.png",
                       profile.sr_eval_max_side) for i, name in enumerate(picked)]


def section_sr(profile: Profile, device: str, work: Path, out: Path) -> dict:
    from perceptual_studio import settings
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.losses.perceptual import PerceptualLossConfig
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.shipped.sr_gallery import read_manifest

    manifest = read_manifest()
    root = settings.builtin_models_dir() / "sr"
    with Quiet():
        weights = loss_network_weights(None)
    feature_loss = PerceptualLoss(PerceptualLossConfig.super_resolution("feature"), weights=weights).to(device)
    results: dict = {"loss_network": feature_loss.identity, "scales": {}, "datasets": {}}
    datasets = _read_datasets(profile, work, results["datasets"])
    for scale in (4, 8):
        models, info, sigma = _load_scale_models(manifest, root, scale, device)
        entry: dict = {"models": info, "datasets": {}}
        _evaluate_datasets(entry, models, datasets, scale, sigma, profile, device, feature_loss)
        entry["grids"] = _crop_grids(models, manifest, datasets, scale, sigma, device, out, profile)
        results["scales"][str(scale)] = entry
    return results


def _crop_grid(models: dict, photo, scale: int, sigma: float, device: str, path: Path, max_side: int) -> str:
    """Ground truth, bicubic, both models and the feature-loss model histogram-matched: the same crop of
    each, enlarged with nearest-neighbour so single pixels (and any cross-hatch) show."""
    import torch
    from PIL import Image, ImageDraw, ImageFont

    from perceptual_studio.imaging.degrade import bicubic_upscale, degrade
    from perceptual_studio.imaging.histogram import match_histogram
    from perceptual_studio.imaging.io import image_to_tensor, tensor_to_image
    from perceptual_studio.train.sr_eval import crop_to_multiple

    original = crop_to_multiple(photo, scale, max_side)
    hr = image_to_tensor(original).to(device)
    lr = degrade(hr, scale, sigma)
    with torch.no_grad():
        pictures = {"original": original, "bicubic": tensor_to_image(bicubic_upscale(lr, scale).cpu())}
        for method, model in models.items():
            pictures[method] = tensor_to_image(model.eval()(lr).float().clamp(0, 1).cpu())
    pictures[f"{FEATURE}, histogram-matched"] = match_histogram(pictures[FEATURE], tensor_to_image(lr.cpu()))
    width, height = original.size
    side = max(16, min(width, height) // 3)
    left, top = (width - side) // 2, max(0, (height - side) // 3)
    tile, gap, band = 240, 6, 22
    full = round(tile * height / width)
    canvas = Image.new("RGB", (len(pictures) * (tile + gap) + gap, band + full + gap + tile + gap), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    for i, (name, picture) in enumerate(pictures.items()):
        x = gap + i * (tile + gap)
        draw.text((x, 4), name, fill="black", font=font)
        canvas.paste(picture.resize((tile, full), Image.Resampling.LANCZOS), (x, band))
        piece = picture.crop((left, top, left + side, top + side)).resize((tile, tile), Image.Resampling.NEAREST)
        canvas.paste(piece, (x, band + full + gap))
    canvas.save(path)
    return path.name


def _verdicts(entry: dict, scale: str) -> list[str]:
    lines = []
    for name, data in entry["datasets"].items():
        mean = data["mean"]
        pixel, feature, bicubic = mean[PIXEL], mean[FEATURE], mean["bicubic"]
        matched = mean[PIXEL + " + histogram match"]["psnr"] - pixel["psnr"]
        lines.append(
            f"- x{scale}, {name}: pixel loss {pixel['psnr'] - bicubic['psnr']:+.2f} dB PSNR over bicubic; feature loss "
            f"{feature['psnr'] - pixel['psnr']:+.2f} dB PSNR and {feature['ssim'] - pixel['ssim']:+.4f} SSIM against "
            f"the pixel-loss model, relu2_2 distance {feature['feature_distance']:.4g} vs {pixel['feature_distance']:.4g}, "
            f"gradient energy {feature['gradient_ratio']:.2f} vs {pixel['gradient_ratio']:.2f} of the original's "
            f"(bicubic {bicubic['gradient_ratio']:.2f}), cross-hatch {feature['cross_hatch_db']:+.2f} vs "
            f"{pixel['cross_hatch_db']:+.2f} dB, colour shift ΔE {feature['colour_shift']:.2f} / {pixel['colour_shift']:.2f} "
            f"(bicubic {bicubic['colour_shift']:.2f}); histogram matching moves the pixel-loss PSNR by {matched:+.2f} dB.")
        for check in data.get("targets", []):
            lines.append(f"  - {'met' if check['met'] else 'NOT met'}: {check['name']} ({check['detail']})")
    return lines


def markdown_sr(data: dict, profile: Profile) -> list[str]:
    lines = [
        "The shipped models (`registry/builtin/sr`, trained by `python -m train.shipped.sr_gallery` from "
        "`train/shipped/sr_gallery.toml` on the photos of the licensed image corpus; the recipe and what each choice "
        "gained are in the manifest's comments; the feature-loss model is fine-tuned from the pixel-loss one) "
        "against bicubic. Low-resolution input: "
        "Gaussian blur sigma 1 then bicubic downsampling, 8-bit (as in training); images centre-cropped to at most "
        f"{profile.sr_eval_max_side} px. PSNR/SSIM on Y "
        "(BT.601) with `scale` pixels shaved; relu2_2 distance: the feature loss of the paper "
        f"(`{data['loss_network']}`, lower is closer); gradient energy / original: recovered detail (1 = the "
        "original's); cross-hatch: grid-locked periodic pattern beyond the original's (dB); colour shift: mean CIELAB ΔE "
        "between blurred copies of the output and the original (`imaging/metrics.py`). "
        "\"+ histogram match\": the output matched to the low-resolution input, as the paper shows its results.",
        "",
    ]
    for name, description in data["datasets"].items():
        lines.append(f"- `{name}`: {description}")
    lines.append("")
    for scale, entry in data["scales"].items():
        models = "; ".join(f"{method}: `{m['id']}` ({m['iterations']} iterations at {m.get('patch')} px, "
                           f"lr {m.get('lr')}"
                           + (f", from `builtin:{m['init']}`" if m.get("init_shipped") else
                              f", from the stage `{m['init']}`" if m.get("init") else "")
                           + f", loss network `{m['loss_network']}`)" for method, m in entry["models"].items())
        lines += [f"### x{scale}", "", f"Models: {models}.", ""]
        for name, result in entry["datasets"].items():
            lines += [f"`{name}`:", "", result["markdown"], ""]
        for name, reason in entry.get("skipped", {}).items():
            lines += [f"`{name}`: not evaluated ({reason}).", ""]
        lines += [f"![x{scale}: the same crop of each result]({grid})" for grid in entry["grids"]] + [""]
    lines += ["", PAPER_SR_FINDING, "", "This run:", ""]
    for scale, entry in data["scales"].items():
        lines += _verdicts(entry, scale)
    return lines
