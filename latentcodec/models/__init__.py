"""The VAEs: which ones the package ships (``registry``), loading any diffusers ``AutoencoderKL`` and its
fingerprint (``loader``), and how they run on a CPU: the sub-pixel upsamplers (``upsample``), the encoder's
arithmetic (``precision``) and work split over cores (``cores``)."""
