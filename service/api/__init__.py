"""HTTP handlers. No SQL here: every read and write goes through `Store`."""
