"""Model settings small enough for the vision tests to build and run many models in seconds on a CPU."""

TINY_VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
TINY_HIERARCHICAL = dict(
    embed_dims=(16, 16, 32, 32),
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 2, 2),
    landmark_ratios=(2, 2, 1, 1),
    num_classes=5,
    drop_path_rate=0.0,
)
