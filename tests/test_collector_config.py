"""Static validation of the OpenTelemetry Collector configs in collector-config/.

No collector binary is available here, so these tests re-implement the parts
of `otelcol-contrib validate` that can be checked from the YAML alone, plus
Avalo's own policies:

* every file parses with yaml.safe_load;
* pipelines only reference components defined in the file (component ids are
  ``type[/name]``), every defined component is used, connectors are used on
  both sides with a supported signal pair, component types are known and
  support the pipeline's signal, option names are ones the contrib components
  really have;
* ``memory_limiter`` is the first and ``batch`` the last processor in every
  pipeline; a ``redaction`` processor is in every pipeline;
* ``${env:VAR}`` references are well-formed and documented in
  collector-config/README.md; secrets are env references, never literals;
* backend specifics (Prometheus suffixes off, New Relic via otlphttp with an
  ``api-key`` header and delta temporality, Datadog APM connector wiring);
* the redaction regexes (RE2 in Go) stay within the subset shared with Python
  ``re`` and match/do not match representative samples.

Every checker returns a list of problems. Each is run on the real configs
(expecting none) and on deliberately broken copies (expecting the specific
problem), so each check is shown to be able to fail.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "collector-config"
README = CONFIG_DIR / "README.md"
AGENT = "agent.yaml"
GATEWAY = "gateway.yaml"
CONFIG_FILES = (AGENT, GATEWAY)

SIGNALS = frozenset({"traces", "metrics", "logs"})
ALL = SIGNALS

# Component types used by these configs and the signals they support
# (from the components' README status tables).
KNOWN_TYPES: dict[str, dict[str, frozenset[str]]] = {
    "receivers": {"otlp": ALL},
    "processors": {
        "memory_limiter": ALL,
        "batch": ALL,
        "resourcedetection": ALL,
        "redaction": ALL,
        "cumulativetodelta": frozenset({"metrics"}),
    },
    "exporters": {
        "otlp": ALL,
        "otlphttp": ALL,
        "datadog": ALL,
        "prometheus": frozenset({"metrics"}),
        "prometheusremotewrite": frozenset({"metrics"}),
    },
    "extensions": {"health_check": frozenset()},
}
# connector type -> supported (exporter-side signal, receiver-side signal)
KNOWN_CONNECTORS: dict[str, frozenset[tuple[str, str]]] = {
    "datadog": frozenset({("traces", "metrics"), ("traces", "traces")}),
}

_HTTP_CLIENT = {
    "endpoint", "tls", "headers", "compression", "timeout", "auth", "proxy_url",
    "read_buffer_size", "write_buffer_size", "max_idle_conns",
    "max_idle_conns_per_host", "max_conns_per_host", "idle_conn_timeout",
    "disable_keep_alives", "http2_read_idle_timeout", "http2_ping_timeout",
    "cookies",
}
_EXPORTER_HELPER = {"sending_queue", "retry_on_failure", "timeout"}

# Top-level option names the contrib/core components actually define
# (README / config.go of each component). Only options listed here may be used.
KNOWN_OPTIONS: dict[tuple[str, str], set[str]] = {
    ("receivers", "otlp"): {"protocols"},
    ("processors", "memory_limiter"): {
        "check_interval", "limit_mib", "spike_limit_mib",
        "limit_percentage", "spike_limit_percentage",
    },
    ("processors", "batch"): {
        "timeout", "send_batch_size", "send_batch_max_size",
        "metadata_keys", "metadata_cardinality_limit",
    },
    ("processors", "resourcedetection"): {
        "detectors", "timeout", "override", "attributes", "system", "env",
        "ec2", "ecs", "eks", "gcp", "azure", "aks", "k8snode", "openshift",
        "docker", "consul", "heroku", "lambda", "elasticbeanstalk",
    },
    ("processors", "redaction"): {
        "allow_all_keys", "allowed_keys", "blocked_key_patterns",
        "ignored_keys", "redact_all_types", "blocked_values",
        "allowed_values", "hash_function", "summary", "url_sanitizer",
        "db_sanitizer",
    },
    ("processors", "cumulativetodelta"): {
        "include", "exclude", "max_stale", "initial_value", "metrics",
    },
    ("exporters", "otlp"): _EXPORTER_HELPER | {
        "endpoint", "tls", "headers", "compression", "keepalive",
        "balancer_name", "auth", "authority", "wait_for_ready",
        "read_buffer_size", "write_buffer_size",
    },
    ("exporters", "otlphttp"): _HTTP_CLIENT | _EXPORTER_HELPER | {
        "traces_endpoint", "metrics_endpoint", "logs_endpoint", "encoding",
    },
    ("exporters", "datadog"): _HTTP_CLIENT | _EXPORTER_HELPER | {
        "api", "hostname", "hostname_detection_timeout", "only_metadata",
        "host_metadata", "traces", "metrics", "logs",
    },
    ("exporters", "prometheus"): {
        "endpoint", "tls", "const_labels", "namespace", "send_timestamps",
        "metric_expiration", "resource_to_telemetry_conversion",
        "resource_constant_labels", "enable_open_metrics",
        "without_scope_info", "add_metric_suffixes", "translation_strategy",
    },
    ("exporters", "prometheusremotewrite"): _HTTP_CLIENT | {
        "retry_on_failure", "external_labels", "namespace",
        "add_metric_suffixes", "remote_write_queue",
        "resource_to_telemetry_conversion", "target_info", "scope_info",
        "export_created_metric", "wal", "max_batch_size_bytes",
        "send_metadata",
    },
    ("connectors", "datadog"): {"traces"},
    ("extensions", "health_check"): {
        "endpoint", "path", "response_body", "check_collector_pipeline", "tls",
    },
}
KNOWN_SUBOPTIONS: dict[tuple[str, str, str], set[str]] = {
    ("exporters", "datadog", "api"): {"key", "site", "fail_on_invalid_key"},
    ("receivers", "otlp", "protocols"): {"grpc", "http"},
}

COMPONENT_TYPE_RE = re.compile(r"^[a-zA-Z][0-9a-zA-Z_]{0,62}$")
# ${env:NAME} or ${env:NAME:-default}
ENV_REF_RE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^${}]*))?\}")
ENV_ONLY_RE = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
UNSAFE_DOLLAR_RE = re.compile(r"\$(?=[{A-Za-z0-9_])")

SECRET_KEY_RE = re.compile(
    r"(?i)(^|[._-])(key|api[_-]?key|license[_-]?key|token|password|secret)$"
)
SECRET_LITERAL_RES = [
    re.compile(r"^[0-9a-fA-F]{32}$"),            # Datadog API key shape
    re.compile(r"[0-9A-Za-z]{36}NRAL"),          # New Relic license key shape
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),      # bearer token
]

# Constructs Python `re` accepts but Go RE2 does not (or means differently).
NON_RE2 = [
    (re.compile(r"\(\?[=!]"), "look-ahead"),
    (re.compile(r"\(\?<[=!]"), "look-behind"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"\(\?P="), "named back-reference"),
    (re.compile(r"\(\?\("), "conditional"),
    (re.compile(r"\\[1-9]"), "back-reference"),
    (re.compile(r"[*+?}]\+"), "possessive quantifier"),
    (re.compile(r"\\[Zz]"), "end-of-text anchor (\\Z python / \\z RE2)"),
    (re.compile(r"\(\?[a-zA-Z]*[xaLu]"), "flag not in RE2 (x/a/L/u)"),
]

# Samples for the redaction regexes.
VALUE_MUST_REDACT = [
    "alice.smith+avalo@example.com",
    "4111111111111111",                    # Visa test card
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",                 # MasterCard test card, dashes
    "card on file: 378282246310005",       # Amex test card (15 digits)
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Authorization: Bearer abcDEF123.456-xyz",
]
VALUE_MUST_KEEP = [
    "wallet.spend",
    "4bf92f3577b34da6a3ce929d0e0e4736",     # trace id (32 hex)
    "00f067aa0ba902b7",                     # span id (16 hex)
    "1732675200000",                        # epoch milliseconds
    "chat_messages_sent_total",
    "chat_delivery_latency_ms",
    "POST /api/v1/wallet/spend",
    "safety.panic.triggered",
]
KEY_MUST_REDACT = [
    "http.request.header.authorization",
    "http.request.header.cookie",
    "user.password",
    "payment.card_number",
    "payment.cvv",
    "db.connection.api_key",
    "auth.access_token",
    "client_secret",
]
KEY_MUST_KEEP = [
    "wallet.spend",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "span.kind",
    "safety.panic.triggered",
    "chat.message.id",
    "service.instance.id",
    "http.response.status_code",
    "company.name",
]


# --------------------------------------------------------------------------
# helpers


def load(name: str) -> dict[str, Any]:
    with open(CONFIG_DIR / name, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    assert isinstance(cfg, dict), f"{name}: top level is not a mapping"
    return cfg


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def split_id(component_id: str) -> tuple[str, str | None]:
    """Split a collector component id ``type[/name]`` into (type, name)."""
    ctype, sep, name = str(component_id).partition("/")
    return ctype, (name if sep else None)


def id_problems(component_id: Any, where: str) -> list[str]:
    if not isinstance(component_id, str):
        return [f"{where}: component id {component_id!r} is not a string"]
    ctype, name = split_id(component_id)
    problems = []
    if not COMPONENT_TYPE_RE.match(ctype):
        problems.append(f"{where}: invalid component type in id {component_id!r}")
    if name is not None and (name == "" or name.strip() != name):
        problems.append(f"{where}: invalid component name in id {component_id!r}")
    return problems


def section(cfg: dict[str, Any], kind: str) -> dict[str, Any]:
    value = cfg.get(kind) or {}
    return value if isinstance(value, dict) else {}


def pipelines(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return (cfg.get("service") or {}).get("pipelines") or {}


def signal_of(pipeline_id: str) -> str:
    return split_id(pipeline_id)[0]


def walk_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (path, string) for every string key and value in the tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield sub + " (key)", key
            yield from walk_strings(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def walk_items(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (path, key, value) for every mapping entry in the tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key), value
            yield from walk_items(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_items(value, f"{path}[{i}]")


def components_of_type(cfg: dict[str, Any], kind: str, ctype: str) -> dict[str, Any]:
    return {
        cid: conf for cid, conf in section(cfg, kind).items()
        if split_id(cid)[0] == ctype
    }


# --------------------------------------------------------------------------
# checkers (each returns a list of problems; empty list == OK)


def structure_problems(cfg: dict[str, Any]) -> list[str]:
    """Generic collector wiring rules (what `otelcol validate` would reject)
    plus best practice ordering of memory_limiter/batch."""
    problems: list[str] = []
    service = cfg.get("service")
    if not isinstance(service, dict):
        return ["service section missing"]
    pipes = pipelines(cfg)
    if not pipes:
        return ["service.pipelines missing or empty"]

    # definitions: ids, known types, known option names
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for cid, conf in section(cfg, kind).items():
            problems += id_problems(cid, kind)
            ctype = split_id(cid)[0]
            known = KNOWN_CONNECTORS if kind == "connectors" else KNOWN_TYPES[kind]
            if ctype not in known:
                problems.append(f"{kind}: unknown component type {ctype!r} ({cid})")
                continue
            if conf is not None and not isinstance(conf, dict):
                problems.append(f"{kind}.{cid}: config must be a mapping or empty")
                continue
            allowed = KNOWN_OPTIONS.get((kind, ctype))
            if allowed is not None:
                for opt in (conf or {}):
                    if opt not in allowed:
                        problems.append(f"{kind}.{cid}: unknown option {opt!r}")
            for (k, t, sub), sub_allowed in KNOWN_SUBOPTIONS.items():
                if (k, t) == (kind, ctype) and isinstance((conf or {}).get(sub), dict):
                    for opt in conf[sub]:
                        if opt not in sub_allowed:
                            problems.append(
                                f"{kind}.{cid}.{sub}: unknown option {opt!r}")

    receivers = section(cfg, "receivers")
    processors = section(cfg, "processors")
    exporters = section(cfg, "exporters")
    connectors = section(cfg, "connectors")
    used: dict[str, set[str]] = {k: set() for k in
                                 ("receivers", "processors", "exporters")}
    conn_as_exporter: dict[str, set[str]] = {}
    conn_as_receiver: dict[str, set[str]] = {}

    for pid, pipe in pipes.items():
        where = f"pipeline {pid}"
        problems += id_problems(pid, "service.pipelines")
        signal = signal_of(pid)
        if signal not in SIGNALS:
            problems.append(f"{where}: unknown signal type {signal!r}")
            continue
        if not isinstance(pipe, dict):
            problems.append(f"{where}: not a mapping")
            continue
        for field in ("receivers", "exporters"):
            if not pipe.get(field):
                problems.append(f"{where}: no {field}")
        for field in ("receivers", "processors", "exporters"):
            ids = pipe.get(field) or []
            if len(ids) != len(set(ids)):
                problems.append(f"{where}: duplicate entries in {field}")

        for rid in pipe.get("receivers") or []:
            if rid in connectors:
                conn_as_receiver.setdefault(rid, set()).add(signal)
            elif rid in receivers:
                used["receivers"].add(rid)
                sig_ok = KNOWN_TYPES["receivers"].get(split_id(rid)[0], ALL)
                if signal not in sig_ok:
                    problems.append(f"{where}: receiver {rid} does not support {signal}")
            else:
                problems.append(f"{where}: receiver {rid!r} is not defined")
        for xid in pipe.get("exporters") or []:
            if xid in connectors:
                conn_as_exporter.setdefault(xid, set()).add(signal)
            elif xid in exporters:
                used["exporters"].add(xid)
                sig_ok = KNOWN_TYPES["exporters"].get(split_id(xid)[0], ALL)
                if signal not in sig_ok:
                    problems.append(f"{where}: exporter {xid} does not support {signal}")
            else:
                problems.append(f"{where}: exporter {xid!r} is not defined")

        procs = pipe.get("processors") or []
        for prid in procs:
            if prid not in processors:
                problems.append(f"{where}: processor {prid!r} is not defined")
                continue
            used["processors"].add(prid)
            sig_ok = KNOWN_TYPES["processors"].get(split_id(prid)[0], ALL)
            if signal not in sig_ok:
                problems.append(f"{where}: processor {prid} does not support {signal}")
        types = [split_id(p)[0] for p in procs]
        if not types or types[0] != "memory_limiter":
            problems.append(f"{where}: memory_limiter must be the first processor")
        if not types or types[-1] != "batch":
            problems.append(f"{where}: batch must be the last processor")

    for kind, defined in (("receivers", receivers), ("processors", processors),
                          ("exporters", exporters)):
        for cid in defined:
            if cid not in used[kind]:
                problems.append(f"{kind}: {cid} is defined but not used in any pipeline")
    for cid in connectors:
        if cid not in conn_as_exporter or cid not in conn_as_receiver:
            problems.append(
                f"connectors: {cid} must be used as exporter in one pipeline "
                f"and as receiver in another")
            continue
        supported = KNOWN_CONNECTORS.get(split_id(cid)[0], frozenset())
        for exp_sig in conn_as_exporter[cid]:
            for rec_sig in conn_as_receiver[cid]:
                if (exp_sig, rec_sig) not in supported:
                    problems.append(
                        f"connectors: {cid} does not support {exp_sig} -> {rec_sig}")

    extensions = section(cfg, "extensions")
    enabled = service.get("extensions") or []
    for ext in enabled:
        if ext not in extensions:
            problems.append(f"service.extensions: {ext!r} is not defined")
    for ext in extensions:
        if ext not in enabled:
            problems.append(f"extensions: {ext} is defined but not enabled")
    if not any(split_id(e)[0] == "health_check" for e in enabled):
        problems.append("service.extensions: health_check is not enabled")
    if not isinstance(service.get("telemetry"), dict):
        problems.append("service.telemetry is missing")

    covered = {signal_of(p) for p in pipes}
    for sig in sorted(SIGNALS - covered):
        problems.append(f"no {sig} pipeline")
    return problems


def redaction_pipeline_problems(cfg: dict[str, Any]) -> list[str]:
    """A redaction processor in every pipeline; no summary attributes on metrics."""
    problems = []
    processors = section(cfg, "processors")
    for pid, pipe in pipelines(cfg).items():
        reds = [p for p in (pipe.get("processors") or [])
                if split_id(p)[0] == "redaction"]
        if not reds:
            problems.append(f"pipeline {pid}: no redaction processor")
        if signal_of(pid) == "metrics":
            for rid in reds:
                summary = (processors.get(rid) or {}).get("summary", "info")
                if summary != "silent":
                    problems.append(
                        f"pipeline {pid}: {rid} must use summary: silent on metrics "
                        f"(summary attributes create new series)")
    for rid, conf in components_of_type(cfg, "processors", "redaction").items():
        conf = conf or {}
        if conf.get("allow_all_keys") is not True and not conf.get("allowed_keys"):
            problems.append(
                f"processors.{rid}: allowed_keys empty and allow_all_keys not true "
                f"(would drop every attribute)")
        if not conf.get("blocked_values"):
            problems.append(f"processors.{rid}: no blocked_values")
    return problems


def env_ref_problems(cfg: dict[str, Any], documented: str) -> list[str]:
    """Every '$' must belong to a well-formed ${env:NAME[:-default]} reference,
    and every referenced variable must be documented in the README."""
    problems = []
    for path, text in walk_strings(cfg):
        for match in ENV_REF_RE.finditer(text):
            var = match.group(1)
            if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(var)}(?![A-Za-z0-9_])",
                             documented):
                problems.append(f"{path}: ${{env:{var}}} is not documented in README")
        rest = ENV_REF_RE.sub("", text).replace("$$", "")
        # A '$' not followed by '{', '$' or a name character stays literal in
        # the collector (e.g. the end-of-text anchor in `($|[._-])`); anything
        # else is a broken or unsupported reference ($VAR, ${VAR}, ${env:A-B}).
        if UNSAFE_DOLLAR_RE.search(rest):
            problems.append(f"{path}: malformed environment reference in {text!r}")
    return problems


def secret_problems(cfg: dict[str, Any]) -> list[str]:
    """Credentials must come from ${env:VAR} (no default) and no string may
    look like a literal credential."""
    problems = []
    for kind in ("exporters", "extensions", "receivers", "connectors"):
        for path, key, value in walk_items(section(cfg, kind), kind):
            if SECRET_KEY_RE.search(key) and not isinstance(value, (dict, list)):
                if not (isinstance(value, str) and ENV_ONLY_RE.match(value)):
                    problems.append(
                        f"{path}: credential must be a plain ${{env:VAR}} reference")
    for path, text in walk_strings(cfg):
        if any(rx.search(text) for rx in SECRET_LITERAL_RES):
            problems.append(f"{path}: looks like a literal secret")
    return problems


def regex_problems(cfg: dict[str, Any]) -> list[str]:
    """Redaction regexes: compile in Python, stay in the RE2/Python common
    subset, redact the sensitive samples and keep the harmless ones."""
    problems = []
    reds = components_of_type(cfg, "processors", "redaction")
    if not reds:
        return ["no redaction processor defined"]
    for rid, conf in reds.items():
        conf = conf or {}
        compiled: dict[str, list[re.Pattern[str]]] = {}
        for field in ("blocked_values", "blocked_key_patterns", "allowed_values"):
            compiled[field] = []
            for pattern in conf.get(field) or []:
                where = f"processors.{rid}.{field} {pattern!r}"
                for rx, what in NON_RE2:
                    if rx.search(pattern):
                        problems.append(f"{where}: uses {what}, not RE2-compatible")
                try:
                    compiled[field].append(re.compile(pattern))
                except re.error as exc:
                    problems.append(f"{where}: does not compile: {exc}")
        values = compiled["blocked_values"]
        for sample in VALUE_MUST_REDACT:
            if not any(rx.search(sample) for rx in values):
                problems.append(f"processors.{rid}: blocked_values miss {sample!r}")
        for sample in VALUE_MUST_KEEP:
            hits = [rx.pattern for rx in values if rx.search(sample)]
            if hits:
                problems.append(
                    f"processors.{rid}: blocked_values wrongly match {sample!r} ({hits})")
        keys = compiled["blocked_key_patterns"]
        if "blocked_key_patterns" in conf:
            for key in KEY_MUST_REDACT:
                if not any(rx.search(key) for rx in keys):
                    problems.append(
                        f"processors.{rid}: blocked_key_patterns miss key {key!r}")
            for key in KEY_MUST_KEEP:
                if any(rx.search(key) for rx in keys):
                    problems.append(
                        f"processors.{rid}: blocked_key_patterns wrongly match key {key!r}")
    return problems


def gateway_problems(cfg: dict[str, Any]) -> list[str]:
    """Backend-specific rules of the gateway."""
    problems = []
    pipes = pipelines(cfg)
    exporters = section(cfg, "exporters")

    # Prometheus: keep Avalo's metric names exactly.
    for ptype in ("prometheus", "prometheusremotewrite"):
        found = components_of_type(cfg, "exporters", ptype)
        if not found:
            problems.append(f"no {ptype} exporter")
        for xid, conf in found.items():
            if (conf or {}).get("add_metric_suffixes") is not False:
                problems.append(f"exporters.{xid}: add_metric_suffixes must be false")
    for xid, conf in components_of_type(cfg, "exporters", "prometheus").items():
        if not str((conf or {}).get("endpoint", "")).endswith(":8889"):
            problems.append(f"exporters.{xid}: endpoint must be on port 8889")
    for xid, conf in components_of_type(cfg, "exporters", "prometheusremotewrite").items():
        if (conf or {}).get("endpoint") != "${env:PROMETHEUS_REMOTE_WRITE_URL}":
            problems.append(f"exporters.{xid}: endpoint must be ${{env:PROMETHEUS_REMOTE_WRITE_URL}}")

    # New Relic: otlphttp + api-key header from env; delta temporality.
    nr = {xid: conf for xid, conf in exporters.items()
          if "newrelic" in xid or "nr-data.net" in str(conf)}
    if not nr:
        problems.append("no New Relic exporter")
    for xid, conf in nr.items():
        conf = conf or {}
        if split_id(xid)[0] != "otlphttp":
            problems.append(f"exporters.{xid}: New Relic exporter must be otlphttp")
        header = (conf.get("headers") or {}).get("api-key")
        if not (isinstance(header, str) and ENV_ONLY_RE.match(header)):
            problems.append(f"exporters.{xid}: api-key header must come from ${{env:...}}")
        if "otlp.nr-data.net" not in str(conf.get("endpoint", "")):
            problems.append(f"exporters.{xid}: endpoint should default to https://otlp.nr-data.net")

    cumulative_only = {
        xid for xid in exporters
        if split_id(xid)[0] in ("prometheus", "prometheusremotewrite", "datadog")
    }
    for pid, pipe in pipes.items():
        exps = pipe.get("exporters") or []
        procs = [split_id(p)[0] for p in (pipe.get("processors") or [])]
        if signal_of(pid) == "metrics" and any(x in nr for x in exps):
            if "cumulativetodelta" not in procs:
                problems.append(f"pipeline {pid}: metrics to New Relic need cumulativetodelta")
        if "cumulativetodelta" in procs and any(x in cumulative_only for x in exps):
            problems.append(
                f"pipeline {pid}: cumulativetodelta must not feed "
                f"{sorted(set(exps) & cumulative_only)} (they need cumulative data)")

    # Datadog: key from env, APM stats connector wired traces -> metrics.
    dd = components_of_type(cfg, "exporters", "datadog")
    if not dd:
        problems.append("no datadog exporter")
    for xid, conf in dd.items():
        api = (conf or {}).get("api") or {}
        if not (isinstance(api.get("key"), str) and api["key"] == "${env:DD_API_KEY}"):
            problems.append(f"exporters.{xid}: api.key must be ${{env:DD_API_KEY}}")
        if "DD_SITE" not in str(api.get("site", "")):
            problems.append(f"exporters.{xid}: api.site must come from DD_SITE")
    ddc = components_of_type(cfg, "connectors", "datadog")
    if dd and not ddc:
        problems.append("no datadog connector for APM stats")
    for cid in ddc:
        to_dd_metrics = any(
            cid in (p.get("receivers") or [])
            and any(x in dd for x in (p.get("exporters") or []))
            for pid, p in pipes.items() if signal_of(pid) == "metrics")
        if not to_dd_metrics:
            problems.append(f"connectors.{cid}: APM stats do not reach a datadog exporter")

    # Every signal reaches every backend that supports it.
    for sig, wanted in (("traces", ["datadog", "otlphttp"]),
                        ("metrics", ["datadog", "otlphttp", "prometheus",
                                     "prometheusremotewrite"]),
                        ("logs", ["datadog", "otlphttp"])):
        reached = {split_id(x)[0] for pid, p in pipes.items() if signal_of(pid) == sig
                   for x in (p.get("exporters") or []) if x in exporters}
        for t in wanted:
            if t not in reached:
                problems.append(f"{sig}: no pipeline exports to {t}")
    return problems


def agent_problems(cfg: dict[str, Any]) -> list[str]:
    problems = []
    otlp = section(cfg, "receivers").get("otlp") or {}
    protocols = otlp.get("protocols") or {}
    for proto, port in (("grpc", "4317"), ("http", "4318")):
        endpoint = str((protocols.get(proto) or {}).get("endpoint", ""))
        if not endpoint.endswith(":" + port):
            problems.append(f"receivers.otlp.protocols.{proto}: endpoint must use port {port}")
    out = section(cfg, "exporters").get("otlp") or {}
    if out.get("endpoint") != "${env:AVALO_GATEWAY_ENDPOINT}":
        problems.append("exporters.otlp.endpoint must be ${env:AVALO_GATEWAY_ENDPOINT}")
    for rid, conf in components_of_type(cfg, "processors", "resourcedetection").items():
        detectors = (conf or {}).get("detectors") or []
        for det in ("env", "system"):
            if det not in detectors:
                problems.append(f"processors.{rid}: detector {det!r} missing")
    if not components_of_type(cfg, "processors", "resourcedetection"):
        problems.append("no resourcedetection processor")
    for pid, pipe in pipelines(cfg).items():
        if not any(split_id(p)[0] == "resourcedetection"
                   for p in pipe.get("processors") or []):
            problems.append(f"pipeline {pid}: no resourcedetection")
    return problems


def memory_limiter_problems(cfg: dict[str, Any]) -> list[str]:
    problems = []
    limiters = components_of_type(cfg, "processors", "memory_limiter")
    if not limiters:
        problems.append("no memory_limiter processor")
    for mid, conf in limiters.items():
        conf = conf or {}
        for opt in ("check_interval", "limit_mib", "spike_limit_mib"):
            if opt not in conf:
                problems.append(f"processors.{mid}: {opt} missing")
        limit, spike = conf.get("limit_mib"), conf.get("spike_limit_mib")
        if isinstance(limit, int) and isinstance(spike, int) and not 0 < spike < limit:
            problems.append(f"processors.{mid}: spike_limit_mib must be < limit_mib")
    return problems


def all_problems(name: str, cfg: dict[str, Any], documented: str) -> list[str]:
    problems = (structure_problems(cfg) + redaction_pipeline_problems(cfg)
                + env_ref_problems(cfg, documented) + secret_problems(cfg)
                + regex_problems(cfg) + memory_limiter_problems(cfg))
    problems += gateway_problems(cfg) if name == GATEWAY else agent_problems(cfg)
    return problems


# --------------------------------------------------------------------------
# tests on the real files


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_yaml_parses(name: str) -> None:
    cfg = load(name)
    for key in ("receivers", "processors", "exporters", "service"):
        assert key in cfg, f"{name}: missing {key}"


def test_readme_exists_and_covers_topics() -> None:
    text = readme_text()
    for needle in ("otelcol-contrib --config collector-config/gateway.yaml",
                   "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317",
                   "AVALO_OTEL_PRESET", "post_fork", "service.instance.id",
                   "defence in depth", "otlp.eu01.nr-data.net", "uvicorn"):
        assert needle in text, f"README does not mention {needle!r}"


CHECKERS: list[tuple[str, Callable[..., list[str]], tuple[str, ...]]] = [
    ("structure", structure_problems, CONFIG_FILES),
    ("redaction_pipelines", redaction_pipeline_problems, CONFIG_FILES),
    ("secrets", secret_problems, CONFIG_FILES),
    ("regexes", regex_problems, CONFIG_FILES),
    ("memory_limiter", memory_limiter_problems, CONFIG_FILES),
    ("gateway", gateway_problems, (GATEWAY,)),
    ("agent", agent_problems, (AGENT,)),
]


@pytest.mark.parametrize(
    "check,name",
    [(fn, name) for _, fn, names in CHECKERS for name in names],
    ids=[f"{label}-{name}" for label, _, names in CHECKERS for name in names],
)
def test_real_config_passes(check: Callable[..., list[str]], name: str) -> None:
    assert check(load(name)) == []


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_env_refs_valid_and_documented(name: str) -> None:
    cfg = load(name)
    assert env_ref_problems(cfg, readme_text()) == []
    refs = {m.group(1) for _, s in walk_strings(cfg) for m in ENV_REF_RE.finditer(s)}
    assert refs, f"{name}: expected at least one ${{env:...}} reference"


def test_gateway_env_refs_are_the_expected_ones() -> None:
    cfg = load(GATEWAY)
    refs = {m.group(1) for _, s in walk_strings(cfg) for m in ENV_REF_RE.finditer(s)}
    assert {"DD_API_KEY", "DD_SITE", "NEW_RELIC_LICENSE_KEY",
            "PROMETHEUS_REMOTE_WRITE_URL"} <= refs


def test_gateway_pipeline_processor_lists() -> None:
    pipes = pipelines(load(GATEWAY))
    for pid, pipe in pipes.items():
        types = [split_id(p)[0] for p in pipe["processors"]]
        assert types[0] == "memory_limiter" and types[-1] == "batch", pid
        assert "redaction" in types, pid


def test_redaction_masks_a_realistic_message() -> None:
    """Apply blocked_values the way the processor does (mask matching parts)."""
    conf = load(GATEWAY)["processors"]["redaction"]
    message = ("user alice@example.com paid 4111 1111 1111 1111 with token "
               "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl "
               "op=wallet.spend trace=4bf92f3577b34da6a3ce929d0e0e4736")
    masked = message
    for pattern in conf["blocked_values"]:
        masked = re.sub(pattern, "****", masked)
    assert "@" not in masked
    assert "4111" not in masked
    assert "eyJ" not in masked
    assert "wallet.spend" in masked
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in masked


def test_both_configs_use_identical_redaction_rules() -> None:
    agent, gateway = load(AGENT), load(GATEWAY)
    for rid in ("redaction", "redaction/metrics"):
        for field in ("blocked_values", "blocked_key_patterns"):
            assert agent["processors"][rid][field] == gateway["processors"][rid][field]


def test_all_problems_empty_for_real_configs() -> None:
    documented = readme_text()
    for name in CONFIG_FILES:
        assert all_problems(name, load(name), documented) == [], name


# --------------------------------------------------------------------------
# the checkers detect deliberately broken copies


def _pipe(cfg: dict[str, Any], pid: str) -> dict[str, Any]:
    return cfg["service"]["pipelines"][pid]


def m_undefined_exporter(cfg):
    _pipe(cfg, "traces")["exporters"].append("otlp/missing")


def m_undefined_processor(cfg):
    _pipe(cfg, "logs")["processors"].insert(1, "attributes/nope")


def m_unused_processor(cfg):
    cfg["processors"]["batch/unused"] = {"timeout": "1s"}


def m_unused_exporter(cfg):
    cfg["exporters"]["otlphttp/unused"] = {"endpoint": "https://example.invalid"}


def m_memory_limiter_not_first(cfg):
    procs = _pipe(cfg, "traces")["processors"]
    procs[0], procs[1] = procs[1], procs[0]


def m_batch_not_last(cfg):
    procs = _pipe(cfg, "logs")["processors"]
    procs[-1], procs[-2] = procs[-2], procs[-1]


def m_no_redaction_in_logs(cfg):
    procs = _pipe(cfg, "logs")["processors"]
    procs.remove("redaction")


def m_summary_on_metrics(cfg):
    cfg["processors"]["redaction/metrics"]["summary"] = "debug"


def m_connector_only_exporter(cfg):
    _pipe(cfg, "metrics/datadog")["receivers"].remove("datadog/connector")


def m_connector_bad_signal(cfg):
    _pipe(cfg, "logs")["receivers"].append("datadog/connector")


def m_prometheus_on_traces(cfg):
    _pipe(cfg, "traces")["exporters"].append("prometheus")


def m_unknown_type(cfg):
    cfg["exporters"]["prometheus_remote_write"] = cfg["exporters"].pop("prometheusremotewrite")
    exps = _pipe(cfg, "metrics/prometheus")["exporters"]
    exps[exps.index("prometheusremotewrite")] = "prometheus_remote_write"


def m_unknown_option(cfg):
    conf = cfg["exporters"]["prometheus"]
    conf["add_metrics_suffixes"] = conf.pop("add_metric_suffixes")


def m_unknown_datadog_api_option(cfg):
    cfg["exporters"]["datadog"]["api"]["api_key"] = "${env:DD_API_KEY}"


def m_bad_component_id(cfg):
    cfg["processors"]["batch/"] = cfg["processors"].pop("batch")
    for pipe in cfg["service"]["pipelines"].values():
        pipe["processors"] = ["batch/" if p == "batch" else p for p in pipe["processors"]]


def m_bad_pipeline_signal(cfg):
    cfg["service"]["pipelines"]["spans"] = cfg["service"]["pipelines"].pop("traces")


def m_extension_not_enabled(cfg):
    cfg["service"]["extensions"] = []


def m_no_logs_pipeline(cfg):
    del cfg["service"]["pipelines"]["logs"]


def m_suffixes_on(cfg):
    cfg["exporters"]["prometheus"]["add_metric_suffixes"] = True


def m_remote_write_suffixes_missing(cfg):
    del cfg["exporters"]["prometheusremotewrite"]["add_metric_suffixes"]


def m_newrelic_grpc(cfg):
    conf = cfg["exporters"].pop("otlphttp/newrelic")
    cfg["exporters"]["otlp/newrelic"] = conf
    for pipe in cfg["service"]["pipelines"].values():
        pipe["exporters"] = ["otlp/newrelic" if x == "otlphttp/newrelic" else x
                             for x in pipe["exporters"]]


def m_newrelic_literal_key(cfg):
    cfg["exporters"]["otlphttp/newrelic"]["headers"]["api-key"] = (
        "0123456789abcdef0123456789abcdef0123NRAL")


def m_newrelic_no_delta(cfg):
    _pipe(cfg, "metrics/newrelic")["processors"].remove("cumulativetodelta")
    del cfg["processors"]["cumulativetodelta"]


def m_delta_to_prometheus(cfg):
    _pipe(cfg, "metrics/prometheus")["processors"].insert(2, "cumulativetodelta")


def m_datadog_literal_key(cfg):
    cfg["exporters"]["datadog"]["api"]["key"] = "0123456789abcdef0123456789abcdef"


def m_datadog_key_with_default(cfg):
    cfg["exporters"]["datadog"]["api"]["key"] = "${env:DD_API_KEY:-changeme}"


def m_bare_env_ref(cfg):
    cfg["exporters"]["prometheusremotewrite"]["endpoint"] = "${PROMETHEUS_REMOTE_WRITE_URL}"


def m_dollar_env_ref(cfg):
    cfg["exporters"]["datadog"]["api"]["site"] = "$DD_SITE"


def m_bad_env_name(cfg):
    cfg["exporters"]["datadog"]["api"]["site"] = "${env:DD-SITE}"


def m_undocumented_env(cfg):
    cfg["exporters"]["otlphttp/newrelic"]["endpoint"] = "${env:AVALO_TOTALLY_UNDOCUMENTED}"


def m_regex_too_broad(cfg):
    cfg["processors"]["redaction"]["blocked_values"].append(r"[a-z]+\.[a-z]+")


def m_regex_lookahead(cfg):
    cfg["processors"]["redaction"]["blocked_values"].append(r"(?=secret)secret\w+")


def m_regex_invalid(cfg):
    cfg["processors"]["redaction"]["blocked_values"].append(r"[unclosed")


def m_regex_no_email(cfg):
    vals = cfg["processors"]["redaction"]["blocked_values"]
    vals[:] = [v for v in vals if "@" not in v]


def m_regex_card_matches_hex(cfg):
    vals = cfg["processors"]["redaction"]["blocked_values"]
    vals[:] = [r"[0-9a-f]{13,}" if "[2-6]" in v else v for v in vals]


def m_key_pattern_token(cfg):
    cfg["processors"]["redaction"]["blocked_key_patterns"].append("(?i).*token.*")


def m_redaction_drops_all(cfg):
    cfg["processors"]["redaction"]["allow_all_keys"] = False


def m_no_dd_connector(cfg):
    del cfg["connectors"]
    _pipe(cfg, "traces")["exporters"].remove("datadog/connector")
    _pipe(cfg, "metrics/datadog")["receivers"].remove("datadog/connector")


def m_spike_over_limit(cfg):
    cfg["processors"]["memory_limiter"]["spike_limit_mib"] = 99999


def m_agent_literal_gateway(cfg):
    cfg["exporters"]["otlp"]["endpoint"] = "gateway.example:4317"


def m_agent_no_system_detector(cfg):
    cfg["processors"]["resourcedetection"]["detectors"] = ["env"]


def m_agent_wrong_port(cfg):
    cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "localhost:9999"


MUTATIONS = [
    # (config, mutation, checker, expected fragment of a problem)
    (GATEWAY, m_undefined_exporter, structure_problems, "'otlp/missing' is not defined"),
    (GATEWAY, m_undefined_processor, structure_problems, "'attributes/nope' is not defined"),
    (GATEWAY, m_unused_processor, structure_problems, "batch/unused is defined but not used"),
    (AGENT, m_unused_exporter, structure_problems, "otlphttp/unused is defined but not used"),
    (GATEWAY, m_memory_limiter_not_first, structure_problems, "memory_limiter must be the first"),
    (AGENT, m_memory_limiter_not_first, structure_problems, "memory_limiter must be the first"),
    (GATEWAY, m_batch_not_last, structure_problems, "batch must be the last"),
    (GATEWAY, m_connector_only_exporter, structure_problems, "must be used as exporter in one pipeline and as receiver"),
    (GATEWAY, m_connector_bad_signal, structure_problems, "does not support traces -> logs"),
    (GATEWAY, m_prometheus_on_traces, structure_problems, "exporter prometheus does not support traces"),
    (GATEWAY, m_unknown_type, structure_problems, "unknown component type 'prometheus_remote_write'"),
    (GATEWAY, m_unknown_option, structure_problems, "unknown option 'add_metrics_suffixes'"),
    (GATEWAY, m_unknown_datadog_api_option, structure_problems, "unknown option 'api_key'"),
    (GATEWAY, m_bad_component_id, structure_problems, "invalid component name in id 'batch/'"),
    (GATEWAY, m_bad_pipeline_signal, structure_problems, "unknown signal type 'spans'"),
    (AGENT, m_extension_not_enabled, structure_problems, "health_check is defined but not enabled"),
    (GATEWAY, m_no_logs_pipeline, structure_problems, "no logs pipeline"),
    (GATEWAY, m_no_redaction_in_logs, redaction_pipeline_problems, "pipeline logs: no redaction processor"),
    (AGENT, m_no_redaction_in_logs, redaction_pipeline_problems, "pipeline logs: no redaction processor"),
    (GATEWAY, m_summary_on_metrics, redaction_pipeline_problems, "must use summary: silent"),
    (GATEWAY, m_redaction_drops_all, redaction_pipeline_problems, "would drop every attribute"),
    (GATEWAY, m_suffixes_on, gateway_problems, "exporters.prometheus: add_metric_suffixes must be false"),
    (GATEWAY, m_remote_write_suffixes_missing, gateway_problems, "exporters.prometheusremotewrite: add_metric_suffixes must be false"),
    (GATEWAY, m_newrelic_grpc, gateway_problems, "New Relic exporter must be otlphttp"),
    (GATEWAY, m_newrelic_literal_key, gateway_problems, "api-key header must come from"),
    (GATEWAY, m_newrelic_literal_key, secret_problems, "credential must be a plain"),
    (GATEWAY, m_newrelic_no_delta, gateway_problems, "metrics to New Relic need cumulativetodelta"),
    (GATEWAY, m_delta_to_prometheus, gateway_problems, "cumulativetodelta must not feed"),
    (GATEWAY, m_no_dd_connector, gateway_problems, "no datadog connector"),
    (GATEWAY, m_datadog_literal_key, secret_problems, "looks like a literal secret"),
    (GATEWAY, m_datadog_key_with_default, secret_problems, "credential must be a plain"),
    (GATEWAY, m_bare_env_ref, None, "malformed environment reference"),
    (GATEWAY, m_dollar_env_ref, None, "malformed environment reference"),
    (GATEWAY, m_bad_env_name, None, "malformed environment reference"),
    (GATEWAY, m_undocumented_env, None, "AVALO_TOTALLY_UNDOCUMENTED} is not documented"),
    (GATEWAY, m_regex_too_broad, regex_problems, "blocked_values wrongly match 'wallet.spend'"),
    (GATEWAY, m_regex_lookahead, regex_problems, "look-ahead, not RE2-compatible"),
    (GATEWAY, m_regex_invalid, regex_problems, "does not compile"),
    (GATEWAY, m_regex_no_email, regex_problems, "blocked_values miss 'alice.smith+avalo@example.com'"),
    (GATEWAY, m_regex_card_matches_hex, regex_problems, "wrongly match '4bf92f3577b34da6a3ce929d0e0e4736'"),
    (AGENT, m_key_pattern_token, regex_problems, "wrongly match key 'gen_ai.usage.input_tokens'"),
    (GATEWAY, m_spike_over_limit, memory_limiter_problems, "spike_limit_mib must be < limit_mib"),
    (AGENT, m_agent_literal_gateway, agent_problems, "AVALO_GATEWAY_ENDPOINT"),
    (AGENT, m_agent_no_system_detector, agent_problems, "detector 'system' missing"),
    (AGENT, m_agent_wrong_port, agent_problems, "must use port 4317"),
]


@pytest.mark.parametrize(
    "name,mutate,check,expected",
    MUTATIONS,
    ids=[f"{n.split('.')[0]}-{m.__name__[2:]}" for n, m, _, _ in MUTATIONS],
)
def test_checker_detects_breakage(name, mutate, check, expected) -> None:
    original = load(name)
    broken = copy.deepcopy(original)
    mutate(broken)
    assert broken != original, "mutation did not change the config"
    if check is None:
        problems = env_ref_problems(broken, readme_text())
        assert env_ref_problems(original, readme_text()) == []
    else:
        problems = check(broken)
        assert check(original) == [], "checker must pass on the unmodified config"
    assert any(expected in p for p in problems), (
        f"expected a problem containing {expected!r}, got {problems}")
    # The whole validation of that file must fail too.
    assert all_problems(name, broken, readme_text()) != []
