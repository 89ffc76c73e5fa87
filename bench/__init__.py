"""`make bench`: the product's figures in one run on this machine (see run.py)."""
