"""The ``.alat`` file format of ``spec/alat-format.md``: the container (``container``), the version-1
quantizer (``quantize``), the version-2 transform coder (``transform_coder``) and its entropy coder
(``entropy``), and rate control (``rate``). Plain numpy and bytes: no torch, no model."""
