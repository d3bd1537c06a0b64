"""The package's lazy front doors: every name they promise resolves, without importing torch until used."""

import subprocess
import sys

import pytest

import igcli
import igcli.jobs


@pytest.mark.parametrize("module", [igcli, igcli.jobs], ids=["igcli", "igcli.jobs"])
def test_every_exported_name_resolves(module):
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_the_registry_and_the_job_checks_import_without_torch():
    code = ("import sys, igcli, igcli.methods, igcli.jobs.checks, igcli.cli.common; "
            "igcli.methods.get_method('gig').resolve_options({'anchors': '2'}); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
