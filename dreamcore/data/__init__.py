"""Dataset files: decoding and checking images (`images`), captions (`captions`), the ingest
stage (`ingest`) and the synthetic demo dataset (`demo`)."""
