"""``script-runner deploy``: version checks, uploads to a real GCS emulator bucket, the Variable through gcloud.

gcloud is a small fake executable on PATH (no Composer here) that answers ``describe`` with a canned
environment and keeps the Variable in a file, recording every call.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from script_runner.cli.main import main
from script_runner.config.settings_loader import load_settings
from script_runner.deploy.files import local_files
from script_runner.deploy.versions import (
    Versions,
    load_support_table,
    parse_versions_option,
    versions_from_describe,
)
from script_runner.exceptions import DeployError

DAGS = Path(__file__).resolve().parents[4] / "dags"

FAKE_GCLOUD = r"""#!/usr/bin/env python3
import json, os, sys
state = os.environ["FAKE_GCLOUD_DIR"]
with open(os.path.join(state, "calls"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
var = os.path.join(state, "variable")
if args[:3] == ["composer", "environments", "describe"]:
    print(open(os.path.join(state, "describe.json")).read())
elif args[:3] == ["composer", "environments", "run"] and "get" in args:
    if not os.path.exists(var):
        print("Variable script_runner_settings does not exist", file=sys.stderr)
        sys.exit(1)
    print("Executing the command: [ airflow variables get ... ]...", file=sys.stderr)
    print(open(var).read())
elif args[:3] == ["composer", "environments", "run"] and "set" in args:
    open(var, "w").write(args[-1])
else:
    sys.exit(3)
"""


@pytest.fixture(autouse=True)
def proven_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default support table: the README's releases proven on this checkout's last dags/ change.

    (compat/support.json itself may be stale, which deploy refuses: tested in test_provenance.py.)
    """
    from script_runner.deploy import plan
    from script_runner.deploy.provenance import last_dags_change

    path = tmp_path / "proven-support.json"
    commit = last_dags_change(DAGS.parent)
    sets = [
        {"airflow": r, "providers": {"cncf-kubernetes": "10.11.1", "google": "22.2.0"}, "commit": commit}
        for r in ("2.11.1", "3.1.8", "3.3.1")
    ]
    path.write_text(json.dumps({"sets": sets}))
    monkeypatch.setattr(plan, "default_table_path", lambda _dags: path)
    return path


@pytest.fixture
def fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Factory: a gcloud for one environment; returns (executable, state dir)."""

    def make(*, bucket: str, image: str, pypi: dict[str, str] | None = None) -> tuple[str, Path]:
        state = tmp_path / "gcloud"
        state.mkdir()
        describe = {
            "name": "projects/p/locations/europe-west1/environments/env",
            "config": {
                "dagGcsPrefix": f"gs://{bucket}/dags",
                "softwareConfig": {"imageVersion": image, "pypiPackages": pypi or {}},
            },
        }
        (state / "describe.json").write_text(json.dumps(describe))
        exe = tmp_path / "gcloud-fake"
        exe.write_text(FAKE_GCLOUD)
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("FAKE_GCLOUD_DIR", str(state))
        return str(exe), state

    return make


def calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls").read_text().splitlines()]


@pytest.mark.parametrize(
    ("versions", "problem"),
    [
        pytest.param("airflow=2.11.1,cncf-kubernetes=10.14.0,google=22.2.2", None, id="composer-default"),
        pytest.param("airflow=3.1.8", None, id="image-providers"),
        pytest.param("airflow=3.3.2,cncf-kubernetes=10.25.0,google=22.8.0", None, id="later-patch"),
        pytest.param("airflow=3.3.0", "Airflow 3.3.0 is not supported", id="earlier-patch"),
        pytest.param("airflow=2.10.5", "Airflow 2.10.5 is not supported", id="composer2-old"),
        pytest.param("airflow=3.4.0", "Airflow 3.4.0 is not supported", id="untested-minor"),
        pytest.param(
            "airflow=2.11.1,cncf-kubernetes=10.5.0",
            "cncf-kubernetes 10.5.0 is older than 10.11.1",
            id="old-cncf",
        ),
        pytest.param("airflow=3.3.1,google=21.0.0", "google 21.0.0 is older than 22.2.0", id="old-google"),
        # never run by `make compat` (issue 24, defect 9): not accepted until its set passes
        pytest.param("airflow=3.2.2", "Airflow 3.2.2 is not supported", id="untested-3.2.2"),
    ],
)
def test_support_table_builtin_accepts_readme_sets_and_refuses_others(
    versions: str, problem: str | None
) -> None:
    problems = load_support_table().check(parse_versions_option(versions))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]


def test_support_table_reads_a_compat_file_and_ignores_failed_sets(tmp_path: Path) -> None:
    table = tmp_path / "support.json"
    table.write_text(
        json.dumps(
            {
                "sets": [
                    {
                        "airflow": "3.4.1",
                        "providers": {"apache-airflow-providers-cncf-kubernetes": "10.30.0"},
                    },
                    {"airflow": "3.1.8", "providers": {"cncf-kubernetes": "10.11.1"}, "passed": False},
                ]
            }
        )
    )
    loaded = load_support_table(table)
    assert loaded.check(Versions(airflow="3.4.2", providers={"cncf-kubernetes": "10.30.0"})) == []
    assert (
        "older than 10.30.0"
        in loaded.check(Versions(airflow="3.4.1", providers={"cncf-kubernetes": "10.25.0"}))[0]
    )
    assert "not supported (tested: 3.4.1" in loaded.check(Versions(airflow="3.1.8"))[0]


def test_support_table_file_without_sets_is_an_error(tmp_path: Path) -> None:
    table = tmp_path / "support.json"
    table.write_text("[]")
    with pytest.raises(DeployError, match="expected"):
        load_support_table(table)


def test_versions_from_describe_reads_image_and_pinned_providers() -> None:
    versions = versions_from_describe(
        {
            "config": {
                "softwareConfig": {
                    "imageVersion": "composer-3-airflow-2.11.1-build.5",
                    "pypiPackages": {"apache-airflow-providers-google": "==22.3.0", "pandas": ">=2"},
                }
            }
        }
    )
    assert versions.airflow == "2.11.1"
    assert versions.providers == {"google": "22.3.0"}


def test_versions_from_describe_refuses_an_unpinned_provider() -> None:
    env = {
        "config": {
            "softwareConfig": {
                "imageVersion": "composer-2.9.7-airflow-2.10.5",
                "pypiPackages": {"apache-airflow-providers-cncf-kubernetes": ">=10"},
            }
        }
    }
    with pytest.raises(DeployError, match="only an exact pin"):
        versions_from_describe(env)


def test_local_files_are_dag_ignore_and_package_without_bytecode(tmp_path: Path) -> None:
    (tmp_path / "script_runner" / "__pycache__").mkdir(parents=True)
    (tmp_path / "script_runner" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "script_runner" / "a.py").write_text("A = 1\n")
    (tmp_path / "script_runner" / "stale.pyc").write_bytes(b"\0")
    (tmp_path / "gcs_script_runner.py").write_text("")
    (tmp_path / "gcs_script_runner_upload.py").write_text("")
    (tmp_path / ".airflowignore").write_text("script_runner/\n")
    assert sorted(local_files(tmp_path)) == [
        "dags/.airflowignore",
        "dags/gcs_script_runner.py",
        "dags/gcs_script_runner_upload.py",
        "dags/script_runner/a.py",
    ]


def test_deploy_environment_dry_run_prints_gcloud_commands_and_writes_nothing(
    make_bucket: Any, fake_gcloud: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = make_bucket({})
    exe, state = fake_gcloud(bucket=bucket.name, image="composer-3-airflow-2.11.1-build.5")
    code = main(
        [
            "deploy",
            "--environment",
            "env",
            "--location",
            "europe-west1",
            "--gcloud",
            exe,
            "--image",
            "europe-docker.pkg.dev/p/r/script-runner:1.0",
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"bucket: gs://{bucket.name}" in out
    assert "Airflow 2.11.1" in out
    assert f"upload    gs://{bucket.name}/dags/script_runner/deploy/plan.py" in out
    assert (
        f"{exe} composer environments run env --location europe-west1 variables -- get -- script_runner_settings"
        in out
    )
    assert "variables -- set -- script_runner_settings" in out
    assert "identities: pods run as the environment's service account" in out  # composer3 from the image
    # the Variable read (to show the merged value), never written
    assert [c[2:] for c in calls(state)][1][-3:] == ["get", "--", "script_runner_settings"]
    assert not [c for c in calls(state) if "set" in c]
    assert list(bucket.client.list_blobs(bucket.name, prefix="dags/")) == []


def _dag_id_from_bucket(bucket: Any, folder: Path) -> str:
    """Download dags/ and import the DAG from there alone (as Composer's workers would), in a fresh Python."""
    for blob in bucket.client.list_blobs(bucket.name, prefix="dags/"):
        target = folder / blob.name.removeprefix("dags/")
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))
    code = (
        "import sys; d = sys.argv[1]; sys.path.insert(0, d); import gcs_script_runner as m, script_runner; "
        "assert script_runner.__file__.startswith(d), script_runner.__file__; print(m.dag.dag_id)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "AIRFLOW_HOME": str(folder.parent / "af")
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_deploy_environment_uploads_merges_the_variable_and_deletes_stale_package_files(
    make_bucket: Any, fake_gcloud: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bucket = make_bucket({})
    bucket.blob("dags/script_runner/removed_module.py").upload_from_string("OLD = 1\n")
    bucket.blob("dags/other_dag.py").upload_from_string("# someone else's DAG\n")
    exe, state = fake_gcloud(bucket=bucket.name, image="composer-2.9.7-airflow-2.11.1")
    (state / "variable").write_text(json.dumps({"image": "old:1", "max_retries": 4}))
    argv = ["deploy", "--environment", "env", "--location", "r", "--gcloud", exe, "--image", "reg/sr:2"]
    assert main(["--settings", '{"deferrable": true}', *argv]) == 0
    out = capsys.readouterr().out
    assert json.loads((state / "variable").read_text()) == {
        "deferrable": True,
        "image": "reg/sr:2",
        "max_retries": 4,
        "preset": "composer2",  # the environment is Composer 2 and the Variable named no preset
    }
    names = {b.name for b in bucket.client.list_blobs(bucket.name, prefix="dags/")}
    assert set(local_files(DAGS)) <= names
    assert "dags/script_runner/removed_module.py" not in names
    assert "dags/other_dag.py" in names  # only our package folder is pruned
    assert (
        bucket.blob("dags/gcs_script_runner.py").download_as_bytes()
        == (DAGS / "gcs_script_runner.py").read_bytes()
    )
    assert "kubectl apply -k k8s/overlays/composer2" not in out  # its placeholders would undo the identities
    assert "it applies k8s/generated/composer2-PROJECT" in out
    assert (
        f"k8s/setup-identity.sh --overlay composer2 --project PROJECT --bucket {bucket.name} --source-prefix data/ "
        "--state-root script-runner --airflow-sa AIRFLOW_SA --workers-namespace COMPOSER_WORKERS_NAMESPACE"
    ) in out
    assert _dag_id_from_bucket(bucket, tmp_path / "from-bucket") == "gcs_script_runner"
    # Again: every file is current, the Variable keeps its value.
    assert main(argv) == 0
    assert f"upload 0, delete 0, {len(local_files(DAGS))} unchanged" in capsys.readouterr().out


def test_deploy_refuses_an_unsupported_environment_with_the_reason(
    make_bucket: Any, fake_gcloud: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = make_bucket({})
    exe, state = fake_gcloud(bucket=bucket.name, image="composer-2.9.7-airflow-2.10.5")
    assert main(["deploy", "--environment", "env", "--location", "r", "--gcloud", exe]) == 2
    err = capsys.readouterr().err
    assert "refusing to deploy to Airflow 2.10.5" in err
    assert "tested: 2.11.1, 3.1.8, 3.3.1" in err
    assert list(bucket.client.list_blobs(bucket.name, prefix="dags/")) == []
    assert [c[2] for c in calls(state)] == ["describe"]


def test_deploy_bucket_alone_asks_for_versions(make_bucket: Any, capsys: pytest.CaptureFixture[str]) -> None:
    bucket = make_bucket({})
    assert main(["deploy", "--bucket", f"gs://{bucket.name}"]) == 2
    assert "pass --versions airflow=X.Y.Z" in capsys.readouterr().err


def test_deploy_bucket_with_versions_prints_the_variable_to_set(
    make_bucket: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = make_bucket({})
    argv = ["deploy", "--bucket", f"gs://{bucket.name}", "--versions", "airflow=3.1.8", "--image", "r/sr:1"]
    settings = '{"source": "gs://scripts-bkt/jobs/", "state_bucket": "state-bkt"}'
    assert main(["--preset", "gke", "--settings", settings, *argv]) == 0
    out = capsys.readouterr().out
    assert 'set the Airflow Variable script_runner_settings to \'{"image": "r/sr:1", "preset": "gke", ' in out
    assert bucket.blob("dags/.airflowignore").exists()
    assert (
        "setup-identity.sh --overlay gke --project PROJECT --bucket scripts-bkt --source-prefix jobs/ "
        "--state-root script-runner --state-bucket state-bkt --airflow-sa AIRFLOW_SA"
    ) in out
    assert "drop scripts into gs://scripts-bkt/jobs/" in out


def test_deploy_refuses_settings_the_dag_would_refuse(
    make_bucket: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = make_bucket({})
    argv = [
        "--settings",
        '{"max_retrys": 3}',
        "deploy",
        "--bucket",
        bucket.name,
        "--versions",
        "airflow=3.1.8",
    ]
    assert main(argv) == 2
    assert "max_retrys" in capsys.readouterr().err
    assert list(bucket.client.list_blobs(bucket.name, prefix="dags/")) == []


def test_support_table_reads_providers_beside_airflow(tmp_path: Path) -> None:
    table = tmp_path / "support.json"
    table.write_text(
        json.dumps({"sets": [{"airflow": "3.3.1", "apache-airflow-providers-cncf-kubernetes": "10.14.0"}]})
    )
    problems = load_support_table(table).check(
        Versions(airflow="3.3.1", providers={"cncf-kubernetes": "10.11.1"})
    )
    assert "older than 10.14.0" in problems[0]


def test_deploy_versions_local_reads_the_installed_airflow(
    make_bucket: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from importlib import metadata

    # a table that has what is installed (the checkout's may not yet: `make compat` runs this test first)
    installed = {
        "airflow": metadata.version("apache-airflow"),
        "providers": {
            "cncf-kubernetes": metadata.version("apache-airflow-providers-cncf-kubernetes"),
            "google": metadata.version("apache-airflow-providers-google"),
        },
        "passed": True,
    }
    table = tmp_path / "support.json"
    table.write_text(json.dumps({"sets": [installed]}))
    bucket = make_bucket({})
    argv = ["deploy", "--bucket", bucket.name, "--versions", "local", "--dry-run", "--allow-unproven"]
    argv += ["--support-table", str(table)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Airflow {metadata.version('apache-airflow')}" in out
    assert f"google {metadata.version('apache-airflow-providers-google')}" in out
    assert "[installed here]" in out


def test_gcloud_variable_value_is_found_among_the_lines_gcloud_adds() -> None:
    from script_runner.deploy.targets import _value_from_output

    assert _value_from_output('{"a": 1}\n') == '{"a": 1}'
    assert _value_from_output('Command has been started.\n{\n  "a": 1\n}\n') == '{\n  "a": 1\n}'


def test_gcloud_variable_value_ignores_airflow2_warnings_after_it() -> None:
    # Composer returns stderr with stdout: Airflow 2.11's CLI warns on stderr (seen through the real gcloud
    # on the local 2.11.1 stack, tests/e2e/deploy_run.py), and those lines may follow the value.
    from script_runner.deploy.targets import _value_from_output

    warning = ".../airflow/triggers/base.py:27 RemovedInAirflow3Warning: Timer and timing metrics ..."
    assert _value_from_output(f'{warning}\n{{"a": 1}}\n{warning}\n') == '{"a": 1}'


def _airflow2_api(
    state: dict[str, Any], method: str, path: str, auth: str | None, body: Any
) -> tuple[int, Any]:
    """What a tiny Airflow 2 REST API (/api/v1, basic auth admin:secret) answers: versions and Variables."""
    state["seen"].append(f"{method} {path}")
    if not path.startswith("/api/v1/"):
        return 404, {"detail": "Not Found"}
    if auth != "Basic YWRtaW46c2VjcmV0":
        return 401, {"detail": "Unauthorized"}
    path = path.removeprefix("/api/v1")
    if path == "/version":
        return 200, {"version": "2.11.1"}
    if path.startswith("/providers"):
        packages = {"google": "22.2.2", "cncf-kubernetes": "10.14.0"}
        return 200, {
            "providers": [
                {"package_name": f"apache-airflow-providers-{k}", "version": v} for k, v in packages.items()
            ]
        }
    key = path.removeprefix("/variables").strip("/")
    variables = state["variables"]
    if method == "GET" and key in variables:
        return 200, {"key": key, "value": variables[key]}
    if (method == "PATCH" and key in variables) or method == "POST":
        variables[body["key"]] = body["value"]
        return 200, body
    return 404, {"detail": "Variable not found"}


@pytest.fixture
def airflow2() -> Any:
    """The tiny Airflow 2 API on a real socket; yields (url, state)."""
    import http.server
    import threading

    state: dict[str, Any] = {"seen": [], "variables": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            code, answer = _airflow2_api(
                state, self.command, self.path, self.headers.get("Authorization"), body
            )
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_POST = _route

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_deploy_airflow2_rest_api_with_basic_auth_creates_the_variable(
    make_bucket: Any, airflow2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = airflow2
    bucket = make_bucket({})
    argv = ["deploy", "--bucket", bucket.name, "--airflow-url", url, "--image", "r/sr:1"]
    assert main([*argv, "--airflow-auth", "admin:wrong"]) == 2
    assert "pass a token (--airflow-token) or user:password (--airflow-auth)" in capsys.readouterr().err
    assert main([*argv, "--airflow-auth", "admin:secret"]) == 0
    out = capsys.readouterr().out
    assert "Airflow 2.11.1, cncf-kubernetes 10.14.0, google 22.2.2" in out
    assert json.loads(state["variables"]["script_runner_settings"]) == {"image": "r/sr:1"}
    assert "POST /api/v1/variables" in state["seen"]  # created: it did not exist


def test_support_table_reads_the_file_make_compat_wrote() -> None:
    """compat/support.json in this checkout (written by `make compat`) is a table deploy can check against."""
    path = Path(__file__).resolve().parents[4] / "compat" / "support.json"
    table = load_support_table(path)
    data = json.loads(path.read_text())
    tested = [entry for entry in data["sets"] if entry["supported"]]
    assert tested
    for entry in tested:
        versions = (
            f"airflow={entry['airflow']},cncf-kubernetes={entry['cncf_kubernetes']},google={entry['google']}"
        )
        assert table.check(parse_versions_option(versions)) == [], entry["name"]
    assert table.check(parse_versions_option("airflow=2.9.3"))  # an older Airflow: never tested
    assert table.check(parse_versions_option("airflow=2.11.1,cncf-kubernetes=10.0.0"))  # provider too old


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        pytest.param("composer2", "gcloud container clusters get-credentials", id="composer2"),
        pytest.param("gke", "gcloud container clusters get-credentials", id="gke"),
        pytest.param("composer3", "gcloud services enable iamcredentials.googleapis.com", id="composer3"),
    ],
)
def test_left_to_do_names_the_image_tag_the_cluster_and_the_apis(preset: str, expected: str) -> None:
    from script_runner.deploy.plan import left_to_do

    settings = load_settings(variable={"preset": preset}, environ={"GCS_BUCKET": "b"})
    left = "\n".join(left_to_do(settings, variable_set=True, merged={}))
    assert "_TAG=$(git rev-parse --short HEAD)" in left  # a build from a checkout has no SHORT_SHA
    assert expected in left
