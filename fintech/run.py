"""`make run`: migrate, load the demo data, then serve the API and admin on 127.0.0.1:8000 with a Celery
worker (and its beat) beside it. Ctrl-C stops all of it, including the embedded servers if they were used."""

import os
import signal
import subprocess
import sys
import time

from fintech import devservices

ADDRESS = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")


def main() -> int:
    embedded = not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL")
    python = sys.executable
    manage = [python, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input"], check=True)
    subprocess.run([*manage, "load_demo_data"], check=True)
    children = [
        subprocess.Popen([python, "-m", "celery", "-A", "fintech", "worker", "-B", "-l", "INFO", "-c", "2"]),
        subprocess.Popen([*manage, "runserver", ADDRESS, "--noreload"]),
    ]
    print(f"serving http://{ADDRESS}/api/v1/ and http://{ADDRESS}/admin/ -- Ctrl-C stops everything", flush=True)  # noqa: T201
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            devservices.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
