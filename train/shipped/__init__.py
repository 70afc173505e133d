"""The tooling that rebuilds the shipped models, apart from the trainer itself (``train``).

* ``gallery`` (``gallery.toml``): the style gallery and each style's fast variant (``fast_variants``, judged by
  ``style_eval`` on held-out photos), ``python -m train.shipped.gallery``;
* ``sr_gallery`` (``sr_gallery.toml``): the four super-resolution models, ``python -m train.shipped.sr_gallery``;
* ``shipping``: what both share: recipes, one process per stage, float16 folders and card sections.

Each stage runs the ordinary trainer (``python -m train.style``, ``train.sr``, ``train.distill``) in its own
process, resumable. The app and the pipelines read only the gallery manifest's content recipe (the bundled
training photos, ``gallery.build_content``).
"""
