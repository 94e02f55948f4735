"""The softmax attention kind: plain-PyTorch reference."""
