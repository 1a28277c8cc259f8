"""The vocoders: log-mel -> samples. ``registry`` resolves a name into one; each kind is a module of its own."""
