"""Training: the loop, its phases, run state, resume, metrics log, torchrun and the validation it runs. Imports
only `core` and `songci`: never generation."""
