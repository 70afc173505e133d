"""The licensed image corpus: real photos and public-domain paintings from Debian packages, each with its
licence, split by source image into train and held-out (``python -m imaging.corpus build``)."""
from .manifest import (
    HELD_OUT,
    PAINTING,
    PHOTO,
    TRAIN,
    Corpus,
    CorpusError,
    CorpusImage,
    default_corpus_dir,
    read_corpus,
    split_of,
)

__all__ = ["HELD_OUT", "PAINTING", "PHOTO", "TRAIN", "Corpus", "CorpusError", "CorpusImage", "default_corpus_dir",
           "read_corpus", "split_of"]
