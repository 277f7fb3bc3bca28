"""Read the deployment files the way their tools do, for the tests that run what they describe.

- `Dockerfile.parse`: stages and their instructions (ENV, WORKDIR, COPY, RUN, USER, CMD, ...).
- `build_context`: the files `docker build .` sends, after `.dockerignore`.
- `compose_environment`: a Compose service's environment with `${VAR:-default}` resolved.
- `render_nginx_conf`: deploy/nginx.conf with loopback addresses and paths of the test's own.
- `make_tls_files`: the self-signed certificate and key deploy/make-keys.sh makes.

Each understands the subset of its format that the project's files use, and says so loudly
(an AssertionError naming the line) when it meets more, rather than guessing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The stage's ENV, in order, each value expanded against the ones before it."""
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for item in shlex.split(instruction.args):
                name, sep, value = item.partition("=")
                assert sep, f"Dockerfile line {instruction.line}: use ENV NAME=value, got {item!r}"
                env[name] = re.sub(
                    r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), "$" + m.group(1)), value
                )
        return env

    def exec_form(self, keyword: str) -> list[str]:
        instruction = self.last(keyword)
        if instruction is None:
            return []
        command = json.loads(instruction.args)
        assert isinstance(command, list) and all(isinstance(a, str) for a in command), (
            f"Dockerfile line {instruction.line}: {keyword} must be in exec form, a JSON array"
        )
        return command

    def command(self) -> list[str]:
        """What a container of this stage runs: ENTRYPOINT followed by CMD."""
        return self.exec_form("ENTRYPOINT") + self.exec_form("CMD")

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """HEALTHCHECK's options (--interval=... as a dict) and its exec-form command."""
        instruction = self.last("HEALTHCHECK")
        assert instruction is not None, "the stage has no HEALTHCHECK"
        options, _, command = instruction.args.partition("CMD ")
        parsed = dict(option.lstrip("-").split("=", 1) for option in options.split())
        return parsed, json.loads(command)

    def workdir(self) -> str:
        instruction = self.last("WORKDIR")
        return instruction.args if instruction else "/"

    def copies(self) -> list[tuple[dict[str, str], list[str], str]]:
        """Each COPY as (flags, sources, destination)."""
        result = []
        for instruction in self.all("COPY"):
            words = shlex.split(instruction.args)
            flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
            paths = [w for w in words if not w.startswith("--")]
            assert len(paths) >= 2, f"Dockerfile line {instruction.line}: COPY needs src and dest"
            result.append((flags, paths[:-1], paths[-1]))
        return result


@dataclass
class Dockerfile:
    stages: list[Stage]

    @classmethod
    def parse(cls, path: Path = ROOT / "Dockerfile") -> Dockerfile:
        stages: list[Stage] = []
        logical = ""
        start = 0
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            stripped = raw.strip()
            # Docker drops comment lines, also inside a continued instruction.
            if stripped.startswith("#") or (not stripped and not logical):
                continue
            if not logical:
                start = number
            if stripped.endswith("\\"):
                logical += stripped[:-1] + " "
                continue
            logical += stripped
            keyword, _, args = logical.partition(" ")
            keyword, args = keyword.upper(), args.strip()
            logical = ""
            if keyword == "FROM":
                words = args.split()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(base=words[0], name=name))
            else:
                assert stages, f"Dockerfile line {start}: {keyword} before FROM"
                stages[-1].instructions.append(Instruction(keyword, args, start))
        return cls(stages)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AssertionError(f"the Dockerfile has no stage named {name!r}")

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus **) as a regex on a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_rules(path: Path = ROOT / ".dockerignore") -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().strip("/"))
        rules.append((negated, _dockerignore_regex(pattern)))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path, or any folder above it, wins."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def build_context(root: Path = ROOT) -> set[str]:
    """The relative paths of the files `docker build` would send from `root`."""
    rules = dockerignore_rules(root / ".dockerignore")
    files = set()
    for folder, _, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(folder, name), root)
            if not is_ignored(relative, rules):
                files.add(relative)
    return files


