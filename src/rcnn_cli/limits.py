"""Safety limits on what the toolkit reads, in a module of their own so that the command line can show
them as option defaults without loading numpy or Pillow."""

DEFAULT_MAX_PIXELS = 50_000_000
"""Refuse images above 50 megapixels (``--max-pixels``): a 3-channel float copy of one would already
take 600 MB. Selective Search works on at most 1 MP anyway (rcnn_cli.proposals.working_size)."""
