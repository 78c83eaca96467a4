"""`terrain`: the operators' command line."""
