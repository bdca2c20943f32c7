"""Where a run's OpenLineage events go: the spec, an ``openlineage.yml``, the environment, or nowhere.

Deciding where events go needs no OpenLineage client: this module reads the
spec's ``lineage:`` keys, the ``openlineage.yml`` the client would read and
the ``OPENLINEAGE_*`` environment variables, and says which transport to
build (:func:`lineage_target`). Only when there is somewhere to send does
:mod:`audit.journey._openlineage` load openlineage-python to send (see its
docstring for the order and the retries).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from audit.journey._vocabulary import LineageWarning

_HTTP_RETRY: dict[str, Any] = {
    "total": 2,
    "connect": 0,
    "read": 0,
    "status": 2,
    "backoff_factor": 0.2,
    "status_forcelist": [429, 502, 503, 504],
    "allowed_methods": ["POST"],
    "respect_retry_after_header": False,
    "raise_on_status": False,
}
"""urllib3 retries of the HTTP transports Insyn configures: a refusal is retried twice, quickly; a
connection error or a timeout is not retried, so an endpoint that is down costs one timeout; a 500 is final."""


@dataclass(frozen=True)
class LineageTarget:
    """Where a run's OpenLineage events are sent (see :func:`lineage_target`).

    Attributes
    ----------
    kind : str
        The transport: ``http``, ``file``, ``console``, or the type an
        ``openlineage.yml`` names.
    source : str
        What configured it: ``spec``, ``openlineage.yml``, ``environment``
        (``OPENLINEAGE__TRANSPORT__*``) or ``OPENLINEAGE_URL``.
    shown : str
        The destination for messages, without credentials.
    config : dict or None
        The transport config for openlineage-python's transport factory;
        None when the client resolves it from its own configuration.
    """

    kind: str
    source: str
    shown: str
    config: dict[str, Any] | None = field(default=None, repr=False)


def endpoint_url(url: str) -> str:
    """Where to POST events: ``{url}/api/v1/lineage``, or ``url`` if its path ends with ``/lineage``."""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/lineage"):
        return url
    return url.rstrip("/") + "/api/v1/lineage"


def shown_url(url: str) -> str:
    """The URL without user info (credentials never reach a message)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _http_config(url: str, *, timeout_s: float, api_key: str | None, endpoint: str | None = None) -> dict[str, Any]:
    target = endpoint_url(url) if endpoint is None else url.rstrip("/") + "/" + endpoint.lstrip("/")
    parts = urlsplit(target)
    config: dict[str, Any] = {
        "type": "http",
        "url": f"{parts.scheme}://{parts.netloc}",
        "endpoint": parts.path + (f"?{parts.query}" if parts.query else ""),
        "timeout": float(timeout_s),
        "retry": dict(_HTTP_RETRY),
    }
    if api_key:
        config["auth"] = {"type": "api_key", "apiKey": api_key}
    return config


def _valid_http_url(url: Any) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)


def _yaml_transport() -> tuple[str, str] | None:
    """(type, file) of the transport an ``openlineage.yml`` configures, where the client looks for one."""
    for path in (os.environ.get("OPENLINEAGE_CONFIG"), os.path.join(os.getcwd(), "openlineage.yml"),
                 os.path.join(os.path.expanduser("~/.openlineage"), "openlineage.yml")):
        if not path or not os.path.isfile(path):
            continue
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None  # the client logs and ignores an unreadable file, and so do we
        transport = data.get("transport") if isinstance(data, dict) else None
        if isinstance(transport, dict) and transport.get("type"):
            return str(transport["type"]), path
        return None  # the client reads only the first file it finds
    return None


def lineage_target(
    *,
    url: str | None = None,
    transport: str | None = None,
    path: str | os.PathLike[str] | None = None,
    timeout_s: float = 2.0,
    api_key: str | None = None,
) -> LineageTarget | None:
    """Decide where a run's OpenLineage events go (see the module docstring for the order).

    Parameters
    ----------
    url, transport, path, timeout_s, api_key
        The spec's ``lineage:`` keys.

    Returns
    -------
    LineageTarget or None
        None when nothing is configured (or ``OPENLINEAGE_DISABLED`` is true):
        the events are then only in ``lineage.jsonl``.

    Warns
    -----
    LineageWarning
        When ``url`` is not an http(s) URL (nothing is sent).
    """
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return None
    kind = transport or ("http" if url is not None else None)
    if kind == "http":
        if not _valid_http_url(url):
            warnings.warn(
                f"lineage.url must be an http:// or https:// URL. Got {url!r}. "
                "OpenLineage events were not sent (they are in lineage.jsonl).",
                LineageWarning,
                stacklevel=3,
            )
            return None
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be a number > 0. Got {timeout_s!r}.")
        assert isinstance(url, str)
        return LineageTarget("http", "spec", shown_url(endpoint_url(url)),
                             _http_config(url, timeout_s=timeout_s, api_key=api_key))
    if kind == "file":
        if path is None:
            raise ValueError("lineage.path is required when lineage.transport is file.")
        return LineageTarget("file", "spec", str(path), {"type": "file", "log_file_path": str(path), "append": True})
    if kind == "console":
        return LineageTarget("console", "spec", "the console (stderr)", {"type": "console"})
    found = _yaml_transport()
    if found is not None:
        return LineageTarget(found[0], "openlineage.yml", f"the {found[0]} transport of {found[1]}")
    if os.environ.get("OPENLINEAGE__TRANSPORT__TYPE"):
        kind = os.environ["OPENLINEAGE__TRANSPORT__TYPE"].strip().lower()
        return LineageTarget(kind, "environment", f"the {kind} transport of OPENLINEAGE__TRANSPORT__TYPE")
    env_url = os.environ.get("OPENLINEAGE_URL")
    if env_url:
        if not _valid_http_url(env_url):
            warnings.warn(f"OPENLINEAGE_URL must be an http:// or https:// URL. Got {shown_url(env_url)!r}. "
                          "OpenLineage events were not sent (they are in lineage.jsonl).", LineageWarning,
                          stacklevel=3)
            return None
        config = _http_config(env_url, timeout_s=timeout_s, api_key=os.environ.get("OPENLINEAGE_API_KEY"),
                              endpoint=os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"))
        return LineageTarget("http", "OPENLINEAGE_URL", shown_url(config["url"] + config["endpoint"]), config)
    return None
