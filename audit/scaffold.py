"""A new audit project: the files an auditor edits, laid out as Insyn expects them (``insyn init``).

An auditor at a municipality installs Insyn from a wheel and starts from an
empty folder, not from a clone of the project. Like ``dbt init`` or a
great-expectations project, ``insyn init DIR`` writes a small project that
runs as it is and says what to change:

``audit.yaml``
    an audit spec: the municipal RPA rule set of the demo, audited on 5,000
    synthetic applications against the law's baseline, with data-quality
    suites on every step;
``decision-log.yaml``
    a second spec that audits recorded decisions from an Excel export
    (``data/decision-log.xlsx``), the form in which a municipality hands
    over what its robot decided;
``engines/municipal-rpa.yaml``
    the rule set under audit (replace it with your engine, see
    ``engine.kind``);
``datasets/sweden/``
    the population card (the synthetic population spec and its data card)
    and the housing-cost guideline the rule set uses;
``checks/*.yaml``
    the expectation suites (data contracts) of each step;
``schemas/audit-spec.schema.json`` and ``docs/spec.md``
    the JSON Schema and the reference of the spec's keys. Every spec starts
    with ``# yaml-language-server: $schema=schemas/audit-spec.schema.json``,
    so that an editor with the YAML language server checks it while it is
    typed;
``README.md``
    what each file is for and what to edit first.

Files are copied from the defaults that ship with Insyn (the same files a
clone has in ``datasets/``, ``checks/`` and ``examples/``), with paths made
relative to the new project. Nothing is overwritten: an existing non-empty
folder is refused.
"""

from __future__ import annotations

from pathlib import Path

from audit._paths import defaults_dir, shipped_examples
from audit.exceptions import SpecError
from audit.reference import markdown_reference, schema_text

__all__ = ["SCHEMA_COMMENT", "example_spec", "init_project"]

SCHEMA_COMMENT = "# yaml-language-server: $schema=schemas/audit-spec.schema.json"
"""The first line of every spec ``insyn init`` writes: it points editors at the JSON Schema."""

_COPIES: tuple[tuple[str, str], ...] = (
    ("datasets/sweden/population-2026.yaml", "datasets/sweden/population-2026.yaml"),
    ("datasets/sweden/README.md", "datasets/sweden/README.md"),
    ("datasets/sweden/guidelines/trelleborg-2019.yaml", "datasets/sweden/guidelines/trelleborg-2019.yaml"),
    ("datasets/examples/decision-log.xlsx", "data/decision-log.xlsx"),
    ("examples/engines/municipal-rpa.yaml", "engines/municipal-rpa.yaml"),
    ("checks/application.yaml", "checks/application.yaml"),
    ("checks/engine_input.yaml", "checks/engine_input.yaml"),
    ("checks/decisions.yaml", "checks/decisions.yaml"),
    ("checks/decision_log.yaml", "checks/decision_log.yaml"),
)
"""(shipped file, file in the new project)."""

_REWRITES: dict[str, tuple[tuple[str, str], ...]] = {
    # the rule set sits one folder lower than in the repository
    "engines/municipal-rpa.yaml": (
        ("../../datasets/sweden/guidelines/", "../datasets/sweden/guidelines/"),
    ),
    "decision-log.yaml": (
        ("../datasets/examples/decision-log.xlsx", "data/decision-log.xlsx"),
    ),
}

_AUDIT_SPEC = f"""{SCHEMA_COMMENT}
#
# An audit spec: what to audit, with what data, and how to judge it.
# Every key is explained in docs/spec.md (or run: insyn schema --format markdown).
# Run it with:   insyn run audit.yaml
# Edit first:    engine (your decision engine), population (your cases),
#                sensitive_features and thresholds (what counts as a finding).
name: my-audit
description: >-
  The municipal RPA rule set in engines/municipal-rpa.yaml audited on 5,000
  synthetic applications against the law's baseline (riksnorm).
seed: 42
population:
  # a synthetic population drawn from the population card; for your own data use
  #   file: data/decisions.csv        (CSV, Parquet or Excel; see decision-log.yaml)
  synthetic: datasets/sweden/population-2026.yaml
  n: 5000
  derive:
    age_band:
      bins: {{column: applicant_age, edges: [18, 29, 49, 64, 120], labels: ["18-29", "30-49", "50-64", "65+"]}}
sensitive_features: [sex, birth_region, age_band]
intersections: [[sex, birth_region]]
reference_groups: {{birth_region: sweden}}
engine:
  # the engine under audit: rules | python | sklearn | http | subprocess | recorded | reference
  kind: rules
  path: engines/municipal-rpa.yaml
  sees_sensitive: false
  error_budget: 0.01
truth:
  reference: true        # the correct decision by the law's baseline (audit.norms)
outcomes:
  favourable: [grant, partial]
  review: [refer]
  positive: [deny]
checks:
  intake: {{suites: [checks/application.yaml], policy: warn}}
  engine_input: {{suites: [checks/engine_input.yaml], policy: warn}}
  decisions: {{suites: [checks/decisions.yaml], policy: warn}}
statistics: {{min_group_size: 10, alpha: 0.05, correction: holm, bootstrap: 1000}}
thresholds:
  - {{metric: refer_rate, ratio_min: 0.8, ratio_max: 1.25}}
  - {{metric: grant_rate, ratio_min: 0.8}}
  - {{metric: underpayment_rate, difference_max: 0.05}}
report: {{formats: [html, md, json], language: en}}
"""

