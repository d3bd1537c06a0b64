"""The shipped shell completions and man page: up to date, valid, complete, and working in their shells.

Expectations come from the Click command tree (the CLI's options change; these tests follow them), apart from a
few anchors such as ``--method`` and ``gig``. When a test here fails after a CLI change: python -m igcli.cli.docs
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

import pytest
import typer.main

from igcli import __version__
from igcli.cli import docs
from igcli.cli.app import app
from igcli.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "run python -m igcli.cli.docs"
BASH_SCRIPT = ROOT / docs.SCRIPT_FILES["bash"]
ZSH_SCRIPT = ROOT / docs.SCRIPT_FILES["zsh"]
FISH_SCRIPT = ROOT / docs.SCRIPT_FILES["fish"]
MAN_PAGE = ROOT / docs.MAN_FILE
ENVIRONMENT = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "RANK", "WORLD_SIZE",
               "LOCAL_RANK", "IGCLI_CACHE", "TORCH_HOME"]
SHELL_ENV = {key: value for key, value in os.environ.items() if key not in ("BASH_ENV", "ENV")}


# -- the Click tree, walked here independently of igcli.cli.docs ---------------------------------------------


def click_commands() -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(path, command, context) for igcli and each of its (visible) subcommands, depth first."""
    root = typer.main.get_command(app)
    stack = [(("igcli",), root, root.context_class(root, info_name="igcli", **(root.context_settings or {})))]
    while stack:
        path, command, ctx = stack.pop(0)
        yield path, command, ctx
        for name in getattr(command, "list_commands", lambda ctx: [])(ctx):
            child = command.get_command(ctx, name)
            if child is not None and not child.hidden:
                child_ctx = child.context_class(child, info_name=name, parent=ctx, **(child.context_settings or {}))
                stack.append(((*path, name), child, child_ctx))


def params(command: Any, ctx: Any, kind: str) -> list[Any]:
    return [p for p in command.get_params(ctx) if p.param_type_name == kind and not getattr(p, "hidden", False)]


def option_names(command: Any, ctx: Any) -> list[str]:
    return [name for option in params(command, ctx, "option") for name in [*option.opts, *option.secondary_opts]]


def subcommand_names(command: Any, ctx: Any) -> list[str]:
    return [name for name in getattr(command, "list_commands", lambda ctx: [])(ctx)
            if not command.get_command(ctx, name).hidden]


def choices(param: Any) -> list[str] | None:
    """The values of a choice parameter (Typer's type descriptor, or Click's Choice type), else None."""
    desc = getattr(param, "type_descriptor", None)
    values = (desc.choices if desc.is_choice else None) if desc is not None else getattr(param.type, "choices", None)
    if values is None:
        return None
    return [str(value.value) if isinstance(value, Enum) else str(value) for value in values]


def takes_value(option: Any) -> bool:
    return not (getattr(option, "is_flag", False) or getattr(option, "count", False))


COMMANDS = list(click_commands())
COMMANDS_BY_NAME = {" ".join(path): (command, ctx) for path, command, ctx in COMMANDS}


def test_the_tree_has_the_anchors():
    names = {" ".join(path): option_names(command, ctx) for path, command, ctx in COMMANDS}
    assert "--method" in names["igcli attribute"] and "--out" in names["igcli attribute"]
    method = next(p for p in params(*COMMANDS_BY_NAME["igcli attribute"], "option") if p.name == "method")
    assert "gig" in choices(method)


# -- up to date -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return docs.generate()


@pytest.mark.parametrize("relative", [*docs.SCRIPT_FILES.values(), docs.MAN_FILE])
def test_committed_file_is_up_to_date(generated, relative):
    path = ROOT / relative
    assert path.is_file(), f"{relative} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == generated[relative], f"{relative} is out of date: {REGENERATE}"


