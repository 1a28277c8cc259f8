"""Numbers more than one module needs, defined once. Plain Python: the CLI imports this at start-up
without loading numpy or torch."""

import math

SAMPLE_RATE = 16000  # the rate the mel front end, the VAE and every vocoder work at
LOG_FLOOR = 1e-5  # the mel front end's clamp before the log (-100 dB); also the floor of magnitude losses
DB_PER_NEPER = 20.0 / math.log(10.0)  # a difference of natural-log magnitudes, in dB

BITS = (16, 8, 6, 5, 4, 3, 2)  # the version-1 quantizer's bits per latent value
DEFAULT_ZSTD = 19  # ~2 ms per 5 s chunk; saves a quarter of the 4-bit bytes on the dev clips, at no quality cost
DEFAULT_QUALITY = 4.0  # the version-2 coder's quality when none is given (step 0.4)
QUALITY_RANGE = (-4.0, 12.0)  # steps 6.4 .. 0.025
MIN_KBPS, MAX_KBPS = 0.5, 64.0
OUTPUT_RATES = (1000, 384000)  # Hz: what decoding resamples to

DEFAULT_GL_ITERS = 16  # on the dev clips 32 iterations gave the same log-mel L1 (+-0.01 dB) at 1.2x the decode time
PRECISIONS = ("auto", "float32", "bfloat16")  # the encoder's arithmetic (precision.py)
RUNTIMES = ("auto", "openvino", "onnx", "torch")  # what runs the VAE and the vocoder (models/loader.choose_runtime)
OWN_DECODER = "own"  # names, where a decoder is asked for, the decoder shipped with the model that wrote a file
GRAPH_RUNTIMES = ("openvino", "onnx")  # those that run the shipped ONNX graphs, without torch
