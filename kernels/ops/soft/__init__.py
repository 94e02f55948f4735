"""The soft attention kind: plain-PyTorch reference."""
