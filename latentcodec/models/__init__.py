"""The models: which ones the package ships (``registry``), loading any diffusers ``AutoencoderKL`` and its
fingerprint onto a runtime (``loader``), checking a folder before anything is built (``checked``) and a
model's coder table (``coder_table``). How a loaded model runs is ``runtime``'s."""
