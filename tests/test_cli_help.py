"""``--help`` as a user reads it, and shell completion through the protocol the shipped scripts speak.

The help texts come from the Click tree as written (``typer.main.get_command``); the rendered help from real
``python -m igcli ... --help`` runs. Completion runs ``igcli`` with ``_IGCLI_COMPLETE`` and each shell's variables,
as the scripts in completions/ do on TAB.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from igcli.cli.app import app, cli
from igcli.cli.helptext import choices

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("_IGCLI_COMPLETE", None)


def walk(command, path=("igcli",)):
    """(path, command) for igcli and every subcommand, from a Click command tree."""
    yield path, command
    for name, child in getattr(command, "commands", {}).items():
        yield from walk(child, (*path, name))


RAW = dict(walk(typer.main.get_command(app)))  # help texts exactly as written in igcli/cli
BRACKETED = re.compile(r"\[[^\[\]]*\]")


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, ...], str]:
    """Each command's ``--help`` output from a real run, with panel borders dropped and whitespace collapsed (so
    that text wrapped inside a panel reads as one line again)."""
    pages = {}
    for path in RAW:
        result = subprocess.run([sys.executable, "-m", "igcli", *path[1:], "--help"], capture_output=True,
                                text=True, env=ENV, cwd=ROOT, timeout=60)
        assert result.returncode == 0, result.stderr
        pages[path] = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    return pages


def help_texts(command) -> list[str]:
    texts = [command.help or "", command.epilog or ""]
    return texts + [param.help or "" for param in command.params if not getattr(param, "hidden", False)]


def test_bracketed_help_text_survives_into_help(rendered):
    checked = []
    for path, command in RAW.items():
        for text in help_texts(command):
            for bracketed in BRACKETED.findall(" ".join(text.split())):
                assert bracketed in rendered[path], f"{' '.join(path)} --help lost {bracketed!r}"
                checked.append(bracketed)
    # The texts that Rich markup used to swallow, so that this test checks something.
    assert {"[default: 32, or the step count of a schedule file]", "[alpha*, 1]", "[0, alpha*]"} <= set(checked)
    assert any(text.startswith("[default: the user cache") for text in checked)


def test_help_shows_metavars_not_type_hints(rendered):
    for path, page in rendered.items():
        for hint in ["<bool>", "<list", "<str>", "<int", "<float>", "<path>", "{", "}"]:
            assert hint not in page, f"{' '.join(path)} --help shows {hint!r}"
        assert not re.search(r"<[\w|\[\], .-]+>", page), f"{' '.join(path)} --help shows a type placeholder"
    attribute = rendered[("igcli", "attribute")]
    assert "Usage: igcli attribute [OPTIONS] IMAGES..." in attribute
    for option, metavar in [("--shard", "i/n"), ("--steps", "N|auto"), ("--weights", "FILE"),
                            ("--method", "[vg|ig|blurig|gig|eg|idgi]"), ("--mean", "R,G,B")]:
        assert f"{option} {metavar} " in attribute, option
    assert "--resume Continue a run" in attribute  # a flag: nothing between the name and its help
    assert "Usage: igcli completions [OPTIONS] SHELL" in rendered[("igcli", "completions")]


# -- completion -----------------------------------------------------------------------------------------------


def complete(shell: str, line: str, instruction: str | None = None) -> list[str]:
    """What ``igcli`` offers for the command line ``line`` (the last word being completed), asked as the shell's
    script asks it."""
    env = {**ENV, "_IGCLI_COMPLETE": instruction or f"complete_{shell}"}
    if shell == "bash":
        words = line.split(" ")
        env.update(COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=line, _TYPER_COMPLETE_FISH_ACTION="get-args")
    result = subprocess.run([sys.executable, "-m", "igcli"], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    if shell == "zsh":  # _arguments '*: :(("value":"help" ...))', or _files when there is nothing to offer
        return [value.replace("''", "'") for value in re.findall(r'(?:^|\(\()"((?:[^"]|"")*)"', result.stdout, re.M)]
    return [row.split("\t")[0] for row in result.stdout.splitlines() if row]


def subcommands() -> set[str]:
    return set(RAW[("igcli",)].commands)


def method_choices() -> list[str]:
    method = next(param for param in RAW[("igcli", "attribute")].params if param.name == "method")
    return list(choices(method))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_protocol(shell):
    assert set(complete(shell, "igcli ")) == subcommands()
    assert complete(shell, "igcli attr") == ["attribute"]
    options = complete(shell, "igcli attribute --me")
    assert {"--method", "--mean"} <= set(options) and all(option.startswith("--me") for option in options)
    assert complete(shell, "igcli attribute -o out --method ") == method_choices()
    assert complete(shell, "igcli attribute --method g") == ["gig"]


@pytest.mark.parametrize("shell", ["fish", "zsh"])
def test_a_long_help_stays_one_candidate_in_a_narrow_terminal(shell, monkeypatch):
    # Typer renders each candidate's help at the terminal's width; a wrapped help became extra "candidates".
    monkeypatch.setitem(ENV, "COLUMNS", "40")
    options = complete(shell, "igcli attribute --me")
    assert sorted(options) == ["--mean", "--method"]


def test_click_order_of_the_instruction_is_accepted():
    assert complete("bash", "igcli attr", instruction="bash_complete") == ["attribute"]


@pytest.mark.parametrize("words, expected", [
    ({"COMP_WORDS": "igcli attribute --me", "COMP_CWORD": "abc"}, "COMP_"),
    ({}, "COMP_"),
    ({"_IGCLI_COMPLETE": "garbage"}, "not a completion request"),
    ({"_IGCLI_COMPLETE": "complete_klingon"}, "not a completion request"),
])
def test_a_malformed_completion_request_offers_nothing_and_says_so_in_one_line(words, expected):
    """igcli called by hand with the completion variable: a bad word number, no words, an unknown request."""
    env = {**{k: v for k, v in ENV.items() if not k.startswith("COMP_")}, "_IGCLI_COMPLETE": "complete_bash", **words}
    result = subprocess.run([sys.executable, "-m", "igcli"], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("igcli: error: "), result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_every_option_and_choice_completes(monkeypatch):
    # In process (one subprocess per case would be slow), through the same Typer completer the scripts reach.
    from typer.completion import completion_init
    from typer._click.shell_completion import get_completion_class

    completion_init()
    root = cli()
    for path, command in walk(root):
        cases = [([*path[1:]], "-", sorted(name for param in command.params if param.param_type_name == "option"
                                          for name in [*param.opts, *param.secondary_opts]) + ["--help", "-h"])]
        for param in command.params:
            if param.param_type_name == "option" and choices(param) and not param.is_flag:
                cases += [([*path[1:], name], "", list(choices(param))) for name in param.opts]
        for args, incomplete, expected in cases:
            words = ["igcli", *args, incomplete]
            monkeypatch.setenv("COMP_WORDS", " ".join(words))
            monkeypatch.setenv("COMP_CWORD", str(len(words) - 1))
            completer = get_completion_class("bash")(root, {}, "igcli", "_IGCLI_COMPLETE")
            got = completer.complete().splitlines()
            assert sorted(got) == sorted(expected), " ".join(words)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_shipped_bash_script_completes_in_bash(tmp_path):
    # An igcli on PATH that is this checkout, then the shipped script's function, as bash calls it on TAB.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "igcli").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m igcli "$@"\n')
    (bin_dir / "igcli").chmod(0o755)
    script = (f"source {ROOT / 'completions' / 'igcli.bash'}\n"
              "COMP_WORDS=(igcli attribute --method ''); COMP_CWORD=3; _igcli_completion igcli\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n'
              "complete -p igcli\n")
    env = {key: value for key, value in ENV.items() if key not in ("BASH_ENV", "ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:-1] == method_choices()
    assert "-F _igcli_completion" in lines[-1] and "-o default" in lines[-1]  # file names where nothing fits


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_shipped_scripts_parse(shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    flag = "-n" if shell == "zsh" else "--no-execute"
    result = subprocess.run([shell, flag, str(ROOT / "completions" / ("_igcli" if shell == "zsh" else "igcli.fish"))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
