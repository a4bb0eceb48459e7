from __future__ import annotations

import pytest

from script_runner.config import constants as c
from script_runner.config.platform_rules import autopilot_bend
from script_runner.config.settings_loader import load_settings
from script_runner.config.units import parse_bytes, parse_cpu
from script_runner.discover.directives import parse_directives
from script_runner.discover.resolve import resolve
from script_runner.discover.spec import ScriptObject
from script_runner.exceptions import DirectiveError

LOCAL = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})
OBJ = ScriptObject(path="etl/load.sh", uri="gs://b/data/etl/load.sh", generation="7", md5="x")


def plan(header: str, settings=LOCAL):  # type: ignore[no-untyped-def]
    return resolve(OBJ, parse_directives(OBJ.path, header), settings)


def test_directives_full_header_resolves() -> None:
    spec = plan(
        "#!/usr/bin/env bash\n"
        "# Nightly load\n"
        "# runner: cpu=250m memory=1Gi timeout=30m retries=3\n"
        '# runner: env="GREETING=hello world" env=TARGET=prod needs=gs://b/out/:write oom_retry=true\n'
        "# runner: fail_on=2,3 skip_on=10 start_timeout=90s retry_delay=5s\n"
        "set -e\n"
    )
    assert (spec.cpu, spec.memory, spec.timeout, spec.retries) == ("250m", "1Gi", 1800, 3)
    assert spec.env == {"GREETING": "hello world", "TARGET": "prod"}
    assert spec.needs == ["gs://b/out/:write"]
    assert spec.oom_retry is True
    assert (spec.fail_on, spec.skip_on, spec.start_timeout, spec.retry_delay) == ([2, 3], [10], 90, 5)


def test_directives_defaults_apply_without_header() -> None:
    spec = plan("#!/bin/bash\necho hi\n")
    assert (spec.cpu, spec.memory, spec.retries, spec.timeout) == ("500m", "512Mi", 2, 3600)
    assert spec.image == "localhost/script-runner:local"


@pytest.mark.parametrize(
    ("header", "line", "message", "fix"),
    [
        pytest.param("# runner: cpu=lots", 1, "not a Kubernetes quantity", "cpu=500m", id="bad-cpu"),
        pytest.param(
            "#!/bin/bash\n# runner: memory=2GB", 2, "not a Kubernetes quantity", "memory=", id="bad-mem"
        ),
        pytest.param("# runner: memory=64Gi", 1, "above the cap 16Gi", "max_memory", id="mem-cap"),
        pytest.param("# runner: timeout=forever", 1, "not like 90s", "timeout=30m", id="bad-duration"),
        pytest.param("# runner: timeout=3d", 1, "above the cap 24h", "timeout=24h", id="timeout-cap"),
        pytest.param("# runner: retries=many", 1, "not a whole number", "retries=2", id="bad-retries"),
        pytest.param("# runner: retries=9", 1, "above the cap 5", "retries=5", id="retries-cap"),
        pytest.param(
            "# runner: memmory=1Gi", 1, "unknown directive 'memmory'", "did you mean memory", id="typo"
        ),
        pytest.param("# runner: cpu", 1, "is not key=value", "key=value", id="no-equals"),
        pytest.param("# runner: cpu=1 cpu=2", 1, "set twice", "keep one", id="twice"),
        pytest.param(
            "# runner: image=evil/miner:1", 1, "not in the image allowlist", "image_allowlist", id="image"
        ),
        pytest.param(
            "# runner: service_account=root", 1, "not allowed", "service_account_allowlist", id="sa"
        ),
        pytest.param("# runner: env=RUNNER_LIB=x", 1, "reserved", "RUNNER_", id="reserved-env"),
        pytest.param("# runner: env=1BAD=x", 1, "not NAME=value", "NAME=value", id="bad-env"),
        pytest.param("# runner: needs=s3://x:read", 1, "is not gs://", "needs=gs://", id="bad-needs"),
        pytest.param(
            "# runner: needs=bq:sales:read", 1, "bq:project:dataset", "needs=gs://", id="bq-no-project"
        ),
        pytest.param("# runner: fail_on=2,300", 1, "exit codes 1-255", "fail_on=2,3", id="bad-codes"),
        pytest.param("# runner: fault=meteor", 1, "unknown", "use one of", id="bad-fault"),
        pytest.param('# runner: env="A=b', 1, "cannot split", "close the quote", id="quote"),
    ],
)
def test_directives_errors_name_script_line_and_fix(header: str, line: int, message: str, fix: str) -> None:
    with pytest.raises(DirectiveError) as info:
        plan(header)
    err = info.value
    assert err.script == "etl/load.sh"
    assert err.line == line
    assert message in err.message
    assert fix in err.fix
    assert str(err).startswith(f"etl/load.sh:{line}: ")


