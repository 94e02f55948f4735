"""The lightning attention kind: plain-PyTorch reference."""
