"""The mala attention kind: plain-PyTorch reference."""
