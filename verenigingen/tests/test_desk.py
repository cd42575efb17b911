"""Desk in a real browser: headless Chromium driven by Playwright against this bench's own web server, its
socket.io server (realtime events) and real bench workers. A Verenigingen Administrator uploads a Mijnrood
export, validates it, imports it, follows the accounts to Completed, downloads the rejected rows and retries
failures; a manager follows without the buttons; a Dutch-speaking administrator gets it all in Dutch; a
Verenigingen Member sees none of it. Each screen is saved as a screenshot
(``VERENIGINGEN_SCREENSHOTS``, for the README).

Needs Playwright in the bench's Python and a Chromium (``VERENIGINGEN_CHROMIUM``, /usr/bin/chromium by
default); scripts/frappe-test installs both and sets ``VERENIGINGEN_DESK_TESTS=1``, under which a missing
part fails the suite instead of skipping these tests.
"""

import contextlib
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

import frappe
from frappe.utils.data import convert_utc_to_system_timezone, convert_utc_to_timezone
from frappe.utils.password import update_password

from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.individual import process_individual_request, queue_account_creation_for_member
from verenigingen.accounts.states import Roles
from verenigingen.frappe_host.host import frappe_host
from verenigingen.frappe_host.imports import new_import
from verenigingen.tests.test_frappe_import import DOMAIN, RUN, ImportCase, Workers

