"""Reassemble GCompris's jigsaw paintings (the ``paintings`` activity) into whole images.

Each board file (``resource/board/boardN_0.qml``) names the painting (``instruction``), the board's size (the
background entry's ``width`` and ``height``) and every piece with the centre it is dropped on, as fractions of
the board (``x``, ``y``). GCompris draws a piece at ``x * board_width - piece_width / 2`` at its native size
when the board is shown at its own size (``babymatch/DragListItem.qml``), so pasting the pieces' alpha
channels at those centres rebuilds the painting; the tabs of neighbouring pieces interlock exactly.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image

_INSTRUCTION = re.compile(r'instruction\s*:\s*qsTr\("((?:[^"\\]|\\.)*)"\)')
_BOARD_SIZE = re.compile(r'"width"\s*:\s*(\d+)\s*,\s*"height"\s*:\s*(\d+)')
_PIECE = re.compile(r'"pixmapfile"\s*:\s*"([^"]+)"\s*,\s*"x"\s*:\s*"?([\d.]+)"?\s*,\s*"y"\s*:\s*"?([\d.]+)"?')
# The share of the reassembled rectangle the pieces must cover: gaps mean the board and the pieces disagree.
MIN_COVERAGE = 0.995


class JigsawError(ValueError):
    """A board cannot be reassembled (says why in one line)."""


@dataclass(frozen=True)
class Board:
    instruction: str  # "Katsushika Hokusai, The Great Wave off Kanagawa - 1823-1829"
    size: tuple[int, int]
    pieces: tuple[tuple[str, float, float], ...]  # (path relative to the activity's resource folder, x, y)

    @property
    def artist(self) -> str:
        return self.instruction.split(",", 1)[0].strip()

    @property
    def title(self) -> str:
        rest = self.instruction.split(",", 1)[1] if "," in self.instruction else self.instruction
        return re.sub(r"\s+-\s+[\d\-–. ]+\.?$", "", rest).strip()

    @property
    def year(self) -> str | None:
        match = re.search(r"-\s+([\d\-–]+)\.?\s*$", self.instruction)
        return match.group(1) if match else None


def parse_board(text: str) -> Board:
    instruction = _INSTRUCTION.search(text)
    size = _BOARD_SIZE.search(text)
    pieces = tuple((path, float(x), float(y)) for path, x, y in _PIECE.findall(text))
    if not instruction or not size or not pieces:
        raise JigsawError("not a jigsaw board (no instruction, board size or pieces)")
    return Board(instruction.group(1), (int(size.group(1)), int(size.group(2))), pieces)


def assemble(board: Board, piece_bytes: dict[str, bytes]) -> Image.Image:
    """The painting as an RGB image, cropped to what the pieces cover."""
    width, height = board.size
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    for path, x, y in board.pieces:
        if path not in piece_bytes:
            raise JigsawError(f"piece {path} is missing")
        try:
            with Image.open(io.BytesIO(piece_bytes[path])) as opened:
                piece = opened.convert("RGBA")
        except (OSError, ValueError) as exc:
            raise JigsawError(f"piece {path} is not a readable image ({exc})") from None
        left, top = round(x * width - piece.width / 2), round(y * height - piece.height / 2)
        canvas.alpha_composite(piece, (max(left, 0), max(top, 0)),
                               (max(-left, 0), max(-top, 0)))
    alpha = canvas.getchannel("A")
    box = alpha.point(lambda a: 255 if a > 0 else 0).getbbox()
    if box is None:
        raise JigsawError("the pieces cover nothing")
    covered = alpha.crop(box).point(lambda a: 255 if a >= 128 else 0)
    coverage = sum(covered.histogram()[255:]) / (covered.width * covered.height)
    if coverage < MIN_COVERAGE:
        raise JigsawError(f"the pieces cover only {coverage:.1%} of the painting")
    painting = canvas.crop(box)
    background = Image.new("RGBA", painting.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, painting).convert("RGB")
