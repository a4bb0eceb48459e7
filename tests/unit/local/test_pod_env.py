"""The identities the stack writes for the metadata server and the IAM front: one random token per account."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from local import config, pod_env
from local.iam_front import Policy

POLICY = {
    "identities": {
        "default": {"email": "env@p.iam.gserviceaccount.com", "grants": []},
        "reader": {"email": "reader@p.iam.gserviceaccount.com", "grants": []},
    }
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    monkeypatch.setattr(config, "RUN", tmp_path / "run")
    monkeypatch.setattr(config, "IAM_POLICY", policy)
    return tmp_path / "run"


def tokens_in(directory: Path) -> dict[str, str]:
    return {f.name.removesuffix(".token"): f.read_text() for f in directory.glob("*.token")}


def test_each_account_gets_its_own_random_token_only_its_pods_are_handed(run: Path) -> None:
    directory = pod_env.write_identities()
    tokens = tokens_in(directory)
    assert sorted(tokens) == ["default", "reader"]
    assert tokens["default"] != tokens["reader"]
    for account, token in tokens.items():
        assert account not in token
        assert len(token) >= 32
        assert stat.S_IMODE((directory / f"{account}.token").stat().st_mode) == 0o600
    assert (directory / "reader.email").read_text() == "reader@p.iam.gserviceaccount.com"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # The IAM front reading the same folder knows each token as its account, and nothing made up.
    policy = Policy(config.IAM_POLICY, directory)
    who = policy.identity(tokens["reader"])
    assert who is not None
    assert who[0] == "reader"
    assert policy.identity("local-token-reader") is None
    assert policy.identity("local-token-default") is None


def test_a_stack_start_draws_new_tokens_and_a_running_front_keeps_its_own(run: Path) -> None:
    first = tokens_in(pod_env.write_identities())
    kept = tokens_in(pod_env.write_identities(fresh=False))
    assert kept == first
    second = tokens_in(pod_env.write_identities())
    assert second["default"] != first["default"]
    assert second["reader"] != first["reader"]
    # An account added to the policy while the front is up gets a token; the others keep theirs.
    grown = {"identities": {**POLICY["identities"], "etl": {"email": "etl@p", "grants": []}}}
    config.IAM_POLICY.write_text(json.dumps(grown))
    third = tokens_in(pod_env.write_identities(fresh=False))
    assert third["reader"] == second["reader"]
    assert third["etl"]
    assert third["etl"] not in second.values()
