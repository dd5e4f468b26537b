"""Running agent versions: their environments, their processes, and the diffs of what they wrote."""
