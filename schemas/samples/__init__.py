"""Sample documents (a class's transcripts, diplomas) used by the demo, the tests and the renders in docs/,
and the script that regenerates them.
"""
