"""The `alat` command line (click): parses, calls the library, prints. Errors a user can cause end in one
line on stderr, ``alat: error: ...``, and exit status 1 (2 for bad usage, 130 when interrupted; 141, silently, when the
reader of stdout goes away, as for a tool killed by SIGPIPE).

Only click and the standard library are imported at start-up; each command imports what it needs, so
``alat --help`` and ``alat info`` never load torch. Shell completion: ``eval "$(_ALAT_COMPLETE=bash_source alat)"``.
The commands live in ``coding`` (encode, decode, info, models, eval) and ``training``; ``options`` holds what
they share.
"""

from __future__ import annotations

import sys

import click

from latentcodec.cli import coding, training  # noqa: F401 (they add their commands to the group)
from latentcodec.cli.group import cli
from latentcodec.cli.options import SIGPIPE_STATUS, error_text, mute_stdout, shown
from latentcodec.errors import LatentCodecError


def main(argv: list[str] | None = None) -> int:
    """Run `alat` with ``argv`` (default: the process's arguments); returns the exit status. Every message
    goes through :func:`shown`: names in it (a shard's members, files, arguments) cannot forge lines."""
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")  # file names print as the bytes they are
    try:
        rv = cli.main(args=argv, prog_name="alat", standalone_mode=False)
    except click.UsageError as e:
        if e.ctx is not None:
            click.echo(e.ctx.get_usage(), err=True)
        click.echo(f"alat: error: {shown(e.format_message())}", err=True)
        return 2
    except LatentCodecError as e:
        click.echo(f"alat: error: {shown(error_text(e))}", err=True)
        return 1
    except click.Abort:
        click.echo("alat: interrupted", err=True)
        return 130
    except BrokenPipeError:  # `alat -h | head -1`: click's own output, to a reader that went away
        mute_stdout()
        return SIGPIPE_STATUS
    except OSError as e:  # what the OS refused outside the library's calls: click's --help or --version output
        click.echo(f"alat: error: {shown(os_error_text(e))}", err=True)
        return 1
    return rv if isinstance(rv, int) else 0


def os_error_text(e: OSError) -> str:
    """The file an OSError names; one that names none came from a stream: click writes only to stdout."""
    if e.filename is None:
        return f"<stdout>: cannot write ({e.strerror or e})"
    return f"{e.filename}: {e.strerror or e}"


if __name__ == "__main__":
    sys.exit(main())
