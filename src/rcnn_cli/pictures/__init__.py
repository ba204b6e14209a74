"""Pictures of what each stage of the R-CNN family does, for ``rcnn show`` (one module per kind):

- :mod:`.proposals`: the top-N proposals on the image and how many there are by size;
- :mod:`.rois`: one minibatch's foreground and background RoIs, Fast R-CNN's hierarchical sampling
  beside R-CNN/SPPnet's region-wise sampling;
- :mod:`.pooling`: a RoI on the feature map with RoI pooling's bins (and their maxima), SPPnet's pyramid
  and RoIAlign's sample points;
- :mod:`.anchors`: Faster R-CNN's k anchors at one location and one image's positive/negative anchors;
- :mod:`.detections`: detections as ``rcnn detect`` draws them.

Each module computes what it shows with the code that training and inference run (the samplers, the
anchor labelling, the kernels' bin geometry), then draws it with matplotlib's Agg canvas
(:mod:`.figure`). matplotlib is imported inside functions only, so that ``rcnn --help`` never loads it.
"""
