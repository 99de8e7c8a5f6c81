"""The pipeline: plan -> build -> verify -> push -> tag, one module per step.

Each step takes the command's :class:`~polyarch.session.Session` and returns a frozen
result. Nothing leaves the machine before verification passed: the engine writes an OCI
layout on local disk, the checks read it there, and only then does polyarch's own
registry client push blobs and manifests by digest and move the tags.
"""
