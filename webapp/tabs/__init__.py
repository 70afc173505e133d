"""One module per tab of the app: its components, its events, and how they are wired (``webapp/ui.py`` assembles them)."""
