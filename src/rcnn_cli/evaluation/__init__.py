"""Measuring detections (VOC and COCO AP) and proposals (recall, MABO)."""
