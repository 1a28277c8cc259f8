"""The README says what the commands do today: its example output is what they print, and every `alat`
command line it shows parses with today's options."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from latentcodec.cli import cli, main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _demo_encode() -> list[str]:
    """`make demo`'s encode command, as the Makefile has it (the example's path and the output's)."""
    make = (ROOT / "Makefile").read_text()
    example = re.search(r"^EXAMPLE := (.+)$", make, re.M)[1]
    line = next(ln for ln in make.splitlines() if "alat encode" in ln)
    return [a.replace("$(EXAMPLE)", str(ROOT / example)) for a in shlex.split(line.split("alat", 1)[1])]


def test_the_info_example_is_what_alat_info_prints(capsys, tmp_path) -> None:
    shown = README.split("$ alat info /tmp/example.alat\n", 1)[1].split("```", 1)[0]
    argv = [str(tmp_path / "example.alat") if a == "/tmp/example.alat" else a for a in _demo_encode()]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "example.alat")]) == 0
    printed = capsys.readouterr().out.replace(str(tmp_path / "example.alat"), "/tmp/example.alat")
    assert printed == shown


def _command_lines() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            for part in line.split("#")[0].split("|"):
                words = shlex.split(part.split(">")[0])  # a redirection is the shell's
                if words[:1] == ["alat"]:
                    lines.append(words[1:])
    return lines


@pytest.mark.parametrize("argv", _command_lines(), ids=" ".join)
def test_every_command_line_of_the_readme_parses(argv: list[str]) -> None:
    command = cli.get_command(click.Context(cli), argv[0])
    assert command is not None, argv[0]
    command.make_context(argv[0], argv[1:])  # raises click.UsageError on an unknown option or a bad value
