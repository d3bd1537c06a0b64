"""``igcli methods``: every registered method listed with the options it declares, as text and as JSON."""

import json

from igcli.methods import BUILT_IN, get_method, method_names

from cli_helpers import run_cli


def test_every_method_is_listed_with_its_declared_options_and_defaults():
    result = run_cli("methods", "--json")
    assert result.returncode == 0, result.stderr
    records = {record["name"]: record for record in json.loads(result.stdout)["methods"]}
    assert set(method_names()) | {"idgi"} == set(records)
    for name in method_names():
        method = get_method(name)
        assert records[name]["title"] == method.title and records[name]["path"] == method.path
        assert {o["name"]: o["default"] for o in records[name]["options"]} == method.defaults()
    assert records["idgi"]["method"] == "ig" and records["idgi"]["rule"] == "idgi"


def test_a_glob_narrows_the_text_listing_and_no_match_is_an_error():
    result = run_cli("methods", "blur*")
    assert result.returncode == 0 and result.stdout.startswith("blurig  Blur IG")
    assert "max_sigma=50.0  float" in result.stdout and "gig " not in result.stdout
    assert all(f"{option.name}=" in result.stdout for option in BUILT_IN["blurig"].options)
    missing = run_cli("methods", "lime*")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == "igcli: error: no method matches 'lime*'; see igcli methods"
