"""The local attention kind: plain-PyTorch reference."""
