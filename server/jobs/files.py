"""A printer's job files: fetched from the printer (FTPS, or the https URL of a cloud print) and
analysed beside the reports, in worker threads, and kept in the data directory.

``JobFiles`` runs the fetch for the current job (and, when a new print starts before the last
job's file was read, for that job on the side) and says how it went to a ``FileSink``, the
job tracker, which moves the job's machine or settles an ended job. Layers reported meanwhile
are billed as soon as the analysis is known, because billing works from the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
import re
from pathlib import Path
from typing import Protocol

from server.analysis import AnalysisError, PrintAnalysis, analyze_file, plate_thumbnail
from server.config import PrinterConfig
from server.db import Database
from server.jobs import store as job_store
from server.jobs.checkpoint import JobCheckpoint
from server.printer import ftps
from server.printer.errors import JobFileNotFound, PrinterError, PrinterTLSError, PrinterUnreachable
from server.printer.jobpaths import is_http_url
from server.printer.snapshot import PrintStatus
from server.printer.tls import PinStore
from server.supervise import stop_tasks

log = logging.getLogger(__name__)

ANALYSIS_FILE = "analysis.json"
THUMBNAIL_FILE = "thumbnail.png"
FETCH_RETRY_DELAYS = (2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)  # seconds between attempts to fetch the file
REASON_LIMIT = 300  # characters of an untracked job's reason (an exception may quote a whole file name)


class FileSink(Protocol):
    """Where a job's file work reports to (``JobTracker``): it decides what that means for the job."""

    async def file_fetched(self, job_id: int, path: Path) -> None: ...

    async def file_analysed(self, job_id: int, analysis: PrintAnalysis) -> None: ...

    async def file_unavailable(self, job_id: int, reason: str) -> None: ...


