"""The building blocks of Faster R-CNN's region proposal network (Ren et al. 2015): anchors, the RPN
head, the anchors' training labels, the RPN loss and the proposal layer. On the ``models`` layer."""
