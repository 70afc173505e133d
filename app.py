"""Perceptual Studio's web app, as a Hugging Face Space starts it: ``python app.py`` (installed:
``perceptual-studio``). The app itself is :mod:`perceptual_studio.webapp.launch`."""
from perceptual_studio.webapp.launch import main

if __name__ == "__main__":
    main()
