"""The object layer: placement, quorums, stage-then-commit, the read rule and healing.

The S3 protocol layer above (gateway/*.py) calls only `ObjectLayer` (layer.py); nothing
here parses S3 requests or renders S3 answers.
"""
