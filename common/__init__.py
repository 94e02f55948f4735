"""Helpers every package shares, at the bottom of the import graph (nothing here imports kernels, vision, nvs,
reid or demos, and nothing imports torch at import time, so command lines can use them before parsing):

- common.files: atomic writes (temporary file + rename) and model files (safetensors + a JSON config beside it);
- common.cli: the one-line command-line error (exit code 2, no usage block);
- common.images: opening an image file with a one-line error naming it, and a reader that decodes each file once;
- common.schedules: linear warm-up then cosine decay of the learning rate.
"""
