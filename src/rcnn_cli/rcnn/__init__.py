"""R-CNN and SPPnet: warped regions (:mod:`.warp`), per-class linear SVMs trained with hard negative
mining (:mod:`.svm`), class-specific ridge regression of boxes from pool5 features
(:mod:`.bbox_regression`), SPPnet's scale for each region (:mod:`.scale_assignment`). Pure numerics on
tensors and arrays in memory: no file I/O here."""
