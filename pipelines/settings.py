"""One settings object, read from environment variables and an optional TOML file.

Nothing here opens a key file: only its path is kept, and the connector reads it when a run
needs it, so importing the Dagster definitions never touches a secret.

With no property configured the pipeline runs on the embedded default: a local GA4 emulator
serving a generated property, started in-process, so the main job needs no Google account.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors.ga4_client import MAX_PAGE_ROWS, normalize_property_id

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
# The generated demo property and export replays land apart, so they never show up beside
# real properties.
DEMO_DATA_DIR = DEFAULT_DATA_DIR / "demo"
EXPORT_DATA_DIR = DEFAULT_DATA_DIR / "export"
EMBEDDED_PROPERTY_ID = "100001"
EMBEDDED_MONTHS = 25

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ENV_PREFIX = "GA_LTV_"
_FILE_KEYS = {
    "properties",
    "key_file",
    "emulator",
    "transport",
    "duckdb",
    "start_month",
    "spool_dir",
    "as_of",
    "refresh_day",
    "refresh_hour",
    "page_size",
}
_FILE_PATH_KEYS = {"key_file", "duckdb", "spool_dir"}
_PROPERTY_KEYS = {"id", "label", "currency", "start_month"}
_KNOWN_VARIABLES = {
    "GA_LTV_SETTINGS",
    "GA_LTV_PROPERTIES",
    *(_ENV_PREFIX + key.upper() for key in _FILE_KEYS - {"properties"}),
    # Where the LTV tables are published; read by the publishing resource at run time.
    "GA_LTV_EXTRACTS_DIR",
    "GA_LTV_REPORT_DIR",
}
# PostgreSQL publishing settings, and variables the test suite passes to itself.
_OTHER_PREFIXES = ("GA_LTV_PG_", "GA_LTV_TEST_")


class SettingsError(ValueError):
    """Settings that cannot work, with what to change."""


@dataclass(frozen=True)
class PropertySettings:
    """A GA4 property to load, with what the user knows about it."""

    property_id: str
    label: str = ""
    currency: str | None = None  # reporting currency passed to GA as currencyCode
    start_month: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, resolved once."""

    properties: tuple[PropertySettings, ...] = ()
    key_file: Path | None = None
    emulator: str | None = None  # host:port of a GA4 emulator on loopback
    transport: str = "grpc"
    duckdb_path: Path = DEFAULT_DATA_DIR / "ga_ltv.duckdb"
    spool_dir: Path | None = None  # None: spool/ beside the DuckDB file
    start_month: str | None = None
    as_of: str | None = None  # ISO timestamp standing in for "now" (replays, tests)
    # When the monthly refresh loads the month just ended, in each property's time zone.
    # GA may change a day's data for 48 hours; the 3rd leaves that margin for a month's last day.
    refresh_day: int = 3
    refresh_hour: int = 6
    # Rows per runReport page: GA's most by default; fewer holds less in memory per page.
    page_size: int = MAX_PAGE_ROWS
    # A demo or an export replay: it publishes only beside its own DuckDB file, never to the
    # configured PostgreSQL, extracts or report folders, where it would replace real figures.
    sandbox: bool = False

    @property
    def embedded(self) -> bool:
        """No property and no emulator configured: serve a generated property in-process."""
        return not self.properties and not self.emulator

    @property
    def sandboxed(self) -> bool:
        return self.sandbox or self.embedded

    @property
    def spool(self) -> Path:
        """Where report pages wait before loading."""
        return self.spool_dir or self.duckdb_path.parent / "spool"

    @property
    def property_ids(self) -> tuple[str, ...]:
        if self.embedded:
            return (EMBEDDED_PROPERTY_ID,)
        return tuple(p.property_id for p in self.properties)

    def for_property(self, property_id: str) -> PropertySettings:
        for prop in self.properties:
            if prop.property_id == property_id:
                return prop
        return PropertySettings(property_id=property_id, label="Generated demo store")


def check_month(value: str, *, what: str) -> str:
    if not _MONTH.match(value):
        raise SettingsError(f"{what} must be a month written YYYY-MM, got {value!r}.")
    return value


def parse_properties(text: str) -> tuple[PropertySettings, ...]:
    """`123456789,987654321:Client B` -> property settings; labels after a colon."""
    props = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        ident, _, label = item.partition(":")
        props.append(PropertySettings(property_id=normalize_property_id(ident), label=label))
    return tuple(props)


