"""Evidence an inspectorate can check: verification, bundles, signatures and log retention.

An audit is only worth what a third party can check. A municipality, an
inspectorate (IVO, JO), an auditor (Riksrevisionen, a municipal revisor) or
a union that receives the result of an audit must be able to tell, without
trusting whoever ran it, that the files are the ones the run wrote, that
nothing was added or left out, and that the run repeats. This package gives
them the means:

:func:`verify` (``insyn verify PATH [--rerun] [--key PUB]``)
    checks every SHA-256 in a run's ``manifest.json``, ``results.json``
    against the results schema, and a bundle's index and signature; with
    ``rerun=True`` it runs the audit again from the manifest and compares
    every metric row. Its :class:`Verification` has the command's exit code:
    0 intact (and identical), 1 the re-run differs (a table of what
    differs), 2 incomplete or changed (each problem names the file).
:func:`write_bundle` (``insyn bundle RUN_DIR -o FILE.zip [--sign KEY]``)
    packs a verified run folder with its spec, the engine's rule file or
    model, the suites and, where the spec's ``evidence`` section allows, the
    input data (personal data: its SHA-256 only, unless the spec says
    otherwise) into one zip file, optionally signed.
:func:`keygen` (``insyn keygen KEY``)
    makes an Ed25519 key pair for signing (private key mode 0600).
:func:`prune_logs`
    used by ``insyn monitor``: keeps the log of each run (journey and
    lineage) for ``monitor.retention_days`` (at least six months, AI Act
    Art. 26(6)), then prunes it and records the pruning in the manifest
    (:func:`amend_manifest`, which also records ``alerts.json`` added by the
    monitor).

The legal dossier that maps a run's evidence to the rules is written into
every run folder by the report layer (:func:`audit.report.render_dossier_html`).
"""

from __future__ import annotations

from audit.evidence._bundle import BUNDLE_INDEX, BUNDLE_SIGNATURE, CASE_LEVEL_ARTIFACTS, BundleInfo, write_bundle
from audit.evidence._check import Problem
from audit.evidence._manifest import amend_manifest, read_manifest
from audit.evidence._rerun import compare_metrics
from audit.evidence._retention import LOG_FILES, PrunedRun, prune_logs
from audit.evidence._signing import keygen
from audit.evidence._verify import Verification, verify

__all__ = [
    "BUNDLE_INDEX",
    "BUNDLE_SIGNATURE",
    "BundleInfo",
    "CASE_LEVEL_ARTIFACTS",
    "LOG_FILES",
    "Problem",
    "PrunedRun",
    "Verification",
    "amend_manifest",
    "compare_metrics",
    "keygen",
    "prune_logs",
    "read_manifest",
    "verify",
    "write_bundle",
]
