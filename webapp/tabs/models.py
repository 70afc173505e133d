"""The Models tab and the model pickers of every other tab: what the registry lists, for whom."""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from perceptual_studio.pipelines.training import root_base_model
from perceptual_studio.webapp import handlers
from perceptual_studio.webapp.events import on_space_with_oauth, progress_callback, user_errors, visitor_token
from perceptual_studio.webapp.request_context import current_owner
from perceptual_studio.webapp.handlers import models as models_handlers
from perceptual_studio.webapp.tabs.stylize import NO_STYLE_MODELS

logger = logging.getLogger(__name__)


LOAD_MAX_AGE_S = 10.0  # the events of one page load (and of one chain) share a listing this fresh


def _listing_outputs(listing) -> tuple:
    return models_handlers.table_rows(listing), models_handlers.records(listing), models_handlers.notices_markdown(listing)




@user_errors
def list_models_event(oauth_token: gr.OAuthToken | None = None):
    return _listing_outputs(handlers.current_listing(token=visitor_token(oauth_token), owner=current_owner()))


@user_errors
def list_models_recent(oauth_token: gr.OAuthToken | None = None):
    return _listing_outputs(handlers.current_listing(LOAD_MAX_AGE_S, token=visitor_token(oauth_token), owner=current_owner()))


@user_errors
def card_choices_event(current: str | None):
    ids = [e.id for e in handlers.current_listing(LOAD_MAX_AGE_S, owner=current_owner()).entries]
    return gr.update(choices=ids, value=current if current in ids else (ids[0] if ids else None))


@user_errors
def model_card_event(model_id: str | None):
    return handlers.model_card(model_id, current_owner())


@user_errors
def pull_event(repo_id: str, oauth_token: gr.OAuthToken | None = None):
    return handlers.pull_model(repo_id, visitor_token(oauth_token))


@user_errors
def import_zoo_event(oauth_token: gr.OAuthToken | None = None, progress=gr.Progress()):
    return models_handlers.import_classic_styles(visitor_token(oauth_token), progress_callback(progress))


# The Train tab's default start: the shipped style closest to the uploaded one (pipelines.closest_style).
CLOSEST_START = "The shipped style closest to your image (automatic)"


def _train_start(current: str | None, style_ids: list[str]) -> str | None:
    """The Train tab's *Start from*: the user's pick, else automatic (the closest shipped style), else, with no
    shipped style to compare with, the first style model listed."""
    if current in style_ids:
        return current
    return "" if root_base_model() is not None else _keep(None, style_ids)


def _keep(current: str | None, choices: list[str]) -> str | None:
    return current if current in choices else (choices[0] if choices else None)


def video_default(style_ids: list[str]) -> str | None:
    """The Video tab's first pick: Starry Night where shipped (the gallery's best-known painting)."""
    return "builtin:starry-night" if "builtin:starry-night" in style_ids else (style_ids[0] if style_ids else None)


def _video_picks(picks: list[str] | None, style_ids: list[str]) -> list[str]:
    kept = [pick for pick in (picks or []) if pick in style_ids]
    first = video_default(style_ids)
    return kept or ([first] if first else [])


def _style_dropdown_choices(listing) -> list[tuple[str, str]]:
    return [(f"{models_handlers.style_title(e)} · {e.id}", e.id) for e in listing.style_models()]


