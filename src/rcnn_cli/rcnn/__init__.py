"""R-CNN's post-hoc stages (Girshick et al. 2014): per-class linear SVMs trained with hard negative
mining (:mod:`.svm`) and class-specific ridge regression of boxes from pool5 features
(:mod:`.bbox_regression`). Pure numerics on arrays already in memory: no file I/O here."""
