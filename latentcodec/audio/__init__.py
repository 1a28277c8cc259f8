"""Audio in and out: reading and writing sound files and pipes at 16 kHz (``io``) and the AudioLDM log-mel
front end (``mel``). The lowest layer above the package's errors and constants: numpy, soundfile, soxr."""