def interpolate(value: object) -> str:
    """Compose's ${VAR:-default} and ${VAR-default} with VAR unset: the default. $$ is a $."""
    text = str(value)
    assert not re.search(r"\$\{\w+\}|\$\w", text.replace("$$", "")), (
        f"{text!r} needs a variable without a default"
    )
    text = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


def compose_environment(compose: dict, service: str) -> dict[str, str]:
    environment = compose["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: interpolate(value) for name, value in environment.items()}


def sub_once(pattern: str, replacement: str, text: str) -> str:
    """re.sub that must match exactly once: deploy/nginx.conf changing shape fails loudly."""
    result, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"deploy/nginx.conf: {pattern!r} matched {count} times, expected once"
    return result


def nginx_upstream_server(conf: str) -> tuple[str, str]:
    """The Compose upstream's `server NAME:PORT resolve PARAMS;` as (NAME:PORT, PARAMS)."""
    match = re.search(r"^\s*server\s+(\S+)\s+resolve\s+([^;]*);", conf, re.MULTILINE)
    assert match, "deploy/nginx.conf: no `server NAME:PORT resolve ...;` line in the upstream"
    return match.group(1), match.group(2)


def render_nginx_conf(
    conf: str,
    listen_port: int,
    upstream_ports: list[int],
    prefix: Path,
    user: str | None,
    https_port: int,
    certificate: Path,
    certificate_key: Path,
    read_timeout: str | None = None,
    balancer: str | None = None,
) -> str:
    """deploy/nginx.conf for a test: the same upstream settings, proxy and error handling, with
    loopback instances in place of the Compose service (so no DNS: no resolver, no `resolve`),
    loopback listen ports (HTTP, and HTTPS with the test's certificate), pid, logs and temporary
    files under `prefix`, and, when given, a shorter proxy_read_timeout and the commented
    load-balancer block turned on for the network `balancer`."""
    if balancer:
        conf = sub_once(
            r"^(\s*)# set_real_ip_from \S+;$", rf"\g<1>set_real_ip_from {balancer};", conf
        )
        conf = sub_once(r"^(\s*)# (real_ip_header X-Forwarded-For;)$", r"\g<1>\g<2>", conf)
        conf = sub_once(r"^(\s*)# (real_ip_recursive on;)$", r"\g<1>\g<2>", conf)
    _, params = nginx_upstream_server(conf)
    servers = "\n".join(f"        server 127.0.0.1:{port} {params};" for port in upstream_ports)
    conf = sub_once(r"^\s*server\s+\S+\s+resolve\s+[^;]*;$", servers, conf)
    conf = sub_once(r"^\s*resolver\s[^;]*;$", "", conf)
    conf = sub_once(r"^(\s*)listen\s+\d+;$", rf"\g<1>listen 127.0.0.1:{listen_port};", conf)
    conf = sub_once(r"^(\s*)listen\s+\d+ ssl;$", rf"\g<1>listen 127.0.0.1:{https_port} ssl;", conf)
    conf = sub_once(r"^(\s*)ssl_certificate\s+\S+;$", rf"\g<1>ssl_certificate {certificate};", conf)
    conf = sub_once(
        r"^(\s*)ssl_certificate_key\s+\S+;$", rf"\g<1>ssl_certificate_key {certificate_key};", conf
    )
    if read_timeout:
        conf = sub_once(
            r"^(\s*)proxy_read_timeout\s+\S+;$", rf"\g<1>proxy_read_timeout {read_timeout};", conf
        )
    conf = sub_once(r"^pid\s+\S+;$", f"pid {prefix}/nginx.pid;", conf)
    conf = sub_once(r"^error_log\s+\S+", f"error_log {prefix}/error.log", conf)
    conf = sub_once(
        r"^(\s*)access_log\s+/\S+(\s+\w+)?;$", rf"\g<1>access_log {prefix}/access.log\g<2>;", conf
    )
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = sub_once(r"^http \{\n", "http {\n" + temp_paths, conf)
    if user:
        conf = f"user {user};\n" + conf
    return conf


def make_tls_files(folder: Path) -> tuple[Path, Path]:
    """The self-signed certificate and key deploy/make-keys.sh makes for Compose."""
    made = subprocess.run(
        [str(DEPLOY / "make-keys.sh"), str(folder)], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    return folder / "tls-cert.pem", folder / "tls-key.pem"
