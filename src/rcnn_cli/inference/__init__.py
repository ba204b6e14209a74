"""Test-time Fast R-CNN: the detection engine, post-processing, truncated SVD of the fc layers."""
