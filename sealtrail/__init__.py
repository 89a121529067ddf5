"""SealTrail's command line, settings, database engine and application assembly.

This is the only package that imports all the others; the domain packages (`schemas`, `signer`,
`hsm_adapters`, `ledger`, `verifier`) never import it.
"""
