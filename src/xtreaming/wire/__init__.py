"""What the coordinator and the farms both speak: the framed lease answer, packed columns, verdicts, message ids.

Neither side imports the other; both import this package, so a change to the wire is one change.
"""
