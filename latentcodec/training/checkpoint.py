"""Training state on disk as data, never as code: the tensors in a safetensors file and everything else (step,
history, optimiser structure, random states) as JSON in that file's header, written whole or not at all.

Why: ``torch.save`` writes a pickle, and loading a pickle runs whatever it names; a checkpoint or cache in a
shared run folder is a file like any other. Checkpoints of releases before this one (``checkpoint.pt``) are
read with torch's restricted unpickler (``weights_only=True``: tensors, containers and plain values only) and
refused in one line when they hold anything else.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from latentcodec.errors import ModelError

CHECKPOINT = "checkpoint.safetensors"
LEGACY_CHECKPOINT = "checkpoint.pt"  # a pickle, written before checkpoints were safetensors
STATE_KEY = "latentcodec.state"  # the header metadata entry holding the JSON structure
LEGACY_TORCH = (2, 6)  # torch's restricted unpickler is trusted from this version (CVE-2025-32434 before)


def _encode(x: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``x`` as JSON: plain values as they are, containers tagged, each tensor moved into ``tensors``."""
    if isinstance(x, torch.Tensor):
        name = str(len(tensors))
        tensors[name] = x.detach().cpu().contiguous()
        return {"tensor": name}
    if isinstance(x, dict):
        return {"dict": [[k, _encode(v, tensors)] for k, v in x.items()]}
    if isinstance(x, (list, tuple)):
        return {type(x).__name__: [_encode(v, tensors) for v in x]}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"a checkpoint cannot hold a {type(x).__name__}")


def _decode(x: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_encode`; a tag it does not know is a ValueError."""
    if not isinstance(x, (dict, list)):
        return x
    if not isinstance(x, dict) or len(x) != 1:
        raise ValueError("not a tagged container")
    ((tag, body),) = x.items()
    if tag == "tensor":
        return tensors[body]
    if tag == "dict":
        return {_plain_key(k): _decode(v, tensors) for k, v in body}
    if tag in ("list", "tuple") and isinstance(body, list):
        items = [_decode(v, tensors) for v in body]
        return items if tag == "list" else tuple(items)
    raise ValueError(f"unknown tag {tag!r}")


def _plain_key(k: Any) -> str | int:
    if not isinstance(k, (str, int)) or isinstance(k, bool):
        raise ValueError("a dict key that is neither text nor an integer")
    return k


def save_state(state: dict, path: Path) -> None:
    """Write ``state`` (dicts, lists, tuples, tensors, plain values) to ``path`` atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    structure = json.dumps(_encode(state, tensors))
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={STATE_KEY: structure})
    tmp.replace(path)


def load_state(path: Path) -> dict:
    """The state :func:`save_state` wrote, on the CPU; a file that is not one is a one-line ModelError."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt", device="cpu") as f:
            structure = (f.metadata() or {}).get(STATE_KEY)
            if structure is None:
                raise ValueError("no training state in its header")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = _decode(json.loads(structure), tensors)
        if not isinstance(state, dict):
            raise ValueError("its state is not a mapping")
        return state
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise ModelError(
            f"{path}: not a training checkpoint of latentcodec, or damaged "
            f"({type(e).__name__}: {str(e)[:120]}): remove it to start the run again"
        ) from e


def load_legacy_state(path: Path) -> dict:
    """A pickled checkpoint of an earlier release, through torch's restricted unpickler only (nothing it
    names is imported or called); anything beyond tensors and plain values is refused in one line."""
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < LEGACY_TORCH:
        raise ModelError(
            f"{path}: an old pickled checkpoint, read only with torch 2.6 or later (this is "
            f"{torch.__version__}): upgrade torch to resume it, or remove it to start again"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        raise ModelError(
            f"{path}: an old pickled checkpoint holding more than tensors and plain values, not "
            f"loaded (a pickle can run code): remove it to start the run again"
        ) from e
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a training checkpoint (a pickled {type(state).__name__})")
    return state


def read_checkpoint(folder: Path) -> tuple[Path, dict] | None:
    """The run folder's checkpoint (this release's, else an earlier one's) and its state; None when none."""
    for name, load in ((CHECKPOINT, load_state), (LEGACY_CHECKPOINT, load_legacy_state)):
        if (folder / name).exists():
            return folder / name, load(folder / name)
    return None


@contextmanager
def restoring(path: Path) -> Iterator[None]:
    """Errors while putting the state of checkpoint ``path`` back into a run, as one line naming the file:
    its contents are the file's, not the code's, and may be of another run or damaged."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ModelError(
            f"{path}: its state does not fit this run ({type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:120]}): remove it to start the run again"
        ) from e
