"""Fast R-CNN training: RoI sampling, box targets, the multi-task loss and the SGD loop."""
