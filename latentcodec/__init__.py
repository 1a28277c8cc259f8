"""latentcodec: audio stored as quantized VAE latents in chunked .alat files."""

__version__ = "0.1.0"
