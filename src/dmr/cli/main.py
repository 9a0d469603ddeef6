"""Entry point of the ``dmr`` command. Exit codes: 0 ok, 1 error, 2 usage error."""

from __future__ import annotations

import sys

import click

from dmr.cli._common import echo_json
from dmr.errors import DmrError


class _Group(click.Group):
    """Turns dmr's own errors into one clean line (JSON after ``--json``) and exit code 1 (usage errors
    stay 2)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DmrError as exc:
            if ctx.meta.get("dmr.json"):  # the command was given --json (dmr.cli._common.json_option)
                echo_json({"error": str(exc)})
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """dmr — route each LLM task to the cheapest model that will do it well."""


def _register_commands() -> None:
    # Imported here so that each command module stays independent and `dmr --help` lists them all.
    from dmr.cli import classify, llm, misc, ml, models, serve, stats  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="dmr")


_register_commands()
