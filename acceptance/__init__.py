"""The live acceptance run: a fresh stack taken through up, the job scripts, a no-change preview, an
in-place change and destroy, with each step's duration written to a record (`python -m acceptance.run`)."""
