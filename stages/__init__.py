"""One thin click command per DVC stage: read params, call the library, write declared outputs."""
