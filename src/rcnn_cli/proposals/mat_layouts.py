"""The two box layouts of ``.mat`` proposal files (``rcnn propose --method file --mat-layout``).

Both hold integer pixel indices, inclusive:

* ``x1y1x2y2-0based``: the original Fast R-CNN demo files (data/demo/*_boxes.mat);
* ``y1x1y2x2-1based``: the VOC 2007 selective-search release (selective_search_data/*.mat).

A plain tuple in a module of its own, so that the command line lists them without loading numpy.
"""

MAT_LAYOUTS: tuple[str, ...] = ("x1y1x2y2-0based", "y1x1y2x2-1based")
