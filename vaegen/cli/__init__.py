"""The `vaegen` command: parse, call the library, print.

Results (sentences) go to stdout; progress, notes and errors go to stderr. A user error raised by
the library (`VaegenError`) or a bad option ends as one `error: ...` line and a non-zero exit code,
never a traceback. The commands live by role in `training`, `generation` and `reporting`, their
shared options in `options`; torch is imported inside the commands, so `vaegen --help` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from vaegen.cli import generation, mapping, reporting, serving, training
from vaegen.core.errors import VaegenError

app = typer.Typer(
    name="vaegen",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def overview(ctx: typer.Context) -> None:
    """Train a sentence variational autoencoder on any corpus (one example per line) and generate from it."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


# In the order `vaegen --help` lists them
COMMANDS: dict[str, Callable[..., None]] = {
    "train": training.train, "sample": generation.sample, "reconstruct": generation.reconstruct,
    "encode": generation.encode, "interpolate": generation.interpolate, "complete": generation.complete,
    "eval": reporting.evaluate, "tunes": reporting.tunes, "models": reporting.models, "export": training.export, "plot": reporting.plot,
    "map": mapping.make_map, "serve": serving.serve,
}
for name, command in COMMANDS.items():
    app.command(name)(command)


def run(argv: list[str]) -> int:
    """Run the CLI on argv and return the exit code, turning user errors into one line on stderr."""
    try:
        code = app(args=argv, prog_name="vaegen", standalone_mode=False)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `vaegen {ctx.info_name} --help`)" if ctx is not None and ctx.info_name != "vaegen" else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        return exc.exit_code
    except VaegenError as exc:
        typer.echo(f"{exc.prefix}{exc}", err=True)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    """The console script `vaegen`."""
    sys.exit(run(sys.argv[1:]))
