"""The shipped completions and man page are up to date and complete; the environment table matches the code;
no help, error or README text cites a file the reader does not have.

Expectations come from the Click command tree (the CLI's options change; these tests follow them), apart from a
few anchors such as ``--method`` and ``gig``. When a test here fails after a CLI change: python -m igcli.cli.docs
(How the completions behave, and ``--help``, is tested in test_cli_help.py.)
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

import pytest
import typer.main

from igcli import __version__
from igcli.cli import docs, manpage
from igcli.cli.app import app
from igcli.environment import ENVIRONMENT
from igcli.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "run python -m igcli.cli.docs"
MAN_PAGE = ROOT / docs.MAN_FILE


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


# -- the man page ---------------------------------------------------------------------------------------------


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
                assert str(param.metavar or param.name.upper()).rstrip(".") in section
    for code in EXIT_CODES:
        assert f".B {code}\n" in sections["EXIT STATUS"]
    listed = re.findall(r"^\.B (\S+)$", sections["ENVIRONMENT"], flags=re.M)
    assert listed == [variable.name for variable in ENVIRONMENT]


def test_man_page_header_is_versioned_not_dated():
    header = next(line for line in MAN_PAGE.read_text(encoding="utf-8").splitlines() if line.startswith(".TH "))
    assert __version__ in header
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\b(19|20)\d{2}\b", header)


def test_roff_escaping():
    assert manpage._roff(".starts with a dot") == "\\&.starts with a dot"
    assert manpage._roff("'quoted") == "\\&'quoted"
    assert manpage._roff("a\\b") == "a\\eb"
    assert manpage._roff("use --rule idgi, -q or -, not gauss-legendre") == \
        "use \\-\\-rule idgi, \\-q or \\-, not gauss-legendre"
    assert manpage._roff("-o out", code=True) == "\\-o out"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings():
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(MAN_PAGE)], capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    page = re.sub(".\b", "", result.stdout)  # overstrikes (bold, underline) off
    assert "EXIT STATUS" in page and "--method" in page and "igcli attribute imgs/ -o out" in page




def test_man_page_shows_help_metavars():
    text = unroff(MAN_PAGE.read_text(encoding="utf-8"))
    assert "\\fBigcli attribute\\fR \\fB-o\\fR \\fIOUT\\fR [\\fIOPTIONS\\fR] \\fIIMAGES...\\fR" in text
    assert "\\fB--shard\\fR \\fIi/n\\fR" in text and "\\fB--steps\\fR \\fIN\\fR" in text
    assert "\\fB--resume\\fR\n" in text  # a flag: no metavar
    assert "[vg|ig|blurig|gig|eg|idgi]" in text


# -- the environment variables --------------------------------------------------------------------------------

# A read of the environment: os.environ[...] / .get(...) / getenv(...), or of the env mapping resolve_part takes.
# The name is a string literal, or a constant assigned one at the top of the same file (NAME = "VALUE").
ENV_READ = re.compile(r"""(?:\b(?:os\.environ|environ|env)(?:\.get\(|\[)|\bgetenv\()\s*(?:["']([A-Z_][A-Z0-9_]*)["']"""
                      r"""|([A-Z_][A-Z0-9_]*)\b)|["']([A-Z_][A-Z0-9_]*)["']\s+in\s+(?:os\.environ|environ|env)\b""")


def environment_reads() -> dict[str, set[str]]:
    """Variable name -> the igcli files (relative to the repository) whose code reads it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "igcli").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        constants = dict(re.findall(r"""^([A-Z_][A-Z0-9_]*) = ["']([^"']+)["']""", text, flags=re.M))
        for match in ENV_READ.finditer(text):
            name = match.group(1) or match.group(3) or constants[match.group(2)]
            found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_environment_scan_finds_known_reads():
    reads = environment_reads()  # the scan itself: it must see both styles of read
    assert "igcli/schedules.py" in reads["IGCLI_CACHE"] and "igcli/distributed.py" in reads["SLURM_ARRAY_TASK_ID"]
    assert "igcli/distributed.py" in reads["SLURM_ARRAY_TASK_MIN"] and "igcli/cli/app.py" in reads["_IGCLI_COMPLETE"]


def test_environment_table_is_what_the_code_reads():
    reads = environment_reads()
    ours = {variable.name: variable.read_in for variable in ENVIRONMENT if variable.read_in.startswith("igcli/")}
    assert set(ours) == set(reads), "igcli/environment.py and the code disagree"
    for name, where in ours.items():
        assert where in reads[name], f"{name} is not read in {where} but in {sorted(reads[name])}"
    others = [variable for variable in ENVIRONMENT if not variable.read_in.startswith("igcli/")]
    assert [variable.name for variable in others] == ["TORCH_HOME"]  # read by torch.hub on igcli's behalf


def test_readme_lists_the_environment_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([^`]+)` \|", section, flags=re.M) == [variable.name for variable in ENVIRONMENT]


# -- citations ------------------------------------------------------------------------------------------------

# A citation of a local copy of a paper (idgi.txt §4.3, riemannopt.txt Eq. 9, papers/...).
FILE_CITATION = re.compile(r"\.txt,?\s*(§|Eq\.|Table|Algorithm|Fig)|papers/|\b[\w-]+\.txt\)")


def test_citation_pattern():
    for text in ["insertion (idgi.txt §4.3)", "riemannopt.txt, Eq. 6", "see papers/idgi.txt", "(split-ig.txt)"]:
        assert FILE_CITATION.search(text), text
    for text in ["insertion (Yang et al. 2023, §4.3)", "resources/imagenet_wnids.txt"]:
        assert not FILE_CITATION.search(text), text


def test_no_text_in_igcli_or_readme_cites_a_local_paper_file():
    cited = []
    for path in sorted((ROOT / "igcli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # help, errors, docstrings, comments aside
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FILE_CITATION.search(node.value):
                cited.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "#" in line and FILE_CITATION.search(line.split("#", 1)[1]):
                cited.append(f"{path.relative_to(ROOT)}:{number} (comment)")
    for number, line in enumerate((ROOT / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if FILE_CITATION.search(line):
            cited.append(f"README.md:{number}")
    assert not cited, "cite the paper (authors, year, section; README References), not a file: " + ", ".join(cited)


def test_readme_references_the_five_papers():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    references = readme.split("\n## References\n", 1)[1]
    for arxiv in ["2303.14242", "2106.09788", "2410.04118", "2010.12697", "2409.09043"]:
        assert f"[arXiv:{arxiv}](https://arxiv.org/abs/{arxiv})" in references
