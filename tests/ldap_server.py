"""pytest plugin: a real OpenLDAP `slapd` (Debian package) on a free loopback port (SPEC §4.6).

Session-scoped: a generated slapd.conf (mdb database, standard schemas, ACLs that let entries bind
and a read-only service account search), a generated LDIF loaded with `slapadd`, then `slapd` in
the foreground on 127.0.0.1. No slapd, or one that does not start: the tests using it FAIL (the
project's `make test` installs the package; nothing is skipped).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUFFIX = "dc=sicorra,dc=test"
BASE_DN = f"ou=comptes,{SUFFIX}"
ADMIN_GROUP_DN = f"cn=administrateurs,ou=groupes,{SUFFIX}"
SERVICE_DN = f"cn=portail,{SUFFIX}"
SERVICE_PASSWORD = "service-Lecture-42"  # noqa: S105 - a throwaway test directory
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


@dataclass(frozen=True)
class Account:
    id: str
    password: str
    siret: str
    name: str
    kind: str
    mail: str
    roles: tuple[str, ...]
    admin_group: bool = False


# Each test uses its own accounts (the test database is shared by the whole session).
ACCOUNTS = (
    Account("REP_3076", "Rep3076-pass!", "74567890400012", "Organisme Legacy Un", "organisme",
            "rep3076@legacy.test", ("sam:redacteur", "sam:signataire", "repernet:lecteur")),
    Account("REP_3076_ADM", "Rep3076Adm-pass!", "74567890400012", "Organisme Legacy Un", "organisme",
            "rep3076-adm@legacy.test", ("sam:redacteur", "sam:signataire", "repernet:gestionnaire")),
    Account("GC0012345", "Gc0012345-pass!", "85678901100017", "Organisme Legacy Deux", "organisme",
            "gc0012345@legacy.test", ("catalogue:editeur", "catalogue:lecteur")),
    Account("TLPU", "Tlpu-pass-2021", "96789012000017", "Lycée Legacy", "lycee",
            "ce.tlpu@legacy.test", ("sam:redacteur", "repernet:lecteur")),
    Account("TLPU_ADM", "TlpuAdm-pass-2021", "96789012000017", "Lycée Legacy", "lycee",
            "ce.tlpu@legacy.test", ("sam:redacteur", "sam:signataire", "repernet:gestionnaire")),
    Account("REP_GROUPE", "RepGroupe-pass!", "30123456300015", "Organisme Groupe Admin", "organisme",
            "groupe@legacy.test", ("sam:redacteur",), admin_group=True),
    Account("GC_SANSADMIN", "SansAdmin-pass!", "40987654700012", "Organisme Sans Admin", "organisme",
            "sans-admin@legacy.test", ("sam:redacteur", "sam:signataire")),
    Account("REP_CLAIMS", "RepClaims-pass!", "41234567000019", "Organisme Claims", "organisme",
            "claims@legacy.test", ("sam:redacteur",)),
    Account("REP_PARTAGE", "RepPartage-pass!", "52345678800018", "Organisme Partagé", "organisme",
            "partage@legacy.test", ("sam:redacteur",)),
    Account("REP_LIMITE", "RepLimite-pass!", "63456789500012", "Organisme Limite", "organisme",
            "limite@legacy.test", ("sam:redacteur",)),
)


@dataclass
class LdapServer:
    url: str
    base_dn: str = BASE_DN
    admin_group_dn: str = ADMIN_GROUP_DN
    bind_dn: str = SERVICE_DN
    bind_password: str = SERVICE_PASSWORD
    accounts: dict[str, Account] = field(default_factory=lambda: {a.id: a for a in ACCOUNTS})

    def config(self) -> dict[str, str]:
        """The IdP settings pointing at this directory."""
        return {"LEGACY_LDAP_URL": self.url, "LEGACY_LDAP_BASE_DN": self.base_dn,
                "LEGACY_LDAP_BIND_DN": self.bind_dn, "LEGACY_LDAP_BIND_PASSWORD": self.bind_password,
                "LEGACY_LDAP_ADMIN_GROUP_DN": self.admin_group_dn}


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - slapd's {SSHA} scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _ldif() -> str:
    blocks = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: sicorra\no: SICORRA",
        f"dn: ou=comptes,{SUFFIX}\nobjectClass: organizationalUnit\nou: comptes",
        f"dn: ou=groupes,{SUFFIX}\nobjectClass: organizationalUnit\nou: groupes",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: portail\n"
        f"userPassword: {ssha(SERVICE_PASSWORD)}",
    ]
    for a in ACCOUNTS:
        lines = [f"dn: uid={a.id},{BASE_DN}", "objectClass: inetOrgPerson", f"uid: {a.id}", f"cn: {a.id}",
                 f"sn: {a.name}", f"o: {a.name}", f"employeeNumber: {a.siret}", f"employeeType: {a.kind}",
                 "l: Lyon", "postalCode: 69001", f"mail: {a.mail}", f"userPassword: {ssha(a.password)}"]
        lines += [f"businessCategory: {role}" for role in a.roles]
        blocks.append("\n".join(lines))
    members = [f"member: uid={a.id},{BASE_DN}" for a in ACCOUNTS if a.admin_group]
    blocks.append("\n".join([f"dn: {ADMIN_GROUP_DN}", "objectClass: groupOfNames", "cn: administrateurs", *members]))
    return "\n\n".join(blocks) + "\n"


def _slapd_conf(root: Path) -> str:
    schemas = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    return f"""{schemas}
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
rootpw "{SERVICE_PASSWORD}-root"
directory {root}/data
index objectClass eq
index uid eq
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
"""


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)),
                                       None)
    if not found:
        pytest.fail(f"OpenLDAP `{name}` is missing: run `make test` (installs the Debian slapd package)", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    slapd, slapadd = _binary("slapd"), _binary("slapadd")
    root = tmp_path_factory.mktemp("slapd")
    (root / "data").mkdir()
    (root / "slapd.conf").write_text(_slapd_conf(root))
    (root / "data.ldif").write_text(_ldif())
    loaded = subprocess.run([slapadd, "-f", str(root / "slapd.conf"), "-l", str(root / "data.ldif")],  # noqa: S603
                            capture_output=True, text=True, timeout=60, check=False)
    if loaded.returncode != 0:
        pytest.fail(f"slapadd failed: {loaded.stderr.strip()}", pytrace=False)
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = (root / "slapd.log").open("w")
    process = subprocess.Popen([slapd, "-f", str(root / "slapd.conf"), "-h", f"{url}/", "-d", "0"],  # noqa: S603
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"slapd exited ({process.returncode}): {(root / 'slapd.log').read_text()[-2000:]}",
                            pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("slapd did not listen within 15 s", pytrace=False)
                time.sleep(0.05)
        yield LdapServer(url=url)
    finally:
        from idp.directory import close_all

        close_all()  # the pooled service connections, before their server goes
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
