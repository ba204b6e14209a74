"""``rcnn compare``'s report: the measured table of the R-CNN family (:mod:`.results`), its charts
(:mod:`.charts`) and the pages that hold them (:mod:`.pages`: index.html, report.md, results.json)."""
