"""What people read, as pure folds over the log: `projection` (the UI's read tables) and `explain` (a block's
story, a version's lineage, one line per event, the state summary `status` prints).
"""
