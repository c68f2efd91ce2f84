"""Settings from the environment and a TOML file; bad settings are refused with a way out."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import PropertyIdError
from pipelines.settings import (
    DEFAULT_DATA_DIR,
    DEMO_DATA_DIR,
    EMBEDDED_PROPERTY_ID,
    SettingsError,
    load_settings,
)


def test_no_settings_means_embedded_emulator() -> None:
    settings = load_settings({})
    assert settings.embedded
    assert settings.property_ids == (EMBEDDED_PROPERTY_ID,)


def test_properties_from_environment_with_labels() -> None:
    settings = load_settings(
        {"GA_LTV_PROPERTIES": "properties/123, 456:Client B", "GA_LTV_DUCKDB": "/tmp/x.duckdb"}
    )
    assert not settings.embedded
    assert settings.property_ids == ("123", "456")
    assert settings.for_property("456").label == "Client B"
    assert settings.duckdb_path == Path("/tmp/x.duckdb")


def test_measurement_id_in_settings_is_refused() -> None:
    with pytest.raises(PropertyIdError, match="measurement id"):
        load_settings({"GA_LTV_PROPERTIES": "G-1A2B3C"})


def test_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "ga-ltv.toml"
    path.write_text(
        'key_file = "~/sa.json"\n'
        "[[properties]]\n"
        'id = "123"\nlabel = "Shop"\ncurrency = "EUR"\nstart_month = "2023-04"\n'
    )
    settings = load_settings({"GA_LTV_SETTINGS": str(path)})
    prop = settings.for_property("123")
    assert (prop.label, prop.currency, prop.start_month) == ("Shop", "EUR", "2023-04")
    assert settings.key_file == Path("~/sa.json").expanduser()


def test_relative_paths_in_the_settings_file_are_read_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "client-a"
    folder.mkdir()
    (folder / "ga-ltv.toml").write_text(
        'key_file = "keys/sa.json"\nduckdb = "warehouse/ga.duckdb"\nspool_dir = "/abs/spool"\n'
        "[[properties]]\nid = '123'\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"GA_LTV_SETTINGS": "client-a/ga-ltv.toml"})
    assert settings.key_file == folder / "keys/sa.json"
    assert settings.duckdb_path == folder / "warehouse/ga.duckdb"
    assert settings.spool == Path("/abs/spool")
    overridden = load_settings(
        {"GA_LTV_SETTINGS": "client-a/ga-ltv.toml", "GA_LTV_DUCKDB": "mine.duckdb"}
    )
    assert overridden.duckdb_path == Path("mine.duckdb"), "a variable is read from the caller"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('propertys = "1"\n', "unknown keys \\['propertys'\\]"),
        ("[[properties]]\nlabel = 'no id'\n", "needs `id`"),
        ("[[properties]]\nid = '1'\nstart_month = '2023-13'\n", "YYYY-MM"),
        ("transport = 'carrier-pigeon'\n", "grpc' or 'rest"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_settings_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ga-ltv.toml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings({"GA_LTV_SETTINGS": str(path)})


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings({"GA_LTV_SETTINGS": str(tmp_path / "absent.toml")})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("properties = [123]\n", "must be a \\[\\[properties\\]\\] table"),
        ("start_month = 202201\n", "`start_month` must be a quoted string"),
        ("[[properties]]\nid = '1'\ncurrency = 3\n", "`currency` must be a quoted string"),
    ],
)
def test_settings_of_the_wrong_type(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ga-ltv.toml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings({"GA_LTV_SETTINGS": str(path)})


def test_unknown_variables_are_refused_but_publishing_and_test_ones_pass() -> None:
    with pytest.raises(SettingsError, match="GA_LTV_DUCKD"):
        load_settings({"GA_LTV_DUCKD": "x"})
    settings = load_settings({"GA_LTV_PG_HOST": "127.0.0.1", "GA_LTV_TEST_PG_DSN": "x"})
    assert settings.embedded


def test_page_size_is_ga_s_limit_by_default_and_checked() -> None:
    assert load_settings({}).page_size == 250_000
    assert load_settings({"GA_LTV_PAGE_SIZE": "5000"}).page_size == 5000
    for bad in ("0", "250001", "many"):
        with pytest.raises(SettingsError, match="page_size must be a whole number from 1"):
            load_settings({"GA_LTV_PAGE_SIZE": bad})


def test_emulator_address_needs_a_port() -> None:
    prop = {"GA_LTV_PROPERTIES": "100001"}
    settings = load_settings({"GA_LTV_EMULATOR": "127.0.0.1:50051", **prop})
    assert settings.emulator == "127.0.0.1:50051"
    with pytest.raises(SettingsError, match="emulator must be host:port"):
        load_settings({"GA_LTV_EMULATOR": "127.0.0.1", **prop})


def test_an_emulator_without_a_property_is_refused_rather_than_loading_nothing() -> None:
    with pytest.raises(SettingsError, match="no property: set GA_LTV_PROPERTIES"):
        load_settings({"GA_LTV_EMULATOR": "127.0.0.1:50051"})


def test_the_spool_sits_beside_the_duckdb_file_unless_set() -> None:
    moved = load_settings({"GA_LTV_PROPERTIES": "1", "GA_LTV_DUCKDB": "/srv/ga/w.duckdb"})
    assert moved.spool == Path("/srv/ga/spool")
    assert load_settings({"GA_LTV_SPOOL_DIR": "/fast/spool"}).spool == Path("/fast/spool")


def test_the_demo_lands_apart_from_configured_properties() -> None:
    demo = load_settings({})
    assert demo.duckdb_path == DEMO_DATA_DIR / "ga_ltv.duckdb"
    assert demo.spool == DEMO_DATA_DIR / "spool"
    real = load_settings({"GA_LTV_PROPERTIES": "123456789"})
    assert real.duckdb_path == DEFAULT_DATA_DIR / "ga_ltv.duckdb"
    assert load_settings({"GA_LTV_DUCKDB": "/tmp/x.duckdb"}).duckdb_path == Path("/tmp/x.duckdb")


@pytest.mark.parametrize("listed", ["100001,properties/100001", "100001:a, 100001:b"])
def test_a_property_listed_twice_is_refused(listed: str) -> None:
    with pytest.raises(SettingsError, match="Property 100001 is listed more than once"):
        load_settings({"GA_LTV_PROPERTIES": listed})
