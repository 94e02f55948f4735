"""Vision backbones on the shared attention library: timm-registered ViTs, hierarchical
linear-attention models and MAE. Filled by the backbones issue."""
