"""The networks that turn over-wrapped window images into deformation probabilities, and their weight files."""

from defoscan.model.networks import AlexNetStyle, CompactNet, build_model, receptive_field
from defoscan.model.weights import load_imagenet_alexnet, load_model, save_model

__all__ = [
    "AlexNetStyle",
    "CompactNet",
    "build_model",
    "load_imagenet_alexnet",
    "load_model",
    "receptive_field",
    "save_model",
]
