"""Importing Mijnrood exports on a real site, and accounts made by real bench worker processes.

Everything runs as a Verenigingen Administrator who is not the test runner's Administrator. The import
commits (chunk by chunk, as in production), so what it made is deleted in tearDownClass, found by this
run's e-mail domain and import names.
"""

import csv
import html
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import frappe
import psutil
from frappe.tests.utils import FrappeTestCase
from frappe.utils import now_datetime
from frappe.utils.background_jobs import generate_qname, get_redis_conn
from rq import Queue

from verenigingen import api
from verenigingen.accounts.ports import DEAD, batch_job_id
from verenigingen.accounts.states import Roles
from verenigingen.api import bulk_status, import_mijnrood
from verenigingen.frappe_host.contacts import MEMBER_PICTURE
from verenigingen.frappe_host.files import IMPORT
from verenigingen.frappe_host.host import frappe_host, utc_now
from verenigingen.frappe_host.imports import new_import
from verenigingen.frappe_host.jobs import sweep
from verenigingen.mijnrood.generator import generate_export
from verenigingen.tests.site import TEST_USER_LIMIT, raise_user_limit, set_user_limit

RUN = uuid.uuid4().hex[:8]
DOMAIN = f"vg-{RUN}.importtest.nl"
FIRST_ID = 700_000_000 + int(RUN[:5], 16) * 1000  # Lidnr. of this run, far from the generator's own range
WAIT_SECONDS = 240


def _rewrite(path: Path, keep_columns: set[str] | None = None, broken: int = 0) -> None:
    """Every member eligible (status 'lid', an e-mail address of this run's domain); optionally fewer columns,
    and ``broken`` rows more without a first name (rejected)."""
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream, delimiter=";"))
    header = rows[0]
    index = {label: i for i, label in enumerate(header)}
    for row in rows[1:]:
        row[index["Lidmaatschapstype"]] = "lid"
        row[index["E-mailadres"]] = f"m{row[index['Lidnr.']]}@{DOMAIN}"
    for copy in [list(row) for row in rows[1 : 1 + broken]]:
        copy[index["Voornaam"]] = ""
        copy[index["Lidnr."]] += "9"
        copy[index["E-mailadres"]] = f"broken{copy[index['Lidnr.']]}@{DOMAIN}"
        rows.append(copy)
    keep = [i for i, label in enumerate(header) if keep_columns is None or label in keep_columns]
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        for row in rows:
            writer.writerow([row[i] for i in keep])


