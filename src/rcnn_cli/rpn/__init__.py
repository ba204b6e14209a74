"""Faster R-CNN's region proposal network (Ren et al. 2015): anchors, the RPN head, the anchors'
training labels, the RPN loss, the proposal layer, and the network that puts them together. On its own
layer below ``models`` (which builds a Faster R-CNN from it) and above ``ops`` (its NMS)."""
