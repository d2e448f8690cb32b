"""The command line's commands, one module per group; :mod:`zentrack.cli` builds the parser."""
