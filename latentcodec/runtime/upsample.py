"""The VAE decoder's upsamplers (nearest 2x, then a 3x3 convolution) computed on the low-resolution input:
the same function with 2.25x fewer multiply-adds. Why: the two upsampler convolutions were a quarter of
the decoder's time (latentcodec-small-v2, one core, 2 windows: 104 of 422 ms), and most of what they
multiply is a pixel repeated four times.

After a nearest 2x upsampling, output row 2i reads input rows i-1, i, i (kernel rows 0 | 1+2) and row 2i+1
reads rows i, i, i+1 (kernel rows 0+1 | 2), and likewise for columns; zero padding of the upsampled image
is zero padding of the input. So each of the four output phases is a 2x2 convolution of the input padded
by one, and the four are one convolution with four times the output channels. diffusers has no such
option; the weights are derived from the trained ones, so every model and file is unchanged (outputs
agree to float rounding, tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_TAPS = ((0, 1, 1), (0, 0, 1))  # for output phase a: which of the 2 input taps each kernel row lands on


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """(Co, Ci, 3, 3) kernel -> (4 Co, Ci, 2, 2): output channel (2a + b) Co + c is phase (a, b) of channel c."""
    co, ci = weight.shape[:2]
    out = weight.new_zeros(2, 2, co, ci, 2, 2)
    for a in range(2):
        for b in range(2):
            for r in range(3):
                for s in range(3):
                    out[a, b, :, :, _TAPS[a][r], _TAPS[b][s]] += weight[:, :, r, s]
    return out.reshape(4 * co, ci, 2, 2)


class SubpixelUpsample(torch.nn.Module):
    """Drop-in for a diffusers ``Upsample2D`` (interpolate + 3x3 conv, no norm): (N, C, H, W) -> (N, Co, 2H, 2W)."""

    weight: torch.Tensor  # registered buffers (torch types module attributes as Tensor | Module)
    bias: torch.Tensor

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.out_channels = conv.out_channels
        self.conv = conv  # kept, so that the VAE's state_dict has the keys and tensors diffusers saves
        assert conv.bias is not None, "the upsampler's convolution has a bias (use_subpixel_upsamplers checks)"
        kernels = phase_kernels(conv.weight.detach()).contiguous(memory_format=torch.channels_last)
        self.register_buffer("weight", kernels, persistent=False)
        self.register_buffer("bias", conv.bias.detach().repeat(4), persistent=False)

    def forward(self, x: torch.Tensor, output_size: object = None) -> torch.Tensor:
        """In channels-last memory throughout: one pass of copies interleaves the four phases."""
        n, _, h, w = x.shape
        co = self.out_channels
        y = F.conv2d(x, self.weight, self.bias, padding=1)  # (N, 4 Co, H + 1, W + 1)
        y = y.permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, co)  # a view when y is channels-last
        out = y.new_empty(n, h, 2, w, 2, co)  # rows 2i + a, columns 2j + b, channels last
        for a in range(2):
            for b in range(2):
                out[:, :, a, :, b] = y[:, a : a + h, b : b + w, a, b]
        return out.view(n, 2 * h, 2 * w, co).permute(0, 3, 1, 2)


def use_subpixel_upsamplers(vae: torch.nn.Module) -> None:
    """Replace, in place, each upsampler of ``vae``'s decoder that is a plain nearest-2x + 3x3 conv."""
    for block in _up_blocks(vae):
        ups = getattr(block, "upsamplers", None) or []
        for i, up in enumerate(ups):
            conv = getattr(up, "conv", None)
            if (
                getattr(up, "interpolate", False)
                and getattr(up, "use_conv", False)
                and not up.use_conv_transpose
                and up.norm is None
                and isinstance(conv, torch.nn.Conv2d)
                and conv.kernel_size == (3, 3)
                and conv.stride == (1, 1)
                and conv.padding == (1, 1)
                and conv.dilation == (1, 1)
                and conv.groups == 1
                and conv.bias is not None
            ):
                ups[i] = SubpixelUpsample(conv)


def _up_blocks(vae: torch.nn.Module) -> torch.nn.ModuleList:
    """``vae.decoder.up_blocks`` (diffusers' ``Decoder``), typed."""
    blocks = vae.get_submodule("decoder.up_blocks")
    assert isinstance(blocks, torch.nn.ModuleList), "a diffusers decoder's up_blocks is a ModuleList"
    return blocks


class StackedSubpixelUpsample(SubpixelUpsample):
    """The same upsampler with its four phases interleaved by stacking and reshaping: slower in torch than
    the copies above, but what onnxruntime runs fast (the copies become ScatterElements in a graph)."""

    def forward(self, x: torch.Tensor, output_size: object = None) -> torch.Tensor:
        n, _, h, w = x.shape
        co = self.out_channels
        y = F.conv2d(x, self.weight, self.bias, padding=1)  # (N, 4 Co, H + 1, W + 1)
        rows = [
            torch.stack(
                [y[:, (2 * a + b) * co : (2 * a + b + 1) * co, a : a + h, b : b + w] for b in range(2)], -1
            ).reshape(n, co, h, 2 * w)
            for a in range(2)
        ]
        return torch.stack(rows, 3).reshape(n, co, 2 * h, 2 * w)


class ShuffledSubpixelUpsample(SubpixelUpsample):
    """The same upsampler with its four phases interleaved by a pixel shuffle (ONNX DepthToSpace): what
    OpenVINO runs fast. Why not one form for both: OpenVINO runs the stacking on the last axis as a
    reference-code Concat (the bfloat16 decoder, 1 thread, 2 windows: 117 -> 99 ms a window shuffled), and
    onnxruntime runs the shuffle 3-9 % slower than the stacking."""

    def forward(self, x: torch.Tensor, output_size: object = None) -> torch.Tensor:
        n, _, h, w = x.shape
        co = self.out_channels
        y = F.conv2d(x, self.weight, self.bias, padding=1)  # (N, 4 Co, H + 1, W + 1)
        phases = [y[:, p * co : (p + 1) * co, p // 2 : p // 2 + h, p % 2 : p % 2 + w] for p in range(4)]
        return F.pixel_shuffle(torch.stack(phases, 2).reshape(n, 4 * co, h, w), 2)  # channel 4 c + 2 a + b


def export_form(vae: torch.nn.Module, form: type[SubpixelUpsample]) -> None:
    """Turn, in place, each sub-pixel upsampler of ``vae``'s decoder into ``form`` (for export)."""
    for block in _up_blocks(vae):
        for up in getattr(block, "upsamplers", None) or []:
            if isinstance(up, SubpixelUpsample):
                up.__class__ = form
