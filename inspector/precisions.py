"""The names of the precision schemes memory is reported at, and their labels: the one vocabulary.

Plain data, kept apart from schemes.py (the byte rules) so that `hfsize --help`, which lists the names,
imports nothing else of hfsize. Each name is a `memory.<name>` key of the JSON (schema v1).
"""

# name -> label, in report order; "as_stored" is every pre-quantized format, as its files hold it
LABELS = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "int8": "int8 (bnb)",
    "nf4": "nf4 (bnb)",
    "nf4_double_quant": "nf4 + double quant",
    "fp4": "fp4 (bnb)",
    "as_stored": "as stored",
}
AS_STORED = "as_stored"
PRECISIONS = tuple(name for name in LABELS if name != AS_STORED)  # what a loaded model can be sized at
CHECK_PRECISIONS = ("auto", *LABELS)  # `check --precision`
