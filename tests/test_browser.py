"""The app in a real browser: Playwright drives Debian's Chromium (never a downloaded one) against the app
launched in this process. Screenshots go to ``$PERCEPTUAL_SCREENSHOTS_DIR`` (default ``artifacts/screenshots``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from apptools import app_environment, launch_app, photo

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run",
               # Chromium's built-in test camera, for the live webcam stream
               "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 60_000
TABS = ["Stylize", "Video", "Compare with the baseline", "Super-resolution", "Train a style", "Models", "Explain"]


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("PERCEPTUAL_SCREENSHOTS_DIR") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with app_environment(tmp_path_factory.mktemp("browser")) as env, launch_app() as url:
        yield url, env


@pytest.fixture(autouse=True)
def _app_environment(app_url, monkeypatch) -> None:
    for key, value in app_url[1].items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url[0])
    # the banner names the loss network once the page has loaded (here the random-weight fallback)
    page.locator("#loss-network-banner").get_by_text("vgg16:random(seed=0)").first.wait_for()
    assert [tab.inner_text() for tab in page.get_by_role("tab").all()] == TABS
    yield page
    context.close()


def rendered(page, selector: str) -> dict:
    """Wait for an <img> under ``selector`` that has loaded, and return its natural size.

    Read in the same check that sees it loaded: a streamed image swaps its source for every frame.
    """
    page.locator(f"{selector} img").first.wait_for(state="visible")
    handle = page.wait_for_function(
        """(sel) => {
            const i = document.querySelector(sel + ' img');
            return i && i.complete && i.naturalWidth > 0 ? {width: i.naturalWidth, height: i.naturalHeight} : null;
        }""",
        arg=selector,
    )
    return handle.json_value()


def upload(page, selector: str, path: Path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))
    rendered(page, selector)  # the upload's preview: the file reached the server


def test_stylize_in_the_browser(page, tmp_path) -> None:
    content = photo(tmp_path / "street.png", (160, 120), seed=4)
    page.locator("#stylize-content").scroll_into_view_if_needed()
    # the gallery and the model picker are filled when the page loads
    page.get_by_text("tiny · local · vgg16:random(seed=0)").first.wait_for()
    upload(page, "#stylize-content", content)
    page.locator("#stylize-button").click()
    size = rendered(page, "#stylize-output")
    assert size["width"] == 512 and size["height"] == 384  # the default output size, aspect kept
    page.locator("#stylize-info").get_by_text("px in").wait_for()
    page.screenshot(path=str(screenshots_dir() / "stylize.png"), full_page=True)


def test_blend_styles_in_the_browser(page, tmp_path) -> None:
    """The blend picker is filled with the style models on load; two chosen, the live line names their shares and
    the blend lands in Stylize's own result."""
    page.get_by_text("Blend styles: mix two to four").click()
    picker = page.locator("#blend-models input").first
    for label in ("tiny · local", "tiny-b · local"):
        picker.click()
        page.get_by_role("option", name=label).first.click()
    box = page.locator("#blend-weight-1 input[type=number]")
    box.fill("1")
    box.press("Tab")  # a number box hands its value to the app when it loses focus
    page.locator("#blend-summary").get_by_text("67%", exact=False).wait_for()
    assert "local:tiny-style-b 33%" in page.locator("#blend-summary").inner_text()
    upload(page, "#stylize-content", photo(tmp_path / "street.png", (80, 60), seed=4))
    page.locator("#blend-button").click()
    page.locator("#stylize-info").get_by_text("Blend of 2 style models", exact=False).wait_for()
    info = page.locator("#stylize-info").inner_text()
    assert "your weights 1, 0.5" in info and "local:tiny-style-b (style tiny-b): weight 0.33" in info
    page.screenshot(path=str(screenshots_dir() / "blend_styles.png"), full_page=True)


def test_live_webcam_streams_through_the_model(page) -> None:
    page.get_by_text("Live webcam: stream your camera").click()
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.get_by_role("button", name="capture photo").click()  # starts streaming (Chromium's fake camera)
    size = rendered(page, "#webcam-output")
    assert max(size["width"], size["height"]) == 256  # the processing size
    page.screenshot(path=str(screenshots_dir() / "live_webcam.png"), full_page=True)


def test_super_resolution_in_the_browser(page, tmp_path) -> None:
    original = photo(tmp_path / "building.png", (96, 80), seed=6)
    page.get_by_role("tab", name="Super-resolution").click()
    upload(page, "#sr-input", original)
    page.locator("#sr-button").click()
    page.locator("#sr-info").get_by_text("PSNR", exact=False).first.wait_for()
    size = rendered(page, "#sr-slider")
    assert (size["width"], size["height"]) == (96, 80)
    assert "local:sr-x4-feature" in page.locator("#sr-info").inner_text()
    page.screenshot(path=str(screenshots_dir() / "super_resolution.png"), full_page=True)


