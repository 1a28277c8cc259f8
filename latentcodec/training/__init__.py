"""Training the shipped networks: the VAE (``vae``) against the version-2 coder's rate stand-in
(``rate_proxy``), the vocoders (``vocoder``) and their discriminators (``discriminators``). Above every
other layer but the CLI; nothing at run time imports it."""
