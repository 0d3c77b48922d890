import getpass
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fintech.masking import mask_pans
from payments.imports import CHUNK_LINES, ImportReport, payments_import


class Command(BaseCommand):
    help = (
        "Load historical payments from a JSONL file, one payment and its history per line (the format is in "
        "payments.imports), by COPY into the event log, chunk by chunk, each whole or not at all, under the same "
        "rules as live commands. Rejected lines are listed with their reason on stderr; exits 1 when any was."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the JSONL file ('-': standard input)")
        parser.add_argument("--chunk", type=int, default=CHUNK_LINES, help=f"lines per chunk (default {CHUNK_LINES})")
        parser.add_argument("--by", default="", help="who runs the import, for the events' metadata")

    def handle(self, *args, file: Path, chunk: int, by: str, **options):
        if chunk < 1:
            raise CommandError("--chunk must be positive")
        started = time.monotonic()

        def progress(report: ImportReport) -> None:
            rate = report.events / max(time.monotonic() - started, 1e-9)
            self.stderr.write(
                f"\r{report.lines:,} lines, {report.payments:,} payments, {report.events:,} events "
                f"({rate:,.0f}/s), {len(report.rejected):,} rejected",
                ending="",
            )

        actor = f"import:{by or getpass.getuser()}"
        if str(file) == "-":
            report = payments_import(sys.stdin, actor=actor, source="stdin", chunk_lines=chunk, progress=progress)
        else:
            if not file.is_file():
                raise CommandError(f"{file} is not a file")
            with file.open(encoding="utf-8") as lines:
                report = payments_import(lines, actor=actor, source=file.name, chunk_lines=chunk, progress=progress)
        self.stderr.write("")
        for rejected in report.rejected:
            self.stderr.write(mask_pans(f"line {rejected.line}: {rejected.reason}"))
        seconds = time.monotonic() - started
        self.stdout.write(
            f"imported {report.payments:,} payments ({report.events:,} events) of {report.lines:,} lines in "
            f"{seconds:.1f} s; {len(report.rejected):,} rejected"
        )
        if report.rejected:
            sys.exit(1)
