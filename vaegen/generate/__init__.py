"""Generation: decoding strategies, latent paths and the Python API. Imports only `core` and `songci`."""
