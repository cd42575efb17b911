// One account request: its status colour comes from the list settings' indicator, its state changes are on
// the timeline (in the reader's language, by the app's timeline hook), and Retry when it failed.
frappe.ui.form.on("Account Creation Request", {
	refresh(frm) {
		frm.disable_save();
		verenigingen.show_engine_times(frm);
		clearTimeout(frm.verenigingen_timer);
		if (["Requested", "Queued", "Processing"].includes(frm.doc.status)) {
			// A worker moves it on without saving this form: look again in a moment.
			frm.verenigingen_timer = setTimeout(() => {
				if (frappe.get_route_str() === `Form/${frm.doctype}/${frm.doc.name}`) frm.reload_doc();
			}, 2000); // only while the form is on screen
		}
		const reason = (frm.doc.__onload && frm.doc.__onload.failure_reason) || frm.doc.failure_reason;
		// The stored reason is English: the field shows it in the reader's language, as the headline does.
		const said = frm.doc.__onload && frm.doc.__onload.failure_reason;
		frm.set_df_property("failure_reason", "formatter", said ? () => frappe.utils.escape_html(said) : null);
		// Frappe shows a link to a User as the document's own full_name, here the member's: name the requester.
		frm.set_df_property("requested_by", "formatter", (user) => {
			const name = frappe.utils.escape_html(frappe.user_info(user).fullname || user);
			return `<a href="/app/user/${encodeURIComponent(user)}">${name}</a>`;
		});
		if (frm.doc.status === "Failed" && reason) {
			const when = frm.doc.next_retry_at
				? __("Tried again automatically at {0}.", [verenigingen.engine_time(frm.doc.next_retry_at)])
				: "";
			frm.dashboard.set_headline(`${frappe.utils.escape_html(reason)} ${when}`, "red");
		}
		if (frm.doc.status === "Failed" && frappe.user.has_role("Verenigingen Administrator")) {
			frm.add_custom_button(__("Retry"), async () => {
				const report = await frappe.xcall("verenigingen.api.retry_request", { request: frm.doc.name });
				if (report.retried) {
					frappe.show_alert({ message: __("Queued again"), indicator: "green" });
				} else {
					frappe.msgprint((report.refused || []).map((r) => frappe.utils.escape_html(r.message)).join("<br>"));
				}
				frm.reload_doc();
			}).addClass("btn-primary");
		}
		if (frm.doc.created_user) {
			frm.add_custom_button(__("User Account"), () => frappe.set_route("Form", "User", frm.doc.created_user));
		}
		if (frm.doc.bulk_operation_tracker) {
			frm.add_custom_button(__("Bulk Operation Tracker"), () =>
				frappe.set_route("Form", "Bulk Operation Tracker", frm.doc.bulk_operation_tracker)
			);
		}
	},
});
