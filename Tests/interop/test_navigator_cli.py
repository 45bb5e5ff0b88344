"""`medic search` and the navigator's REST route against a real `medic serve` (issue: codebase navigator)."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from medic_server import Medic


def wait_indexed(medic, token, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = medic.rest("GET", "/api/v1/repos/repo/search?q=readme", token)
            if answer.get("indexed_files", 0) > 0:
                return answer
        except urllib.error.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the repository was not indexed")


def test_medic_search_prints_results_and_fails_clearly(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)
    medic = Medic(data)
    repo = medic.repo
    os.makedirs(os.path.join(repo, "billing"))
    with open(os.path.join(repo, "billing", "invoices.py"), "w") as f:
        f.write('def total_with_tax(amount):\n    """Adds VAT to an invoice amount."""\n    return amount * 1.2\n')
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True)
    subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "billing"], check=True)
    medic.start()
    try:
        viewer = medic.token("vera", "viewer")
        wait_indexed(medic, viewer)
        url = f"http://127.0.0.1:{medic.port}"
        out = subprocess.run([medic.bin, "search", "repo", "invoice tax", "--url", url, "--token", viewer],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "billing/invoices.py" in out.stdout and "total_with_tax" in out.stdout
        as_json = subprocess.run([medic.bin, "search", "repo", "billing/invoices.py", "--mode", "outline", "--json", "--url", url, "--token", viewer],
                                 capture_output=True, text=True, timeout=30)
        assert json.loads(as_json.stdout)["results"][0]["name"] == "total_with_tax"
        bad = subprocess.run([medic.bin, "search", "nope", "x y", "--url", url, "--token", viewer], capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0 and "unknown repository" in bad.stderr
        wrong = subprocess.run([medic.bin, "search", "repo", "tax", "--url", url, "--token", "not-a-token"], capture_output=True, text=True, timeout=30)
        assert wrong.returncode != 0
    finally:
        medic.stop()
