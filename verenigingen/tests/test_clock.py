"""The engine's clock on a site: UTC whatever the site's time zone, so that leases and retry times stored
by one worker mean the same to every other, across a daylight-saving change."""

from datetime import datetime, timedelta, timezone

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import now_datetime

from verenigingen.frappe_host.host import frappe_host


class TestEngineClock(FrappeTestCase):
    def test_the_engine_clock_is_utc_whatever_the_sites_time_zone(self):
        previous = frappe.db.get_single_value("System Settings", "time_zone")
        self.addCleanup(frappe.db.set_single_value, "System Settings", "time_zone", previous)
        for zone in ("Europe/Amsterdam", "Asia/Kolkata", "America/New_York"):
            frappe.db.set_single_value("System Settings", "time_zone", zone)
            utc = datetime.now(timezone.utc).replace(tzinfo=None)
            engine = frappe_host().clock()
            self.assertLess(abs(engine - utc), timedelta(seconds=5), zone)
            self.assertIsNone(engine.tzinfo)  # naive UTC, as stored
            site = now_datetime()  # Frappe's own clock follows the site's time zone
            self.assertGreater(abs(site - engine), timedelta(minutes=59), zone)
