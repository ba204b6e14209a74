"""R-CNN and SPPnet: warped regions, per-class SVMs with hard negative mining, box regression."""
