"""``alat export``'s graphs (the VAE's and a magnitude network's) made from tiny models in-process, run on
onnxruntime against the torch models they were made from (needs ``pip install 'latentcodec[export]'``). The
graphs read their weights from the safetensors file of the model they run (ONNX external data, by name and
offset), hold no value of one model, and are stored once per weights layout, in DEST/graphs/LAYOUT/ only:
one graph runs every model of its layout, each with its own outputs, and weights of another layout are
refused."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
# slow: exports and runs graphs (minutes); the filter: torch.export's own deprecation notices
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

from latentcodec.errors import ModelError  # noqa: E402
from latentcodec.export import Made, vae_graphs, write_graphs  # noqa: E402
from latentcodec.models.loader import VAE_WEIGHTS, load_model  # noqa: E402
from latentcodec.runtime.onnx_vae import (  # noqa: E402
    DECODER,
    ENCODER,
    VAE_GRAPHS,
    LAYOUT_KEY,
    OnnxVae,
    graph_folder,
    has_graphs,
    session,
    weights_layout,
)
from latentcodec.runtime.torch_vae import decode_windows, encode_windows  # noqa: E402
from tests.conftest import save_tiny_vae  # noqa: E402


def save_random_vae(folder: Path, seed: int, latent_channels: int = 8) -> Path:
    """A tiny AutoencoderKL shaped like the shipped ones (16 channels or more: no tensor under 16 values but
    the biases of conv_out and post_quant_conv) with every tensor random, stored in float16 as they are.
    Why random: an untrained one's norms are all ones or all zeros, alike, so that a graph reads one of
    them for all, and its export is refused (``test_a_graph_that_would_hold_a_models_values_is_refused``)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=latent_channels,
                             block_out_channels=(16, 16, 16), layers_per_block=1, norm_num_groups=4,
                             down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(0.1 * torch.randn_like(p))
    vae.half().save_pretrained(folder)
    return folder


def _files(root: Path) -> dict[Path, str]:
    """Every file under ``root`` and a hash of its bytes."""
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Made]]:
    """Two tiny VAEs of one layout, other weights (``a``, ``b``), exported together into ``dest``: one
    encoder and the decoder in each runtime's form in dest/graphs/LAYOUT/, and nothing else written anywhere."""
    root = tmp_path_factory.mktemp("export")
    folders = [save_random_vae(root / name, seed) for name, seed in (("a", 3), ("b", 4))]
    assert weights_layout(folders[0] / VAE_WEIGHTS) == weights_layout(folders[1] / VAE_WEIGHTS)
    before = _files(root)
    made = [vae_graphs(str(f)) for f in folders]
    written = write_graphs(made, root / "dest")
    layout = graph_folder(folders[0] / VAE_WEIGHTS, root / "dest" / "graphs")
    assert written == [layout / name for name in VAE_GRAPHS]
    after = _files(root)
    assert {p: h for p, h in after.items() if p not in before} == {p.relative_to(root): after[p.relative_to(root)]
                                                                  for p in written}
    assert {p: after[p] for p in before} == before  # the models' folders untouched
    return root, made