def _from_file(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"Settings file {path} cannot be read: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"Settings file {path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise SettingsError(
            f"Settings file {path} has unknown keys {unknown}; known: {sorted(_FILE_KEYS)}."
        )
    return data


def _file_properties(items: object, path: Path) -> tuple[PropertySettings, ...]:
    if not isinstance(items, list):
        raise SettingsError(f"In {path}, `properties` must be a list of [[properties]] tables.")
    props = []
    for item in items:
        if not isinstance(item, dict):
            raise SettingsError(
                f"In {path}, each entry of `properties` must be a [[properties]] table with an "
                f"`id`, got {item!r}."
            )
        unknown = sorted(set(item) - _PROPERTY_KEYS)
        if unknown or "id" not in item:
            raise SettingsError(
                f"In {path}, each [[properties]] needs `id` and may have "
                f"{sorted(_PROPERTY_KEYS - {'id'})}; found {sorted(item)}."
            )
        for key in ("label", "currency", "start_month"):
            if key in item and not isinstance(item[key], str):
                raise SettingsError(f"In {path}, `{key}` must be a quoted string.")
        start = item.get("start_month")
        props.append(
            PropertySettings(
                property_id=normalize_property_id(item["id"]),
                label=str(item.get("label", "")),
                currency=item.get("currency"),
                start_month=check_month(start, what="start_month") if start else None,
            )
        )
    return tuple(props)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `GA_LTV_*` variables, over `GA_LTV_SETTINGS` (a TOML file) if set."""
    env = os.environ if env is None else env
    values: dict = {}
    settings_file = env.get("GA_LTV_SETTINGS")
    if settings_file:
        path = Path(settings_file).expanduser()
        values = _from_file(path)
        for key in _FILE_PATH_KEYS & values.keys():
            if isinstance(values[key], str) and values[key]:
                # Read from the file's folder, wherever the command runs from.
                values[key] = str(path.absolute().parent / Path(values[key]).expanduser())
        if "properties" in values:
            values["properties"] = _file_properties(values["properties"], path)
    unknown = sorted(
        name
        for name in env
        if name.startswith(_ENV_PREFIX)
        and name not in _KNOWN_VARIABLES
        and not name.startswith(_OTHER_PREFIXES)
    )
    if unknown:
        raise SettingsError(
            f"Unknown settings variables {unknown}; known: {sorted(_KNOWN_VARIABLES)} and "
            f"{', '.join(p + '*' for p in _OTHER_PREFIXES)}."
        )
    for key in _FILE_KEYS - {"properties"}:
        if env.get(_ENV_PREFIX + key.upper()):
            values[key] = env[_ENV_PREFIX + key.upper()]
    if env.get("GA_LTV_PROPERTIES"):
        values["properties"] = parse_properties(env["GA_LTV_PROPERTIES"])
    for key in ("key_file", "emulator", "transport", "duckdb", "spool_dir", "start_month",
                "as_of"):  # fmt: skip
        if key in values and not isinstance(values[key], str):
            raise SettingsError(f"`{key}` must be a quoted string, got {values[key]!r}.")
    emulator = values.get("emulator") or None
    if emulator and not re.search(r":\d+$", emulator):
        raise SettingsError(
            f"emulator must be host:port, e.g. 127.0.0.1:50051; got {emulator!r} (no port)."
        )
    transport = values.get("transport", "grpc")
    if transport not in ("grpc", "rest"):
        raise SettingsError(f"transport must be 'grpc' or 'rest', got {transport!r}.")
    ids = [prop.property_id for prop in values.get("properties", ())]
    twice = sorted({pid for pid in ids if ids.count(pid) > 1})
    if twice:
        raise SettingsError(
            f"Property {', '.join(twice)} is listed more than once; list each property once "
            "(`123` and `properties/123` are the same property)."
        )
    if emulator and not values.get("properties"):
        raise SettingsError(
            f"An emulator is set ({emulator}) but no property: set GA_LTV_PROPERTIES to the "
            "ids it serves (`ga-ltv emulator serve` prints them; its demo stores are 100001, "
            "100002 and 100003)."
        )
    start = values.get("start_month")
    data_dir = DEFAULT_DATA_DIR if values.get("properties") else DEMO_DATA_DIR
    return Settings(
        properties=tuple(values.get("properties", ())),
        key_file=Path(values["key_file"]).expanduser() if values.get("key_file") else None,
        emulator=emulator,
        transport=transport,
        duckdb_path=Path(values.get("duckdb", data_dir / "ga_ltv.duckdb")).expanduser(),
        spool_dir=Path(values["spool_dir"]).expanduser() if values.get("spool_dir") else None,
        start_month=check_month(start, what="start_month") if start else None,
        as_of=_check_as_of(values.get("as_of")),
        refresh_day=_check_int(values.get("refresh_day", 3), "refresh_day", 1, 28),
        refresh_hour=_check_int(values.get("refresh_hour", 6), "refresh_hour", 0, 23),
        page_size=_check_int(values.get("page_size", MAX_PAGE_ROWS), "page_size", 1, MAX_PAGE_ROWS),
    )


def _check_int(value: object, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return number


def _check_as_of(value: str | None) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"as_of must be an ISO date-time, got {value!r}.") from None
    return value
