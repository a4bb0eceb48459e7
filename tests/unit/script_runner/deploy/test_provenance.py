"""A support claim must not outlive the code it was measured on (issue 24, defect 10).

The recorded commit of each compat set is compared with the last commit that changed ``dags/`` (real git,
a throwaway repository), and this checkout's ``compat/support.json`` may claim a set only while it is proven.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from script_runner.deploy.provenance import last_dags_change, provenance
from script_runner.deploy.versions import load_support_table, parse_versions_option
from script_runner.exceptions import DeployError

ROOT = Path(__file__).resolve().parents[4]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _commit(repo: Path, path: str, text: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", path)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    return tmp_path


def test_provenance_proven_until_dags_change_after_the_recorded_commit(repo: Path) -> None:
    measured = _commit(repo, "dags/dag.py", "v1")
    assert provenance(measured, repo).state == "proven"
    _commit(repo, "README.md", "docs only")  # not the DAG package: still proven
    assert provenance(measured, repo).state == "proven"
    later = _commit(repo, "dags/dag.py", "v2")
    stale = provenance(measured, repo)
    assert stale.state == "stale"
    assert later[:12] in stale.reason
    assert provenance(later, repo).state == "proven"


def test_provenance_without_a_recorded_commit_is_stale_and_without_git_unknown(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _commit(repo, "dags/dag.py", "v1")
    assert provenance(None, repo).state == "stale"
    assert provenance("0" * 40, repo).state == "unknown"  # a commit this clone lacks
    assert provenance("0" * 40, tmp_path_factory.mktemp("no-git")).state == "unknown"


def test_support_table_refuses_a_stale_set_unless_allowed(repo: Path) -> None:
    measured = _commit(repo, "dags/dag.py", "v1")
    _commit(repo, "dags/dag.py", "v2")
    table_file = repo / "support.json"
    table_file.write_text(json.dumps({"sets": [{"name": "3.3.1", "airflow": "3.3.1", "commit": measured}]}))
    table = load_support_table(table_file, root=repo)
    versions = parse_versions_option("airflow=3.3.2")
    assert table.check(versions) == []  # in the table ...
    with pytest.raises(DeployError, match=r"unproven on this code.*--only 3.3.1.*--allow-unproven"):
        table.unproven(versions, allow=False)  # ... but not measured on this code
    assert "unproven" in table.unproven(versions, allow=True)[0]


def test_support_json_claims_only_sets_proven_on_the_current_dags() -> None:
    """compat/support.json: every set it calls supported passed on a commit not older than dags/'s last change.

    Fails after any change to dags/ until `make compat` runs the sets again (or `python -m local.compat_matrix
    --mark-stale` marks them unproven, which deploy then refuses).
    """
    if last_dags_change(ROOT) is None:
        pytest.skip("no git history here: the recorded commits cannot be compared")
    data = json.loads((ROOT / "compat" / "support.json").read_text())
    stale = []
    for entry in data["sets"]:
        if not entry.get("supported") or entry.get("unproven"):
            continue
        seen = provenance(entry.get("commit"), ROOT)
        if seen.state == "unknown":
            pytest.skip(f"set {entry['name']}: {seen.reason}")
        if seen.state == "stale":
            stale.append(f"{entry['name']}: {seen.reason}")
    assert not stale, (
        "compat/support.json claims sets not measured on this dags/: "
        + "; ".join(stale)
        + " -> run `make compat` (or `python -m local.compat_matrix --mark-stale`)"
    )
