"""The options of the API, the CLI and the pipeline cannot drift apart (soundfile keeps its wrappers in step
the same way): each is a field of ``options.EncodeOptions`` or ``options.DecodeOptions``, under the same
name, with the same default, and the pipeline takes the options object, never the fields one by one."""
from __future__ import annotations

import inspect

import click
import numpy as np
import pytest

import latentcodec
from latentcodec import codec, evaluate
from latentcodec.cli.group import cli
from latentcodec.options import DecodeOptions, EncodeOptions, defaults, option_names

CALL_KEYWORDS = {"overwrite", "progress", "timings", "mel_sink"}  # how a call runs, not what it makes


def keyword_defaults(f) -> dict:
    return {p.name: p.default for p in inspect.signature(f).parameters.values() if p.kind == p.KEYWORD_ONLY}


def click_defaults(name: str) -> dict:
    """What the command's function is given when no option is: its parsed parameters."""
    command = cli.commands[name]
    args = ["in", "out"][:sum(isinstance(p, click.Argument) for p in command.params)]
    return command.make_context(name, args).params


def test_the_api_takes_the_options_object_or_its_fields(tmp_path, tiny_model) -> None:
    """``encode``/``decode`` take an options object, and any of its fields by keyword (overriding it)."""
    for f, kind in ((latentcodec.encode, EncodeOptions), (latentcodec.decode, DecodeOptions)):
        params = inspect.signature(f).parameters
        assert params["options"].default is None and params["opts"].kind == params["opts"].VAR_KEYWORD
        assert not set(params) & set(option_names(kind)) - {"salvage"}  # decode's third, as soundfile's habit
    assert inspect.signature(latentcodec.decode).parameters["salvage"].default == DecodeOptions.salvage
    x = np.zeros(1600, np.float32)
    latentcodec.encode(x, 16000, tmp_path / "a.alat", EncodeOptions(model=tiny_model, bits=8), bits=4)
    latentcodec.encode(x, 16000, tmp_path / "b.alat", model=tiny_model, bits=4)
    with latentcodec.open(tmp_path / "a.alat") as a, latentcodec.open(tmp_path / "b.alat") as b:
        assert a.header.bits == b.header.bits == 4
    y, rate = latentcodec.decode(tmp_path / "a.alat", options=DecodeOptions(model=tiny_model, gl_iters=1),
                                 sample_rate=8000)
    assert rate == 8000 and y.shape == (800,)


@pytest.mark.parametrize("command,kind", [("encode", EncodeOptions), ("decode", DecodeOptions)])
def test_the_cli_takes_every_option_with_its_default(command: str, kind: type) -> None:
    given = click_defaults(command)
    assert set(option_names(kind)) <= set(given), f"alat {command} lacks {set(option_names(kind)) - set(given)}"
    assert {k: given[k] for k in option_names(kind)} == defaults(kind)


def test_eval_takes_what_a_round_trip_can_use() -> None:
    """`alat eval` codes whole files of its own: no span, no other rate, nothing to salvage or force."""
    given = click_defaults("eval")
    per_file = {"start", "duration", "sample_rate", "salvage", "force"}
    wanted = (set(option_names(EncodeOptions)) | set(option_names(DecodeOptions))) - per_file
    assert wanted <= set(given), f"alat eval lacks {wanted - set(given)}"
    assert all(given[k] == v for kind in (EncodeOptions, DecodeOptions) for k, v in defaults(kind).items()
               if k in wanted)


@pytest.mark.parametrize("f,kind", [(codec.encode_audio, EncodeOptions), (codec.encode_file, EncodeOptions),
                                    (codec.decode_file, DecodeOptions), (codec.decode_blocks, DecodeOptions),
                                    (codec.decoded_mel, DecodeOptions)])
def test_the_pipeline_takes_the_options_object(f, kind: type) -> None:
    params = inspect.signature(f).parameters
    assert params["options"].default == kind()
    assert not set(params) & set(option_names(kind)), f"{f.__name__} takes options one by one"
    assert set(keyword_defaults(f)) <= CALL_KEYWORDS


def test_evaluation_takes_both_objects() -> None:
    for f in (evaluate.round_trip, evaluate.evaluate, evaluate.evaluate_folder):
        params = inspect.signature(f).parameters
        assert {"encode", "decode"} <= set(params)
        assert not set(params) & (set(option_names(EncodeOptions)) | set(option_names(DecodeOptions)))


def test_an_option_misspelt_fails_where_it_is_given() -> None:
    with pytest.raises(TypeError):
        EncodeOptions(qualty=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        latentcodec.encode("x.wav", "x.alat", qualty=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        EncodeOptions(None)  # type: ignore[misc]  # keyword-only
