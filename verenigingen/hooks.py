"""Frappe app hooks. Frappe reads this module; nothing else imports it."""

app_name = "verenigingen"
app_title = "Verenigingen"
app_publisher = "Verenigingen maintainers"
app_description = "Membership administration for Dutch associations: Mijnrood imports and bulk user accounts"
app_email = "maintainers@verenigingen.invalid"
app_license = "mit"

before_install = "verenigingen.frappe_host.setup.before_install"
after_install = "verenigingen.frappe_host.setup.after_install"
after_migrate = "verenigingen.frappe_host.setup.after_migrate"

has_permission = {
    "User": "verenigingen.frappe_host.permissions.user_has_permission",
    "Contact": "verenigingen.frappe_host.permissions.contact_has_permission",
}
permission_query_conditions = {
    "User": "verenigingen.frappe_host.permissions.user_query_conditions",
    "Contact": "verenigingen.frappe_host.permissions.contact_query_conditions",
}
doc_events = {
    "User": {"validate": "verenigingen.frappe_host.permissions.guard_user"},
    "Contact": {
        "before_insert": "verenigingen.frappe_host.contacts.complete_member_contact",
        "after_insert": "verenigingen.frappe_host.contacts.link_member_to_contact",
    },
}

# Frappe's workers run no RQ scheduler: the sweeper re-enqueues due retries and lost jobs every minute.
scheduler_events = {"cron": {"* * * * *": ["verenigingen.frappe_host.jobs.sweep"]}}

# The engine's times (UTC) in the reader's time zone on the forms of the engine's DocTypes.
doctype_js = {
    "Account Creation Request": "public/js/engine_times.js",
    "Bulk Operation Tracker": "public/js/engine_times.js",
}

# The engine's audit trail on the timeline, in the reader's language (Frappe would show it in English).
additional_timeline_content = {
    doctype: ["verenigingen.frappe_host.timeline.audit_entries"]
    for doctype in ("Account Creation Request", "Bulk Operation Tracker", "Member")
}
