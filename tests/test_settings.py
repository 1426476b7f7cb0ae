"""Settings: keyword arguments over environment over defaults, validated with clear messages."""

from __future__ import annotations

import pytest

from avalo_otel import ConfigurationError, Level, Settings


def test_defaults_without_environment():
    s = Settings.load(environ={})
    assert s.service_name == "avalo" and s.min_level is Level.INFO and s.sampling_rate == 1.0
    assert s.metrics_exporters == ("prometheus",) and s.traces_exporters == () and s.logs_exporters == ()
    assert (s.prometheus_host, s.prometheus_port) == ("127.0.0.1", 9464)


def test_standard_and_avalo_variables_are_read():
    s = Settings.load(environ={
        "OTEL_SERVICE_NAME": "chat-api", "AVALO_OTEL_MIN_LEVEL": "warning", "AVALO_OTEL_SAMPLING_RATE": "0.1",
        "OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317/",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-token=a%3Db,other=2", "OTEL_EXPORTER_PROMETHEUS_PORT": "9500",
    })
    assert s.service_name == "chat-api" and s.min_level is Level.WARN and s.sampling_rate == 0.1
    assert s.traces_exporters == ("otlp", "console")
    assert s.otlp_endpoint == "http://collector:4317"
    assert s.otlp_headers == {"x-token": "a=b", "other": "2"}
    assert s.prometheus_port == 9500
    assert (s.logs_schedule_delay_ms, s.traces_schedule_delay_ms) == (1000, 5000)  # the OTel defaults
    delays = Settings.load(environ={"OTEL_BLRP_SCHEDULE_DELAY": "250", "OTEL_BSP_SCHEDULE_DELAY": "2000"})
    assert (delays.logs_schedule_delay_ms, delays.traces_schedule_delay_ms) == (250, 2000)
    # an endpoint turns OTLP on for the signals not set explicitly
    assert s.logs_exporters == ("otlp",) and s.metrics_exporters == ("prometheus", "otlp")


def test_keyword_arguments_win_over_environment():
    s = Settings.load(environ={"OTEL_SERVICE_NAME": "env", "AVALO_OTEL_SAMPLING_RATE": "0.5"},
                      service_name="kw", sampling_rate=0.25)
    assert (s.service_name, s.sampling_rate) == ("kw", 0.25)


def test_sampler_variables_set_the_rate():
    env = {"OTEL_TRACES_SAMPLER": "avalo", "OTEL_TRACES_SAMPLER_ARG": "0.2"}
    assert Settings.load(environ=env).sampling_rate == 0.2
    assert Settings.load(environ={**env, "AVALO_OTEL_SAMPLING_RATE": "0.3"}).sampling_rate == 0.3


@pytest.mark.parametrize("env, needle", [
    ({"AVALO_OTEL_SAMPLING_RATE": "abc"}, "AVALO_OTEL_SAMPLING_RATE='abc'"),
    ({"AVALO_OTEL_SAMPLING_RATE": "1.5"}, "between 0 and 1"),
    ({"AVALO_OTEL_MIN_LEVEL": "LOUD"}, "AVALO_OTEL_MIN_LEVEL"),
    ({"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "unknown exporter zipkin"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "http:// or https://"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:99999"}, "port"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "grpc, http/protobuf"),
    ({"OTEL_EXPORTER_PROMETHEUS_PORT": "-1"}, "0 to 65535"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "1.5"}, "whole number"),
    ({"OTEL_BLRP_SCHEDULE_DELAY": "0"}, "OTEL_BLRP_SCHEDULE_DELAY='0'"),
    ({"AVALO_OTEL_PRESET": "splunk"}, "none, datadog, newrelic"),
    ({"AVALO_OTEL_STRICT": "maybe"}, "true or false"),
    ({"AVALO_OTEL_PHONE_REGIONS": "PL,XX"}, "unknown phone region XX"),
])
def test_bad_values_fail_with_the_variable_named(env, needle):
    with pytest.raises(ConfigurationError) as err:
        Settings.load(environ=env)
    assert needle in str(err.value)


def test_phone_regions_default_to_the_markets_and_are_read():
    assert Settings.load(environ={}).phone_regions == ("PL", "DE", "GB", "US", "FR", "UA")
    assert Settings.load(environ={"AVALO_OTEL_PHONE_REGIONS": "pl, it"}).phone_regions == ("PL", "IT")
    assert Settings.load(environ={"AVALO_OTEL_PHONE_REGIONS": "none"}).phone_regions == ()
    assert Settings.load(environ={}, phone_regions=()).phone_regions == ()


def test_unknown_keyword_is_rejected():
    with pytest.raises(ConfigurationError, match="unknown setting"):
        Settings.load(environ={}, sampling=0.1)


def test_secrets_never_printed():
    s = Settings.load(environ={"OTEL_EXPORTER_OTLP_HEADERS": "api-key=supersecret"},
                      preset="newrelic", newrelic_license_key="NRAK-SECRET", pseudonym_key="pk-secret")
    shown = repr(s) + str(s.describe())
    for secret in ("supersecret", "NRAK-SECRET", "pk-secret"):
        assert secret not in shown
    with pytest.raises(ConfigurationError) as err:
        Settings.load(environ={"OTEL_EXPORTER_OTLP_HEADERS": "broken-secret-no-equals"})
    assert "broken-secret" not in str(err.value)


def test_newrelic_preset():
    us = Settings.load(environ={"NEW_RELIC_LICENSE_KEY": "NRAK-1", "AVALO_OTEL_PRESET": "newrelic"})
    assert us.otlp_endpoint == "https://otlp.nr-data.net:4318" and us.otlp_protocol == "http/protobuf"
    assert us.otlp_headers["api-key"] == "NRAK-1" and us.metrics_temporality == "delta"
    assert (us.attribute_value_length_limit, us.attribute_count_limit) == (4095, 64)
    assert us.traces_exporters == ("otlp",) and us.logs_exporters == ("otlp",)
    eu = Settings.load(environ={"NEW_RELIC_LICENSE_KEY": "eu01xxKEY", "AVALO_OTEL_PRESET": "newrelic"})
    assert eu.otlp_endpoint == "https://otlp.eu01.nr-data.net:4318" and eu.newrelic_region == "eu"
    with pytest.raises(ConfigurationError, match="NEW_RELIC_LICENSE_KEY"):
        Settings.load(environ={"AVALO_OTEL_PRESET": "newrelic"})


def test_datadog_preset():
    s = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog"})
    assert s.otlp_endpoint == "http://localhost:4317" and s.metrics_temporality == "delta"
    http = Settings.load(environ={"AVALO_OTEL_PRESET": "datadog", "DD_AGENT_HOST": "dd-agent",
                                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert http.otlp_endpoint == "http://dd-agent:4318"


def test_explicit_exporter_lists_are_kept():
    s = Settings.load(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "prometheus",
                               "OTEL_LOGS_EXPORTER": "none"})
    assert s.metrics_exporters == ("prometheus",) and s.logs_exporters == () and s.traces_exporters == ("otlp",)
