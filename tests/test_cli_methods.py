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
    for json_flag in ([], ["--json"]):
        missing = run_cli("methods", "lime*", *json_flag)
        assert missing.returncode == 2 and missing.stdout == ""
        assert missing.stderr.strip() == "igcli: error: no method matches 'lime*'; see igcli methods"


def test_the_pattern_takes_any_case_as_method_does():
    result = run_cli("methods", "BLUR*")
    assert result.returncode == 0 and result.stdout.startswith("blurig  Blur IG"), result.stderr


def test_the_help_examples_jq_filter_fits_the_json():
    """The epilog's ``jq '.KEY[].name'`` names the key the JSON holds its list under."""
    import re

    help_text = run_cli("methods", "--help", env={"COLUMNS": "300"}).stdout
    found = re.search(r"jq '\.(\w+)\[\]\.name'", " ".join(help_text.split()))
    assert found, help_text
    listed = json.loads(run_cli("methods", "--json").stdout)[found.group(1)]
    assert [record["name"] for record in listed][:len(BUILT_IN)] == list(BUILT_IN)