_README = """# {name}: an Insyn audit project

Made by `insyn init`. It runs as it is:

```sh
insyn run audit.yaml            # the rule set on 5,000 synthetic applications
insyn run decision-log.yaml     # recorded decisions from an Excel export
```

Each run writes `reports/<name>/<run_id>/` with `report.html` (open it in a
browser), `results.json`, `metrics.csv`, the data journey, the data-quality
results (`checks.json`, with great-expectations' own result of each step)
and a manifest with the SHA-256 of every input and artifact.

## What to edit

| file | what it is | edit it when |
| --- | --- | --- |
| `audit.yaml` | the audit spec | always: name your audit, point `engine` at your engine and `population` at your cases, choose `sensitive_features` and `thresholds` |
| `decision-log.yaml` | a spec for recorded decisions (`engine.kind: recorded`) | you audit decisions that were already made; map your export's column names with `rename` and `recode` |
| `engines/municipal-rpa.yaml` | the rule set under audit (an example) | you audit a rule set; other engines need no file here (see `engine.kind` in `docs/spec.md`) |
| `datasets/sweden/population-2026.yaml` | the population card: how synthetic applications are drawn | you want another population; its data card is `datasets/sweden/README.md` |
| `checks/*.yaml` | data contracts (great-expectations suites) per step | your data has other columns or rules; export one for great-expectations with `insyn suite checks/application.yaml application.json` |
| `data/` | your data files | you audit real decisions (never commit personal data) |

Every key of a spec is explained in `docs/spec.md` (also: `insyn schema
--format markdown`). The first line of each spec points editors at
`schemas/audit-spec.schema.json`, so VS Code (with the YAML extension),
Neovim or a JetBrains IDE check a spec while you type it.

The riksnorm tables of the law's baseline and the other shipped examples
stay inside Insyn: `insyn run --example demo` runs the 20,000-case demo.

To send OpenLineage events to Marquez or another endpoint, add
`lineage: {{url: http://host:5000}}` to a spec, or set `OPENLINEAGE_URL`, or
put an `openlineage.yml` here.
"""


def example_spec(name: str) -> Path:
    """Return the path of a shipped example audit spec by name (``demo``, ``aggregated``, ...).

    Raises
    ------
    audit.exceptions.SpecError
        When no example has that name; the message lists the examples.
    """
    examples = shipped_examples()
    if name in examples:
        return examples[name]
    known = ", ".join(examples) if examples else "none (Insyn was installed without its examples)"
    raise SpecError(f"--example must name an example shipped with Insyn: {known}. Got {name!r}.")


def init_project(directory: str | Path, *, name: str | None = None) -> list[Path]:
    """Write a new audit project into ``directory`` (see the module docstring).

    Parameters
    ----------
    directory : str or Path
        The folder to create. It may exist only if it is empty.
    name : str, optional
        The audit's name in ``audit.yaml`` (default: the folder's name, made
        safe for a folder name).

    Returns
    -------
    list of Path
        The files written, in order.

    Raises
    ------
    audit.exceptions.SpecError
        When the folder exists and is not empty, or a shipped file is missing.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SpecError(f"{target}: the folder exists and is not empty. Expected a new or empty folder.")
    root = defaults_dir()
    if root is None:
        raise SpecError("Insyn was installed without its shipped datasets, checks and examples; cannot scaffold.")
    audit_name = name or _safe_name(target.resolve().name)
    files: dict[str, str | bytes] = {
        "README.md": _README.format(name=audit_name),
        "audit.yaml": _AUDIT_SPEC.replace("name: my-audit", f"name: {audit_name}"),
        "decision-log.yaml": _with_schema_comment(_read_text(root / "examples" / "decision-log.yaml")),
        "schemas/audit-spec.schema.json": schema_text("audit"),
        "docs/spec.md": markdown_reference("audit"),
        ".gitignore": "reports/\ndata/*\n!data/decision-log.xlsx\n",
    }
    for source, dest in _COPIES:
        path = root / source
        if not path.is_file():
            raise SpecError(f"{path}: a shipped file is missing from the installation of Insyn.")
        files[dest] = path.read_bytes() if path.suffix == ".xlsx" else _read_text(path)
    for dest, pairs in _REWRITES.items():
        text = files[dest]
        assert isinstance(text, str)
        for old, new in pairs:
            text = text.replace(old, new)
        files[dest] = text
    written: list[Path] = []
    for rel, content in files.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            out.write_bytes(content)
        else:
            out.write_text(content, encoding="utf-8")
        written.append(out)
    return written


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _with_schema_comment(text: str) -> str:
    return f"{SCHEMA_COMMENT}\n{text}" if not text.startswith("# yaml-language-server") else text


def _safe_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in text).strip("-._")
    return cleaned[:80] or "my-audit"
