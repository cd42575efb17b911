// A bulk operation while it runs: live counts, rate and ETA, what waits for a retry, the failed requests
// with their reasons, and Retry failed. The workers move the counters without saving this form, so it
// asks the server for the status every few seconds while the operation runs.
const TRACKER_POLL_MS = 2000;
const TRACKER_FINISHED = ["Completed", "Completed with errors", "Failed", "Cancelled"];

frappe.ui.form.on("Bulk Operation Tracker", {
	refresh(frm) {
		frm.disable_save();
		verenigingen.show_engine_times(frm);
		frm.add_custom_button(__("Account Creation Requests"), () =>
			frappe.set_route("List", "Account Creation Request", { bulk_operation_tracker: frm.doc.name })
		);
		if (frm.doc.source_import) {
			frm.add_custom_button(__("Mijnrood CSV Import"), () =>
				frappe.set_route("Form", "Mijnrood CSV Import", frm.doc.source_import)
			);
		}
		frm.trigger("show_status");
	},

	async show_status(frm) {
		clearTimeout(frm.verenigingen_timer);
		let status;
		try {
			status = (await frappe.xcall("verenigingen.api.bulk_status", { tracker: frm.doc.name })) || {};
		} catch (e) {
			return; // the server said why (a message dialog); nothing to show beside it
		}
		if (frm.doc.name !== status.name) return; // the user moved on to another tracker
		render_progress(frm, status);
		render_failed(frm, status);
		set_retry_button(frm, status);
		// The stored summary is English: the status says it in the reader's language.
		const summary = frappe.utils.escape_html(status.error_summary || "");
		frm.set_df_property("error_summary", "formatter", () => summary);
		const changed = ["status", "processed_records", "failed_records"].some((f) => frm.doc[f] !== status[f]);
		if (changed && !frm.is_dirty()) {
			await frm.reload_doc(); // the fields below the dashboard show the same counts
			return;
		}
		if (!TRACKER_FINISHED.includes(status.status)) {
			frm.verenigingen_timer = setTimeout(() => {
				if (frappe.get_route_str() === `Form/${frm.doctype}/${frm.doc.name}`) frm.trigger("show_status");
			}, TRACKER_POLL_MS); // only while the form is on screen
		}
	},
});

function render_progress(frm, status) {
	const total = status.total_records || 0;
	const done = status.processed_records || 0;
	const percent = total ? Math.floor((100 * done) / total) : 0;
	const parts = [
		__("{0} of {1} members", [done, total]),
		__("{0} accounts made, {1} failed", [status.successful_records || 0, status.failed_records || 0]),
	];
	if (status.total_batches) {
		parts.push(__("batch {0} of {1}", [status.current_batch || 0, status.total_batches]));
	}
	if (status.rate_per_minute) {
		parts.push(__("{0} per minute", [status.rate_per_minute]));
	}
	if (status.eta_seconds && !TRACKER_FINISHED.includes(status.status)) {
		parts.push(__("about {0} to go", [frappe.utils.get_formatted_duration(status.eta_seconds)]));
	}
	frm.dashboard.show_progress(__("Progress"), percent, parts.join(" · "));

	const notes = [];
	if (status.retry_queue) {
		notes.push(
			__("{0} members wait for a retry, the next at {1}.", [
				status.retry_queue,
				status.next_retry_at ? verenigingen.engine_time(status.next_retry_at) : "-",
			])
		);
	}
	if (status.pace) {
		notes.push(
			__("The site allows {0} new users an hour: the {1} accounts left take about {2} hours.", [
				status.pace.new_users_an_hour,
				status.pace.accounts_left,
				status.pace.hours_left,
			])
		);
	}
	if (status.stuck) {
		notes.push(__("Nothing has moved for a while: check that a worker serves the bulk queue."));
	}
	if (status.unsent) {
		notes.push(__("{0} members wait for a job: the scheduler sends them within a minute.", [status.unsent]));
	}
	frm.dashboard.clear_headline();
	if (notes.length) {
		frm.dashboard.set_headline(notes.map(frappe.utils.escape_html).join("<br>"), status.stuck ? "red" : "blue");
	}
}

function render_failed(frm, status) {
	frm.dashboard.parent.find(".verenigingen-failed").remove();
	const failed = status.failed || [];
	if (!failed.length) return;
	const rows = failed
		.slice(0, 100)
		.map(
			(f) => `<tr>
				<td><a href="/app/account-creation-request/${encodeURIComponent(f.request)}">${frappe.utils.escape_html(f.request)}</a></td>
				<td>${frappe.utils.escape_html(__(f.category || ""))}</td>
				<td>${frappe.utils.escape_html(f.reason || "")}</td>
			</tr>`
		)
		.join("");
	const more = failed.length > 100 ? `<p class="text-muted">${__("and {0} more", [failed.length - 100])}</p>` : "";
	frm.dashboard.add_section(
		`<table class="table table-sm verenigingen-failed-table">
			<thead><tr><th>${__("Request")}</th><th>${__("Kind")}</th><th>${__("Reason")}</th></tr></thead>
			<tbody>${rows}</tbody>
		</table>${more}`,
		__("Failed requests"),
		"verenigingen-failed"
	);
}

function set_retry_button(frm, status) {
	// Added once, taken away when nothing failed (Frappe's remove_custom_button fails on a button that is
	// in no menu).
	const label = __("Retry failed");
	const wanted = frappe.user.has_role("Verenigingen Administrator") && (status.failed || []).length > 0;
	const existing = frm.custom_buttons[label];
	if (!wanted && existing) {
		existing.remove();
		delete frm.custom_buttons[label];
	}
	if (!wanted || existing) return;
	frm.add_custom_button(__("Retry failed"), async () => {
		const report = await frappe.xcall("verenigingen.api.retry_failed", { tracker: frm.doc.name });
		const refused = (report.refused || []).length;
		frappe.show_alert({
			message: refused
				? __("{0} requests queued again, {1} refused", [report.retried, refused])
				: __("{0} requests queued again", [report.retried]),
			indicator: refused ? "orange" : "green",
		});
		frm.trigger("show_status");
	}).addClass("btn-primary");
}
