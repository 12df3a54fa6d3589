"""Deployment manifests parse, and every command they run exists."""

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from finews.cli.config import load_config
from crawler.runner import check_config, project_settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def finews_accepts(argv: list[str]) -> None:
    """The CLI knows this command and its options (``--help`` appended, so nothing runs)."""
    result = subprocess.run([sys.executable, "-m", "finews.cli", *argv, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, (argv, result.stderr)
    assert "usage: finews" in result.stdout


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


def test_dockerfile_is_non_root_and_runs_the_cli():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER finews" in text and "useradd" in text
    assert 'ENTRYPOINT ["finews"]' in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    finews_accepts(yaml.safe_load(cmd[4:]))
    for source in ("pyproject.toml", "finews", "crawler", "pipelines", "scrapy.cfg", "deploy/finews.toml"):
        assert (ROOT / source).exists(), source


def test_compose_has_a_real_mongo_and_the_scheduled_crawler():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["mongo"]["image"].startswith("mongo:")
    crawler = services["crawler"]
    assert crawler["environment"]["MONGO_URI"].startswith("mongodb://mongo:")
    assert (DEPLOY / crawler["build"]["context"] / crawler["build"]["dockerfile"]).resolve() == (DEPLOY / "Dockerfile")
    assert "--every" in crawler["command"]
    finews_accepts(crawler["command"])


def test_kubernetes_cronjob_forbids_overlap():
    job = yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    finews_accepts(pod["containers"][0]["args"])


def test_systemd_service_and_timer():
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(DEPLOY / "systemd" / "finews.service")
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert Path(exec_start[0]).name == "finews"
    finews_accepts(exec_start[1:])
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["User"] == "finews"
    assert set(service["Service"]["SuccessExitStatus"].split()) == {"3", "75"}
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(DEPLOY / "systemd" / "finews.timer")
    assert timer["Timer"]["OnUnitActiveSec"] == "5min"


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


def test_kubernetes_scale_out_runs_parallel_workers_on_redis():
    job = yaml.safe_load((DEPLOY / "kubernetes" / "cronjob-scale-out.yaml").read_text())
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = job["spec"]["jobTemplate"]["spec"]
    assert spec["parallelism"] == spec["completions"] > 1
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert "FINEWS_REDIS_URL" in {e["name"] for e in container["env"]}
    assert "emptyDir" in pod["volumes"][0]
    finews_accepts(container["args"])
