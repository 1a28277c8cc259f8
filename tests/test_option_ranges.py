"""Every number option of every `alat` command, found by walking the click commands, given nan, inf, -inf, -1,
0, 1e308 and a 400-digit value: each run ends normally or in one line `alat: error: ...` with exit 1 or 2, never a
traceback. Inputs are tiny and the models the tiny ones of conftest; the training commands get a data folder
that does not exist, so that a value their options take ends at once in that folder's one-line error."""
from __future__ import annotations

from pathlib import Path

import click
import pytest

from latentcodec.cli import cli
from latentcodec.cli.options import ByteSize, SampleRate
from tests.test_cli import run

VALUES = ["nan", "inf", "-inf", "-1", "0", "1e308", "9" * 400]
NUMBER_TYPES = (click.types.IntParamType, click.types.FloatParamType, ByteSize, SampleRate)


def number_options() -> list[tuple[str, str]]:
    return [(name, p.opts[0]) for name, cmd in sorted(cli.commands.items()) for p in cmd.params
            if isinstance(p, click.Option) and isinstance(p.type, NUMBER_TYPES)]


def test_the_walk_finds_the_options_it_is_for() -> None:
    found = set(number_options())
    assert {("encode", "--shard-size"), ("decode", "--start"), ("decode", "--duration"), ("decode", "--sample-rate"),
            ("encode", "--chunk-seconds"), ("eval", "--quality"), ("train", "--seed")} <= found
    assert {cmd for cmd, _ in found} >= {"encode", "decode", "eval", "train", "train-vocoder", "calibrate"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, list[str]]:
    """Each command's arguments besides the option tried: a run that is short when the value is taken."""
    import soundfile as sf

    from latentcodec.cli import main
    from tests.conftest import tone

    d = tmp_path_factory.mktemp("ranges")
    sf.write(str(d / "x.wav"), tone(0.3, 16000, 1), 16000)
    assert main(["encode", str(d / "x.wav"), str(d / "x.alat"), "--model", tiny_model, "-q"]) == 0
    m, missing = ["--model", tiny_model], str(d / "no-such-folder")
    return {"encode": [str(d / "x.wav"), str(d / "y.alat"), "-y", *m],
            "decode": [str(d / "x.alat"), str(d / "y.wav"), "-y", *m],
            "eval": [str(d / "x.wav"), *m],
            "train": [missing, str(d / "run")], "train-vocoder": [missing, str(d / "voc")],
            "calibrate": [missing, missing]}


@pytest.mark.parametrize("command,option", number_options())
def test_every_value_ends_in_a_run_or_one_line(capsys, inputs, command: str, option: str) -> None:
    fast = ["--gl-iters", "2"] if command in ("decode", "eval") and option != "--gl-iters" else []
    for value in VALUES:
        code, out, err = run(capsys, command, *inputs[command], *fast, option, value)
        assert "Traceback" not in err, (option, value, err)
        if code == 0:
            continue
        lines = [line for line in err.splitlines() if line.startswith("alat: ")]
        assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("alat: error: "), (option, value, code, err)
        assert err.rstrip().endswith(lines[0]), (option, value, err)  # a usage line may come before, nothing after
        if code == 2:
            assert option in lines[0] or "Invalid value" in lines[0], (option, value, err)


def test_the_values_that_overflowed(capsys, inputs) -> None:
    """The values that ended in OverflowError: a 400-digit --shard-size, --start and --duration of 1e308."""
    folder = str(Path(inputs["encode"][0]).parent)
    code, _, err = run(capsys, "encode", folder, folder + "/out", "--shard-size", "9" * 400, *inputs["encode"][3:])
    assert code == 2 and err.rstrip().endswith(f"'--shard-size': '{'9' * 400}': give 1 byte to 1 TiB")
    code, _, err = run(capsys, "decode", *inputs["decode"], "--start", "1e308")
    assert code == 1 and err == "alat: error: --start: a start at 1e+308 s is outside the file (0 to 0.300 s)\n"
    code, out, _ = run(capsys, "decode", *inputs["decode"], "--duration", "1e308", "--gl-iters", "2")
    assert code == 0 and "0.30 s x 1 ch at 16000 Hz (4800 frames)" in out
