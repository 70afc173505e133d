"""Section 3: super-resolution x4 and x8, PSNR/SSIM on Y of bicubic, pixel-loss and feature-loss models."""
from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import skimage_photo

from .helpers import Quiet, save_photos
from .profiles import Profile

SR_EVAL_PHOTOS = ("astronaut", "chelsea", "coffee", "camera", "coins")  # never used for training
SR_TRAIN_PHOTOS = ("rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "gravel")
PAPER_SR_FINDING = (
    "Paper (Sec. 5, x4 and x8 on Set5, Set14, BSD100): the pixel-loss model scores higher PSNR and SSIM than the "
    "feature-loss model, while the feature-loss model reconstructs sharper edges and finer detail (PSNR/SSIM "
    "favour the blur a per-pixel loss produces); a faint cross-hatch pattern shows under magnification."
)


def section_sr(profile: Profile, device: str, work: Path, out: Path) -> dict:
    import torch

    from imaging.degrade import bicubic_upscale, degrade
    from imaging.io import image_to_tensor, load_image, tensor_to_image
    from registry import load_model_folder
    from train import SRTrainConfig, evaluate_sr, train_sr
    from train.sr import crop_to_multiple

    train_folder = _crops(work / "sr-train", SR_TRAIN_PHOTOS, profile.sr_train_images,
                          profile.sr_patch + profile.sr_patch // 3)
    eval_names = SR_EVAL_PHOTOS[: profile.sr_eval_images]
    eval_folder = save_photos(work / "sr-eval", eval_names)
    eval_paths = sorted(eval_folder.glob("*.png"))
    results: dict = {"scales": {}, "eval_photos": list(eval_names)}
    for scale in (4, 8):
        rows = {}
        for loss in ("pixel", "feature"):
            name = f"sr-x{scale}-{loss}"
            config = SRTrainConfig(data=str(train_folder), eval_data=str(eval_folder), scale=scale, loss=loss,
                                   patch_size=profile.sr_patch, iterations=profile.sr_iterations,
                                   channels=profile.sr_channels, num_residual=profile.sr_residual, norm=profile.sr_norm,
                                   out=str(work / "models" / name), run_dir=str(work / "runs" / name), device=device,
                                   preview_every=0, checkpoint_every=10**9, log_every=max(1, profile.sr_iterations // 10),
                                   eval_max_side=profile.sr_eval_max_side)
            started = time.perf_counter()
            with Quiet():
                folder = train_sr(config, overwrite=True)
            loaded = load_model_folder(folder, device)  # the network and the config.json it was built from
            model = loaded.network
            evaluation = evaluate_sr(model, eval_paths, scale=scale, max_side=profile.sr_eval_max_side, device=device)
            training = loaded.config.training
            rows[loss] = {"psnr": evaluation.psnr, "ssim": evaluation.ssim, "bicubic_psnr": evaluation.bicubic_psnr,
                          "bicubic_ssim": evaluation.bicubic_ssim, "per_image": evaluation.per_image,
                          "seconds": time.perf_counter() - started,
                          "loss_network": getattr(training, "loss_network", None) if loss == "feature" else "none (pixel loss)",
                          "model": model}
        # The crop grid: one held-out image, ground truth and the three reconstructions.
        image = crop_to_multiple(load_image(eval_paths[0]), scale, profile.sr_eval_max_side)
        hr = image_to_tensor(image).to(device)
        lr = degrade(hr, scale, 1.0)
        with torch.no_grad():
            outputs = {"ground truth": hr, "bicubic": bicubic_upscale(lr, scale),
                       "pixel loss": rows["pixel"]["model"](lr).float(), "feature loss": rows["feature"]["model"](lr).float()}
        grid = f"sr_x{scale}_crops.png"
        _crop_grid({k: tensor_to_image(v.clamp(0, 1).cpu()) for k, v in outputs.items()}, out / grid,
                   title=f"x{scale}: {eval_paths[0].stem}")
        for row in rows.values():
            row.pop("model")
        results["scales"][str(scale)] = {"rows": rows, "grid": grid}
    return results


def _crops(folder: Path, photos: tuple[str, ...], count: int, size: int, seed: int = 0) -> Path:
    """``count`` random square crops (random scales) of ``photos``, resized to ``size``, saved as PNG."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = [skimage_photo(name) for name in photos]
    for i in range(count):
        image = images[i % len(images)]
        side = int(rng.integers(max(size, min(image.size) // 3), min(image.size) + 1))
        left = int(rng.integers(0, image.width - side + 1))
        top = int(rng.integers(0, image.height - side + 1))
        crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        crop.save(folder / f"crop_{i:04d}.png")
    return folder


def _crop_grid(images: dict, path: Path, title: str, tile: int = 200) -> None:
    """The same centre crop of each image, enlarged (nearest neighbour), labelled, side by side."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = next(iter(images.values())).size
    side = max(16, min(width, height) // 4)
    left, top = (width - side) // 2, (height - side) // 2
    gap, band = 6, 34
    canvas = Image.new("RGB", (len(images) * (tile + gap) + gap, tile + band + gap), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    draw.text((gap, 2), title, fill="black", font=font)
    for i, (name, picture) in enumerate(images.items()):
        piece = picture.crop((left, top, left + side, top + side)).resize((tile, tile), Image.Resampling.NEAREST)
        x = gap + i * (tile + gap)
        canvas.paste(piece, (x, band))
        draw.text((x, 18), name, fill="black", font=font)
    canvas.save(path)


def markdown_sr(data: dict, profile: Profile) -> list[str]:
    feature_networks = {r["rows"]["feature"]["loss_network"] for r in data["scales"].values()}
    lines = [
        f"Scale: `johnson-sr` with {profile.sr_channels} channels, {profile.sr_residual} residual blocks, norm "
        f"`{profile.sr_norm}`, trained here {profile.sr_iterations} iterations on {profile.sr_patch}x{profile.sr_patch} "
        f"patches of {profile.sr_train_images} crops of scikit-image photos and textures, batch 4, Adam 1e-3 (paper: "
        f"200k iterations on 10k COCO images, 288x288 patches, batch norm). Low-resolution input: Gaussian blur "
        f"sigma 1 then bicubic downsampling. Held-out set (available offline, never trained on): scikit-image "
        f"{', '.join(data['eval_photos'])}, centre-cropped to at most {profile.sr_eval_max_side} px; PSNR/SSIM on Y "
        f"(BT.601), border of `scale` pixels shaved (train/metrics.py).",
        f"Loss network of the feature-loss models: {', '.join(f'`{n}`' for n in sorted(map(str, feature_networks)))} "
        f"(relu2_2); the pixel-loss models use none.",
        "",
        "| scale | method | PSNR-Y (dB) | SSIM-Y | training time |",
        "|---|---|---:|---:|---:|",
    ]
    for scale, entry in data["scales"].items():
        rows = entry["rows"]
        lines.append(f"| x{scale} | bicubic | {rows['pixel']['bicubic_psnr']:.2f} | {rows['pixel']['bicubic_ssim']:.4f} | - |")
        for loss in ("pixel", "feature"):
            r = rows[loss]
            lines.append(f"| x{scale} | {loss} loss | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['seconds']:.0f} s |")
    verdicts = []
    for scale, entry in data["scales"].items():
        rows = entry["rows"]
        same = rows["pixel"]["psnr"] > rows["feature"]["psnr"]
        verdicts.append(f"x{scale}: pixel loss {'above' if same else 'NOT above'} feature loss in PSNR "
                        f"({rows['pixel']['psnr']:.2f} vs {rows['feature']['psnr']:.2f} dB)")
    lines += ["", PAPER_SR_FINDING, "", "This run: " + "; ".join(verdicts) + ".", ""]
    lines += [f"![x{scale} crops]({entry['grid']})" for scale, entry in data["scales"].items()]
    return lines

