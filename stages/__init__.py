"""One thin click command per DVC stage: read params, call the library, write declared outputs.

Importing the package (``python -m stages.NAME`` does) makes the process keep its freed memory
(:mod:`pipeline.malloc`; ``TRIBERT_MALLOC=default`` opts out): a training or inference step then
reuses its buffers instead of page-faulting them in afresh.
"""
from pipeline.malloc import keep_freed_memory

keep_freed_memory()
