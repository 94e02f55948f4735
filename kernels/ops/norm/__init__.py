"""The norm attention kind: plain-PyTorch reference."""