def test_directives_fault_rejected_outside_local() -> None:
    gke = load_settings(
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "gke", "SCRIPT_RUNNER_IMAGE": "img"}
    )
    with pytest.raises(DirectiveError, match="only honoured on the local stack"):
        plan("# runner: fault=oom", gke)


def test_directives_allowlisted_service_account_and_image() -> None:
    s = load_settings(
        environ={
            "GCS_BUCKET": "b",
            "SCRIPT_RUNNER_PRESET": "gke",
            "SCRIPT_RUNNER_IMAGE": "img:1",
            "SCRIPT_RUNNER_IMAGE_ALLOWLIST": "img:*",
            "SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST": "loader",
            "SCRIPT_RUNNER_IDENTITY_BINDINGS": '{"*": {"service_accounts": ["loader"]}}',
        }
    )
    spec = plan("# runner: service_account=loader image=img:2", s)
    assert (spec.service_account, spec.image) == ("loader", "img:2")


def test_directives_missing_image_is_a_clear_rejection() -> None:
    gke = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "gke"})
    with pytest.raises(DirectiveError, match="no runner image") as info:
        plan("#!/bin/bash", gke)
    assert "SCRIPT_RUNNER_IMAGE" in info.value.fix


@pytest.mark.parametrize(
    ("cpu", "memory", "want_cpu", "want_mem_gib"),
    [
        pytest.param("100m", "128Mi", "0.25", "0.5", id="minimums"),
        pytest.param("2", "1Gi", "2", "2", id="memory-raised-to-ratio-1"),
        pytest.param("250m", "8Gi", "1.25", "8", id="cpu-raised-to-ratio-6.5"),
        pytest.param("300m", "1Gi", "0.5", "1", id="cpu-step-250m"),
    ],
)
def test_autopilot_bend_follows_autopilot_rules(
    cpu: str, memory: str, want_cpu: str, want_mem_gib: str
) -> None:
    new_cpu, new_mem, notes = autopilot_bend(parse_cpu(cpu), parse_bytes(memory))
    assert new_cpu == parse_cpu(want_cpu)
    assert new_mem == parse_bytes(f"{want_mem_gib}Gi")
    ratio = (new_mem / 1024**3) / new_cpu
    assert 1 <= ratio <= 6.5
    assert notes


def test_autopilot_preset_bends_and_notes_it() -> None:
    c2 = load_settings(
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "composer2", "SCRIPT_RUNNER_IMAGE": "i"}
    )
    spec = plan("# runner: cpu=100m memory=100Mi", c2)
    assert (spec.cpu, spec.memory) == ("250m", "512Mi")
    assert any("autopilot" in n for n in spec.notes)


@pytest.mark.parametrize(
    "name",
    [
        *sorted(c.RESERVED_ENV_NAMES),
        "RUNNER_SCRIPT_MD5",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GCE_METADATA_HOST",
        "BOTO_CONFIG",
        "STORAGE_EMULATOR_HOST",
        "KUBERNETES_SERVICE_HOST",
        "AIRFLOW_CONN_X",
        "google_cloud_project",
        *sorted(c.RESERVED_EVERYWHERE_NAMES),
        "http_proxy",
        "HTTPS_PROXY",
        "No_Proxy",
        "CURL_CA_BUNDLE",
        "curl_home",
        "_RUNNER_TOKEN",
        "_ENTRY_CHILD",
    ],
)
def test_directives_reserved_env_names_are_rejected_with_why_and_fix(name: str) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_directives("x.sh", f"# runner: env={name}=v\n")
    assert info.value.message.startswith(f"env {name} is reserved: ")
    assert f"MY_{name}" in info.value.fix


