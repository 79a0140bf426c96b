"""Run a batch: every run of a design on an executor, each written as soon as it finishes.

One code path for every executor: a ``concurrent.futures.Executor`` (local worker processes
by default; a Dask cluster's ``Client.get_executor()`` with ``scheduler`` or ``cluster``).
The driver keeps at most a few runs per worker in flight, writes each finished run to the
store itself (one writer: ``sim.store``), and holds nothing of a run once it is written, so
its memory does not grow with the number of runs. A run that raises is recorded as failed
with its error and the batch goes on; Ctrl-C stops cleanly and keeps every finished run;
``resume`` runs only what is not finished (after a crash, a kill or an interrupt), after
moving any file that fails verification to the store's ``quarantine/`` (``BatchStore.repair``)
so that its runs are rerun. When the runs are done their files are combined into blocks
(``BatchStore.compact``).

Every run is a pure function of (scenario, design point, seed): the results do not depend on
the executor, the number of workers or the order in which runs finish.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from sim.api import __version__, load_scenario, run
from sim.batch.design import Design, RunSpec, content_hash, expand
from sim.errors import SimError, SimWarning
from sim.progress import progress_bar
from sim.scenario import Scenario
from sim.store import BatchStore, encode_run, is_batch

IN_FLIGHT_PER_WORKER = 2  # runs queued per worker: enough to keep it busy, no more
CONNECT_TIMEOUT = "10s"  # to reach a Dask scheduler


class BatchInterrupted(SimError):
    """The batch stopped on Ctrl-C; finished runs are kept."""


@dataclass
class BatchReport:
    """What a batch call did."""

    out: Path
    runs: int  # in the design
    finished: int  # written, including earlier sessions
    failed: int  # recorded as failed in this call
    skipped: int  # already finished before this call
    seconds: float
    quarantined: int = 0  # files that failed verification, moved to quarantine/ and rerun


def label(ds: xr.Dataset, spec: RunSpec, parameters: Sequence[str]) -> xr.Dataset:
    """A run's results with a ``run`` dim of length 1 and the run's coordinates.

    Coordinates on ``run``: ``scenario``, ``seed``, ``replication``, ``point`` and every
    swept parameter of the batch (NaN where this run's file does not sweep it). Edges get
    labels (``from->to:kind``) so that runs of different scenarios join on them. The
    scenario's text is left out: the manifest keeps it once for the batch.
    """
    if "edge" in ds.dims and "edge" not in ds.indexes:  # label edges so stores can join
        ds = ds.assign_coords(edge=[f"{u}->{v}:{k}" for u, v, k in zip(
            ds.edge_from.values, ds.edge_to.values, ds.edge_kind.values, strict=True)])
    out = ds.expand_dims(run=[spec.run])
    # The file's text is kept once, in the manifest (``scenario_sha256`` names it per run).
    out.attrs.pop("scenario_text", None)
    coords = {"scenario": ("run", [spec.scenario]), "seed": ("run", [spec.seed]),
              "replication": ("run", [spec.replication]), "point": ("run", [spec.point])}
    for p in parameters:
        coords[p] = ("run", [spec.params.get(p, math.nan)])
    return out.assign_coords(coords)


def execute(scenario: Scenario, spec: RunSpec, parameters: Sequence[str]
            ) -> tuple[int, bytes | None, str, str, list[str]]:
    """Run one spec on a worker: (run, encoded run file or None, error, traceback, warnings).

    The worker encodes the run file itself (``sim.store.encode_run``), so the driver only
    writes bytes. Never raises for a failing run: the error comes back as text, so one bad
    run does not stop the batch. The run's ``SimWarning`` messages come back too (a worker's
    stderr is not the user's), for the driver to report once per kind.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SimWarning)
        try:
            ds = label(run(scenario, seed=spec.seed), spec, parameters)
            data, error, trace = encode_run(ds), "", ""
        except Exception as exc:  # noqa: BLE001 (any failure of a run is recorded, not raised)
            data, error, trace = None, f"{type(exc).__name__}: {exc}", traceback.format_exc()
    said = [str(w.message) for w in caught if issubclass(w.category, SimWarning)]
    return spec.run, data, error, trace, said


class RunWarnings:
    """The warnings of a batch's runs, one report per kind (the message, numbers aside)."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}  # kind -> its first message
        self.runs: dict[str, set[int]] = {}  # kind -> the runs that gave it

    def add(self, run_id: int, messages: Sequence[str]) -> None:
        """Note the messages of run ``run_id``."""
        for message in messages:
            kind = re.sub(r"\d[\d.,e+-]*", "#", message)
            self.first.setdefault(kind, message)
            self.runs.setdefault(kind, set()).add(run_id)

    def report(self, total: int) -> None:
        """Warn once per kind, with its first message and how many runs gave it."""
        for kind, message in self.first.items():
            n = len(self.runs[kind])
            warnings.warn(f"{message} (in {n} of {total} runs; the first one's figures)"
                          if n > 1 else f"{message} (in run {min(self.runs[kind])})",
                          SimWarning, stacklevel=3)


def manifest(design: Design) -> dict:
    """The batch manifest: scenarios, parameters, sample matrices and every run."""
    return {
        "sim_version": __version__,
        "scenarios": [{"name": f.scenario.name, "source": f.scenario.source,
                       "text": f.scenario.text, "content_hash": content_hash(f.scenario),
                       "batch": f.scenario.batch.model_dump(mode="json"),
                       "parameters": f.parameters, "sample_method": f.sample_method,
                       "sample_matrix": None if f.sample_matrix is None
                       else f.sample_matrix.tolist()}
                      for f in design.files],
        "parameters": design.parameters,
        "runs": [spec.record() for spec in design.runs],
    }


@contextmanager
def executor(workers: int, *, scheduler: str | None = None,
             cluster: str | None = None) -> Iterator[tuple[Executor, int]]:
    """An executor and its worker slots: local processes, a Dask cluster, or a LocalCluster.

    ``scheduler`` is a running cluster's address; ``cluster = "local"`` starts one. Workers
    run one numba thread each (``NUMBA_NUM_THREADS=1``): N workers on N cores. A running
    cluster's slots are its threads, whatever ``workers`` says.
    """
    if scheduler is not None or cluster is not None:
        from distributed import Client, LocalCluster

        local = None
        if scheduler is None:
            if cluster != "local":
                raise SimError(f"unknown --cluster '{cluster}' (known: local)")
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                 dashboard_address=None, env={"NUMBA_NUM_THREADS": "1"})
        try:
            client = Client(scheduler if local is None else local, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            if local is not None:
                local.close()
            raise SimError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        ex = client.get_executor(pure=False)
        slots = max(1, sum(client.nthreads().values())) if local is None else workers
        try:
            yield ex, slots
        finally:
            ex.shutdown(wait=False)
            client.close()
            if local is not None:
                local.close()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = "1"  # read by the spawned workers at start
    try:
        ex = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts,
                                 mp_context=multiprocessing.get_context("spawn"))
    finally:
        if before is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = before
    try:
        yield ex, workers
    except BaseException:
        # Interrupted or failed: do not wait for the runs in flight (they are not kept).
        for process in list(getattr(ex, "_processes", {}).values()):
            process.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _ignore_interrupts() -> None:
    """Worker processes leave Ctrl-C to the driver, which stops the batch cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_batch(scenarios: Sequence[Scenario | str | Path], out: str | Path, *,
              workers: int = 1, scheduler: str | None = None, cluster: str | None = None,
              resume: bool = False, replications: int | None = None, seed: int | None = None,
              progress: bool = True) -> BatchReport:
    """Run a batch of scenario files (their ``[batch]`` designs) into the store ``out``.

    Args:
        scenarios: scenario files or validated scenarios.
        out: the batch folder (``sim.store``).
        workers: worker processes (local, or of the LocalCluster).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``).
        cluster: ``"local"`` to start a Dask LocalCluster of ``workers`` workers.
        resume: continue the batch in ``out``: run only what is not finished. Every file
            is verified first: what fails is moved to ``quarantine/`` (a ``SimWarning`` each)
            and its runs are rerun.
        replications, seed: override every file's ``batch.replications`` / ``batch.seed``.
        progress: show a progress bar (runs done, failures, ETA) on stderr.

    Returns:
        What was done. Raises ``BatchInterrupted`` on Ctrl-C (finished runs are kept).
    """
    start = time.perf_counter()
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    design = expand(loaded, replications=replications, seed=seed)
    store = BatchStore(out)
    wanted = manifest(design)
    quarantined = 0
    if resume and is_batch(out):
        _check_same(store.manifest(), wanted, store)
        quarantined = store.repair()
        done = store.finished()
    elif is_batch(out):
        store.create(wanted)  # refuses: the folder holds another batch
    else:
        done = set()
    todo = [spec for spec in design.runs if spec.run not in done]
    if todo and scheduler is None:
        # Compile (or load) the numba kernels once here, so the workers find them cached.
        try:
            with warnings.catch_warnings():  # the runs' own warnings are reported after
                warnings.simplefilter("ignore", SimWarning)
                run(design.scenario_of(todo[0]), seed=todo[0].seed, steps=1)
        except Exception:  # noqa: BLE001 (a failing run is the workers' to record)
            pass
    # The executor first: a scheduler that cannot be reached leaves no folder behind.
    with executor(workers, scheduler=scheduler, cluster=cluster) as (ex, slots):
        if not is_batch(out):
            store.create(wanted)
        store.clean_partials()
        with progress_bar(len(design.runs), initial=len(done), unit="run", desc="batch",
                          disable=not progress, dynamic_ncols=True) as bar:
            bar.set_postfix(failed=0)
            failed = _drive(ex, design, todo, store, bar, slots)
    if progress:
        print("batch: combining the run files into blocks", file=sys.stderr, flush=True)
    try:
        store.compact()  # opening a few blocks is much faster than thousands of small files
    except KeyboardInterrupt:
        raise BatchInterrupted(f"interrupted while combining runs into blocks: every run is "
                               f"kept in {store.path}; resuming finishes the blocks") from None
    return BatchReport(Path(out), len(design.runs), len(store.finished()), failed, len(done),
                       time.perf_counter() - start, quarantined)


def _drive(ex: Executor, design: Design, todo: list[RunSpec], store: BatchStore, bar,
           workers: int) -> int:
    """Submit runs a few at a time, write each as it finishes; return the failures."""
    queue = iter(todo)
    pending: dict[Future, RunSpec] = {}
    parameters = design.parameters
    failed = 0
    told = RunWarnings()

    def submit_next() -> None:
        spec = next(queue, None)
        if spec is not None:
            try:
                fut = ex.submit(execute, design.scenario_of(spec), spec, parameters)
            except BrokenExecutor:
                raise SimError(f"a worker process died (out of memory?); "
                               f"{len(store.finished())} runs are kept in {store.path}; "
                               "resume the batch to run the rest") from None
            pending[fut] = spec

    try:
        for _ in range(max(1, workers) * IN_FLIGHT_PER_WORKER):
            submit_next()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                spec = pending.pop(fut)
                try:
                    run_id, ds, error, trace, said = fut.result()
                except Exception as exc:  # noqa: BLE001 (a worker died or the task was lost)
                    run_id, ds, error, trace, said = spec.run, None, f"{type(exc).__name__}: " \
                        f"{exc}", "", []
                told.add(run_id, said)
                if ds is None:  # ds: the encoded run file
                    store.write_failure(run_id, error, trace)
                    failed += 1
                else:
                    store.write_run(run_id, ds)
                del ds, fut
                bar.update(1)
                bar.set_postfix(failed=failed)
                submit_next()
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        raise BatchInterrupted(
            f"interrupted: {len(store.finished())} of {len(design.runs)} runs finished and "
            f"kept in {store.path}; `sim batch ... --resume --out {store.path}` runs the "
            "rest") from None
    told.report(len(todo))
    return failed


def _check_same(old: dict, new: dict, store: BatchStore) -> None:
    """Resuming needs the same batch: the same runs, seeds, values, files and model version."""
    def runs(m: dict) -> list[dict]:  # the same files may be named from another folder
        return [{k: v for k, v in r.items() if k != "source"} for r in m.get("runs", [])]

    def files(m: dict) -> list:
        return [(f.get("name"), f.get("content_hash")) for f in m.get("scenarios", [])]

    if runs(old) != runs(new) or old.get("parameters") != new["parameters"]:
        raise SimError(f"{store.path}: the scenario files or their [batch] sections differ "
                       "from the batch being resumed; start a new batch (another --out)")
    if files(old) != files(new) or old.get("sim_version") != new["sim_version"]:
        raise SimError(f"{store.path}: the scenario files (or the sim version) changed since "
                       "the batch started, so its runs would mix two models; start a new "
                       "batch (another --out)")
