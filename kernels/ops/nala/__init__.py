"""The nala attention kind: plain-PyTorch reference."""
