"""Ensembles at their edges: hostile reference folders, absurd sizes, references that do not fit the inputs,
the error bar of references drawn without replacement, and shards whose ensemble settings contradict."""

import os
import threading

import pytest
import torch

from igcli.models import Preprocessing
from igcli.ensembles.references import FolderReferences
from igcli.errors import InvalidArgumentError

from cli_helpers import make_images


def _finishes(function, seconds=20.0):
    """What ``function()`` returned or raised, run in a thread that must finish within ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 (handed back to the test)
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return outcome


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_reference_folder_is_refused_not_waited_on(tmp_path):
    make_images(tmp_path / "refs", 2, seed=3, prefix="ref")
    os.mkfifo(tmp_path / "refs" / "pipe.png")  # opening it to read would wait for a writer for ever
    outcome = _finishes(lambda: FolderReferences(str(tmp_path / "refs"), Preprocessing(resize=16, crop=16)))
    error = outcome.get("error")
    assert isinstance(error, InvalidArgumentError), outcome
    assert "pipe.png" in str(error) and "\n" not in str(error)



@pytest.mark.parametrize("settings, option", [
    (dict(method="ig", noise_samples=10**13), "--noise-samples"),
    (dict(method="eg", samples=10**13), "--samples"),
    (dict(method="ig", references=True, baseline_samples=10**13), "--baseline-samples"),
    (dict(method="eg", samples=1000, noise_samples=1000), "--noise-samples"),
])
def test_an_absurd_number_of_draws_is_refused_before_anything_is_allocated(settings, option):
    """10^13 draws per image would take all the machine's memory (the run was killed, or a MemoryError
    traceback): :func:`igcli.describe`, the check :func:`igcli.attribute` and the CLI make first, refuses it in
    one line naming the option, as it refuses --steps beyond 100,000."""
    import igcli

    with pytest.raises(InvalidArgumentError) as caught:
        igcli.describe(settings.pop("method"), "riemann", steps=2, **settings)
    assert option in str(caught.value) and "\n" not in str(caught.value)
