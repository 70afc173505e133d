"""The Gradio web app: pure handler functions (``handlers``) and the interface that wires them (``ui``)."""
