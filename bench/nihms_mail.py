"""NIHMS mail reading: mails per second parsed and recorded, for a mailbox of 1,000 mails.

A throwaway Dovecot (tests/support/dovecot.py) holds ``--mails`` NIHMS "Bulk submission"
mails, one per package, half taken (manuscript id) and half refused; the store (SQLite
by default, or ``--store-url postgresql://...``) holds a SUBMITTED NIHMS deposit for each.
One pass of the reader over IMAPS (verified TLS, LOGIN) fetches, parses, records (one
unit of work per mail) and flags each mail seen. Prints the rate of that pass, and the
rate of parsing alone (the same mails, no IMAP, no store) beside it. Informational: no
target.

Usage: ``python bench/nihms_mail.py [--mails 1000] [--store-url URL]`` (repository root).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.config.repositories import parse_repositories
from deposit_services.nihms_mail.imap import ImapMailbox
from deposit_services.nihms_mail.parser import parse_mail, read_mail
from deposit_services.nihms_mail.reader import NihmsMailReader
from deposit_services.nihms_mail.settings import MailSettings
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.sql import SqlDatabase
from tests.integration.nihms_mail.world import body, seed
from tests.support.dovecot import NIHMS_SENDER, nihms_mail, running_dovecot

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nihms_mail"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--store-url", help="default: a new SQLite file")
    args = parser.parse_args()
    user, password = "bench@example.edu", "bench-password"
    success = (FIXTURES / "success.html").read_text(encoding="utf-8")
    rejected = (FIXTURES / "rejected.html").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp, running_dovecot({user: password}) as dovecot:
        database = SqlDatabase(args.store_url or f"sqlite:///{tmp}/bench.db")
        seeded = seed(database, [f"b{os.getpid()}-{n:05d}" for n in range(args.mails)])
        raws = [nihms_mail(body(success, ok=s.package, manuscript=str(100000 + n))
                           if n % 2 == 0 else body(rejected, bad=s.package))
                for n, s in enumerate(seeded)]
        for raw in raws:
            dovecot.deliver(user, raw)

        start = time.perf_counter()
        for raw in raws:
            read_mail(parse_mail(raw))
        parse_s = time.perf_counter() - start

        settings = MailSettings(host="127.0.0.1", port=dovecot.port, user=user,
                                password=password, senders=(NIHMS_SENDER,),
                                ca_file=str(dovecot.ca_file))
        ctx = ServiceContext(database=database,
                             targets=Targets(parse_repositories({}, {}), "bench"),
                             work_dir=Path(tmp), owner="bench")
        database.publisher = lambda message: None
        reader = NihmsMailReader(ctx, settings.senders, lambda: ImapMailbox(settings))
        start = time.perf_counter()
        summary = reader.run_once()
        pass_s = time.perf_counter() - start
        backend = (args.store_url or "sqlite").split(":")[0]
        assert summary.recorded == args.mails and len(summary.changed) == args.mails, summary
        assert dovecot.unseen(user) == []
        print(f"nihms-mail: {args.mails} mails over IMAPS into {backend}: {pass_s:.2f} s, "
              f"{args.mails / pass_s:.0f} mails/s parsed and recorded (each flagged seen)")
        print(f"nihms-mail: parsing alone: {args.mails / parse_s:.0f} mails/s")
        database.close()


if __name__ == "__main__":
    main()
