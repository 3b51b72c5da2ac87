"""Every command lists the options it listed when the list in tests/golden/cli_options.json was committed: a
change to how the CLI declares its options must not change what a user can type."""

from __future__ import annotations

import json
from pathlib import Path

import typer.main

from vaegen.cli import app

GOLDEN = Path(__file__).resolve().parent / "golden" / "cli_options.json"


def options() -> dict[str, list[list[str]]]:
    """Each command's parameters in --help order: an option's flags, sorted, or an argument's name."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return {name: [sorted(p.opts + p.secondary_opts) if p.param_type_name == "option" else [str(p.name)]
                   for p in command.params]
            for name, command in group.commands.items()}


def test_every_command_lists_the_options_it_had() -> None:
    assert options() == json.loads(GOLDEN.read_text(encoding="utf-8"))
