"""Request intake and validation: batch metadata, the request file, row checks.

    load_batch(path)                     -> Batch                       batch.py
    read_request(engine, path, ...)      -> table ``request_raw``       intake.py
    validate_request(engine, batch, ...) -> ``request_valid`` / ``request_rejected``   validate.py

No engine-specific code lives here beyond DuckDB SQL run through the engine; the
cleaning rules (placeholders, statutes) are in :mod:`lastknown.normalize`.
"""
