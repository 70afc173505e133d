"""The built wheel, installed (not editable) in a fresh virtualenv and run from a folder outside the checkout:
one import name, no generic top-level modules, data in the user's cache folder, the pipelines, every console
script and the app.

The fresh virtualenv reaches the test environment's third-party packages (torch, gradio...) through a ``.pth``
line, so nothing is downloaded; the project itself comes only from the wheel.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so setuptools' build/ folder never lands in (or goes stale in) the checkout.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "data", "build", "dist", "__pycache__",
                                                                 "*.egg-info", "artifacts", "reports"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=600)
    (found,) = out.glob("perceptual_studio-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed and the test environment's dependencies visible."""
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # A plain path line: the dependencies, without the editable checkout's finder (its own .pth is not run).
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return home


def _run(venv: Path, args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERCEPTUAL_", "PYTHON"))}
    env.update(XDG_CACHE_HOME=str(cwd / "cache"), HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}:{env['PATH']}")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def test_the_wheel_installs_one_import_name(wheel) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    assert top == {"perceptual_studio", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "perceptual_studio/registry/builtin/styles/stained-glass/model.safetensors" in names
    assert not [n for n in names if "/tests/" in n or n.endswith(("app.py", "/settings.pyc"))]


def test_installed_pipelines_run_from_any_folder_and_keep_data_in_the_user_cache(venv, tmp_path) -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from perceptual_studio import StylePipeline, SuperResolutionPipeline, settings\n"
        "image = Image.new('RGB', (96, 64), (200, 120, 40))\n"
        "out = StylePipeline.from_pretrained('builtin:stained-glass')(image, size=64)\n"
        "big = SuperResolutionPipeline.from_pretrained('builtin:sr-x4-pixel')(image)\n"
        "heavy = [m for m in sys.modules if m.startswith(('perceptual_studio.train', 'perceptual_studio.baseline',"
        " 'gradio'))]\n"
        "print(out.size, big.size, settings.data_dir(), settings.builtin_models_dir(), heavy)\n"
    )
    result = _run(venv, [str(venv / "bin" / "python"), "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("(64, 43) (384, 256) ")
    assert f" {tmp_path / 'cache' / 'perceptual-studio'} " in line
    assert "site-packages/perceptual_studio/registry/builtin" in line and line.endswith(" []")
    assert str(ROOT) not in line


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_console_script_runs_installed(venv, tmp_path, script) -> None:
    if script == "perceptual-studio":
        pytest.skip("the app is started by test_the_installed_app_serves_its_page")
    result = _run(venv, [str(venv / "bin" / script), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_installed_app_serves_its_page(venv, tmp_path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERCEPTUAL_", "PYTHON"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([str(venv / "bin" / "perceptual-studio")], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, page = time.monotonic() + 180, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert page is not None, server.stderr.read()[-2000:] if server.poll() is not None else "no answer"
        assert "Perceptual Studio" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def _readme_snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_snippets_run_as_written_outside_the_checkout(venv, tmp_path) -> None:
    """Stylize, super-resolve, train, a video: the README's four snippets, verbatim, against the installed wheel."""
    from PIL import Image
    from videos import make_clip

    from perceptual_studio.imaging.sample_photos import load_sample_photo
    from perceptual_studio.imaging.video import probe_video

    snippets = _readme_snippets()
    assert len(snippets) == 4 and "StylePipeline" in snippets[0] and "train_style" in snippets[2]
    assert "stylize_video" in snippets[3]
    make_clip(tmp_path / "clip.mov", frames=6, fps=6, size=(96, 64))
    photo = load_sample_photo("coffee").resize((240, 160))
    photo.save(tmp_path / "photo.jpg")
    photo.save(tmp_path / "photo.png")
    load_sample_photo("chelsea").resize((160, 120)).save(tmp_path / "my_style.jpg")
    for number, code in enumerate(snippets, start=1):
        result = _run(venv, [str(venv / "bin" / "python"), "-c", code], tmp_path)
        assert result.returncode == 0, (number, result.stderr[-3000:])
    assert Image.open(tmp_path / "stylized.png").size == (768, 512)
    assert Image.open(tmp_path / "mine.png").size == (512, 341)
    assert (tmp_path / "cache" / "perceptual-studio" / "models" / "my_style" / "model.safetensors").is_file()
    styled = probe_video(tmp_path / "clip-mosaic.mp4")
    assert (styled.frames, styled.width, styled.has_audio) == (6, 96, True)  # never enlarged; the sound kept
