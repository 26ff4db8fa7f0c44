"""Real deployment through Flower (Beutel et al. 2020, "Flower: A Friendly Federated Learning
Framework"): our strategy, client update and round loop as a Flower ``ServerApp``/``ClientApp``
pair on Flower's current Message API, for the Deployment Engine (``flower-superlink`` /
``flower-supernode`` / ``flwr run``) and the Simulation Runtime.

Needs the ``federated`` extra (``pip install 'interlearn[federated]'``).
"""

from interlearn.federated.flower.client_app import ClientSetup, make_client_app
from interlearn.federated.flower.deploy import LocalFederation, free_port, write_flower_app
from interlearn.federated.flower.grid_engine import FlowerGridEngine, RemotePopulation, discover_clients
from interlearn.federated.flower.job import (
    FINAL,
    FlowerJob,
    flower_apps,
    job_client_app,
    job_server_app,
    run_flower_simulation,
    run_job,
)
from interlearn.federated.flower.server_app import ServerSetup, make_server_app

__all__ = [
    "FlowerJob",
    "job_server_app",
    "job_client_app",
    "flower_apps",
    "run_job",
    "run_flower_simulation",
    "FINAL",
    "FlowerGridEngine",
    "RemotePopulation",
    "discover_clients",
    "ClientSetup",
    "ServerSetup",
    "make_client_app",
    "make_server_app",
    "LocalFederation",
    "write_flower_app",
    "free_port",
]
