"""The sigmoid attention kind: plain-PyTorch reference."""
