"""The `alat` command group, which every command module adds its commands to."""

from __future__ import annotations

import click

from latentcodec import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="latentcodec", message="%(prog)s %(version)s")
def cli() -> None:
    """Audio as quantized VAE latents in .alat files."""