def test_one_graph_gives_each_model_of_its_layout_its_own_outputs(exported: tuple[Path, list[Made]]) -> None:
    root, _ = exported
    mels = np.random.default_rng(0).normal(-4, 2, (3, 4 * 37, 64)).astype(np.float32)  # any length, any batch
    latents = {}
    for name in ("a", "b"):
        model = load_model(str(root / name), runtime="torch")
        graphs = OnnxVae(root / name, model.fingerprint, root / "dest" / "graphs")
        latents[name] = encode_windows(model.module, mels)
        np.testing.assert_allclose(graphs.encode(mels), latents[name], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(graphs.decode(latents[name]), decode_windows(model.module, latents[name]),
                                   rtol=1e-4, atol=1e-4)
    assert np.abs(latents["a"] - latents["b"]).max() > 0.1


def test_openvinos_decoder_form_computes_what_onnxruntimes_does(exported: tuple[Path, list[Made]]) -> None:
    """decoder-openvino.onnx interleaves the upsamplers' phases otherwise, on the same convolutions: in
    float32 on OpenVINO it gives onnxruntime's decoder.onnx to float rounding."""
    pytest.importorskip("openvino")
    from latentcodec.runtime.openvino_vae import OpenVinoVae

    root, _ = exported
    model = load_model(str(root / "a"), runtime="torch")
    latents = np.random.default_rng(1).normal(0, 1, (2, 8, 29, 16)).astype(np.float32)
    want = OnnxVae(root / "a", model.fingerprint, root / "dest" / "graphs").decode(latents)
    got = OpenVinoVae(root / "a", model.fingerprint, root / "dest" / "graphs").decode(latents, "float32")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_graph_is_refused_for_weights_of_another_layout(exported: tuple[Path, list[Made]], tmp_path: Path) -> None:
    """Refused before onnxruntime reads the graph, in one line; and weights of the graph's layout cut short
    are refused by onnxruntime, never read past their end."""
    root, _ = exported
    graphs = root / "dest" / "graphs"
    other = save_random_vae(tmp_path / "other", seed=5, latent_channels=4)
    assert has_graphs(root / "a", graphs) and not has_graphs(other, graphs) and not has_graphs(tmp_path, graphs)
    with pytest.raises(ModelError, match="made for weights of another layout") as e:
        session(graph_folder(root / "a" / VAE_WEIGHTS, graphs) / ENCODER, other / VAE_WEIGHTS)
    assert "\n" not in str(e.value) and "--" not in str(e.value)
    raw = (root / "a" / VAE_WEIGHTS).read_bytes()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / VAE_WEIGHTS).write_bytes(raw[:8 + int.from_bytes(raw[:8], "little") + 100])
    assert weights_layout(tmp_path / "cut" / VAE_WEIGHTS) == weights_layout(root / "a" / VAE_WEIGHTS)
    with pytest.raises(ModelError, match="cannot load the graph"):
        session(graph_folder(root / "a" / VAE_WEIGHTS, graphs) / DECODER, tmp_path / "cut" / VAE_WEIGHTS)