CHROMIUM = os.environ.get("VERENIGINGEN_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("VERENIGINGEN_DESK_TESTS") == "1"
SHOTS = Path(os.environ.get("VERENIGINGEN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "verenigingen-screenshots")
# As the machine's headless Chromium needs it: no sandbox as root, and no calls home on a closed network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = f"Vg-{RUN}-desk!"
MEMBERS, BROKEN = 12, 2
SLOW = 180_000  # ms: an import and its accounts on two busy cores

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - only where Playwright is not installed
    sync_playwright = None


def _sort_out(url: str, error, ours: list[str]) -> None:
    """A JavaScript error fails the test when the app's code is part of it, or when it cannot be told. One
    that only Frappe's own bundles took part in (a page navigated away from mid-request, say) is printed
    instead: it is Frappe's to fix, not this app's."""
    stack = error.stack or ""
    frames = [_whose(line) for line in stack.splitlines() if line.strip().startswith("at ")]
    if "frappe" in frames and "app" not in frames:
        print(f"\nFrappe's own JavaScript error on {url}: {stack}")
    else:
        ours.append(f"{url}: {stack or error}")


def _whose(frame: str) -> str | None:
    """'frappe' for a place in Frappe's bundles; None for one of the browser's own or of Playwright's (no place
    in a file); 'app' for anything else. That is the app's: its form and list scripts (Frappe runs them with
    `new Function`, named `<doctype>__js` by a sourceURL, or 'eval at' a place in its bundle), a script put in
    the page (located at the page), its assets."""
    body = frame.strip().removeprefix("at ")
    location = body[body.rfind("(") + 1 : -1] if body.endswith(")") else body
    if "eval at" in body:
        return "app" if "://" in body else None
    if "/assets/frappe/" in location:
        return "frappe"
    if location.startswith("<anonymous>") or location in ("native", "") or location.startswith(":"):
        return None
    return "app"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Realtime:
    """Frappe's socket.io server, as `bench start` runs it, so that Desk gets its realtime events; a bench whose
    own one runs already keeps it. It checks a browser's session with the web server at the bench's
    ``webserver_port`` (in developer mode), hence WebServer takes that port when it is free."""

    def __init__(self):
        self.port = int(frappe.conf.socketio_port or 9000)
        self.process = None
        if _listening(self.port):
            return
        bench = Path(frappe.local.sites_path).resolve().parent
        self.log = (Path(tempfile.gettempdir()) / f"vg-socketio-{RUN}.log").open("ab")
        self.process = subprocess.Popen(
            ["node", "apps/frappe/socketio.js"], cwd=bench, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"Frappe's socket.io server did not listen on port {self.port}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.log.close()


class WebServer:
    """`bench serve` of this bench, one process, as `bench start` runs it and a browser reaches it."""

    def __init__(self):
        sites = Path(frappe.local.sites_path).resolve()
        python = sites.parent / "env" / "bin" / "python"
        preferred = int(frappe.conf.webserver_port or 8000)
        self.port = _free_port() if _listening(preferred) else preferred
        self.url = f"http://{frappe.local.site}:{self.port}"
        env = {key: value for key, value in os.environ.items() if key != "CI"}
        env["DEV_SERVER"] = "true"  # as `bench start` runs it: Desk then reaches the socket.io server on its own port
        self.log = (Path(tempfile.gettempdir()) / f"vg-web-{RUN}.log").open("ab")
        command = [str(python), "-m", "frappe.utils.bench_helper", "frappe", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--noreload"], cwd=sites, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/method/ping", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bench serve did not answer on port {self.port}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class TestDesk(ImportCase):
    @classmethod
    def setUpClass(cls):
        if sync_playwright is None or not Path(CHROMIUM).exists():
            why = "Playwright for Python and a Chromium are needed for the Desk tests"
            if REQUIRED:
                raise RuntimeError(why)
            raise unittest.SkipTest(why)
        super().setUpClass()
        cls.member_user = f"lid@{DOMAIN}"
        cls.dutch_admin = f"beheerder@{DOMAIN}"
        for email, role, language in (
            (cls.member_user, Roles.MEMBER, None),
            (cls.dutch_admin, Roles.ADMINISTRATOR, "nl"),
        ):
            user = frappe.get_doc(
                {"doctype": "User", "email": email, "first_name": "Desk", "send_welcome_email": 0, "language": language}
            )
            user.append_roles(role)
            user.insert()
        for email in (cls.admin, cls.member_user, cls.dutch_admin):
            update_password(email, PASSWORD)
        frappe.db.commit()
        cls.failed = _failed_request(cls.admin, cls.runner)  # before any worker runs
        cls.failed_bulk = _failed_bulk(cls.admin, cls.runner, "retried")
        cls.failed_bulk_nl = _failed_bulk(cls.dutch_admin, cls.runner, "nl")
        cls.workers = Workers(2, "bulk,short,default,long")  # long: the import's own job
        cls.server = WebServer()
        cls.realtime = Realtime()
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        SHOTS.mkdir(parents=True, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        closings = (cls.browser.close, cls.playwright.stop, cls.realtime.stop, cls.server.stop, cls.workers.stop)
        for closing in closings:
            with contextlib.suppress(Exception):  # tearing down: the rest must still go
                closing()
        super().tearDownClass()

    # --- helpers ------------------------------------------------------------------------------------------
    def page_as(self, user: str, watch: bool = True) -> "Page":
        context = self.browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        context.add_init_script("Error.stackTraceLimit = 100")  # deep enough to reach the app's own frames
        self.addCleanup(context.close)
        page = context.new_page()
        page.set_default_timeout(30_000)
        if watch:
            errors: list[str] = []
            page.on("pageerror", lambda error: _sort_out(page.url, error, errors))
            self.addCleanup(lambda: self.assertEqual(errors, [], "JavaScript errors in the app's code"))
        page.goto(f"{self.server.url}/login")
        page.fill("#login_email", user)
        page.fill("#login_password", PASSWORD)
        page.click(".btn-login")
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    def open(self, page: "Page", route: str) -> None:
        page.goto(f"{self.server.url}/app/{route}")
        page.wait_for_selector(".page-head:visible")

    def shot(self, page: "Page", name: str) -> None:
        page.wait_for_timeout(500)  # let the last animation settle
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def button(self, page: "Page", label: str):
        return page.locator(".page-head:visible").get_by_role("button", name=label, exact=True)

    def indicator(self, page: "Page", status: str):
        return page.locator(".page-head:visible .indicator-pill", has_text=status)

    # --- the flows ----------------------------------------------------------------------------------------
    def test_a_dutch_administrator_gets_the_forms_in_dutch(self):
        page = self.page_as(self.dutch_admin)
        self.open(page, "mijnrood-csv-import/new")
        expect(page.locator('.frappe-control[data-fieldname="import_file"] .control-label')).to_have_text(
            "Mijnrood-export (CSV)"
        )
        expect(page.locator('.frappe-control[data-fieldname="create_accounts"]')).to_contain_text(
            "Accounts aanmaken na de import"
        )
        self.shot(page, "import-nl")

        # The preview of an export with a row without first name, all in Dutch.
        export = self.export(3, broken=1)
        frappe.set_user(self.dutch_admin)
        try:
            name = new_import(export.read_bytes(), export.name, False)
        finally:
            frappe.set_user(self.runner)
        self.open(page, f"mijnrood-csv-import/{name}")
        self.button(page, "Controleren").click()
        preview = page.locator(".verenigingen-preview")
        expect(preview.locator(".verenigingen-preview-summary")).to_contain_text("4 rijen. 3 nieuwe leden")
        expect(preview.locator(".verenigingen-problems")).to_contain_text("Voornaam is verplicht")
        expect(preview.locator(".verenigingen-problems")).to_contain_text("Voornaam")  # the column's own label
        self.shot(page, "import-preview-nl")

        # A failed request's reason, stored in English, shown in Dutch.
        _, request = self.failed
        self.open(page, f"account-creation-request/{request}")
        expect(self.indicator(page, "Mislukt")).to_be_visible()
        expect(page.get_by_text("de status van het lid is nu Geannuleerd").first).to_be_visible()  # the headline
        timeline = page.locator(".page-container:visible .new-timeline")
        expect(timeline).to_contain_text("In de wachtrij door")  # the audit trail, in Dutch too
        expect(timeline).to_contain_text("lid goedgekeurd")
        expect(timeline).not_to_contain_text("member approved")
        said = {
            "failure_reason": "de status van het lid is nu Geannuleerd",
            "pipeline_stage": "Mislukt",
            "requested_by": self.admin,
        }
        for field, dutch in said.items():
            expect(page.locator(f'.frappe-control[data-fieldname="{field}"]')).to_contain_text(dutch)
        self.shot(page, "request-failed-nl")

        # A bulk operation with a failure: its reasons, summary and timeline in Dutch.
        self.open(page, f"bulk-operation-tracker/{self.failed_bulk_nl}")
        expect(page.locator(".verenigingen-failed")).to_contain_text("de status van het lid is nu Geannuleerd")
        summary = page.locator('.frappe-control[data-fieldname="error_summary"]')
        expect(summary).to_contain_text("1 x de status van het lid is nu Geannuleerd")
        expect(page.locator(".page-container:visible .new-timeline")).to_contain_text("1 aangemaakt, 1 mislukt")
        self.shot(page, "tracker-nl")

    def test_an_error_in_the_apps_javascript_fails_and_one_in_frappes_alone_is_told_apart(self):
        page = self.page_as(self.admin, watch=False)
        self.open(page, "bulk-operation-tracker")
        ours: list[str] = []
        page.on("pageerror", lambda error: _sort_out(page.url, error, ours))
        page.evaluate("setTimeout(() => frappe.throw('only Frappe in the stack'))")
        page.wait_for_timeout(500)
        self.assertEqual(ours, [])
        page.evaluate("setTimeout(() => { const none = null; return none[0]; })")  # nothing tells whose
        page.evaluate("frappe.dom.eval('setTimeout(() => { const none = null; return none[1]; })')")  # in the page
        page.evaluate(  # as Frappe runs a form script: `new Function`, named by a sourceURL
            "new Function('setTimeout(() => { const none = null; return none[2]; });"
            " //# sourceURL=bulk_operation_tracker__js')()"
        )
        page.wait_for_timeout(500)
        self.assertEqual(len(ours), 3, ours)
        for index, error in enumerate(ours):
            self.assertIn(f"reading '{index}'", error)

    def test_a_manager_follows_a_bulk_operation_and_only_an_administrator_retries_its_failures(self):
        manager = self.manager(f"desk-manager@{DOMAIN}")
        update_password(manager, PASSWORD)
        frappe.db.set_value("User", manager, "time_zone", "Asia/Kolkata")  # a reader in a zone of their own
        frappe.db.commit()
        page = self.page_as(manager)
        self.open(page, f"bulk-operation-tracker/{self.failed_bulk}")
        expect(self.indicator(page, "Completed with errors")).to_be_visible()
        expect(page.locator(".verenigingen-failed")).to_contain_text("the member's status is now Cancelled")
        expect(self.button(page, "Account Creation Requests")).to_be_visible()  # the page is loaded ...
        expect(self.button(page, "Retry failed")).to_have_count(0)  # ... and has no button to retry
        # The engine's times (UTC) in the reader's own time zone: neither UTC nor the site's.
        started = frappe.db.get_value("Bulk Operation Tracker", self.failed_bulk, "started_at")
        local = convert_utc_to_timezone(started, "Asia/Kolkata").strftime("%H:%M:%S")
        others = {started.strftime("%H:%M:%S"), convert_utc_to_system_timezone(started).strftime("%H:%M:%S")}
        self.assertNotIn(local, others, "the site's time zone must be neither UTC nor the reader's here")
        expect(page.locator('.frappe-control[data-fieldname="started_at"]')).to_contain_text(local)
        self.shot(page, "tracker-manager")

        page = self.page_as(self.admin)
        self.open(page, f"bulk-operation-tracker/{self.failed_bulk}")
        self.button(page, "Retry failed").click()
        completed = page.locator(".page-head:visible .indicator-pill").filter(has_text=re.compile(r"^\s*Completed\s*$"))
        expect(completed).to_be_visible(timeout=SLOW)  # the tracker follows the retry without a reload
        expect(self.button(page, "Retry failed")).to_have_count(0)
        self.shot(page, "tracker-retried")

    def test_a_member_sees_none_of_it(self):
        page = self.page_as(self.member_user)
        for doctype in ("Mijnrood CSV Import", "Bulk Operation Tracker", "Account Creation Request", "Member"):
            response = page.request.get(f"{self.server.url}/api/resource/{doctype}")
            self.assertEqual(response.status, 403, doctype)
        response = page.request.get(f"{self.server.url}/api/method/verenigingen.api.bulk_status")
        self.assertEqual(response.status, 403)
        page.goto(f"{self.server.url}/app/bulk-operation-tracker")
        self.assertEqual(page.locator(".list-row-container").count(), 0)
        self.shot(page, "member-no-access")

    def test_an_administrator_imports_follows_and_repairs_in_desk(self):
        page = self.page_as(self.admin)
        export = self.export(MEMBERS, broken=BROKEN)

        # Attach the export to a new import and save it.
        self.open(page, "mijnrood-csv-import/new")
        page.locator('.frappe-control[data-fieldname="import_file"] button').first.click()
        page.locator(".modal:visible input[type=file]").set_input_files(str(export))
        page.locator(".modal:visible .btn-modal-primary").click()
        expect(page.locator('.frappe-control[data-fieldname="import_file"] .attached-file-link')).to_be_visible()
        page.keyboard.press("Control+s")
        page.wait_for_url("**/mijnrood-csv-import/IMP-*")
        name = page.url.rstrip("/").split("/")[-1]
        frappe.db.rollback()
        stored = frappe.get_all("File", {"attached_to_name": name, "attached_to_field": "import_file"}, ["is_private"])
        self.assertEqual([f.is_private for f in stored], [1], "the export is kept private")
        self.shot(page, "import-new")

        # Validate: a preview of what the import will do, with nothing written.
        self.button(page, "Validate").click()
        preview = page.locator(".verenigingen-preview")
        expect(preview.locator(".verenigingen-preview-summary")).to_contain_text(
            f"{MEMBERS + BROKEN} rows. {MEMBERS} new members, 0 changed, 0 unchanged, {BROKEN} rejected"
        )
        expect(
            preview.locator(".verenigingen-problems tbody tr", has=page.locator(".indicator-pill.red"))
        ).to_have_count(BROKEN)
        frappe.db.rollback()
        self.assertEqual(frappe.db.count("Member", {"source_import": name}), 0)
        self.shot(page, "import-preview")

        # Import, with the accounts at once (the form's default); its progress comes as realtime events.
        page.wait_for_function("frappe.realtime.socket && frappe.realtime.socket.connected")
        page.evaluate(
            "window.vgProgress = []; frappe.realtime.on('verenigingen_import_progress', (d) => vgProgress.push(d))"
        )
        self.button(page, "Import").click()
        expect(self.indicator(page, "Completed")).to_be_visible(timeout=SLOW)
        progress = page.evaluate("vgProgress")
        self.assertTrue(progress, "no realtime progress reached the form")
        last = progress[-1]
        self.assertEqual((last["import"], last["done"], last["total"]), (name, MEMBERS + BROKEN, MEMBERS + BROKEN))
        expect(page.locator('.frappe-control[data-fieldname="members_created"]')).to_contain_text(str(MEMBERS))
        self.shot(page, "import-completed")
        with page.expect_download() as downloaded:
            self.button(page, "Download Rejected Rows").click()
        rejected = Path(downloaded.value.path()).read_text(encoding="utf-8-sig").splitlines()
        self.assertIn("Reason rejected", rejected[0])
        self.assertEqual(len(rejected), 1 + BROKEN)

        # The tracker follows itself to Completed, without a reload.
        self.button(page, "Bulk Operation Tracker").click()
        page.wait_for_url("**/bulk-operation-tracker/*")
        tracker = page.url.rstrip("/").split("/")[-1]
        expect(page.locator(".progress-message", has_text=f"{MEMBERS} of {MEMBERS} members")).to_be_visible(
            timeout=SLOW
        )
        expect(self.indicator(page, "Completed")).to_be_visible(timeout=SLOW)
        frappe.db.rollback()
        counts = frappe.db.get_value("Bulk Operation Tracker", tracker, ["successful_records", "failed_records"])
        self.assertEqual(tuple(counts), (MEMBERS, 0))
        self.shot(page, "tracker")
        self.open(page, "bulk-operation-tracker")
        expect(page.locator(".list-row-container", has_text=tracker)).to_be_visible()
        self.shot(page, "tracker-list")

        # A member of the import: its account.
        member = frappe.get_all("Member", {"source_import": name}, pluck="name", limit=1)[0]
        self.open(page, f"member/{member}")
        expect(self.button(page, "User Account")).to_be_visible()
        self.shot(page, "member")

        # The failed request: its reason, then Retry, and the account follows.
        failed_member, request = self.failed
        self.open(page, f"account-creation-request/{request}")
        expect(self.indicator(page, "Failed")).to_be_visible()
        self.shot(page, "request-failed")
        self.button(page, "Retry").click()
        expect(self.indicator(page, "Completed")).to_be_visible(timeout=SLOW)
        frappe.db.rollback()
        self.assertTrue(frappe.db.get_value("Member", failed_member, "user"))
        self.shot(page, "request-retried")


def _failed_bulk(admin: str, runner: str, tag: str) -> str:
    """A bulk operation of two members that completed with one failure (that member left the association in
    between, and is Active again), run here before any worker does."""
    frappe.set_user(admin)
    try:
        names = []
        for first in ("Eerste", "Tweede"):
            member = frappe.get_doc(
                {"doctype": "Member", "first_name": first, "last_name": "Bulklid", "email": f"{tag}-{first}@{DOMAIN}"}
            )
            member.status = "Active"
            names.append(member.insert().name)
        frappe.db.commit()
        host = frappe_host()
        tracker = queue_bulk_account_creation_for_members(host, admin, names).tracker
        frappe.db.set_value("Member", names[1], "status", "Cancelled")
        frappe.db.commit()
        outcome = process_bulk_account_creation_batch(host, tracker, 1)
        if (outcome.completed, outcome.failed) != (1, 1):
            raise RuntimeError(f"the bulk operation to retry did not fail once: {outcome}")
        frappe.db.set_value("Member", names[1], "status", "Active")
        frappe.db.commit()
        return tracker
    finally:
        frappe.set_user(runner)


def _failed_request(admin: str, runner: str) -> tuple[str, str]:
    """A member whose approved request failed (it left the association in between) and who is Active again:
    made before any worker runs, so the failure is certain."""
    frappe.set_user(admin)
    try:
        member = frappe.get_doc(
            {"doctype": "Member", "first_name": "Herkansing", "last_name": "Lid", "email": f"retry@{DOMAIN}"}
        )
        member.status = "Active"
        member.insert()
        frappe.db.commit()
        host = frappe_host()
        request = queue_account_creation_for_member(host, admin, member.name)
        frappe.db.set_value("Member", member.name, "status", "Cancelled")
        frappe.db.commit()
        outcome = process_individual_request(host, request)
        if outcome != "failed":
            raise RuntimeError(f"the request to retry did not fail: {outcome}")
        frappe.db.set_value("Member", member.name, "status", "Active")
        frappe.db.commit()
        return member.name, request
    finally:
        frappe.set_user(runner)