@pytest.mark.parametrize(
    "name", ["TARGET", "path", "MY_PATH", "HOMEDIR", "RUNNERS", "GOOGLEY", "PROXY_HOST", "tmpdir", "CURLY"]
)
def test_directives_ordinary_env_names_are_accepted(name: str) -> None:
    assert parse_directives("x.sh", f"# runner: env={name}=v\n").env == {name: "v"}


def test_directives_collect_every_problem_when_asked() -> None:
    errors: list[DirectiveError] = []
    raw = parse_directives(
        "x.sh", "# runner: colour=red cpu=1 cpu=2\n# runner: env=PATH=/x memory=1Gi\n", errors=errors
    )
    assert [(e.line, e.message.split(" ")[0]) for e in errors] == [(1, "unknown"), (1, "cpu"), (2, "env")]
    assert raw.values == {"cpu": "1", "memory": "1Gi"}


_RUNNER_WHY = f"RUNNER_* {c.RESERVED_ENV_PREFIXES['RUNNER_']}"


@pytest.mark.parametrize(
    ("token", "message", "fix"),
    [
        pytest.param(
            "env=1BAD=x",
            "env '1BAD=x' is not NAME=value",
            "write env=NAME=value with NAME of letters, digits and _",
            id="env-bad-name",
        ),
        pytest.param(
            "env=NOVALUE",
            "env 'NOVALUE' is not NAME=value",
            "write env=NAME=value with NAME of letters, digits and _",
            id="env-no-equals",
        ),
        pytest.param(
            "env=RUNNER_X=1",
            f"env RUNNER_X is reserved: {_RUNNER_WHY}",
            "use another name (e.g. MY_RUNNER_X) and read it in the script; what the runner needs belongs in the "
            "runner settings, not in env=",
            id="env-reserved",
        ),
        pytest.param(
            "secret=wh:1BAD",
            "secret 'wh:1BAD': '1BAD' is not an environment variable name",
            "name a variable of letters, digits and _ after the last ':' (or write :file)",
            id="secret-bad-name",
        ),
        pytest.param(
            "secret=wh:RUNNER_X",
            f"secret 'wh:RUNNER_X': RUNNER_X is reserved: {_RUNNER_WHY}",
            "use another name, e.g. MY_RUNNER_X",
            id="secret-reserved",
        ),
    ],
)
def test_directives_env_and_secret_variable_name_errors_keep_their_wording(
    token: str, message: str, fix: str
) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_directives("x.sh", f"# runner: {token}\n")
    assert (info.value.message, info.value.fix) == (message, fix)


@pytest.mark.parametrize(
    ("header", "line"),
    [
        pytest.param("#!/bin/bash\nset -e\n# runner: memory=2Gi\necho hi\n", 3, id="after-set-e"),
        pytest.param(
            "#!/bin/bash\n# runner: cpu=1\nset -Eeuo pipefail\n\n  # runner: memory=2Gi\n", 5, id="indented"
        ),
    ],
)
def test_directives_line_after_the_first_command_is_an_error(header: str, line: int) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_directives("x.sh", header)
    assert info.value.line == line
    assert "after the first command" in info.value.message
    assert "would be ignored" in info.value.message
    assert info.value.fix == "move the line into the header, before the first command"


def test_directives_late_line_survives_the_header_cache_text() -> None:
    from script_runner.discover.header_cache import directive_text

    text = directive_text("#!/bin/bash\n# runner: cpu=1\n# a comment\nset -e\n# runner: memory=2Gi\necho\n")
    errors: list[DirectiveError] = []
    raw = parse_directives("x.sh", text, errors=errors)
    assert raw.values == {"cpu": "1"}
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [(5, "# runner")]
    assert "(line 4)" in errors[0].message