def test_write_all_writes_what_generate_returns(tmp_path, generated):
    written = docs.write_all(tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(generated)
    for relative, text in generated.items():
        assert (tmp_path / relative).read_text(encoding="utf-8") == text


def test_docs_module_does_not_import_torch():
    code = "import sys, igcli.cli.docs; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("shell", docs.SHELLS)
def test_completions_command_prints_the_shipped_script(shell):
    result = subprocess.run([sys.executable, "-m", "igcli", "completions", shell], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout == (ROOT / docs.SCRIPT_FILES[shell]).read_text(encoding="utf-8")


# -- every command and option in every file -------------------------------------------------------------------


def word_in(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


@pytest.mark.parametrize("shell", docs.SHELLS)
def test_scripts_mention_every_command_option_and_choice(shell):
    text = (ROOT / docs.SCRIPT_FILES[shell]).read_text(encoding="utf-8")
    assert word_in("--method", text) or "-l 'method'" in text
    assert word_in("gig", text)
    for path, command, ctx in COMMANDS:
        for name in subcommand_names(command, ctx):
            assert word_in(name, text), f"{shell}: subcommand {name} missing"
        for name in option_names(command, ctx):
            if shell == "fish":
                expected = f"-l '{name[2:]}'" if name.startswith("--") else f"-s '{name[1:]}'"
                assert expected in text, f"fish: {' '.join(path)} {name} missing"
            else:
                assert word_in(name, text), f"{shell}: {' '.join(path)} {name} missing"
        for param in command.get_params(ctx):
            for value in choices(param) or ():
                assert word_in(value, text), f"{shell}: {' '.join(path)} {param.name} choice {value} missing"


def zsh_function(text: str, path: tuple[str, ...]) -> str:
    name = "_" + "_".join(part.replace("-", "_") for part in path)
    match = re.search(rf"^{re.escape(name)}\(\) {{\n(.*?)^}}", text, re.M | re.S)
    assert match, f"zsh: no function {name}"
    return match.group(1)


def test_zsh_functions_have_their_commands_options_with_help():
    text = ZSH_SCRIPT.read_text(encoding="utf-8")
    for path, command, ctx in COMMANDS:
        body = zsh_function(text, path)
        for name in option_names(command, ctx):
            assert re.search(rf"\){re.escape(name)}[=+]?\[", body), f"zsh: {' '.join(path)} {name} missing"
        for option in params(command, ctx, "option"):
            if option.help:  # descriptions: the help text, with zsh's specials escaped
                assert option.help.split()[0].replace(":", "\\:") in body
        for name in subcommand_names(command, ctx):
            assert f"'{name}:" in body


def man_sections(text: str) -> dict[str, str]:
    """.SH and .SS sections by title."""
    parts = re.split(r'^\.S[HS] "?([^"\n]*)"?\n', text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def unroff(text: str) -> str:
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def test_man_page_documents_every_command_option_exit_code_and_variable():
    text = MAN_PAGE.read_text(encoding="utf-8")
    sections = man_sections(text)
    for title in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES",
                  "EXAMPLES"]:
        assert title in sections, f"man page: no {title} section"
    assert "\\-\\-method" in text and "\\fBgig\\fR" in text
    assert "igcli attribute imgs/ \\-o out \\-\\-model efficientnet_lite0 \\-\\-method ig \\-\\-rule idgi" in text
    assert "torchrun \\-\\-nproc\\-per\\-node 4 \\-m igcli attribute imgs/ \\-o out" in text
    for path, command, ctx in COMMANDS:
        section = sections["OPTIONS"] if len(path) == 1 else sections[" ".join(path)]
        plain = unroff(section)
        assert " ".join(path) in unroff(sections["SYNOPSIS"])
        for name in option_names(command, ctx):
            assert "\\fB" + name.replace("-", "\\-") + "\\fR" in section, f"man: {' '.join(path)} {name} missing"
        for param in command.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if getattr(param, "help", None):
                assert " ".join(param.help.split()) in plain, f"man: help of {' '.join(path)} {param.name} missing"
            for value in choices(param) or ():
                assert f"\\fB{value.replace('-', chr(92) + '-')}\\fR" in section
            if param.param_type_name == "argument":
                assert str(param.metavar or param.name.upper()) in section
    for code in EXIT_CODES:
        assert f".B {code}\n" in sections["EXIT STATUS"]
    for variable in ENVIRONMENT:
        assert f".B {variable}\n" in sections["ENVIRONMENT"]


def test_man_page_header_is_versioned_not_dated():
    header = next(line for line in MAN_PAGE.read_text(encoding="utf-8").splitlines() if line.startswith(".TH "))
    assert __version__ in header
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\b(19|20)\d{2}\b", header)


def test_roff_escaping():
    assert docs._roff(".starts with a dot") == "\\&.starts with a dot"
    assert docs._roff("'quoted") == "\\&'quoted"
    assert docs._roff("a\\b") == "a\\eb"
    assert docs._roff("use --rule idgi, -q or -, not gauss-legendre") == \
        "use \\-\\-rule idgi, \\-q or \\-, not gauss-legendre"
    assert docs._roff("-o out", code=True) == "\\-o out"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings():
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(MAN_PAGE)], capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    page = re.sub(".\b", "", result.stdout)  # overstrikes (bold, underline) off
    assert "EXIT STATUS" in page and "--method" in page and "igcli attribute imgs/ -o out" in page


# -- the scripts in their shells ------------------------------------------------------------------------------


def test_bash_script_parses():
    result = subprocess.run(["bash", "-n", str(BASH_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def bash_complete(cases: list[list[str]], cwd: Path | None = None) -> list[list[str]]:
    """COMPREPLY of the shipped bash function for each list of words (the last one being completed)."""
    lines = [f"source {shlex.quote(str(BASH_SCRIPT))}"]
    for words in cases:
        lines.append(f"COMP_WORDS=({' '.join(shlex.quote(word) for word in words)}); COMP_CWORD={len(words) - 1}; "
                     "COMPREPLY=(); _igcli 2>/dev/null; printf '%s\\n' \"${COMPREPLY[*]}\"")
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)], capture_output=True,
                            text=True, cwd=cwd, env=SHELL_ENV)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.split("\n")[: len(cases)]]


def test_bash_completes_the_anchors(tmp_path):
    (tmp_path / "cat.jpg").touch()
    (tmp_path / "imgs").mkdir()
    got = bash_complete(
        [
            ["igcli", ""],
            ["igcli", "attribute", "--me"],
            ["igcli", "attribute", "--method", ""],
            ["igcli", "attribute", "-o", "out", "--method", "g"],
            ["igcli", "attribute", "--method=g"],
            ["igcli", "attribute", "--method", "=", "g"],
            ["igcli", "attribute", "-o", ""],
            ["igcli", "attribute", "--steps", ""],
            ["igcli", "attribute", "-q", "--steps", "8", ""],
            ["igcli", "render", "c"],
        ],
        cwd=tmp_path,
    )
    assert set(got[0]) == set(subcommand_names(*COMMANDS_BY_NAME["igcli"]))
    assert "--method" in got[1] and "--mean" in got[1]
    assert "gig" in got[2]
    assert got[3] == ["gig"] and got[4] == ["--method=gig"] and got[5] == ["gig"]
    assert sorted(got[6]) == ["cat.jpg", "imgs"]  # --out: files and folders
    assert got[7] == []  # numbers: nothing
    assert sorted(got[8]) == ["cat.jpg", "imgs"]  # INPUTS
    assert got[9] == ["cat.jpg"]  # SOURCE


def test_bash_completes_every_option_and_choice():
    cases, expected = [], []
    for path, command, ctx in COMMANDS:
        cases.append([*path, "-"])
        expected.append(sorted(name for name in option_names(command, ctx) if name.startswith("-")))
        for option in params(command, ctx, "option"):
            if takes_value(option) and choices(option):
                for name in option.opts:
                    cases.append([*path, name, ""])
                    expected.append(sorted(choices(option)))
    got = bash_complete(cases)
    for case, want, have in zip(cases, expected, got):
        assert sorted(have) == want, " ".join(case)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses():
    result = subprocess.run(["zsh", "-n", str(ZSH_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses_and_completes(tmp_path):
    result = subprocess.run(["fish", "--no-execute", str(FISH_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (tmp_path / "cat.jpg").touch()
    lines = ["igcli ", "igcli attribute --me", "igcli attribute --method ", "igcli attribute --steps ",
             "igcli attribute -o out "]
    script = [f"source '{FISH_SCRIPT}'"]
    for line in lines:
        script += ["echo @@", f"complete -C '{line}'"]
    result = subprocess.run(["fish", "--no-config", "-c", "\n".join(script)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = [[row.split("\t")[0] for row in block.strip().splitlines()] for block in result.stdout.split("@@\n")[1:]]
    assert set(got[0]) == set(subcommand_names(*COMMANDS_BY_NAME["igcli"]))
    assert "--method" in got[1]
    assert "gig" in got[2]
    assert got[3] == []
    assert got[4] == ["cat.jpg"]