class JobFiles:
    def __init__(self, config: PrinterConfig, *, db: Database, data_dir: Path, pins: PinStore) -> None:
        self.config = config
        self.printer = config.name
        self.db = db
        self.jobs_dir = Path(data_dir) / "jobs"
        self.pins = pins
        self.fetch: asyncio.Task[None] | None = None  # the current job's
        self._detached: set[asyncio.Task[None]] = set()  # files of ended jobs still being read
        self._given_up: set[int] = set()  # jobs whose file could not be read: not fetched again

    def job_dir(self, job_id: int) -> Path:
        return self.jobs_dir / str(job_id)

    def load_analysis(self, job_id: int) -> PrintAnalysis | None:
        path = self.job_dir(job_id) / ANALYSIS_FILE
        try:
            return PrintAnalysis.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError) as exc:
            log.warning("%s: stored analysis of job %s is unreadable (%s); analysing again", self.printer, job_id, exc)
            return None

    @property
    def running(self) -> bool:
        """The current job's file is being fetched or analysed."""
        return self.fetch is not None and not self.fetch.done()

    def given_up(self, job_id: int | None) -> bool:
        """Reading this job's file failed for good (even if marking the job untracked did not stick)."""
        return job_id in self._given_up

    def start(self, job_id: int, job: JobCheckpoint, current: PrintStatus, sink: FileSink) -> None:
        """Fetch and analyse the job's file (``current``: the printer's print as reported now)."""
        self.cancel()
        self.fetch = asyncio.create_task(self._fetch_and_analyse(job_id, job, current, sink),
                                         name=f"{self.printer}:job-file")
        self.fetch.add_done_callback(self._fetch_done)

    def detach(self, job_id: int, job: JobCheckpoint, sink: FileSink) -> None:
        """The job ended before its file was read, and a new print starts: its file is still fetched
        and read on the side, and the ended job billed from its own checkpoint."""
        task = self.fetch if self.running else None
        if task is None:
            task = asyncio.create_task(self._fetch_and_analyse(job_id, job, PrintStatus(), sink),
                                       name=f"{self.printer}:job-file-{job_id}")
            task.add_done_callback(self._fetch_done)
        self.fetch = None
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        log.info("%s: job %s ended before its file was read; reading it beside the next job", self.printer, job_id)

    def cancel(self) -> None:
        if self.fetch is not None and not self.fetch.done():
            self.fetch.cancel()
        self.fetch = None

    async def close(self) -> None:
        tasks = [t for t in (self.fetch, *self._detached) if t is not None]
        await stop_tasks(*tasks)  # each one's failure was logged where it happened
        self.fetch = None

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        """A failure after the file was read (writing its bills, say) is logged here, once: the job
        carries on from its checkpoint with the next report."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: reading the job's file ended in an error: %s", self.printer, reason(exc), exc_info=exc)

    async def _fetch_and_analyse(self, job_id: int, job: JobCheckpoint, current: PrintStatus, sink: FileSink) -> None:
        folder = self.job_dir(job_id)
        try:
            local = await self._fetch_with_retries(job, current, folder)
            await sink.file_fetched(job_id, local)
            analysis = await asyncio.to_thread(analyze_file, local, job.plate)
            thumbnail = await asyncio.to_thread(_save_analysis, folder, analysis, local, job.plate)
            if thumbnail:
                await asyncio.to_thread(job_store.save_checkpoint, self.db, job_id, thumbnail=THUMBNAIL_FILE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Anything at all: the job is shown untracked with the reason, and never fetched again on
            # every report. A surprise gets its traceback once (not a recursion's thousand lines).
            why = reason(exc)
            surprise = not isinstance(exc, PrinterError | AnalysisError | OSError | RecursionError)
            log.warning("%s: job %s is untracked: %s", self.printer, job_id, why, exc_info=surprise)
            self._given_up.add(job_id)
            await sink.file_unavailable(job_id, why)
            return
        await sink.file_analysed(job_id, analysis)

    async def _fetch_with_retries(self, job: JobCheckpoint, current: PrintStatus, folder: Path) -> Path:
        """A dropped connection or a printer busy rebooting is retried for about two minutes; a file
        that is not there, a refused access code or a broken file is final at once."""
        for delay in (*FETCH_RETRY_DELAYS, None):
            try:
                return await self._fetch_file(job, current, folder)
            except (PrinterUnreachable, PrinterTLSError) as exc:
                if delay is None:
                    raise
                log.info("%s: fetching the job's file failed (%s); retrying in %.0f s", self.printer, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _fetch_file(self, job: JobCheckpoint, current: PrintStatus, folder: Path) -> Path:
        if job.file_path and Path(job.file_path).is_file():
            return Path(job.file_path)  # fetched before a restart
        url = job.file_url
        subtask = current.subtask_name or job.key.name
        gcode_file = current.gcode_file
        folder.mkdir(parents=True, exist_ok=True)
        if is_http_url(url):
            assert url is not None
            try:
                return await ftps.download_url(url, folder / "job.gcode.3mf")
            except (JobFileNotFound, PrinterUnreachable) as exc:
                # A cloud print's signed URL expires (and needs the internet); the printer keeps its own
                # copy of the file it prints, so look there before giving up.
                log.info("%s: the print's URL gave no file (%s); looking on the printer", self.printer, exc)
                # By the job's own name only: the echo that carried the URL came before the printer's
                # reports named the print, so the state may still name the previous one's file.
                url, subtask, gcode_file = None, job.key.name or subtask, None
        remote = await ftps.find_job_file(self.config, url=url, subtask_name=subtask, gcode_file=gcode_file,
                                          pins=self.pins)
        if remote is None:
            raise JobFileNotFound(
                f"the printer has no file for {subtask or url or 'this print'} (looked for {url or subtask})"
            )
        return await ftps.download(self.config, remote, folder / _safe_name(remote), pins=self.pins)


def reason(exc: BaseException) -> str:
    """Why a job's file could not be had, for the job page: short, whatever the exception says."""
    text_ = str(exc) if isinstance(exc, PrinterError | AnalysisError | OSError) else f"{type(exc).__name__}: {exc}"
    text_ = " ".join(text_.split()) or type(exc).__name__
    return text_ if len(text_) <= REASON_LIMIT else text_[: REASON_LIMIT - 1] + "…"


def _safe_name(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/")) or "job"
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:120] or "job"


def _save_analysis(folder: Path, analysis: PrintAnalysis, local: Path, plate: int | None) -> bool:
    """Store the analysis (a restart resumes without re-reading the file) and the plate thumbnail."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ANALYSIS_FILE).write_text(json.dumps(analysis.to_json(), separators=(",", ":")), "utf-8")
    try:
        thumbnail = plate_thumbnail(local, plate)
    except (AnalysisError, OSError):
        return False
    if thumbnail:
        (folder / THUMBNAIL_FILE).write_bytes(thumbnail)
    return bool(thumbnail)