def test_models_of_one_layout_with_other_graphs_are_refused(exported: tuple[Path, list[Made]], tmp_path: Path) -> None:
    """Two models of one layout must give the same graph bytes (else one model's value is in a graph):
    refused, and nothing written."""
    _, made = exported
    changed = copy.deepcopy(made[1].graphs[DECODER])
    changed.doc_string = "held"
    with pytest.raises(RuntimeError, match="share the weights layout"):
        write_graphs([made[0], replace(made[1], graphs={**made[1].graphs, DECODER: changed})], tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_graph_that_would_hold_a_models_values_is_refused(tmp_path: Path) -> None:
    """An untrained VAE's norms are alike (ones, zeros): its graphs would read one of each for all, and run
    no other model of the layout right. Every tensor of the weights must be read."""
    folder = save_tiny_vae(tmp_path / "untrained", seed=3)
    with pytest.raises(RuntimeError, match="do not read"):
        write_graphs([vae_graphs(str(folder))], tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_the_graphs_hold_no_copy_of_the_weights(exported: tuple[Path, list[Made]]) -> None:
    """Every tensor of the safetensors file is read from it, at its own bytes, by name and offset only; no
    initializer the graphs hold is one of them (but those under 16 values, left as the exporter made them),
    what they hold (the exporter's constants) is a few kB, and their metadata is the layout alone."""
    import onnx
    from onnx import numpy_helper

    from latentcodec.export import inside_bytes, stored_tensors

    root, _ = exported
    weights = root / "a" / VAE_WEIGHTS
    stored = {s.offset: s for s in stored_tensors(weights)}
    values = {s.values.astype(np.float32).tobytes() for s in stored.values()}
    read = set()
    for name in VAE_GRAPHS:
        g = onnx.load(str(graph_folder(weights, root / "dest" / "graphs") / name), load_external_data=False)
        assert {p.key: p.value for p in g.metadata_props} == {LAYOUT_KEY: weights_layout(weights)}
        for init in g.graph.initializer:
            if init.data_location == onnx.TensorProto.EXTERNAL:
                where = {e.key: e.value for e in init.external_data}
                s = stored[int(where["offset"])]
                assert where == {"location": VAE_WEIGHTS, "offset": str(s.offset), "length": str(s.values.nbytes)}
                read.add(s.offset)
            elif np.prod(init.dims) >= 16:
                assert numpy_helper.to_array(init).astype(np.float32).tobytes() not in values, init.name
        assert inside_bytes(g) < 8000 < weights.stat().st_size / 10
    assert read == set(stored)


@pytest.mark.parametrize("how", ["stored", "transposed", "tiled", "phases"])
def test_the_graph_makes_each_weight_of_the_stored_bytes_bit_for_bit(how: str, tmp_path: Path) -> None:
    """What the exporter had, from float16 bytes at an odd offset of a file: cast, transposed, repeated 4 times
    (an upsampler's bias, one per phase) or summed into the upsampler's phase kernels in the order
    ``upsample.phase_kernels`` adds them."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from latentcodec.export import Stored, phase_sums, stored_weight
    from latentcodec.runtime.upsample import phase_kernels

    torch.manual_seed(0)
    w = torch.randn({"phases": (6, 3, 3, 3), "tiled": (6,)}.get(how, (6, 5))).half()
    made = {"phases": lambda f: phase_kernels(f), "transposed": lambda f: f.T, "tiled": lambda f: f.repeat(4)}
    want = made.get(how, lambda f: f)(w.float()).numpy()
    if how == "phases":
        assert phase_sums(w.float().numpy()).tobytes() == want.tobytes()
    (tmp_path / "w.bin").write_bytes(b"x" + w.numpy().tobytes())
    inits, nodes = stored_weight("w", list(want.shape), Stored("w", 1, w.numpy()), how, "w.bin")
    out = helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, want.shape)
    graph = helper.make_model(helper.make_graph(nodes, "w", [], [out], inits), ir_version=10,
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(graph, str(tmp_path / "w.onnx"))
    got = ort.InferenceSession(str(tmp_path / "w.onnx"), providers=["CPUExecutionProvider"]).run(None, {})[0]
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def test_the_shipped_graphs_are_stored_once_per_weights_layout() -> None:
    """One folder of graphs per layout of the shipped weights, and nothing else in weights/graphs; the models'
    folders hold no graph; each graph records its layout and reads only the weights file's name."""
    import onnx

    from latentcodec.export import inside_bytes
    from latentcodec.models.registry import shipped_models
    from latentcodec.runtime.onnx_vae import GRAPHS, MAGNITUDE
    from latentcodec.vocoders.magnitude_net import has_graph
    from latentcodec.vocoders.nets import NET_WEIGHTS
    from latentcodec.vocoders.registry import shipped_vocoders

    nets = [f for f in shipped_vocoders().values() if (f / NET_WEIGHTS).is_file()]
    assert len(shipped_models()) >= 4 and len(nets) >= 4 and all(map(has_graph, nets))
    graphs = {graph_folder(f / VAE_WEIGHTS) / g: f / VAE_WEIGHTS for f in shipped_models().values()
              for g in VAE_GRAPHS}
    graphs.update({graph_folder(f / NET_WEIGHTS) / MAGNITUDE: f / NET_WEIGHTS for f in nets})
    assert sorted(graphs) == sorted(p for p in GRAPHS.rglob("*") if p.is_file()) and len(graphs) == 4
    assert not [p for f in [*shipped_models().values(), *shipped_vocoders().values()] for p in f.glob("*.onnx")]
    for path, weights in graphs.items():
        g = onnx.load(str(path), load_external_data=False)
        files = {e.value for i in g.graph.initializer for e in i.external_data if e.key == "location"}
        assert files == {weights.name} and inside_bytes(g) < 16000, path
        assert {p.key: p.value for p in g.metadata_props} == {LAYOUT_KEY: weights_layout(weights)}


def test_a_magnitude_network_exported_runs_as_torch_does(tmp_path: Path) -> None:
    from latentcodec.export import export_magnitude_net
    from latentcodec.runtime.onnx_vae import MAGNITUDE
    from latentcodec.vocoders.magnitude_net import graph_magnitude, has_graph
    from latentcodec.vocoders.nets import NET_WEIGHTS, MagnitudeNet, NetConfig, save_net

    torch.manual_seed(0)
    net = MagnitudeNet(NetConfig(n_fft=1024, dim=16, intermediate=32, layers=1)).eval()
    with torch.no_grad():  # every tensor its own values (the norms start alike): see save_random_vae
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_net(net, tmp_path / "mag")
    before = _files(tmp_path / "mag")
    graph = graph_folder(tmp_path / "mag" / NET_WEIGHTS, tmp_path / "out" / "graphs") / MAGNITUDE
    assert export_magnitude_net(tmp_path / "mag", tmp_path / "out") == graph
    assert _files(tmp_path / "mag") == before and [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == [graph]
    assert has_graph(tmp_path / "mag", tmp_path / "out" / "graphs") and not has_graph(tmp_path / "mag")
    mel = np.random.default_rng(1).normal(-4, 2, (123, 64)).astype(np.float32)
    with torch.inference_mode():
        want = net(torch.from_numpy(mel)[None])[0].numpy()
    got = graph_magnitude(tmp_path / "mag", nnls_iters=0, graphs=tmp_path / "out" / "graphs")(mel)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
