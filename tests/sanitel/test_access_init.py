"""`sanitel access init`: the accounts, ACL lines, password hashes and files of SPEC section 8.

Pure parts without servers; the hashes against the real `mosquitto_passwd`. The broker
itself enforcing them is in test_access_broker.py.
"""

from __future__ import annotations

import csv
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from devices.credentials import Account, CredentialsError, parse_credentials
from devices.crews import Crews, CrewsError
from devices.sites import Registry
from sanitel.access.accounts import AccountError, merge, wanted_accounts
from sanitel.access.acl import render_acl
from sanitel.access.build import init_access
from sanitel.access.passwd import hash_password, parse_passwd, verify
from sanitel.cli import mount

CITY: dict[str, Any] = {"sites": [
    {"id": "WC-0001", "kind": "toilet", "name": "North", "district": "Jinjiang",
     "lat": 30.6, "lon": 104.0, "devices": [
         {"id": "WC-0001-PC-1", "type": "people_counter"},
         {"id": "WC-0001-OD-1", "type": "odor"}]},
    {"id": "TS-0001", "kind": "transfer_station", "name": "Shahe", "district": "Chenghua",
     "lat": 30.6, "lon": 104.1, "devices": [{"id": "TS-0001-ST-1", "type": "station_terminal"}]},
]}
CREWS = {"crews": [{"name": "crew-a", "districts": ["Jinjiang"]},
                   {"name": "crew-b", "districts": ["Chenghua", "Jinjiang"]}]}
HEADER = "role,username,password,site_id,device_id"


def counter() -> Any:
    n = iter(range(1000))
    return lambda: f"pw{next(n)}"


@pytest.fixture
def registry() -> Registry:
    return Registry.from_dict(CITY)


@pytest.fixture
def crews() -> Crews:
    return Crews.from_dict(CREWS)


def test_one_account_per_device_ingest_crew_and_with_gateways_per_site(
    registry: Registry, crews: Crews
) -> None:
    rows = [(a.role, a.username, a.site_id, a.device_id)
            for a in wanted_accounts(registry, crews, gateways=True)]
    assert rows == [
        ("device", "WC-0001-PC-1", "WC-0001", "WC-0001-PC-1"),
        ("device", "WC-0001-OD-1", "WC-0001", "WC-0001-OD-1"),
        ("device", "TS-0001-ST-1", "TS-0001", "TS-0001-ST-1"),
        ("gateway", "WC-0001-gw", "WC-0001", ""),
        ("gateway", "TS-0001-gw", "TS-0001", ""),
        ("ingest", "sanitel-ingest", "", ""),
        ("crew", "crew-a", "", ""),
        ("crew", "crew-b", "", ""),
    ]
    assert "gateway" not in {a.role for a in wanted_accounts(registry, crews, gateways=False)}
    more = wanted_accounts(registry, crews, gateways=False, ingest_instances=3)
    assert [a.username for a in more if a.role == "ingest"] == [
        "sanitel-ingest", "sanitel-ingest-2", "sanitel-ingest-3"]


def test_a_crew_named_like_a_device_is_refused(registry: Registry) -> None:
    clash = Crews.from_dict({"crews": [{"name": "WC-0001-OD-1", "districts": ["Jinjiang"]}]})
    with pytest.raises(AccountError, match="WC-0001-OD-1"):
        wanted_accounts(registry, clash, gateways=False)


def test_rerun_keeps_passwords_adds_removes_and_rotates(registry: Registry, crews: Crews) -> None:
    first = merge(wanted_accounts(registry, crews, False), [], counter())
    assert sorted(first.added) == sorted(a.username for a in first.accounts)
    passwords = {a.username: a.password for a in first.accounts}
    assert len(set(passwords.values())) == len(passwords)
    smaller = Registry.from_dict({"sites": [CITY["sites"][0]]})
    again = merge(wanted_accounts(smaller, crews, False), first.accounts, lambda: "new",
                  rotate=["crew-a"])
    after = {a.username: a.password for a in again.accounts}
    assert again.removed == ["TS-0001-ST-1"] and again.added == []
    assert again.rotated == ["crew-a"] and after["crew-a"] == "new"
    assert all(after[name] == passwords[name] for name in after if name != "crew-a")
    with pytest.raises(AccountError, match="--rotate nobody"):
        merge(wanted_accounts(registry, crews, False), [], counter(), rotate=["nobody"])


