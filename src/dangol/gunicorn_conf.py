"""gunicorn settings for `dangol serve`."""
import os

accesslog = None  # access lines carry paths with ids; metrics and the app log cover requests
errorlog = "-"
graceful_timeout = 30
timeout = 60
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
forwarded_allow_ips = os.environ.get("DANGOL_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    # Keep the multi-process metrics files of dead workers from growing without bound.
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
