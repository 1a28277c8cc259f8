"""``alat export``'s graphs (the VAE's and a magnitude network's) made from tiny models in-process, run on onnxruntime against the torch models
they were made from (needs ``pip install 'latentcodec[export]'``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.export's own deprecation notices

from latentcodec.errors import ModelError  # noqa: E402
from latentcodec.export import export_vae  # noqa: E402
from latentcodec.runtime.onnx_vae import DECODER, ENCODER, OnnxVae, session, weights_fingerprint  # noqa: E402
from latentcodec.models.loader import WEIGHTS_FILE, load_model  # noqa: E402
from latentcodec.runtime.torch_vae import decode_windows, encode_windows  # noqa: E402
from tests.conftest import save_tiny_vae  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VAE's folder with its graphs."""
    folder = save_tiny_vae(tmp_path_factory.mktemp("export") / "tiny", seed=3)
    assert export_vae(str(folder)) == [folder / ENCODER, folder / DECODER]
    return folder


def test_a_vae_exported_runs_as_torch_does(exported: Path) -> None:
    folder = exported
    model = load_model(str(folder), runtime="torch")
    assert weights_fingerprint(folder / WEIGHTS_FILE) == model.fingerprint
    graphs = OnnxVae(folder, model.fingerprint)
    mels = np.random.default_rng(0).normal(-4, 2, (3, 4 * 37, 64)).astype(np.float32)  # any length, any batch
    latents = encode_windows(model.vae, mels)
    np.testing.assert_allclose(graphs.encode(mels), latents, atol=1e-4)
    np.testing.assert_allclose(graphs.decode(latents), decode_windows(model.vae, latents), atol=1e-4)


def test_a_graph_of_other_weights_is_refused(exported: Path, tmp_path: Path) -> None:
    other = save_tiny_vae(tmp_path / "other", seed=4)
    with pytest.raises(ModelError, match="made from other weights"):
        session(exported / ENCODER, weights_fingerprint(other / WEIGHTS_FILE))


def test_a_magnitude_network_exported_runs_as_torch_does(tmp_path: Path) -> None:
    from latentcodec.export import export_magnitude_net
    from latentcodec.vocoders.magnitude_net import MagnitudeNet
    from latentcodec.vocoders.nets import save_net
    from latentcodec.vocoders.onnx_vocoder import net_magnitude
    from latentcodec.vocoders.vocos import VocosConfig

    torch.manual_seed(0)
    net = MagnitudeNet(VocosConfig(n_fft=1024, dim=16, intermediate=32, layers=1)).eval()
    save_net(net, tmp_path / "mag")
    export_magnitude_net(tmp_path / "mag")
    mel = np.random.default_rng(1).normal(-4, 2, (123, 64)).astype(np.float32)
    with torch.inference_mode():
        want = net(torch.from_numpy(mel)[None])[0].numpy()
    np.testing.assert_allclose(net_magnitude(tmp_path / "mag", nnls_iters=0)(mel), want, rtol=1e-4, atol=1e-6)