def test_acl_grants_each_role_exactly_what_section_8_says(
    registry: Registry, crews: Crews
) -> None:
    plan = merge(wanted_accounts(registry, crews, True), [], counter())
    blocks = _acl_blocks(render_acl(plan.accounts, registry, crews))
    root = "sanitation/v1"
    assert blocks["WC-0001-OD-1"] == [
        f"topic write {root}/WC-0001/odor/WC-0001-OD-1/telemetry",
        f"topic write {root}/WC-0001/odor/WC-0001-OD-1/status",
        f"topic read {root}/WC-0001/odor/WC-0001-OD-1/cmd",
    ]
    assert len(blocks["WC-0001-gw"]) == 6 and all("WC-0001/" in x for x in blocks["WC-0001-gw"])
    assert blocks["TS-0001-gw"] == blocks["TS-0001-ST-1"]
    assert sorted(blocks["sanitel-ingest"]) == sorted([
        f"topic read {root}/+/+/+/telemetry", f"topic read {root}/+/+/+/status",
        f"topic read {root}/_ack/#", f"topic write {root}/_alerts/#",
        f"topic write {root}/_dlq/#",
    ])
    assert blocks["crew-a"] == [f"topic read {root}/_alerts/WC-0001/#",
                                f"topic write {root}/_ack/crew-a"]
    assert blocks["crew-b"] == [f"topic read {root}/_alerts/WC-0001/#",
                                f"topic read {root}/_alerts/TS-0001/#",
                                f"topic write {root}/_ack/crew-b"]
    no_wildcard_writes = [x for name, lines in blocks.items() if name != "sanitel-ingest"
                          for x in lines if x.startswith("topic write") and ("+" in x or "#" in x)]
    assert no_wildcard_writes == []


def _acl_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for line in text.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            blocks[user] = []
        elif line.startswith("topic"):
            assert user is not None, f"a topic line before any user line: {line}"
            blocks[user].append(line)
        else:
            assert not line.strip() or line.startswith("#"), line
    return blocks


def test_crews_file_errors_name_the_crew_and_district(registry: Registry) -> None:
    crews = Crews.from_dict({"crews": [{"name": "crew-x", "districts": ["Atlantis"]}]})
    with pytest.raises(CrewsError, match=r"crew 'crew-x'.*'Atlantis'.*Chenghua, Jinjiang"):
        crews.check_districts(s.district for s in registry.sites.values())
    with pytest.raises(CrewsError, match=r"crews\.0\.name"):
        Crews.from_dict({"crews": [{"name": "bad/name", "districts": ["Jinjiang"]}]})
    with pytest.raises(CrewsError, match="twice"):
        Crews.from_dict({"crews": [{"name": "a", "districts": ["X"]}] * 2})


