import pytest

from engine import EngineInputError, generate_codes, validate_code_config
from engine.codegen import DEFAULT_CHARSET, code_space


def test_defaults_and_normalization() -> None:
    assert validate_code_config({}) == {
        "length": 8,
        "charset": DEFAULT_CHARSET,
        "prefix": "",
        "postfix": "",
        "pattern": "########",
    }
    cfg = validate_code_config({"length": 5, "pattern": "AB-###", "prefix": "X"})
    assert cfg["length"] == 3 and cfg["pattern"] == "AB-###"
    assert validate_code_config({"length": 4.0})["pattern"] == "####"


@pytest.mark.parametrize(
    "cfg",
    [
        {"charset": ""},
        {"charset": "aab"},
        {"length": 0},
        {"length": 101},
        {"pattern": "ABC"},
        {"length": 2.5},
        {"prefix": 3},
        {"charset": 7},
    ],
)
def test_invalid_configs(cfg: dict) -> None:
    with pytest.raises(EngineInputError):
        validate_code_config(cfg)


def test_shape_and_uniqueness() -> None:
    codes = generate_codes({"pattern": "AB-##-##", "charset": "0123", "prefix": "P", "postfix": "#"}, 200, seed=3)
    assert len(set(codes)) == 200
    for c in codes:
        assert c.startswith("PAB-") and c.endswith("#") and len(c) == 10
        assert set(c[4:6] + c[7:9]) <= set("0123")


def test_seed_is_deterministic_and_unseeded_differs() -> None:
    assert generate_codes({}, 50, seed=9) == generate_codes({}, 50, seed=9)
    assert generate_codes({}, 50, seed=9) != generate_codes({}, 50, seed=10)
    assert generate_codes({}, 50) != generate_codes({}, 50)


def test_space_exhaustion_and_exclude() -> None:
    cfg = {"pattern": "##", "charset": "ab"}
    assert code_space(cfg) == 4
    assert sorted(generate_codes(cfg, 4)) == ["aa", "ab", "ba", "bb"]
    assert sorted(generate_codes(cfg, 2, exclude={"aa", "bb"})) == ["ab", "ba"]
    with pytest.raises(EngineInputError):
        generate_codes(cfg, 5)
    with pytest.raises(EngineInputError):
        generate_codes(cfg, 3, exclude={"aa", "bb"})


def test_non_ascii_charset() -> None:
    codes = generate_codes({"length": 6, "charset": "żółw😀"}, 100, seed=1)
    assert all(len(c) == 6 and set(c) <= set("żółw😀") for c in codes)
    assert len(set(codes)) == 100


def test_many_codes() -> None:
    codes = generate_codes({"length": 10}, 100_000, exclude=frozenset({"x"}))
    assert len(set(codes)) == 100_000
