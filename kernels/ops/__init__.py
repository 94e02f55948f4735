"""Attention operators, one folder per kind (reference beside the fused kernels)."""
