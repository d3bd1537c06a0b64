"""Ground truth for localization: object masks aligned with the crop the model saw, from mask PNGs, a CSV of
boxes or Pascal VOC XML files."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data import load_rgb
from ..errors import InvalidArgumentError
from ..labels import read_csv_rows
from ..models import Preprocessing


class GroundTruth:
    """Object masks for localization, aligned with the crop the model saw: ``--masks DIR`` of PNGs (nonzero =
    object; ``DIR/STEM.png`` or ``DIR/<path as given>.png``) or ``--boxes`` (a CSV of path,xmin,ymin,xmax,ymax
    rows in original-image pixels, several rows per image allowed, or a folder of Pascal VOC XML files
    ``STEM.xml``)."""

    def __init__(self, masks: str | None, boxes: str | None, preprocessing: Preprocessing) -> None:
        if masks is None and boxes is None:
            raise InvalidArgumentError("--metric localization needs --masks DIR or --boxes FILE|DIR")
        if masks is not None and not os.path.isdir(masks):
            raise InvalidArgumentError(f"--masks {masks}: no such folder")
        if boxes is not None and not os.path.exists(boxes):
            raise InvalidArgumentError(f"--boxes {boxes}: no such file or folder")
        self.masks, self.boxes, self.preprocessing = masks, boxes, preprocessing
        self.table: dict[str, list[tuple[float, float, float, float]]] = {}
        if boxes is not None and os.path.isfile(boxes):
            for number, row in enumerate(read_csv_rows("--boxes", boxes), start=1):
                if not row or row[0] == "path":
                    continue
                try:
                    values = tuple(float(v) for v in row[1:5])
                except ValueError:
                    values = ()
                if len(values) != 4 or not all(np.isfinite(values)):
                    raise InvalidArgumentError(f"--boxes {boxes}: line {number} is not path,xmin,ymin,xmax,ymax")
                self.table.setdefault(row[0], []).append(values)

    def _aligned(self, mask: Image.Image) -> np.ndarray:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        tensor = torch.from_numpy(np.array(mask.convert("L"), dtype=np.uint8))[None]
        tensor = F.resize(tensor, [self.preprocessing.resize], interpolation=InterpolationMode.NEAREST)
        return (F.center_crop(tensor, [self.preprocessing.crop] * 2)[0] > 0).numpy()

    def __call__(self, path: str, image_path: str | None = None) -> np.ndarray:
        """(crop, crop) bool mask for ``path`` (as given; boxes are drawn on the image at ``image_path``, where
        it is now, by default ``path``); FileNotFoundError with a reason when there is none."""
        stem = Path(path).stem
        if self.masks is not None:
            for candidate in (Path(self.masks) / f"{stem}.png", Path(self.masks) / Path(path).with_suffix(".png")):
                if candidate.is_file():
                    with Image.open(candidate) as mask:
                        return self._aligned(mask)
            raise FileNotFoundError(f"no mask {stem}.png in --masks {self.masks}")
        if os.path.isdir(self.boxes):
            xml = Path(self.boxes) / f"{stem}.xml"
            if not xml.is_file():
                raise FileNotFoundError(f"no {stem}.xml in --boxes {self.boxes}")
            try:
                boxes = [tuple(float(o.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax"))
                         for o in ElementTree.parse(xml).getroot().iter("object")]
            except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
                raise FileNotFoundError(f"{xml} is not Pascal VOC XML with numeric bndbox values ({error})") from None
        else:
            boxes = self.table.get(path) or self.table.get(os.path.basename(path)) or []
            if not boxes:
                raise FileNotFoundError(f"no row for this image in --boxes {self.boxes}")
        # Boxes are in the pixels of the image as viewers show it (EXIF orientation applied, as the model saw it).
        size = load_rgb(image_path or path, exif_transpose=self.preprocessing.exif_transpose).size
        canvas = np.zeros((size[1], size[0]), dtype=np.uint8)
        for xmin, ymin, xmax, ymax in boxes:
            canvas[int(round(ymin)) : int(round(ymax)), int(round(xmin)) : int(round(xmax))] = 255
        return self._aligned(Image.fromarray(canvas))
