"""voucherd's rule core, compiled with Cython. Pure: no I/O, no logging."""

from engine.codegen import generate_codes, validate_code_config
from engine.discounts import apply_discount, build_order
from engine.formula import compile_formula
from engine.money import EngineInputError
from engine.qualification import Qualifier
from engine.rules import compile_rules
from engine.stacking import evaluate_stack, normalize_stacking_rules

__all__ = [
    "EngineInputError",
    "Qualifier",
    "apply_discount",
    "build_order",
    "compile_formula",
    "compile_rules",
    "evaluate_stack",
    "generate_codes",
    "normalize_stacking_rules",
    "validate_code_config",
]
