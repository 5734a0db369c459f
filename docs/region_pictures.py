"""Make the README's region pictures from the committed sample ``docs/img/segment-sample.png``.

Two mmcli commands run (printed as they run, so the README can show them exactly):

1. ``mmcli caption SAMPLE --point 520,90 --box 135,110,315,300 -f json``: two region captions.
   ``docs/img/region-caption.png`` shows, per region, the crop mmcli sent to the vision model
   (rebuilt from the record's ``region`` and ``crop`` by ``mmcli.tasks.vision.marked``, the
   function the caption task itself calls) next to the caption the model wrote.
2. ``mmcli segment SAMPLE --box ... --label --overlay --output-dir OUT``: every mask named by the
   vision model; its overlay is copied to ``docs/img/region-labels.png``.

Without options it builds the GENERATED tiny test models (tests/samgen.py, tests/tinyvlm.py:
random VLM weights, so the words are meaningless) in a temporary folder. Where real weights are
present: ``python docs/region_pictures.py --model smolvlm-256m --segment-model mobilesam``.

Usage: python docs/region_pictures.py [--model NAME --segment-model NAME] [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "docs/img/segment-sample.png"
REGIONS = ["--point", "520,90", "--box", "135,110,315,300"]  # the sun, the house
BOXES = ["--box", "470,40,570,140", "--box", "135,110,315,300", "--box", "380,260,640,427"]


def tiny_models(folder: Path) -> Path:
    """A manifest with the generated tiny SAM pair and tiny VLM (the test suite's models)."""
    sys.path.insert(0, str(REPO))
    from tests.samgen import write_pair
    from tests.segment_fixtures import MANIFEST
    from tests.vision_fixtures import write_manifest

    write_pair(folder, "nchw")
    vlm = write_manifest(folder / "vlm.toml", folder)
    both = folder / "models.toml"
    both.write_text(MANIFEST.format(dir=folder).split("[defaults]")[0] + vlm.read_text()
                    + 'segment = ["tiny-sam"]\n')
    return both


def mmcli(args: list[str]) -> str:
    """Run ``mmcli ARGS`` from the repository (printed first); its stdout."""
    print("$ mmcli " + shlex.join(args), file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "mmcli", *args], cwd=REPO, check=True,
                          capture_output=True, text=True)
    return done.stdout


def caption_figure(records: list[dict], out: Path, note: str) -> None:
    """Per region: the marked crop the VLM saw, and its caption; ``note`` underneath."""
    import numpy as np
    from PIL import Image, ImageDraw

    from mmcli import images
    from mmcli.masks import decode_rle
    from mmcli.tasks.vision import marked

    image = np.asarray(images.open_rgb((REPO / SAMPLE).read_bytes(), SAMPLE)[0], np.uint8)
    tiles = []
    for rec in records:
        mask = decode_rle(rec["region"]["segmentation"])
        picture, crop = marked(image, mask, rec["region"]["bbox"], "outline", 1024)
        assert list(crop) == rec["crop"], (crop, rec["crop"])  # the crop the record names
        tile = Image.frombytes("RGB", (picture.width, picture.height), picture.rgb)
        tile.thumbnail((260, 260))
        tiles.append((rec, tile))
    width, pad = 760, 12
    lines_of = [textwrap.wrap(f'"{rec["caption"]}"', 60)[:8] for rec, _ in tiles]
    heights = [max(tile.height, 16 * (len(lines) + 2)) for (_, tile), lines in
               zip(tiles, lines_of)]
    foot = textwrap.wrap(note, 110)
    sheet = Image.new("RGB", (width, pad + sum(h + pad for h in heights) + 14 * len(foot) + pad),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for (rec, tile), lines, h in zip(tiles, lines_of, heights):
        sheet.paste(tile, (pad, y))
        x = pad * 2 + 260
        prompt = rec["region"]["prompt"]
        where = ("--box " + ",".join(f"{v:g}" for v in prompt["box"]) if prompt["box"]
                 else "--point " + ",".join(f"{v:g}" for v in prompt["points"][0]))
        draw.text((x, y), f"{where}  (crop {rec['crop']}, model {rec['model']['name']})",
                  fill=(0, 0, 0))
        for i, line in enumerate(lines):
            draw.text((x, y + 20 + 16 * i), line, fill=(40, 40, 160))
        y += h + pad
    for i, line in enumerate(foot):
        draw.text((pad, y + 14 * i), line, fill=(110, 110, 110))
    sheet.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="vision model (default: the generated tiny VLM)")
    parser.add_argument("--segment-model", help="segment model (default: the tiny SAM)")
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            head = ["--models", str(tiny_models(Path(tmp)))]
            note = ("Made with the GENERATED tiny test models (random weights: the words mean "
                    "nothing). Real captions: python docs/region_pictures.py --model "
                    "smolvlm-256m --segment-model mobilesam")
        else:
            head, note = [], f"{args.model} + {args.segment_model or 'segment default'}"
        vlm = ["--model", args.model] if args.model else []
        sam = ["--segment-model", args.segment_model] if args.segment_model else []
        text = mmcli([*head, "caption", SAMPLE, *REGIONS, *vlm, *sam, "--detail", "short",
                      "-f", "json"])
        found = json.loads(text)
        caption_figure(found if isinstance(found, list) else [found],
                       out / "region-caption.png", note)
        folder = Path(tmp) / "segment"
        labeller = ["--label-model", args.model] if args.model else []
        mmcli([*head, "segment", SAMPLE, *BOXES, *(["--model", args.segment_model]
                                                    if args.segment_model else []),
               "--label", *labeller, "--overlay", "--output-dir", str(folder)])
        (overlay,) = folder.rglob("segment-sample.png.overlay.png")
        shutil.copyfile(overlay, out / "region-labels.png")
    print(f"wrote {out / 'region-caption.png'} and {out / 'region-labels.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
