"""Deployment manifests parse, start as shipped, and every command they run exists.

No Docker engine, Kubernetes cluster or running systemd is at hand where the
tests run, so the manifests are checked by reading them: every volume a pod
or container mounts exists, each job has a data folder of its own that the
image's user can write, schedules catch up after downtime, and the build
context holds what the Dockerfile copies and nothing else. The systemd
install script is run for real, into a temporary root.
"""

import configparser
import os
import re
import shlex
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from crawler.runner import check_config, project_settings
from finews.cli.config import load_config, parse_interval
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"


def finews_accepts(argv: list[str]) -> None:
    """The CLI knows this command and its options (``--help`` appended, so nothing runs)."""
    result = subprocess.run([sys.executable, "-m", "finews.cli", *argv, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, (argv, result.stderr)
    assert "usage: finews" in result.stdout


# --- the Dockerfile, read as Docker reads it --------------------------------

def dockerfile_instructions(path: Path = DEPLOY / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, rest = text.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def copies() -> list[tuple[list[str], str]]:
    """(sources in the build context, destination) of every COPY from the context."""
    found = []
    for keyword, rest in dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = yaml.safe_load(rest) if rest.startswith("[") else shlex.split(rest)
        if any(word.startswith("--from=") for word in words):
            continue
        words = [word for word in words if not word.startswith("--")]
        found.append((words[:-1], words[-1]))
    return found


def image_files() -> dict[str, Path]:
    """Absolute path in the image → the repository file it is copied from."""
    files = {}
    for sources, destination in copies():
        for source in sources:
            if destination.startswith("/") and not destination.endswith("/"):
                files[destination] = ROOT / source
    return files


def image_user() -> tuple[int, int]:
    """(uid, gid) the image's processes run as, from its USER line."""
    user = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER {user}: numeric uid:gid, so runAsNonRoot can check it"
    return int(uid), int(gid)


def image_env() -> dict[str, str]:
    env = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(rest))
    return env


# --- .dockerignore, matched as Docker (moby/patternmatcher) matches it ------

def dockerignore_patterns(path: Path = ROOT / ".dockerignore") -> list[tuple[re.Pattern, bool]]:
    """(regex, negated) per line. Docker's rules: a pattern is a cleaned
    slash path relative to the context root; ``*`` and ``?`` stay within one
    path element, ``**`` spans any number of them; a ``!`` line re-includes."""
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if negated else line).lstrip("/")
        regex, i = "^", 0
        while i < len(pattern):
            char = pattern[i]
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                regex += ".*" if i >= len(pattern) else "(.*/)?"
                continue
            regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else char if char in "[]" else re.escape(char)
            i += 1
        patterns.append((re.compile(regex + "$"), negated))
    return patterns


def ignored(relative: str, patterns) -> bool:
    """Left out of the build context: the last pattern that matches the path
    or one of its parent folders decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for regex, negated in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


def build_context(patterns) -> list[Path]:
    """The files ``docker build`` would send (folders that nothing
    re-includes are not walked)."""
    negations = [regex for regex, negated in patterns if negated]
    sent = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if here == "." else here + "/"
        dirs[:] = [name for name in dirs
                   if not ignored(prefix + name, patterns)
                   or any(regex.pattern.startswith("^" + re.escape(prefix + name + "/")) for regex in negations)]
        sent += [Path(folder) / name for name in files if not ignored(prefix + name, patterns)]
    return sent


# --- Kubernetes and cron ----------------------------------------------------

def kubernetes_documents() -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [(path, document) for document in yaml.safe_load_all(path.read_text()) if document]
    return documents


def cronjobs() -> list[tuple[Path, dict]]:
    return [(path, document) for path, document in kubernetes_documents() if document["kind"] == "CronJob"]


def pod_spec(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _field(text: str, low: int, high: int) -> set[int]:
    """Values of one cron or systemd calendar field: ``*``, ``N``, ``A/STEP``,
    ``*/STEP``, ``A-B`` and comma lists of them."""
    values = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(number) for number in base.split("-"))
        else:
            start = int(base)
            end = high if step else start
        assert low <= start <= end <= high, f"{part!r} is out of {low}..{high}"
        values.update(range(start, end + 1, int(step) if step else 1))
    return values


def cron_minutes(schedule: str) -> list[int]:
    """Minutes of the day a five-field cron schedule fires (every day)."""
    minute, hour, *days = schedule.split()
    assert len(days) == 3 and set(days) == {"*"}, f"{schedule!r}: only daily schedules are read here"
    return sorted(h * 60 + m for h in _field(hour, 0, 23) for m in _field(minute, 0, 59))


def calendar_minutes(spec: str) -> list[int]:
    """Minutes of the day a systemd ``OnCalendar=`` spec fires, for the
    daily forms ``[*-*-* ]HOUR:MINUTE[:00]`` and the shorthands
    (systemd.time(7), "Calendar Events")."""
    spec = {"minutely": "*:*", "hourly": "*:00", "daily": "00:00"}.get(spec.strip(), spec.strip())
    *date, time = spec.split()
    assert date in ([], ["*-*-*"]), f"{spec!r}: only daily calendars are read here"
    hour, minute, *second = time.split(":")
    assert second in ([], ["0"], ["00"]), f"{spec!r}: whole minutes only"
    return sorted(h * 60 + m for h in _field(hour, 0, 23) for m in _field(minute, 0, 59))


def spacing(minutes: list[int]) -> set[int]:
    """Seconds between consecutive runs over a day, wrapping at midnight."""
    return {((b - a) % 1440 or 1440) * 60 for a, b in zip(minutes, minutes[1:] + minutes[:1], strict=True)}


def config_of(argv: list[str]) -> Path:
    """The repository file behind a deployment's ``--config /etc/finews/…``."""
    path = argv[argv.index("--config") + 1]
    files = image_files()
    assert path in files, f"{path} is not copied into the image (COPY … {path})"
    return files[path]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    assert parser.read(SYSTEMD / name), name
    return parser


# --- configs ----------------------------------------------------------------

def test_the_bundled_config_loads():
    config = load_config(DEPLOY / "finews.toml", environ={})
    check_config(config, project_settings())
    assert [job.spider for job in config.jobs] == ["newslist"]
    assert config.every == 300 and config.data_dir == "/var/lib/finews"


def test_every_deploy_config_passes_the_checks_finews_run_makes():
    """Spiders, their arguments and [settings] names: a config that ``finews
    run`` would refuse (exit 2) must not ship."""
    configs = sorted(DEPLOY.glob("*.toml"))
    assert configs
    for path in configs:
        check_config(load_config(path, environ={}), project_settings())


# --- image ------------------------------------------------------------------

def test_dockerfile_is_non_root_and_runs_the_cli():
    text = (DEPLOY / "Dockerfile").read_text()
    useradd = next(rest for keyword, rest in dockerfile_instructions() if "useradd" in rest)
    uid, gid = image_user()
    assert uid != 0 and f"--uid {uid}" in useradd and f"--gid {gid}" in useradd
    assert 'ENTRYPOINT ["finews"]' in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    finews_accepts(yaml.safe_load(cmd[4:]))
    for source in ("pyproject.toml", "finews", "crawler", "pipelines", "scrapy.cfg", "deploy/finews.toml"):
        assert (ROOT / source).exists(), source


def test_every_config_a_deployment_names_is_in_the_image():
    commands = [service["command"] for service in yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
                ["services"].values() if "command" in service and "build" in service]
    commands += [container["args"] for _, job in cronjobs() for container in pod_spec(job)["containers"]]
    assert len(commands) >= 5
    for argv in commands:
        assert config_of(argv).is_file(), argv
    for sources, _ in copies():
        for source in sources:
            assert (ROOT / source).exists(), source


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_else():
    """The build context was the whole checkout, .venv (about 500 MB) included."""
    patterns = dockerignore_patterns()
    for sources, _ in copies():
        for source in sources:
            assert not ignored(source, patterns), f"COPY {source}: left out by .dockerignore"
            under = list((ROOT / source).rglob("*.py")) if (ROOT / source).is_dir() else []
            for path in under:
                assert not ignored(path.relative_to(ROOT).as_posix(), patterns), path
    for left_out in (".venv", ".venv/lib/python3.11/site-packages/scrapy/__init__.py", "var", "var/db/x.wt",
                     "var/spool/spool-1-2-3.jsonl", "var/jobs/category/requests.queue/active.json",
                     ".git", ".git/HEAD", ".pytest_cache", ".hypothesis/examples/x", "tests",
                     "finews.egg-info/PKG-INFO", "finews/__pycache__/cli.cpython-311.pyc",
                     "crawler/spiders/__pycache__/base.cpython-311.pyc", "finews/.pytest_cache/v",
                     "build/lib/finews/__init__.py", "posts.jsonl", "deploy/Dockerfile"):
        assert ignored(left_out, patterns), left_out
    sent = build_context(patterns)
    assert ROOT / "finews" / "cli" / "__init__.py" in sent and ROOT / "deploy" / "finews-category.toml" in sent
    assert not [path for path in sent if "__pycache__" in path.parts or ".venv" in path.parts]
    assert sum(path.stat().st_size for path in sent) < 20 * 2**20


def test_dockerignore_matching_follows_docker(tmp_path):
    """The matcher above, on cases whose outcome Docker documents."""
    def patterns(*lines):
        path = tmp_path / ".dockerignore"
        path.write_text("\n".join(lines) + "\n")
        return dockerignore_patterns(path)
    assert ignored("a/b/c.go", patterns("**/*.go")) and ignored("c.go", patterns("**/*.go"))
    assert ignored("x/temp.txt", patterns("*/temp*")) and not ignored("x/y/temp.txt", patterns("*/temp*"))
    readme_kept = patterns("*.md", "!README*.md")
    assert ignored("a.md", readme_kept) and not ignored("README-x.md", readme_kept)
    assert not ignored("deploy/finews.toml", patterns("*", "!deploy/finews.toml"))
    assert ignored("deploy/Dockerfile", patterns("*", "!deploy/finews.toml"))
    assert ignored("src/a/__pycache__/m.pyc", patterns("*", "!src", "**/__pycache__"))


# --- docker compose ---------------------------------------------------------

def test_compose_has_a_real_mongo_and_the_scheduled_crawler():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["mongo"]["image"].startswith("mongo:")
    crawler = services["crawler"]
    assert crawler["environment"]["MONGO_URI"].startswith("mongodb://mongo:")
    assert (DEPLOY / crawler["build"]["context"] / crawler["build"]["dockerfile"]).resolve() == (DEPLOY / "Dockerfile")
    assert "--every" in crawler["command"]
    finews_accepts(crawler["command"])


def test_compose_gives_each_job_its_own_data_volume():
    """crawler and crawler-category shared one volume: spool files are
    claimed by process id, and each container has its own process ids."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    owners = {}
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        data_dir = service.get("environment", {}).get("FINEWS_DATA_DIR") or image_env()["FINEWS_DATA_DIR"]
        assert data_dir == load_config(config_of(service["command"]), environ={}).data_dir
        mounts = [volume.split(":") for volume in service["volumes"]]
        sources = [source for source, target, *_ in mounts if target == data_dir]
        assert len(sources) == 1, f"{name}: no volume at its data folder {data_dir}"
        assert sources[0] in compose["volumes"], f"{name}: volume {sources[0]} is not declared"
        assert sources[0] not in owners, f"{name} and {owners.get(sources[0])} share {sources[0]}"
        owners[sources[0]] = name
    assert len(owners) == 2


def test_compose_runs_each_job_as_often_as_its_config_says():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        if "build" in service:
            argv = service["command"]
            every = argv[argv.index("--every") + 1]
            assert load_config(config_of(argv), environ={}).every == parse_interval(every)


def test_compose_scale_out_adds_redis_and_workers():
    base = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    scale = yaml.safe_load((DEPLOY / "docker-compose.scale.yml").read_text())
    assert scale["services"]["redis"]["image"].startswith("redis:")
    crawler = scale["services"]["crawler"]
    assert "crawler" in base["services"], "the override extends the base file's crawler"
    assert crawler["environment"]["FINEWS_REDIS_URL"].startswith("redis://redis:")
    assert crawler["deploy"]["replicas"] > 1
    data = base["services"]["crawler"]["volumes"][0].split(":")[1]
    assert [v["target"] for v in crawler["volumes"]] == [data], "each worker keeps its own data folder"
    assert crawler["volumes"][0]["type"] == "tmpfs"


# --- Kubernetes -------------------------------------------------------------

def test_kubernetes_manifests_are_well_formed():
    """What ``kubectl apply`` would refuse or leave Pending: a volume that is
    mounted but not defined, a claim no manifest creates."""
    documents = kubernetes_documents()
    names = [(document["kind"], document["metadata"]["name"]) for _, document in documents]
    assert len(names) == len(set(names)), names
    claims = {document["metadata"]["name"]: path for path, document in documents
              if document["kind"] == "PersistentVolumeClaim"}
    for path, document in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(document), path
        if document["kind"] == "PersistentVolumeClaim":
            assert document["apiVersion"] == "v1"
            assert document["spec"]["accessModes"] and document["spec"]["resources"]["requests"]["storage"]
            continue
        assert (document["apiVersion"], document["kind"]) == ("batch/v1", "CronJob"), path
        cron_minutes(document["spec"]["schedule"])
        pod = pod_spec(document)
        assert pod["restartPolicy"] in ("Never", "OnFailure")
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        mounted = {mount["name"] for container in pod["containers"] for mount in container.get("volumeMounts", [])}
        assert mounted == set(volumes), (path, mounted, set(volumes))
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert claims.get(claim) == path, f"{path.name}: claim {claim} is not defined in that file"


def test_kubernetes_cronjobs_forbid_overlap():
    assert len(cronjobs()) == 3
    for path, job in cronjobs():
        assert job["spec"]["concurrencyPolicy"] == "Forbid", path
        pod = pod_spec(job)
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            finews_accepts(container["args"])


def test_kubernetes_each_job_writes_a_data_folder_of_its_own():
    """The claim finews-data was defined nowhere (pods Pending), shared by
    two jobs, and not writable by uid 10001 (no fsGroup)."""
    uid, gid = image_user()
    claimed = {}
    for path, job in cronjobs():
        pod = pod_spec(job)
        context = pod["securityContext"]
        assert (context["runAsUser"], context.get("runAsGroup"), context.get("fsGroup")) == (uid, gid, gid), path
        container = pod["containers"][0]
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        data_dir = env.get("FINEWS_DATA_DIR") or image_env()["FINEWS_DATA_DIR"]
        assert data_dir == load_config(config_of(container["args"]), environ={}).data_dir
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == data_dir)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert claim not in claimed, f"{path.name} and {claimed.get(claim)} share the claim {claim}"
            claimed[claim] = path.name
        else:
            assert "emptyDir" in volume, volume
            comments = " ".join(line for line in path.read_text().splitlines() if line.lstrip().startswith("#"))
            assert "emptyDir" in comments and "spool" in comments, f"{path.name}: say why emptyDir is enough"
    assert len(claimed) == 2


def test_kubernetes_scale_out_runs_parallel_workers_on_redis():
    job = next(job for path, job in cronjobs() if path.name == "cronjob-scale-out.yaml")
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = job["spec"]["jobTemplate"]["spec"]
    assert spec["parallelism"] == spec["completions"] > 1
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert "FINEWS_REDIS_URL" in {e["name"] for e in container["env"]}
    assert "emptyDir" in pod["volumes"][0]
    finews_accepts(container["args"])


# --- systemd ----------------------------------------------------------------

def test_systemd_service_and_timer():
    for name in ("finews.service", "finews-category.service"):
        service = unit(name)["Service"]
        exec_start = shlex.split(service["ExecStart"])
        assert Path(exec_start[0]).name == "finews"
        finews_accepts(exec_start[1:])
        assert service["Type"] == "oneshot" and service["User"] == "finews"
        assert set(service["SuccessExitStatus"].split()) == {"3", "75"}
    assert calendar_minutes(unit("finews.timer")["Timer"]["OnCalendar"]) == list(range(0, 1440, 5))


def test_systemd_timers_catch_up_after_downtime():
    """Persistent= works only with OnCalendar=: with OnUnitActiveSec= a run
    missed while the machine was off was simply skipped."""
    timers = sorted(SYSTEMD.glob("*.timer"))
    assert len(timers) == 2
    for path in timers:
        timer = unit(path.name)["Timer"]
        assert timer.get("Persistent") == "true", path.name
        assert calendar_minutes(timer["OnCalendar"]), path.name
        assert not {"OnActiveSec", "OnBootSec", "OnStartupSec", "OnUnitActiveSec", "OnUnitInactiveSec"} & set(timer)
        assert unit(path.name)["Install"]["WantedBy"] == "timers.target"
        assert (path.with_suffix(".service")).is_file()


def test_every_schedule_of_a_job_matches_its_config():
    """The timer, the CronJob and the config's ``every`` of each job agree."""
    by_config = {}
    for path in SYSTEMD.glob("*.timer"):
        argv = shlex.split(unit(path.with_suffix(".service").name)["Service"]["ExecStart"])
        by_config.setdefault(config_of_unit(argv), []).append(calendar_minutes(unit(path.name)["Timer"]["OnCalendar"]))
    for _, job in cronjobs():
        by_config.setdefault(config_of(pod_spec(job)["containers"][0]["args"]), []).append(
            cron_minutes(job["spec"]["schedule"]))
    assert sorted(path.name for path in by_config) == ["finews-category.toml", "finews.toml"]
    for path, schedules in by_config.items():
        every = load_config(path, environ={}).every
        assert len(schedules) >= 2 and all(schedule == schedules[0] for schedule in schedules), path.name
        assert spacing(schedules[0]) == {every}, path.name


def test_schedule_readers_follow_systemd_and_cron():
    """The two readers above, on values systemd-analyze calendar and crontab(5) give."""
    assert calendar_minutes("*:0/5")[:3] == [0, 5, 10] and len(calendar_minutes("*:0/5")) == 288
    assert calendar_minutes("*-*-* *:17:00") == [h * 60 + 17 for h in range(24)]
    assert calendar_minutes("hourly") == calendar_minutes("*:00") == cron_minutes("0 * * * *")
    assert calendar_minutes("02,14:30") == cron_minutes("30 2,14 * * *") == [150, 870]
    assert spacing(cron_minutes("*/5 * * * *")) == {300} and spacing(cron_minutes("17 * * * *")) == {3600}
    with pytest.raises(AssertionError):
        calendar_minutes("Mon *-*-* 00:00")


def stub_wheel(folder: Path) -> Path:
    """A wheel named finews whose ``finews`` command prints its arguments:
    pip installs it offline, where the real package would be built and its
    dependencies fetched from an index (tests talk only to loopback)."""
    path = folder / "finews-0.0.0-py3-none-any.whl"
    info = "finews-0.0.0.dist-info"
    files = {
        "finews_install_check.py": "import sys\n\ndef main():\n    print('finews', *sys.argv[1:])\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: finews\nVersion: 0.0.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\nfinews = finews_install_check:main\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def unit_paths() -> dict[str, str]:
    """Every absolute path the units use, with what it must be."""
    paths = {}
    for name in ("finews.service", "finews-category.service"):
        service = unit(name)["Service"]
        argv = shlex.split(service["ExecStart"])
        paths[argv[0]] = "executable"
        paths[argv[argv.index("--config") + 1]] = "file"
        paths[service["EnvironmentFile"].lstrip("-")] = "file"
        paths[service["WorkingDirectory"]] = "data"
        paths["/var/lib/" + service["StateDirectory"]] = "data"
        environment = dict(word.split("=", 1) for word in shlex.split(service["Environment"]))
        paths[environment["FINEWS_DATA_DIR"]] = "data"
        paths[load_config(config_of_unit(argv), environ={}).data_dir] = "data"
    return paths


def config_of_unit(argv: list[str]) -> Path:
    return DEPLOY / Path(argv[argv.index("--config") + 1]).name


def run_install(root: Path, wheel: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINEWS_ROOT": str(root), "FINEWS_PYTHON": sys.executable,
           "FINEWS_SOURCE": str(wheel), "FINEWS_PIP_OPTIONS": "--no-index --no-deps"}
    return subprocess.run(["bash", str(SYSTEMD / "install.sh")], env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh creates a user and chowns: it needs root")
def test_install_script_creates_everything_the_units_use(tmp_path):
    """The units expected /opt/finews/.venv, a finews user and /etc/finews,
    with no step that made them. Run twice: the second run changes nothing
    an operator set."""
    assert subprocess.run(["bash", "-n", str(SYSTEMD / "install.sh")]).returncode == 0
    root, wheel = tmp_path / "root", stub_wheel(tmp_path)
    first = run_install(root, wheel)
    assert first.returncode == 0, first.stderr
    users = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    finews = [user for user in users if user[0] == "finews"]
    assert len(finews) == 1 and finews[0][6].endswith("nologin")
    uid, gid = int(finews[0][2]), int(finews[0][3])

    for path, kind in unit_paths().items():
        here = root / path.lstrip("/")
        assert here.exists(), f"{path} (used by the units) was not created"
        if kind == "executable":
            result = subprocess.run([str(here), "--help"], capture_output=True, text=True)
            assert result.returncode == 0 and result.stdout.strip() == "finews --help", result
        elif kind == "data":
            status = here.stat()
            assert here.is_dir() and (status.st_uid, status.st_gid) == (uid, gid), path
    for name in ("finews.toml", "finews-category.toml"):
        assert (root / "etc/finews" / name).read_bytes() == (DEPLOY / name).read_bytes()
    assert stat.S_IMODE((root / "etc/finews/finews.env").stat().st_mode) == 0o600
    for name in ("finews.service", "finews.timer", "finews-category.service", "finews-category.timer"):
        assert (root / "etc/systemd/system" / name).read_bytes() == (SYSTEMD / name).read_bytes()
    for name in ("finews.timer", "finews-category.timer"):
        assert (root / "etc/systemd/system/timers.target.wants" / name).is_symlink(), name

    (root / "etc/finews/finews.toml").write_text("# edited by the operator\n")
    (root / "etc/finews/finews.env").write_text("MONGO_URI=mongodb://db.example:27017/\n")
    again = run_install(root, wheel)
    assert again.returncode == 0, again.stderr
    assert (root / "etc/finews/finews.toml").read_text() == "# edited by the operator\n"
    assert (root / "etc/finews/finews.env").read_text() == "MONGO_URI=mongodb://db.example:27017/\n"
    assert [line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("finews:")] == [
        ":".join(finews[0])]