def _pickers(listing, scale: str, style_pick: str | None, compare_pick: str | None, pixel_pick: str | None,
             feature_pick: str | None, init_pick: str | None, publish_pick: str | None,
             blend_picks: list[str] | None = None, video_picks: list[str] | None = None) -> tuple:
    """Every model picker updated from ``listing``, keeping each user's selection when it still exists."""
    style_choices = _style_dropdown_choices(listing)
    style_ids = [value for _, value in style_choices]
    gallery = models_handlers.style_gallery(listing)
    sr_ids, pixel_default, feature_default = models_handlers.sr_choices(listing, int(str(scale).lstrip("x")))
    local_ids = [e.id for e in listing.entries if e.source == "local" and e.task == "style-transfer" and e.error is None]
    return (
        gallery,
        style_ids,
        gr.update(choices=style_choices, value=_keep(style_pick, style_ids)),
        gr.update(value=NO_STYLE_MODELS, visible=not style_ids),
        gr.update(choices=[("(none: baseline only)", "")] + style_choices,
                  value=compare_pick if compare_pick in style_ids or compare_pick == "" else _keep(None, style_ids)),
        gr.update(choices=[("(none)", "")] + sr_ids, value=pixel_pick if pixel_pick in sr_ids else (pixel_default or "")),
        gr.update(choices=[("(none)", "")] + sr_ids,
                  value=feature_pick if feature_pick in sr_ids else (feature_default or "")),
        gr.update(choices=[(CLOSEST_START, "")] + style_choices, value=_train_start(init_pick, style_ids)),
        gr.update(choices=local_ids, value=_keep(publish_pick, local_ids)),
        gr.update(choices=style_choices, value=[pick for pick in (blend_picks or []) if pick in style_ids]),
        gr.update(choices=style_choices, value=_video_picks(video_picks, style_ids)),
    )


@user_errors
def refresh_pickers(*picks):
    """On page load: the listing of this page load."""
    return _pickers(handlers.current_listing(LOAD_MAX_AGE_S, owner=current_owner()), *picks)


@user_errors
def refresh_pickers_fresh(*picks):
    """After training, a pull or Refresh: re-read the registry."""
    return _pickers(handlers.current_listing(owner=current_owner()), *picks)


def models_tab() -> dict[str, Any]:
    with gr.Tab("Models", id="models"):
        gr.Markdown("Every model the registry sees: the local models folder, the Hub (when reachable) and the HF cache.")
        with gr.Row():
            refresh_button = gr.Button("Refresh")
            if on_space_with_oauth():  # signed in, the Hub listing and pulls also see your own models
                gr.LoginButton()
        notices_output = gr.Markdown()
        table_output = gr.Dataframe(headers=models_handlers.TABLE_HEADERS, interactive=False, wrap=True)
        with gr.Accordion("As JSON", open=False):
            json_output = gr.JSON()
        with gr.Row():
            with gr.Column(scale=3):
                card_input = gr.Dropdown(label="Model card", choices=[], allow_custom_value=True)
                card_output = gr.Markdown()
            card_thumb = gr.Image(label="Thumbnail", interactive=False, scale=1)
        with gr.Row():
            pull_input = gr.Textbox(label="Pull from the Hub by repo id", placeholder="owner/name")
            pull_button = gr.Button("Pull")
        pull_info = gr.Markdown()
        zoo_button = gr.Button("Import the classic styles (ONNX model zoo)")
        zoo_info = gr.Markdown()
    listing_outputs = [table_output, json_output, notices_output]
    # Light: listings and cards never queue (so they never wait behind a visitor's heavy job).
    refresh = refresh_button.click(list_models_event, None, listing_outputs, api_name="list_models", queue=False)
    card_input.change(model_card_event, card_input, [card_output, card_thumb], api_visibility="private", queue=False)
    pull = pull_button.click(pull_event, pull_input, pull_info, api_name="pull_model", concurrency_limit=1)
    import_zoo = zoo_button.click(import_zoo_event, None, zoo_info, api_name="import_zoo_styles", concurrency_limit=1)

    def show_listing(trigger) -> None:
        trigger(list_models_recent, None, listing_outputs, api_visibility="private").then(
            card_choices_event, card_input, card_input, api_visibility="private")

    refresh.then(card_choices_event, card_input, card_input, api_visibility="private")
    return {"refresh": refresh, "pull": pull, "import_zoo": import_zoo, "show_listing": show_listing}
