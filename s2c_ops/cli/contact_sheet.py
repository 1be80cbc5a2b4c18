"""A contact sheet of `s2c crop` results: each photo with its chosen crops drawn on it.

    python -m s2c_ops.cli.contact_sheet RECORDS.jsonl SHEET.png

RECORDS.jsonl is what ``s2c crop --json`` writes (one record per image and ratio); the best crop of
every ratio is drawn in its own colour and labelled with the ratio.
"""
import sys
from collections import OrderedDict
from typing import List, Optional

from PIL import Image, ImageDraw, ImageOps

from ..files import image_writer, write_atomic
from .crop.record import Record

COLOURS = [(230, 40, 40), (40, 120, 230), (40, 180, 80), (230, 160, 20), (160, 60, 200)]
THUMB_HEIGHT = 240


def contact_sheet(records_path: str, out_path: str, columns: int = 2) -> str:
    """Draws the sheet; returns ``out_path``."""
    photos: "OrderedDict[str, List[Record]]" = OrderedDict()
    with open(records_path, "rb") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                rec = Record.from_line(line)
                if rec is None:
                    raise ValueError(f"{records_path} line {number} is not a record of s2c crop")
                if rec.ok and rec.boxes:
                    photos.setdefault(rec.file, []).append(rec)
    if not photos:
        raise ValueError(f"{records_path} has no successful crop records")
    tiles = []
    for file, records in photos.items():
        with Image.open(file) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        scale = THUMB_HEIGHT / image.height
        thumb = image.resize((max(1, round(image.width * scale)), THUMB_HEIGHT), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(thumb)
        for i, rec in enumerate(records):
            colour = COLOURS[i % len(COLOURS)]
            x1, y1, x2, y2 = (v * scale for v in rec.boxes[0])
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=3)
            draw.text((x1 + 5, y1 + 4 + 12 * i), rec.ratio_text, fill=colour)
        tiles.append(thumb)
    pad = 8
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    width = max(sum(t.width for t in row) + pad * (len(row) + 1) for row in rows)
    sheet = Image.new("RGB", (width, len(rows) * (THUMB_HEIGHT + pad) + pad), "white")
    y = pad
    for row in rows:
        x = pad
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + pad
        y += THUMB_HEIGHT + pad
    write_atomic(out_path, image_writer(sheet, format="PNG"))
    return out_path


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    contact_sheet(args[0], args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
