"""The precisions weights are sized at: one vocabulary for the memory stage, the CLI and the reports.

Kept apart from memory.py so that `hfsize --help` (which lists them) imports nothing else.
"""

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "nf4", "nf4_double_quant", "fp4")
