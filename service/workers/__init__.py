"""Background work: the submitter, the sweeper, and the runner that starts and stops them."""
