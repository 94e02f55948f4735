"""Vision backbones on the shared attention library (timm-registered ViTs, hierarchical linear-attention models, MAE). Filled by the backbones issue."""