def test_a_clip_in_the_browser(page, tmp_path) -> None:
    """Upload a clip, stylise it: the status counts the frames, the result plays in a <video>."""
    from videos import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=12, fps=12, size=(96, 64))
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-models").get_by_text("local:tiny-style").first.wait_for()  # the picker's first style
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.locator("#video-input video").first.wait_for()  # the upload's preview: the file reached the server
    page.locator("#video-button").click()
    page.locator("#video-status").get_by_text("12 frames").wait_for()
    source = page.locator("#video-output video").first.get_attribute("src")
    assert source and ".mp4" in source
    page.screenshot(path=str(screenshots_dir() / "video.png"), full_page=True)


@pytest.mark.parametrize("tab", TABS[1:])
def test_every_tab_opens(page, tab) -> None:
    page.get_by_role("tab", name=tab).click()
    selected = [t.inner_text() for t in page.get_by_role("tab").all() if t.get_attribute("aria-selected") == "true"]
    assert selected == [tab]
    if tab == "Models":
        # exact: the table's hidden width-measuring row holds the longest id, "local:tiny-style-wide"
        page.get_by_text("local:tiny-style", exact=True).first.wait_for()
    page.wait_for_timeout(300)
    assert page.locator(".error, .toast-body.error").count() == 0
    name = tab.lower().replace(" ", "_")
    page.screenshot(path=str(screenshots_dir() / f"tab_{name}.png"), full_page=True)


def test_a_bad_upload_shows_the_projects_message_on_the_page(page, tmp_path) -> None:
    """A text file named .png: the page shows imaging's own sentence, not Gradio's bare "Error"."""
    bogus = tmp_path / "holiday.png"
    bogus.write_text("this is not an image")
    page.locator("#stylize-content").scroll_into_view_if_needed()
    page.get_by_text("tiny · local · vgg16:random(seed=0)").first.wait_for()
    page.locator("#stylize-content input[type=file]").set_input_files(str(bogus))
    page.wait_for_timeout(1000)  # the upload reaches the server; no preview can be drawn
    page.locator("#stylize-button").click()
    page.get_by_text("is not a recognised image", exact=False).first.wait_for()
    page.screenshot(path=str(screenshots_dir() / "bad_upload.png"), full_page=True)


def test_training_in_the_browser_shows_the_live_loss_plot(page, tmp_path) -> None:
    """A short training run started from the page: the status counts steps and the native line plot draws the
    loss terms as they come (the Train tab's promise: watch it learn)."""
    page.get_by_role("tab", name="Train a style").click()
    upload(page, "#train-style", photo(tmp_path / "stripes.png", (96, 96), seed=7))
    page.get_by_text("Advanced options").click()
    for label, value in (("Iterations", "12"), ("Preview every N steps", "4")):
        box = page.get_by_label(label, exact=True).first
        for _ in range(5):  # the preset's own values may still arrive after the tab opens: set ours after them
            box.fill(value)
            box.press("Tab")  # a number box hands its value to the app when it loses focus
            page.wait_for_timeout(400)
            if box.input_value() == value:
                break
        assert box.input_value() == value, label
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator("#train-status").get_by_text("Done:").wait_for(timeout=240_000)
    curve = page.locator("#train-curve")
    curve.locator("canvas, svg").first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(screenshots_dir() / "train-live-plot.png"), full_page=True)
    assert "12 steps" in page.locator("#train-status").inner_text()


def test_a_hostile_model_card_renders_inert_in_a_real_browser(page, app_url) -> None:
    """A model whose style name and card carry HTML (a tracking pixel, a phishing link, a Markdown image): shown in
    the Models tab, it makes no element and no request of its own."""
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.registry import save_model

    tracker = "http://127.0.0.1:9"  # nothing listens there; a request to it is what must not happen
    hostile = f'<img src="{tracker}/pixel.gif"><a href="{tracker}/login">Click here</a>'
    save_model(StyleTransformNet(width=0.25, num_residual=1), Path(app_url[1]["PERCEPTUAL_MODELS_DIR"]) / "hostile",
               style=hostile, training={"loss_network": "vgg16:random(seed=0)"},
               card_extra=f"![seen]({tracker}/markdown.png) {hostile}")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.get_by_role("tab", name="Models").click()
    picker = page.get_by_label("Model card", exact=True).first
    picker.fill("local:hostile")
    picker.press("Enter")
    page.get_by_text("local:hostile", exact=False).first.wait_for()
    page.get_by_text("Click here", exact=False).first.wait_for()  # the card arrived, its HTML shown as text
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshots_dir() / "hostile_card.png"), full_page=True)
    found = page.evaluate(f"""() => [...document.querySelectorAll('img[src^="{tracker}"], a[href^="{tracker}"]')].map(e => e.outerHTML + " IN " + (e.closest("[id]") || {{}}).id + " / " + e.parentElement.outerHTML.slice(0, 200))""")
    assert found == []
    assert [url for url in requests if url.startswith(tracker)] == []
