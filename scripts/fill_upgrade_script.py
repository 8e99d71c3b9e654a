#!/usr/bin/env python3
"""Fills the marked sections of the unreleased upgrade script from the files a fresh install is
built from, so the two cannot drift while a version is being developed:

    --@rebind-begin ... --@rebind-end    every C function, re-created from `cargo pgrx schema`
                                         (bound to MODULE_PATHNAME, the control file's library), then
                                         sql/functions/ingest_functions.sql (their settings)
    --@NAME-begin ... --@NAME-end        the file SECTIONS names, with CREATE FUNCTION and CREATE VIEW
                                         turned into CREATE OR REPLACE where they existed before

Run it after changing sql/schema, sql/functions or a #[pg_extern], then review `git diff`.
tests/integration/test_upgrade.py checks the result against a fresh install. A released upgrade
script is frozen: never run this on one.

    scripts/fill_upgrade_script.py sql/oms_correlation--0.3.0--0.4.0.sql
"""

import os
import re
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PG_CONFIG = "/usr/lib/postgresql/15/bin/pg_config"

# Section name -> (source file, whether its functions already exist in the previous release).
SECTIONS = {
    "merge-seeded-row": ("sql/functions/merge_seeded_row.sql", True),
    "correlator-schema": ("sql/schema/09_correlator.sql", False),
    "stream": ("sql/functions/stream.sql", True),
    "reliability": ("sql/functions/reliability.sql", True),
    "correlator-functions": ("sql/functions/correlator.sql", False),
    "views": ("sql/functions/views.sql", True),
    "references": ("sql/schema/10_references.sql", False),
    "registry-generation": ("sql/schema/11_registry_generation.sql", False),
    "outage-writers": ("sql/schema/12_outage_writers.sql", False),
    "keep-data": ("sql/functions/keep_data.sql", True),
}


def rebound_functions():
    schema = subprocess.run(["cargo", "pgrx", "schema", "pg15", "--pg-config", PG_CONFIG], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    blocks = re.findall(r"CREATE  FUNCTION \"(\w+)\"\((.*?)\nAS '([^']+)', '(\w+)';", schema, re.S)
    if not blocks:
        sys.exit("cargo pgrx schema printed no C functions")
    functions = [f"CREATE OR REPLACE FUNCTION @extschema@.\"{name}\"({body}\nAS '{library}', '{symbol}';"
                 for name, body, library, symbol in blocks]
    with open(os.path.join(REPO, "sql/functions/ingest_functions.sql")) as f:
        settings = f.read().strip()
    return "\n".join(functions) + "\n" + settings


def section_text(path, replaces):
    with open(os.path.join(REPO, path)) as f:
        text = f.read().strip()
    if replaces:
        text = text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
        text = text.replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
    return text


def fill(script_path):
    with open(script_path) as f:
        script = f.read()
    contents = {"rebind": rebound_functions()}
    contents.update({name: section_text(*source) for name, source in SECTIONS.items()})
    for name, text in contents.items():
        pattern = re.compile(rf"(--@{name}-begin\n).*?(--@{name}-end)", re.S)
        if not pattern.search(script):
            sys.exit(f"{script_path} has no --@{name}-begin/--@{name}-end markers")
        script = pattern.sub(lambda m: m[1] + text + "\n" + m[2], script)
    with open(script_path, "w") as f:
        f.write(script)


if __name__ == "__main__":
    fill(sys.argv[1])
