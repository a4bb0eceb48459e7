from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from script_runner.config.settings_loader import load_settings
from script_runner.discover.discovery import discover, shard
from script_runner.discover.spec import ScriptSpec, spec_to_xcom
from script_runner.exceptions import DiscoveryError, TooManyScriptsError

GOOD = "#!/bin/bash\n# runner: cpu=250m memory=256Mi\necho ok\n"
BAD = "#!/bin/bash\n# runner: memory=lots\necho never\n"


def settings_for(bucket: str, **extra: str) -> Any:
    env = {"GCS_BUCKET": bucket, "SCRIPT_RUNNER_PRESET": "local", **extra}
    return load_settings(environ=env)


def test_discover_lists_subfolders_pins_generation_and_rejects_bad(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket(
        {"a.sh": GOOD, "etl/b.sh": GOOD, "bad.sh": BAD, "notes.txt": "x", ".hidden.sh": GOOD}
    )
    result = discover(settings_for(bucket.name), client=gcs_client)
    assert [s["path"] for s in result.specs] == ["a.sh", "etl/b.sh"]
    blob = bucket.get_blob("data/etl/b.sh")
    spec = ScriptSpec.model_validate(result.specs[1])
    assert spec.generation == str(blob.generation)
    assert spec.md5 == blob.md5_hash == base64.b64encode(hashlib.md5(GOOD.encode()).digest()).decode()
    assert spec.uri == f"gs://{bucket.name}/data/etl/b.sh"
    assert [(r.path, r.line) for r in result.rejected] == [("bad.sh", 2)]
    assert "not a Kubernetes quantity" in result.rejected[0].reason
    assert result.summary() == {
        "launch": 2,
        "rejected": 1,
        "held": 0,
        "ignored": 2,
        "header_cache_hits": 1,
    }  # a.sh and etl/b.sh share content


def test_discover_reads_only_the_header(make_bucket: Any, gcs_client: Any) -> None:
    # A directive past max_header_bytes is not seen: the body is never downloaded.
    big = "#!/bin/bash\n" + "# filler\n" * 200 + "# runner: memory=lots\n"
    bucket = make_bucket({"big.sh": big})
    result = discover(settings_for(bucket.name, SCRIPT_RUNNER_MAX_HEADER_BYTES="512"), client=gcs_client)
    assert [s["path"] for s in result.specs] == ["big.sh"]


def test_discover_honours_runnerignore_and_globs(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket(
        {
            "keep.sh": GOOD,
            "wip/x.sh": GOOD,
            "old.sh": GOOD,
            "tmp/y.sh": GOOD,
            ".runnerignore": "# comment\nwip/\nold.sh\n",
        }
    )
    s = settings_for(bucket.name, SCRIPT_RUNNER_EXCLUDE="tmp/*")
    assert [x["path"] for x in discover(s, client=gcs_client).specs] == ["keep.sh"]


def test_discover_missing_bucket_is_a_clear_error(gcs_client: Any) -> None:
    with pytest.raises(DiscoveryError, match=r"cannot list gs://no-such-bucket-xyz/data/.*fix"):
        discover(settings_for("no-such-bucket-xyz"), client=gcs_client)


def test_discover_file_source(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.sh").write_text(GOOD)
    (tmp_path / "y.sh").write_text(BAD)
    s = load_settings(
        environ={"SCRIPT_RUNNER_SOURCE": tmp_path.as_uri(), "SCRIPT_RUNNER_PRESET": "local"},
        local_folder=True,
    )
    result = discover(s)
    assert [x["path"] for x in result.specs] == ["sub/x.sh"]
    assert result.specs[0]["uri"] == (tmp_path / "sub" / "x.sh").as_uri()
    assert [r.path for r in result.rejected] == ["y.sh"]


def test_discover_composer_mount_source_pins_gs_uris_pods_can_fetch(
    make_bucket: Any, gcs_client: Any
) -> None:
    """file:///home/airflow/gcs/data/ is listed through the GCS API: every plan names a gs:// generation."""
    bucket = make_bucket({"etl/b.sh": GOOD})
    env = {"GCS_BUCKET": bucket.name, "SCRIPT_RUNNER_PRESET": "local"}
    s = load_settings(environ={**env, "SCRIPT_RUNNER_SOURCE": "file:///home/airflow/gcs/data/"})
    spec = ScriptSpec.model_validate(discover(s, client=gcs_client).specs[0])
    assert spec.uri == f"gs://{bucket.name}/data/etl/b.sh"
    assert spec.generation == str(bucket.get_blob("data/etl/b.sh").generation)


def test_discover_too_many_scripts_fails_before_launch(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket({f"s{i}.sh": GOOD for i in range(3)})
    with pytest.raises(TooManyScriptsError, match="nothing was launched"):
        discover(settings_for(bucket.name, SCRIPT_RUNNER_MAX_SCRIPTS="2"), client=gcs_client)


def _spec(path: str) -> dict[str, Any]:
    return spec_to_xcom(
        ScriptSpec(
            path=path,
            uri="gs://b/data/" + path,
            cpu="1",
            memory="1Gi",
            ephemeral_storage="1Gi",
            timeout=60,
            start_timeout=60,
            retries=0,
            retry_delay=1,
            image="i",
        )
    )


def test_shard_splits_within_max_map_length() -> None:
    specs = [_spec(f"s{i:03}.sh") for i in range(10)]
    shards = shard(specs, shards=3, max_map_length=4)
    assert [len(s) for s in shards] == [4, 4, 2]
    assert [d["path"] for s in shards for d in s] == sorted(x["path"] for x in specs)
    assert ScriptSpec.model_validate(shards[0][0]) == ScriptSpec.model_validate(specs[0])


def test_shard_over_capacity_is_an_error_naming_the_fix() -> None:
    with pytest.raises(TooManyScriptsError, match="SCRIPT_RUNNER_SHARDS=3 or more"):
        shard([_spec(f"{i}.sh") for i in range(9)], shards=2, max_map_length=4)


def test_discover_header_cache_skips_unchanged_headers(
    make_bucket: Any, gcs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from script_runner.discover import sources as mod
    from script_runner.discover.header_cache import HeaderCache

    bucket = make_bucket({"a.sh": GOOD, "b.sh": BAD, "c.sh": GOOD.replace("250m", "300m")})
    reads: list[str] = []
    real = mod.GcsSource.read_headers

    def counting(self: Any, objs: Any, limit: int, concurrency: int) -> Any:
        reads.extend(obj.path for obj in objs)
        return real(self, objs, limit, concurrency)

    monkeypatch.setattr(mod.GcsSource, "read_headers", counting)
    s = settings_for(bucket.name)

    def run() -> Any:
        cache = HeaderCache(
            gcs_client,
            bucket=bucket.name,
            name="script-runner/cache/headers.json",
        ).load()
        return discover(s, client=gcs_client, cache=cache)

    first = run()
    assert sorted(reads) == ["a.sh", "b.sh", "c.sh"]
    reads.clear()
    second = run()
    assert reads == []  # same content hashes: nothing downloaded
    assert second.cache_hits == 3
    assert second.specs == first.specs
    assert [(r.path, r.line) for r in second.rejected] == [("b.sh", 2)]  # line numbers survive the cache
    bucket.blob("data/a.sh").upload_from_string(GOOD + "# changed body\n")
    run()
    assert reads == ["a.sh"]  # only the changed script is read again


def _forge(gcs_client: Any, bucket: str, name: str, body: dict[str, Any]) -> None:
    import json

    gcs_client.bucket(bucket).blob(name).upload_from_string(json.dumps(body))


def _md5(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def test_discover_never_trusts_a_forged_plan_in_the_header_cache(make_bucket: Any, gcs_client: Any) -> None:
    """The attack of issue 11: a pod identity writes the cache object with plans for other scripts."""
    from script_runner.discover.header_cache import HeaderCache

    bucket = make_bucket({"victim.sh": GOOD})
    name = "script-runner/cache/headers.json"
    s = settings_for(bucket.name, SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST='["reader"]')
    evil = {
        "cpu": "250m",
        "memory": "256Mi",
        "ephemeral_storage": "1Gi",
        "timeout": 3600,
        "start_timeout": 120,
        "retries": 2,
        "retry_delay": 2,
        "image": "evil.example/x",
        "service_account": "cluster-admin-sa",
        "env": {"LD_PRELOAD": "/tmp/evil.so"},
    }
    # The version-4 layout with its fingerprint: what discovery used to read back and launch as is.
    _forge(
        gcs_client,
        bucket.name,
        name,
        {"version": 4, "fingerprint": s.fingerprint(), "plans": [evil], "index": {_md5(GOOD): 0}},
    )
    # Built as the discover task builds it (the fingerprint is ignored now; it selected the plans then).
    cache = HeaderCache(gcs_client, bucket=bucket.name, name=name, fingerprint=s.fingerprint())
    result = discover(s, client=gcs_client, cache=cache)
    [spec] = result.specs
    assert spec["image"] == "localhost/script-runner:local"
    assert "service_account" not in spec
    assert "env" not in spec
    assert spec["memory"] == "256Mi"  # re-resolved from the real header


def test_discover_authorizes_a_forged_header_against_the_current_settings(
    make_bucket: Any, gcs_client: Any
) -> None:
    """A forged cache entry (current layout) is only ever input: allowlists and reserved names still hold."""
    from script_runner.discover.header_cache import HeaderCache

    other, third = GOOD.replace("250m", "300m"), GOOD.replace("250m", "350m")
    bucket = make_bucket({"a.sh": GOOD, "b.sh": other, "c.sh": third})
    name = "script-runner/cache/headers.json"
    forged = {
        _md5(GOOD): "\n# runner: image=evil.example/x",
        _md5(other): "\n# runner: service_account=cluster-admin-sa",
        _md5(third): "\n# runner: env=LD_PRELOAD=/tmp/evil.so",
    }
    _forge(gcs_client, bucket.name, name, {"version": 6, "entries": forged})
    s = settings_for(bucket.name, SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST='["reader"]')
    result = discover(s, client=gcs_client, cache=HeaderCache(gcs_client, bucket=bucket.name, name=name))
    assert result.specs == []
    assert result.cache_hits == 3
    reasons = {r.path: r.reason for r in result.rejected}
    assert "image 'evil.example/x' is not in the image allowlist" in reasons["a.sh"]
    assert "service account 'cluster-admin-sa' is not allowed (allowed: reader)" in reasons["b.sh"]
    assert "env LD_PRELOAD is reserved" in reasons["c.sh"]


def test_discover_applies_changed_settings_to_unchanged_cached_scripts(
    make_bucket: Any, gcs_client: Any
) -> None:
    from script_runner.discover.header_cache import HeaderCache

    bucket = make_bucket({"a.sh": "#!/bin/bash\n# runner: service_account=writer\n"})
    name = "script-runner/cache/headers.json"

    def run(allow: str) -> Any:
        s = settings_for(bucket.name, SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST=allow)
        return discover(s, client=gcs_client, cache=HeaderCache(gcs_client, bucket=bucket.name, name=name))

    assert [x["service_account"] for x in run("reader,writer").specs] == ["writer"]
    narrowed = run("reader")
    assert narrowed.cache_hits == 1  # the header came from the cache, the decision did not
    assert narrowed.specs == []
    assert "'writer' is not allowed" in narrowed.rejected[0].reason


@pytest.mark.parametrize(
    ("content", "needle", "fix", "line"),
    [
        pytest.param(b"", "empty script (0 bytes)", "upload the script's content", None, id="empty"),
        pytest.param(
            b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary content (a NUL byte", "exclude", 1, id="binary"
        ),
        pytest.param(
            b"#!/bin/bash\r\n# runner: cpu=1\r\necho hi\r\n",
            "Windows line endings (CRLF)",
            "dos2unix",
            1,
            id="crlf",
        ),
        pytest.param(
            b"#!/bin/bash\n# header\n# runner: cpu=1\r\necho hi\n",
            "CRLF",
            "sed -i 's/\\r$//'",
            3,
            id="crlf-line",
        ),
    ],
)
def test_discover_rejects_content_bash_cannot_run(
    make_bucket: Any, gcs_client: Any, content: bytes, needle: str, fix: str, line: int | None
) -> None:
    bucket = make_bucket({"ok.sh": GOOD})
    bucket.blob("data/bad.sh").upload_from_string(content)
    result = discover(settings_for(bucket.name), client=gcs_client)
    assert [s["path"] for s in result.specs] == ["ok.sh"]
    [rejected] = result.rejected
    assert rejected.path == "bad.sh"
    assert needle in rejected.reason
    assert "416" not in rejected.reason
    assert fix in rejected.fix
    assert rejected.line == line


def test_discover_rejects_reserved_env_names_with_the_reason(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket(
        {
            "ok.sh": "# runner: env=TARGET=prod env=path=lowercase-is-fine\n",
            "preload.sh": "# runner: env=LD_PRELOAD=/x.so\n",
            "gcloud.sh": "# runner: env=CLOUDSDK_CORE_PROJECT=other\n",
            "emu.sh": "# runner: env=STORAGE_EMULATOR_HOST=http://evil\n",
        }
    )
    result = discover(settings_for(bucket.name), client=gcs_client)
    assert [s["path"] for s in result.specs] == ["ok.sh"]
    reasons = {r.path: (r.reason, r.fix) for r in result.rejected}
    assert (
        reasons["preload.sh"][0]
        == "env LD_PRELOAD is reserved: it loads a library into every program in the pod"
    )
    assert "CLOUDSDK_* variables configure gcloud" in reasons["gcloud.sh"][0]
    assert "redirect every Cloud Storage call" in reasons["emu.sh"][0]
    assert "MY_LD_PRELOAD" in reasons["preload.sh"][1]


def test_discover_skips_files_in_hidden_folders(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket({"a.sh": GOOD, ".git/hooks/x.sh": GOOD, "sub/.tmp.sh": GOOD})
    result = discover(settings_for(bucket.name), client=gcs_client)
    assert [s["path"] for s in result.specs] == ["a.sh"]
    assert result.ignored == 2


def test_shard_fills_the_first_shard_before_the_next() -> None:
    # A run that fits in one shard uses run_scripts only; the producers of the empty ones skip unrun.
    specs = [_spec(f"s{i:04}.sh") for i in range(1030)]
    shards = shard(specs, shards=10, max_map_length=1024)
    assert [len(s) for s in shards] == [1024, 6] + [0] * 8
    assert [len(s) for s in shard(specs[:100], shards=10, max_map_length=1024)] == [100] + [0] * 9
