from collections.abc import Set
from typing import Any, TypedDict

DEFAULT_CHARSET: str
DEFAULT_PATTERN: str
MAX_LENGTH: int

class CodeConfig(TypedDict):
    length: int
    charset: str
    prefix: str
    postfix: str
    pattern: str

def validate_code_config(cfg: dict[str, Any] | None) -> CodeConfig: ...
def code_space(cfg: dict[str, Any] | None) -> int: ...
def generate_codes(
    cfg: dict[str, Any] | None,
    count: int,
    seed: int | None = None,
    exclude: Set[str] | None = None,
) -> list[str]: ...
