"""rcnn-cli: the R-CNN family of object detectors, stage by stage, from the command line."""

__version__ = "0.1.0"
