"""What runs a VAE: onnxruntime (``onnx_vae``) or torch (``torch_vae``), behind one interface (``base``)."""