def test_files_modes_header_and_conf_lines(tmp_path: Path, registry: Registry,
                                           crews: Crews) -> None:
    out = tmp_path / "access"
    init_access(out, registry, crews, gateways=True)
    for name in ("passwd", "credentials.csv", "acl"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    text = (out / "credentials.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["role"] for r in rows} == {"device", "gateway", "ingest", "crew"}
    assert len(rows) == 3 + 2 + 1 + 2
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf
    assert "use_username_as_clientid true" in conf  # no account takes over another's session
    assert f"password_file {(out / 'passwd').resolve()}" in conf
    assert f"acl_file {(out / 'acl').resolve()}" in conf
    hashes = parse_passwd((out / "passwd").read_text())
    assert set(hashes) == {r["username"] for r in rows}
    assert all(verify(r["password"], hashes[r["username"]]) for r in rows)
    before = (out / "passwd").read_text()
    init_access(out, registry, crews)  # gateways kept: the previous run made them
    assert (out / "passwd").read_text() == before
    assert (out / "credentials.csv").read_text() == text


def test_credentials_with_a_wrong_header_are_refused() -> None:
    with pytest.raises(CredentialsError, match="role,username,password,site_id,device_id"):
        parse_credentials("user,password\nx,y\n", "creds.csv")
    with pytest.raises(CredentialsError, match="line 2"):
        parse_credentials(f"{HEADER}\nadmin,root,pw,,\n", "creds.csv")


MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed")
def test_our_hashes_and_mosquitto_passwd_hashes_agree(tmp_path: Path) -> None:
    plain = tmp_path / "pw"
    plain.write_text("alice:s3cret-Ünï\n")
    subprocess.run([str(MOSQUITTO_PASSWD), "-U", str(plain)], check=True)
    theirs = parse_passwd(plain.read_text())["alice"]
    assert theirs.startswith("$7$101$")
    assert verify("s3cret-Ünï", theirs) and not verify("s3cret", theirs)
    ours = hash_password("s3cret-Ünï")
    assert ours.split("$")[1:3] == ["7", "101"] and len(ours) == len(theirs)
    assert verify("s3cret-Ünï", ours)


def test_cli_writes_files_and_prints_no_password(tmp_path: Path) -> None:
    city, crews_file = tmp_path / "city.yaml", tmp_path / "crews.yaml"
    city.write_text(yaml.safe_dump(CITY))
    crews_file.write_text(yaml.safe_dump(CREWS))
    runner = CliRunner()
    args = ["access", "init", "--out", str(tmp_path / "out"), "--registry", str(city),
            "--crews", str(crews_file)]
    result = runner.invoke(mount("access"), args)
    assert result.exit_code == 0, result.output
    assert "6 accounts" in result.output and "credentials.csv" in result.output
    rotated = runner.invoke(mount("access"), [*args, "--rotate", "crew-b"])
    assert "new password: crew-b" in rotated.output
    for row in parse_credentials((tmp_path / "out/credentials.csv").read_text(), "x"):
        assert row.password not in result.output + rotated.output
    bad = runner.invoke(mount("access"), [*args, "--rotate", "nobody"])
    assert bad.exit_code == 2 and "nobody" in bad.output
    crews_file.write_text("crews: [{name: c, districts: [Nowhere]}]")
    assert runner.invoke(mount("access"), args).exit_code == 2


def test_account_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Account("crew", "c", "hunter2"))


@st.composite
def cities(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,10}", fullmatch=True)
    site_ids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    device_ids = draw(st.lists(ids.map(lambda x: f"d{x}"), min_size=1, max_size=8, unique=True))
    districts = ["North", "South", "East"]
    sites = [{"id": f"s{site}", "kind": "toilet", "name": "x", "lat": 0, "lon": 0,
              "district": draw(st.sampled_from(districts)), "devices": []}
             for site in site_ids]
    for device in device_ids:
        site = draw(st.sampled_from(sites))
        site["devices"].append({"id": device, "type": draw(st.sampled_from(
            ["odor", "people_counter", "sprayer"]))})
    used = sorted({s["district"] for s in sites})
    crews = [{"name": f"crew-{d.lower()}", "districts": [d]} for d in used]
    return {"sites": sites}, {"crews": crews}


@given(cities())
def test_every_acl_grants_only_its_own_topics(city: tuple[dict[str, Any], dict[str, Any]]) -> None:
    registry, crews = Registry.from_dict(city[0]), Crews.from_dict(city[1])
    plan = merge(wanted_accounts(registry, crews, True), [], counter())
    blocks = _acl_blocks(render_acl(plan.accounts, registry, crews))
    assert set(blocks) == {a.username for a in plan.accounts}
    for device in registry.devices.values():
        lines = blocks[device.id]
        assert len(lines) == 3 and all(f"/{device.site.id}/{device.type}/{device.id}/" in x
                                       for x in lines)
        gateway = blocks[f"{device.site.id}-gw"]
        assert all(x in gateway for x in lines)
        assert all(f"/{device.site.id}/" in x for x in gateway)
    for crew in crews:
        allowed = {s.id for s in registry.sites.values() if s.district in crew.districts}
        reads = [x.split("/")[3] for x in blocks[crew.name] if x.startswith("topic read")]
        assert set(reads) == allowed
        assert [x for x in blocks[crew.name] if x.startswith("topic write")] == [
            f"topic write sanitation/v1/_ack/{crew.name}"]
