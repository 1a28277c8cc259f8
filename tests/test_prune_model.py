"""recipes/prune_model.py: a narrower VAE whose every tensor comes from the wide one, refitted so that it
decodes closer to the wide model than the sliced weights alone."""
from __future__ import annotations

import pytest
import importlib.util
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from latentcodec.models.loader import SMALL_VAE_CONFIG

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

_SPEC = importlib.util.spec_from_file_location("prune_model", Path(__file__).parents[1] / "recipes" / "prune_model.py")
prune_model = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prune_model)


def test_prune_keeps_weights_and_refit_brings_the_output_closer(tmp_path, make_wav) -> None:
    for i, seconds in enumerate((3.0, 4.0, 5.0)):
        make_wav(f"{i}.wav", seconds)
    torch.manual_seed(0)
    wide = AutoencoderKL(**SMALL_VAE_CONFIG).eval()
    narrow, kept = prune_model.prune(wide, [16, 64, 128])
    assert list(narrow.config.block_out_channels) == [16, 64, 128]
    assert all(len(kept[h]) == 16 and kept[h] == sorted(set(kept[h])) for h in ("encoder", "decoder"))
    w, n = wide.state_dict(), narrow.state_dict()
    same = [k for k in n if n[k].shape == w[k].shape]
    assert same and all(torch.equal(n[k], w[k]) for k in same)  # untouched layers are the wide ones
    k = "decoder.conv_out.weight"  # sliced on its input channels
    assert torch.equal(n[k], w[k][:, kept["decoder"]])

    x = prune_model.calibration_crops(tmp_path, 3, 192)
    assert x.shape == (3, 1, 192, 64)
    with torch.no_grad():
        z = wide.encode(x).latent_dist.mode()
        target = wide.decode(z).sample

    def error() -> float:
        with torch.no_grad():
            return (narrow.eval().decode(z).sample - target).abs().mean().item()

    sliced = error()
    prune_model.refit(wide, narrow, kept, x)
    assert error() < 0.75 * sliced  # measured: 0.139 against 0.214
    changed = prune_model.changed_layers(wide, narrow)
    untouched = [k for k in n if k.rsplit(".", 1)[0] not in changed]
    assert changed and all(torch.equal(narrow.state_dict()[k], w[k]) for k in untouched)

    before = {k: v.clone() for k, v in narrow.state_dict().items()}
    history = prune_model.distill(wide, narrow, x, steps=2, batch=2, log=lambda _: None)
    after = narrow.state_dict()
    assert [h["step"] for h in history] == [2]
    assert all(torch.equal(after[k], w[k]) for k in untouched)  # distillation trains the changed layers only
    assert not torch.equal(after["decoder.conv_out.weight"], before["decoder.conv_out.weight"])
