"""The canary that fails: ``setup`` succeeds, ``boom`` fails (no retries), ``after`` never runs."""

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(dag_id="canary_fail", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def canary_fail():
    @task
    def setup() -> None:
        print("setting up")

    @task(retries=0)
    def boom() -> None:
        raise RuntimeError("the canary fails on purpose")

    @task
    def after() -> None:
        print("never runs")

    setup() >> boom() >> after()


canary_fail()
