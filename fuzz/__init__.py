"""`make fuzz`: Schemathesis against the local stack (fuzz/run.py). Not collected by pytest (testpaths = tests)."""
