"""The ``rcnn`` command line: one thin module per subcommand, no maths here."""
