"""Operator and developer tools: the operator console, the demo seed, the local stack. They may use all of
chalicelib; nothing in chalicelib imports them, and they are not in the Lambda package (Chalice ships app.py and
chalicelib/ only)."""