class ImportCase(FrappeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.runner = frappe.session.user  # the test runner's user: it sets up and cleans up, nothing else
        cls.folder = Path(tempfile.mkdtemp(prefix="vg-import-test-"))
        cls.admin = f"admin@{DOMAIN}"
        cls.put_back_user_limit = raise_user_limit()  # the throttle is not what most of these tests are about
        user = frappe.get_doc({"doctype": "User", "email": cls.admin, "first_name": "Import", "send_welcome_email": 0})
        user.append_roles(Roles.ADMINISTRATOR)
        user.insert()
        cls.next_id = FIRST_ID
        frappe.db.commit()

    @classmethod
    def tearDownClass(cls):
        frappe.set_user(cls.runner)
        frappe.db.rollback()
        _clean_up()
        cls.put_back_user_limit()
        frappe.db.commit()
        super().tearDownClass()

    def manager(self, email: str) -> str:
        """A Verenigingen Manager of this run, made by the test runner's user."""
        frappe.set_user(self.runner)
        user = frappe.get_doc({"doctype": "User", "email": email, "first_name": "M", "send_welcome_email": 0})
        user.append_roles(Roles.MANAGER)
        user.insert()
        return email

    def setUp(self):
        self.test_runner_user = frappe.session.user
        frappe.set_user(self.admin)

    def tearDown(self):
        frappe.set_user(self.test_runner_user)

    def export(self, members: int, broken: int = 0, columns: set[str] | None = None, first=None) -> Path:
        first = first if first is not None else type(self).next_id
        type(self).next_id = first + 4 * members + 10  # the generator steps 1 to 3 per member
        path = self.folder / f"export-{first}-{members}.csv"
        generate_export(path, members, seed=first, first_member_id=first)
        _rewrite(path, columns, broken)
        return path


def _clean_up() -> None:
    """This run's imports, members, users, requests, trackers and files (committed data)."""
    ours = ["like", f"%@{DOMAIN}"]  # every user of this run: its administrators, Dutch or not
    members = frappe.get_all("Member", filters={"email": ours}, pluck="name")
    imports = frappe.get_all("Mijnrood CSV Import", filters={"owner": ours}, pluck="name")
    trackers = frappe.get_all("Bulk Operation Tracker", filters={"requested_by": ours}, pluck="name")
    requests = frappe.get_all("Account Creation Request", filters={"requested_by": ours}, pluck="name")
    users = frappe.get_all("User", filters={"name": ours}, pluck="name")
    for doctype, names in (("Member", members), ("Account Creation Request", requests)):
        for name in names:
            frappe.db.delete("Comment", {"reference_doctype": doctype, "reference_name": name})
        if names:
            frappe.db.delete(doctype, {"name": ["in", names]})
    frappe.db.delete("Account Creation Request Role", {"parent": ["in", requests or [""]]})
    for name in trackers:
        frappe.db.delete("Comment", {"reference_doctype": "Bulk Operation Tracker", "reference_name": name})
    if trackers:
        frappe.db.delete("Bulk Operation Tracker", {"name": ["in", trackers]})
    for name in imports:
        for stored in frappe.get_all("File", filters={"attached_to_name": name}, pluck="name"):
            frappe.delete_doc("File", stored, force=True)
    if imports:
        frappe.db.delete("Mijnrood CSV Import", {"name": ["in", imports]})
    for user in users:
        for contact in frappe.get_all("Contact Email", {"email_id": user}, pluck="parent"):
            frappe.delete_doc("Contact", contact, force=True, ignore_missing=True)
        frappe.delete_doc("User", user, force=True, ignore_missing=True)


class TestImportMijnrood(ImportCase):
    def test_import_without_accounts_then_again_changes_nothing(self):
        path = self.export(20, broken=2)
        report = import_mijnrood(str(path), create_accounts=False)
        self.assertEqual(report["rows"], 22)
        self.assertEqual((report["members_created"], report["invalid_rows"], report["skipped_rows"]), (20, 2, 0))
        self.assertIsNone(report["tracker"])
        self.assertEqual(report["accounts"]["requested"], 0)
        self.assertTrue(report["rejected_rows_file"].startswith("/private/files/"))
        imported = frappe.get_last_doc("Mijnrood CSV Import", filters={"owner": self.admin})
        self.assertEqual(imported.status, "Completed")
        self.assertEqual(imported.rejected_rows_file, report["rejected_rows_file"])
        attached = frappe.get_doc("File", {"file_url": imported.rejected_rows_file})
        self.assertEqual((attached.attached_to_doctype, attached.attached_to_name), (imported.doctype, imported.name))
        self.assertTrue(attached.is_private)
        content = attached.get_content()
        content = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
        self.assertIn("Reason rejected", content.splitlines()[0])
        self.assertEqual(frappe.db.count("Member", {"source_import": imported.name}), report["members_created"])

        again = import_mijnrood(str(path), create_accounts=False)
        self.assertEqual(again["members_created"], 0)
        self.assertEqual(again["members_updated"], 0)
        self.assertEqual(again["members_unchanged"], report["members_created"])

    def test_a_narrower_file_erases_nothing(self):
        path = self.export(5)
        first = import_mijnrood(str(path), create_accounts=False)
        self.assertEqual(first["members_created"], 5)
        before = {m.member_id: m for m in frappe.get_all("Member", {"email": ["like", f"%@{DOMAIN}"]}, ["*"])}
        narrow = self.folder / "narrow.csv"
        narrow.write_bytes(path.read_bytes())
        _rewrite(narrow, {"Lidnr.", "Voornaam", "Tussenvoegsel", "Achternaam", "E-mailadres"})
        report = import_mijnrood(str(narrow), create_accounts=False)
        self.assertEqual((report["members_unchanged"], report["members_updated"]), (5, 0))
        for member in frappe.get_all("Member", {"email": ["like", f"%@{DOMAIN}"]}, ["*"]):
            old = before.get(member.member_id)
            if old:
                for field in ("iban", "birth_date", "city", "postcode", "phone", "status"):
                    self.assertEqual(member[field], old[field], field)

    def test_an_unreadable_file_fails_with_its_reason(self):
        with self.assertRaises(frappe.ValidationError) as caught:
            import_mijnrood(str(self.folder / "missing.csv"))
        self.assertIn("no such file", str(caught.exception))

    def test_a_manager_may_not_import(self):
        frappe.set_user(self.manager(f"manager@{DOMAIN}"))
        with self.assertRaises(frappe.PermissionError):
            import_mijnrood(str(self.export(1)))


class Workers:
    """Real `bench worker` processes of this bench, as production runs them."""

    def __init__(self, count: int = 2, queues: str | None = "bulk,short,default"):
        """``queues`` None: a plain worker, on every queue (short, default, long and the declared ones)."""
        sites = Path(frappe.local.sites_path).resolve()
        python = sites.parent / "env" / "bin" / "python"
        command = [str(python), "-m", "frappe.utils.bench_helper", "frappe", "worker"]
        command += ["--queue", queues] if queues else []
        self.log = (Path(tempfile.gettempdir()) / f"vg-workers-{RUN}.log").open("ab")
        # As production runs them: without CI, under which Frappe's workers run every job a job enqueues at
        # once (flags.in_test) instead of queueing it.
        env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTHONUNBUFFERED": "1"}
        self.processes = [
            subprocess.Popen(command, cwd=sites, stdout=self.log, stderr=subprocess.STDOUT, env=env)
            for _ in range(count)
        ]

    def kill(self) -> None:
        """SIGKILL every worker and its work horse, as the OOM killer would: the worker first, so that it can
        not see its horse die and fail the job itself."""
        for process in self.processes:
            below = psutil.Process(process.pid).children(recursive=True)
            process.kill()
            for child in below:
                child.kill()
            process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.log.closed:
            return
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()


class WorkersCase(ImportCase):
    worker_count, worker_queues = 2, "bulk,short,default"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workers = Workers(cls.worker_count, cls.worker_queues)

    @classmethod
    def tearDownClass(cls):
        cls.workers.stop()
        super().tearDownClass()

    def accounts_for(self, members: int) -> str:
        started = time.monotonic()
        report = import_mijnrood(str(self.export(members)), create_accounts=True)
        self.assertEqual(report["members_created"], members)
        self.assertEqual(report["accounts"]["requested"], members)
        tracker = report["tracker"]["name"]
        status = self.wait_for(tracker, max(WAIT_SECONDS, 1.5 * members))
        self.assertEqual(status["status"], "Completed", status)
        expected = (members, members, members, 0)
        counts = ("total_records", "processed_records", "successful_records", "failed_records")
        self.assertEqual(tuple(status[c] for c in counts), expected)
        self.assertEqual(status["total_batches"], -(-members // 50))
        imported = frappe.get_value("Mijnrood CSV Import", {"bulk_operation_tracker": tracker}, "name")
        linked = frappe.get_all("Member", {"source_import": imported}, ["name", "user", "email"])
        self.assertEqual(len(linked), members)
        for member in linked:
            self.assertEqual(member.user, member.email)
            self.assertIn(Roles.MEMBER, frappe.get_roles(member.user))
            self.assertEqual(frappe.db.get_value("User", member.user, "member"), member.name)
        print(f"\n{members} accounts by bench workers in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return imported

    def wait_for(self, tracker: str, seconds: float = WAIT_SECONDS) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frappe.db.rollback()  # a fresh snapshot: the workers commit in other connections
            status = bulk_status(tracker)
            if status["status"] in ("Completed", "Completed with errors", "Failed", "Cancelled"):
                return status
            self.batches_at_once = max(self.batches_at_once, _held_slots())
            time.sleep(0.5)
        self.fail(f"bulk operation {tracker} did not finish in {seconds} s: {bulk_status(tracker)}")

    batches_at_once = 0  # the most batch slots seen held at one moment


class TestAccountsByBenchWorkers(WorkersCase):
    def test_an_account_has_the_members_names_and_contact_and_one_default_job(self):
        imported = self.accounts_for(12)
        members = frappe.get_all("Member", {"source_import": imported}, ["*"])
        self.assertTrue(any(m.tussenvoegsel for m in members), "the generator gives some a tussenvoegsel")
        deadline = time.monotonic() + WAIT_SECONDS  # Frappe's create_contact jobs run on the default queue
        while frappe.db.count("Member", {"source_import": imported, "contact": ["is", "set"]}) < len(members):
            self.assertLess(time.monotonic(), deadline, "every member's contact made and linked")
            time.sleep(0.5)
            frappe.db.rollback()
        for member in frappe.get_all("Member", {"source_import": imported}, ["*"]):
            user = frappe.get_doc("User", member.user)
            self.assertEqual((user.first_name, user.user_image), (member.first_name, MEMBER_PICTURE))
            self.assertEqual(user.full_name, member.full_name)  # "Anna ten Boom", the tussenvoegsel kept
            contact = frappe.get_doc("Contact", member.contact)
            self.assertEqual(contact.user, member.user)
            parts = (contact.first_name, contact.middle_name, contact.last_name)
            self.assertEqual(parts, (member.first_name, member.tussenvoegsel, member.last_name))
            self.assertEqual(contact.email_id, member.email)
            self.assertIn(("Member", member.name), [(link.link_doctype, link.link_name) for link in contact.links])
            if member.phone:
                self.assertIn(member.phone, [row.phone for row in contact.phone_nos])
        users = {m.user for m in members}
        per_user = {user: 0 for user in users}
        for method, user in _default_queue_jobs():
            if user in per_user:
                per_user[user] += 1
                self.assertEqual(method, "frappe.core.doctype.user.user.create_contact")
        self.assertEqual(set(per_user.values()), {1}, per_user)  # one each: no gravatar lookup

    def test_a_bulk_operation_waits_for_the_sites_limit_on_new_users_and_loses_nothing(self):
        """Frappe refuses more than throttle_user_limit new users an hour: the members beyond it wait
        (retries untouched, the tracker saying how long), and go once the limit lets them."""
        since = now_datetime() - timedelta(hours=1)
        limit = frappe.db.count("User", {"creation": [">=", since]}) + 2  # 3 more users this hour
        set_user_limit(limit)
        self.addCleanup(set_user_limit, TEST_USER_LIMIT)
        report = import_mijnrood(str(self.export(6)), create_accounts=True)
        self.assertIn("throttle_limit", [check["code"] for check in report["checks"]], report["checks"])
        tracker = report["tracker"]["name"]
        deadline = time.monotonic() + WAIT_SECONDS
        while (status := bulk_status(tracker))["retry_queue"] < 3 or status["successful_records"] < 3:
            self.assertLess(time.monotonic(), deadline, status)
            time.sleep(0.5)
            frappe.db.rollback()
        self.assertEqual(_outcome(status), ("Processing", 3, 0))
        self.assertEqual(status["pace"]["new_users_an_hour"], limit)
        self.assertGreater(status["pace"]["hours_left"], 0)
        requests = frappe.get_all("Account Creation Request", {"bulk_operation_tracker": tracker}, ["*"])
        self.assertEqual({r.retry_count for r in requests}, {0})
        waiting = [r for r in requests if r.status == "Queued"]
        self.assertEqual(len(waiting), 3)
        self.assertTrue(all(r.next_retry_at > utc_now() for r in waiting))
        # An hour later (the wait moved to now, the limit raised): the sweeper sends them, and they all go.
        set_user_limit(TEST_USER_LIMIT)
        for request in waiting:
            frappe.db.set_value("Account Creation Request", request.name, "next_retry_at", None, update_modified=False)
        frappe.db.commit()
        sweep()
        frappe.db.commit()
        status = self.wait_for(tracker)
        self.assertEqual(_outcome(status), ("Completed", 6, 0))
        retries = frappe.get_all("Account Creation Request", {"bulk_operation_tracker": tracker}, pluck="retry_count")
        self.assertEqual(set(retries), {0})

    def test_1_member(self):
        self.accounts_for(1)

    def test_49_members(self):
        self.accounts_for(49)

    def test_50_members(self):
        self.accounts_for(50)

    def test_51_members(self):
        self.accounts_for(51)

    def test_101_members(self):
        self.accounts_for(101)


class TestPlainWorkers(WorkersCase):
    """Seven plain `bench worker` processes (every queue, bulk included): still 5 batches at most at once."""

    worker_count, worker_queues = 7, None

    def test_500_members_never_more_than_five_batches_at_once(self):
        self.accounts_for(500)
        self.assertLessEqual(self.batches_at_once, 5)
        self.assertGreaterEqual(self.batches_at_once, 2, "batches ran side by side")


def _held_slots() -> int:
    now = utc_now()
    return frappe.db.count("Verenigingen Batch Slot", {"holder": ["is", "set"], "lease_expires_at": [">=", now]})


def _outcome(status: dict) -> tuple:
    return status["status"], status["successful_records"], status["failed_records"]


def _default_queue_jobs():
    """(method, user) of every job on the default queue, waiting, running or finished (Frappe keeps
    finished jobs for a while)."""
    from frappe.utils.background_jobs import get_queue
    from rq.job import Job

    queue = get_queue("default")
    ids = [*queue.job_ids, *queue.started_job_registry.get_job_ids(), *queue.finished_job_registry.get_job_ids()]
    for job in Job.fetch_many(ids, connection=queue.connection):
        if job is None:
            continue
        arguments = job.kwargs.get("kwargs") or {}
        user = arguments.get("user") or arguments.get("name")
        yield job.kwargs.get("method"), getattr(user, "name", user)


class TestAWorkerKilledMidBatch(ImportCase):
    def test_the_sweeper_recovers_the_batch_of_a_worker_killed_mid_batch(self):
        """SIGKILL (the OOM killer) in the middle of a batch: no member lost, none with two users; the
        scheduler's sweeper gives the member back and sends the rest of the batch to another worker."""
        members = 40
        killed = Workers(1, queues="bulk")
        report = import_mijnrood(str(self.export(members)), create_accounts=True)
        tracker = report["tracker"]["name"]
        deadline = time.monotonic() + WAIT_SECONDS
        while bulk_status(tracker)["successful_records"] < 3:
            self.assertLess(time.monotonic(), deadline, "the worker started on the batch")
            time.sleep(0.2)
            frappe.db.rollback()
        killed.kill()
        frappe.db.rollback()
        status = bulk_status(tracker)
        self.assertLess(status["successful_records"], members, "killed before the batch was done")
        # Its job is dead once its worker missed one heartbeat (35 s), not three (95 s): a worker killed between
        # two members leaves no lease behind to tell.
        jobs, job = frappe_host().jobs, batch_job_id(tracker, 1, 0)
        deadline = time.monotonic() + 80
        while (state := jobs.state_of(job)) != DEAD:
            self.assertLess(time.monotonic(), deadline, f"the killed worker's job is still {state}")
            time.sleep(1)
        # The leases (120 s) run out: moved to the past here, as the clock would.
        past = utc_now() - timedelta(seconds=1)
        frappe.db.sql(
            "UPDATE `tabAccount Creation Request` SET lease_expires_at = %s WHERE bulk_operation_tracker = %s "
            "AND status = 'Processing'",
            (past, tracker),
        )
        frappe.db.sql(
            "UPDATE `tabVerenigingen Batch Slot` SET lease_expires_at = %s WHERE holder LIKE %s", (past, f"{tracker}:%")
        )
        frappe.db.commit()
        sweep()  # what the scheduler runs every minute (it also sweeps what earlier tests left behind)
        frappe.db.commit()
        recovered = frappe.get_all(
            "Account Creation Request",
            {"bulk_operation_tracker": tracker, "retry_count": 1},
            ["name", "failure_reason"],
        )
        self.assertLessEqual(len(recovered), 1)  # the member it was working on, if it was in one
        self.assertEqual(
            frappe.db.count("Account Creation Request", {"bulk_operation_tracker": tracker, "status": "Processing"}), 0
        )
        self.assertTrue(all(r.failure_reason == "the worker processing it stopped" for r in recovered))
        for request in recovered:  # its retry is due in 300 s: moved to now, as the clock would
            frappe.db.set_value("Account Creation Request", request.name, "next_retry_at", past, update_modified=False)
        frappe.db.commit()
        sweep()
        frappe.db.commit()
        workers = Workers(1, queues="bulk")
        self.addCleanup(workers.stop)
        deadline = time.monotonic() + WAIT_SECONDS
        while (status := bulk_status(tracker))["status"] not in ("Completed", "Completed with errors", "Failed"):
            self.assertLess(time.monotonic(), deadline, status)
            time.sleep(0.5)
            frappe.db.rollback()
            sweep()  # a batch whose job died with its worker is sent again by the sweeper
            frappe.db.commit()
        self.assertEqual(_outcome(status), ("Completed", members, 0))
        imported = frappe.get_value("Mijnrood CSV Import", {"bulk_operation_tracker": tracker}, "name")
        emails = frappe.get_all("Member", {"source_import": imported}, pluck="email")
        self.assertEqual(frappe.db.count("User", {"name": ["in", emails]}), members)  # one user each


class TestStartupChecks(ImportCase):
    def use_bulk_queue(self, queue: str | None) -> None:
        frappe.db.set_single_value("Verenigingen Settings", "bulk_queue", queue)
        frappe.db.commit()  # an import commits as it goes: so does the setting and its reset
        frappe.clear_document_cache("Verenigingen Settings", "Verenigingen Settings")

    def test_accounts_on_an_undeclared_queue_are_refused_before_anything_is_written(self):
        previous = frappe.db.get_single_value("Verenigingen Settings", "bulk_queue")
        self.use_bulk_queue(f"vg-undeclared-{RUN}")
        self.addCleanup(self.use_bulk_queue, previous)
        with self.assertRaises(frappe.ValidationError) as caught:
            import_mijnrood(str(self.export(3)), create_accounts=True)
        message = str(caught.exception)
        self.assertIn(f'"workers": {{"vg-undeclared-{RUN}": {{"timeout": 1800, "background_workers": 5}}}}', message)
        imported = frappe.get_last_doc("Mijnrood CSV Import", filters={"owner": self.admin})
        self.assertEqual((imported.status, imported.error_message), ("Failed", message))
        self.assertEqual(frappe.db.count("Member", {"source_import": imported.name}), 0)

    def test_the_import_says_when_no_worker_serves_the_bulk_queue(self):
        """No worker runs in this test (one killed outright earlier is still listed by RQ: it does not count)."""
        report = import_mijnrood(str(self.export(2)), create_accounts=True)
        checks = {check["code"]: check["message"] for check in report["checks"]}
        self.assertIn("bench worker --queue bulk", checks["no_bulk_worker"])
        self.assertNotIn("throttle_limit", checks)  # the limit is raised for these tests
        queue = Queue(generate_qname("bulk"), connection=get_redis_conn())
        for job in queue.jobs:  # what no worker took: this test's own batch jobs
            if report["tracker"]["name"] in job.id:
                job.delete()


class TestImportFile(ImportCase):
    def test_an_import_reads_only_the_export_attached_to_it(self):
        from verenigingen.frappe_host.files import save_file
        from verenigingen.frappe_host.imports import export_path, new_import

        first = new_import(b"Voornaam;Achternaam\nJan;Jansen\n", "first.csv", False)
        second = new_import(b"Voornaam;Achternaam\nPiet;Pietersen\n", "second.csv", False)
        self.assertTrue(Path(export_path(first)[0]).is_file())
        other = save_file(b"secret", "other.csv")  # a private file of no import
        self.addCleanup(frappe.delete_doc, "File", other.name, force=True)
        first_file = frappe.db.get_value("Mijnrood CSV Import", first, "import_file")
        for name, url in ((second, first_file), (first, other.file_url)):
            frappe.db.set_value("Mijnrood CSV Import", name, "import_file", url)
            with self.assertRaises(frappe.PermissionError):
                export_path(name)


class TestDeskEntryPoints(WorkersCase):
    """What Desk's buttons call, as the administrator: Validate, Import, Create Accounts."""

    worker_count, worker_queues = 2, "bulk,short,default,long"  # long: the import's own job

    def test_validate_writes_nothing_and_sees_the_same_file_again_as_unchanged(self):
        path = self.export(5, broken=1)
        name = new_import(path.read_bytes(), path.name, False)
        stored = frappe.db.count("Member", {"email": ["like", f"%@{DOMAIN}"]})
        preview = api.preview_import(name)
        outcomes = {"create": 5, "update": 0, "unchanged": 0, "rejected": 1, "skipped": 0}
        self.assertEqual(preview["outcomes"], outcomes)
        self.assertEqual([p["row"] for p in preview["problems"] if p["kind"] == "error"], [7])
        self.assertEqual(len(preview["first_rows"]), 5)
        self.assertEqual(frappe.db.count("Member", {"email": ["like", f"%@{DOMAIN}"]}), stored)
        self.assertEqual(frappe.db.get_value(IMPORT, name, "status"), "Pending")

        api.start_import(name)
        frappe.db.commit()  # as the web request does: the job goes after the commit
        self.assertEqual(self.wait_for_import(name), "Completed")
        again = api.preview_import(name)
        self.assertEqual(again["outcomes"], {**outcomes, "create": 0, "unchanged": 5})
        self.assertEqual({row["outcome"] for row in again["first_rows"]}, {"unchanged"})

    def test_accounts_after_an_import_without_them_start_once(self):
        import_mijnrood(str(self.export(3)), create_accounts=False)
        name = frappe.get_last_doc(IMPORT, filters={"owner": self.admin}).name
        self.assertEqual(api.account_checks(name), [])
        started = api.create_accounts(name)
        self.assertEqual((started["requested"], started["refused"]), (3, {}))
        with self.assertRaises(frappe.ValidationError) as caught:
            api.create_accounts(name)
        self.assertIn("were started already", str(caught.exception))
        status = self.wait_for(started["tracker"]["name"])
        self.assertEqual((status["status"], status["successful_records"]), ("Completed", 3))
        self.assertEqual(frappe.db.get_value(IMPORT, name, "bulk_operation_tracker"), started["tracker"]["name"])

    def test_validate_says_in_one_line_why_a_file_is_no_export(self):
        name = new_import(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "pasfoto.png", False)
        with self.assertRaises(frappe.ValidationError) as caught:
            api.preview_import(name)
        reason = str(caught.exception)
        self.assertEqual(len(reason.splitlines()), 1, reason)
        self.assertNotIn("Traceback", reason)

    def test_the_audit_trail_is_on_the_timeline_in_the_readers_language_and_the_sites_time(self):
        outcome = import_mijnrood(str(self.export(1)))
        tracker = outcome["tracker"]["name"]
        self.assertEqual(self.wait_for(tracker)["status"], "Completed")
        request = frappe.db.get_value("Account Creation Request", {"bulk_operation_tracker": tracker}, "name")
        english = self.timeline("Account Creation Request", request, "en")
        self.assertEqual(len(english), 4, english)  # requested, queued, picked up, ready: each once
        self.assertIn(f"— → Requested by {self.admin}: bulk operation {tracker}", english[0])
        self.assertRegex(english[2], r"^Queued → Processing by \S+ on \S+: picked up$")
        self.assertRegex(english[3], r"^Processing → Completed by \S+ on \S+: account ready$")
        dutch = self.timeline("Account Creation Request", request, "nl")
        self.assertRegex(dutch[2], r"^In de wachtrij → Bezig door \S+ op \S+: opgepakt$")
        self.assertRegex(dutch[3], r"^Bezig → Voltooid door \S+ op \S+: account klaar$")
        self.assertRegex(self.timeline("Bulk Operation Tracker", tracker, "nl")[-1], r": 1 aangemaakt, 0 mislukt$")
        # Frappe's own times of the engine's documents are on Frappe's clock, as Desk shows and filters them.
        for doctype, name in (("Bulk Operation Tracker", tracker), ("Account Creation Request", request)):
            creation, modified = frappe.db.get_value(doctype, name, ["creation", "modified"])
            for when in (creation, modified):
                self.assertLess(abs((now_datetime() - when).total_seconds()), 600, (doctype, now_datetime(), when))

    def test_an_import_writes_its_reports_in_the_language_of_who_started_it(self):
        dutch = f"nl-admin@{DOMAIN}"
        frappe.set_user(self.runner)
        user = frappe.get_doc(
            {"doctype": "User", "email": dutch, "first_name": "Beheerder", "send_welcome_email": 0, "language": "nl"}
        )
        user.append_roles(Roles.ADMINISTRATOR)
        user.insert()
        frappe.db.commit()
        frappe.set_user(dutch)
        path = self.export(2, broken=1)
        name = new_import(path.read_bytes(), path.name, False)
        api.start_import(name)
        frappe.db.commit()
        self.assertEqual(self.wait_for_import(name), "Completed")
        url = frappe.db.get_value(IMPORT, name, "rejected_rows_file")
        content = Path(frappe.get_doc("File", {"file_url": url}).get_full_path()).read_text(encoding="utf-8-sig")
        header, row = list(csv.reader(content.splitlines(), delimiter=";"))[:2]
        self.assertEqual(header[:2], ["Rij", "Reden van afwijzing"])
        self.assertIn("Voornaam: Voornaam is verplicht", row[1])

    def timeline(self, doctype: str, name: str, lang: str) -> list[str]:
        """The audit entries of the document's timeline as Desk loads it for a reader of ``lang``; Frappe's
        own entries must not repeat them (in English)."""
        from frappe.desk.form.load import getdoc

        self.addCleanup(setattr, frappe.local, "lang", frappe.local.lang)
        frappe.local.lang = lang
        getdoc(doctype, name)
        docinfo = frappe.response["docinfo"]
        self.assertFalse([log for log in docinfo["info_logs"] if "→" in log.content], "shown twice")
        entries = docinfo["additional_timeline_content"]
        latest = max(entry["creation"] for entry in entries)  # in the site's time zone, as the timeline's own
        self.assertLess(abs((now_datetime() - latest).total_seconds()), 600, (now_datetime(), latest))
        return [html.unescape(entry["content"]) for entry in entries]

    def test_a_manager_may_neither_validate_nor_start(self):
        name = new_import(self.export(1).read_bytes(), "one.csv", False)
        frappe.set_user(self.manager(f"desk-manager@{DOMAIN}"))
        for call in (api.preview_import, api.start_import, api.create_accounts, api.account_checks):
            with self.assertRaises(frappe.PermissionError, msg=call.__name__):
                call(name)

    def wait_for_import(self, name: str, seconds: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frappe.db.rollback()
            status = frappe.db.get_value(IMPORT, name, "status")
            if status in ("Completed", "Failed"):
                return status
            time.sleep(0.5)
        self.fail(f"import {name} did not finish in {seconds} s")