def test_directives_comment_mentioning_runner_after_code_is_not_a_directive() -> None:
    assert parse_directives("x.sh", "#!/bin/bash\necho hi\n# the runner runs this daily\n").values == {}


@pytest.mark.parametrize(
    ("line", "message", "fix"),
    [
        pytest.param(
            "env=GREETING=hi there",
            "'there' is not key=value: the value of env= ends at the space before it",
            'quote values with spaces: env="GREETING=hi there"',
            id="env",
        ),
        pytest.param(
            "timeout=1 hour",
            "timeout=1 hour: a duration has no spaces ('hour' is read as another directive)",
            "write timeout=1h (forms: 90s, 30m, 1h30m, 2d)",
            id="timeout-hour",
        ),
        pytest.param(
            "retry_delay=90 seconds",
            "retry_delay=90 seconds: a duration has no spaces ('seconds' is read as another directive)",
            "write retry_delay=90s (forms: 90s, 30m, 1h30m, 2d)",
            id="retry-delay-seconds",
        ),
        pytest.param(
            "start_timeout=soon please",
            "start_timeout=soon please: a duration has no spaces ('please' is read as another directive)",
            "write start_timeout=1h30m (forms: 90s, 30m, 1h30m, 2d)",
            id="duration-other-word",
        ),
    ],
)
def test_directives_value_with_an_unquoted_space_names_the_fix(line: str, message: str, fix: str) -> None:
    errors: list[DirectiveError] = []
    parse_directives("x.sh", f"# runner: {line}\n", errors=errors)
    assert [(e.message, e.fix) for e in errors] == [(message, fix)]


def test_directives_quoted_value_with_spaces_is_fine() -> None:
    assert parse_directives("x.sh", '# runner: env="GREETING=hi there"\n').env == {"GREETING": "hi there"}


@pytest.mark.parametrize(
    ("directive", "message", "fix"),
    [
        pytest.param(
            "memory=1G",
            "memory=1G means 10^9 bytes (G is a decimal unit), not 1Gi",
            "write memory=1Gi, or memory=1000000000 if you mean 10^9",
            id="1G",
        ),
        pytest.param(
            "memory=512M",
            "memory=512M means 512x10^6 bytes (M is a decimal unit), not 512Mi",
            "write memory=512Mi, or memory=512000000 if you mean 512x10^6",
            id="512M",
        ),
        pytest.param(
            "ephemeral_storage=2G",
            "ephemeral_storage=2G means 2x10^9 bytes (G is a decimal unit), not 2Gi",
            "write ephemeral_storage=2Gi, or ephemeral_storage=2000000000 if you mean 2x10^9",
            id="storage",
        ),
    ],
)
def test_directives_decimal_memory_unit_is_a_warning_not_a_rejection(
    directive: str, message: str, fix: str
) -> None:
    spec = plan(f"# runner: {directive}\n")
    assert [(w.line, w.message, w.fix) for w in spec.warnings] == [(1, message, fix)]


def test_directives_binary_memory_unit_gives_no_warning() -> None:
    assert plan("# runner: memory=1Gi ephemeral_storage=2Gi\n").warnings == []


@pytest.mark.parametrize(
    ("directive", "message", "fix"),
    [
        pytest.param(
            "memory=512",
            "memory=512 has no unit, so it means 512 bytes",
            "write memory=512Mi (or 512Gi); a unit is required",
            id="memory",
        ),
        pytest.param(
            "ephemeral_storage=2",
            "ephemeral_storage=2 has no unit, so it means 2 bytes",
            "write ephemeral_storage=2Mi (or 2Gi); a unit is required",
            id="storage",
        ),
    ],
)
def test_directives_unitless_memory_is_refused_with_the_unit(directive: str, message: str, fix: str) -> None:
    with pytest.raises(DirectiveError) as info:
        plan(f"#!/bin/bash\n# runner: {directive}\n")
    assert (info.value.script, info.value.line, info.value.message, info.value.fix) == (
        OBJ.path,
        2,
        message,
        fix,
    )
