"""Where sessionstore's Alembic scripts are, and the Alembic configuration built for them.

No alembic.ini is read at runtime: the Config is built here, pointing at the
scripts shipped in the package, with the library's own version table
(``{prefix}alembic_version``) so a host application's is never touched.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy.engine import URL

from ...errors import SchemaError
from ..dialects import rules_for
from ..engine import check_prefix
from ..models import DEFAULT_PREFIX, build_tables

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

def script_location() -> Path:
    """The directory holding env.py and versions/.

    A built wheel carries it as the package data ``sessionstore/_migrations``;
    an editable install or a source checkout uses ``migrations/`` at the
    repository root.
    """
    packaged = importlib.resources.files("sessionstore") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[4] / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    raise SchemaError(
        "sessionstore's migration scripts are missing from this installation "
        f"(looked in {packaged} and {checkout}); reinstall the package"
    )


def version_table(table_prefix: str) -> str:
    return f"{table_prefix}alembic_version"


def alembic_config(
    *,
    table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    url: str | URL | None = None,
    scripts: str | Path | None = None,
    output: TextIO | None = None,
) -> Config:
    """An Alembic Config for sessionstore's scripts, built without any alembic.ini.

    env.py reads the prefix, schema and (for offline ``--sql`` runs) URL from
    ``config.attributes``; an online run also puts the connection there.
    """
    from alembic.config import Config

    config = Config(output_buffer=output) if output is not None else Config()
    location = str(scripts if scripts is not None else script_location())
    config.set_main_option("script_location", location.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["sessionstore_prefix"] = check_prefix(table_prefix)
    config.attributes["sessionstore_schema"] = schema
    if url is not None:
        config.attributes["sessionstore_url"] = url
    return config


@functools.lru_cache(maxsize=16)
def _script_directory(location: str) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(scripts=location))


def script_directory(scripts: str | Path | None = None) -> ScriptDirectory:
    return _script_directory(str(scripts if scripts is not None else script_location()))


def head_revision(scripts: str | Path | None = None) -> str:
    """The newest revision of the scripts (there is exactly one head)."""
    head = script_directory(scripts).get_current_head()
    if head is None:
        raise SchemaError(f"no migration scripts found in {scripts or script_location()}")
    return head


def context_options(dialect_name: str, table_prefix: str, schema: str | None, *, default_schema: str | None = None) -> dict[str, Any]:
    """The keyword arguments env.py (and check_drift) give Alembic's configure().

    - the library's own version table, in the given schema;
    - the models as ``target_metadata``, for autogenerate and drift checks;
    - autogenerate restricted to sessionstore's own tables, so a host
      application's tables in the same database never count as drift;
    - ``sessionstore_prefix`` / ``sessionstore_schema``, which the revision
      scripts read from ``op.get_context().opts``.
    """
    # The drift comparison sees the connection's default schema as None.
    target_schema = None if schema is not None and schema == default_schema else schema
    rules = rules_for(dialect_name)
    tables = build_tables(rules, table_prefix, target_schema)
    ours = {table.name for table in tables.all}

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == target_schema
        if type_ == "table":
            return name in ours
        return True

    return {
        "version_table": version_table(table_prefix),
        "version_table_schema": schema,
        "target_metadata": tables.metadata,
        "include_schemas": target_schema is not None,
        "include_name": include_name,
        "compare_type": rules.compare_type,
        "compare_server_default": True,
        "render_as_batch": True,  # new revisions must also run on SQLite
        **rules.alembic_context_options(),
        "sessionstore_prefix": table_prefix,
        "sessionstore_schema": schema,
    }


