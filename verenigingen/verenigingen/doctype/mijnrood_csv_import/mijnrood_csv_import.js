// A Mijnrood export from attach to accounts: Validate shows what the import will do before anything is
// written; Import runs in the background with a progress bar; then the counts, the rejected rows to
// download, and the accounts (started here, or at once when "Create Accounts After Import" is ticked).
const IMPORT_POLL_MS = 3000;

frappe.ui.form.on("Mijnrood CSV Import", {
	setup(frm) {
		frappe.realtime.on("verenigingen_import_progress", (data) => {
			if (data.import !== frm.doc.name) return;
			const percent = data.total ? Math.floor((100 * data.done) / data.total) : 0;
			frm.dashboard.show_progress(
				__("Import"),
				percent,
				__("{0} of {1} rows imported", [data.done, data.total])
			);
		});
		frappe.realtime.on("verenigingen_import_done", (data) => {
			if (data.import === frm.doc.name) frm.reload_doc();
		});
	},

	refresh(frm) {
		clearTimeout(frm.verenigingen_timer);
		const may_import = frappe.user.has_role("Verenigingen Administrator") && !frm.is_new();
		const status = frm.doc.status;
		const done = ["Importing", "Completed"].includes(status);
		frm.set_df_property("import_file", "read_only", done ? 1 : 0); // the file of what was imported stays
		frm.set_df_property("create_accounts", "read_only", done ? 1 : 0);
		if (done) frm.disable_save();
		if (may_import && frm.doc.import_file && ["Pending", "Validated", "Failed"].includes(status)) {
			frm.add_custom_button(__("Validate"), () => frm.trigger("validate_file"));
			frm.add_custom_button(__("Import"), () => frm.trigger("start_import")).addClass("btn-primary");
		}
		if (status === "Importing") {
			frm.dashboard.show_progress(__("Import"), 0, __("Importing in the background…"));
			frm.verenigingen_timer = setTimeout(() => {
				if (frappe.get_route_str() === `Form/${frm.doctype}/${frm.doc.name}`) frm.reload_doc();
			}, IMPORT_POLL_MS); // only while the form is on screen
		}
		if (status === "Completed") {
			frm.trigger("show_outcome");
			if (may_import && !frm.doc.bulk_operation_tracker) {
				frm.add_custom_button(__("Create Accounts"), () => frm.trigger("create_accounts")).addClass(
					"btn-primary"
				);
			}
		}
		if (frm.doc.rejected_rows_file) {
			frm.add_custom_button(__("Download Rejected Rows"), () => download(frm.doc.rejected_rows_file));
		}
		if (frm.doc.refused_accounts_file) {
			frm.add_custom_button(__("Download Members Without Account"), () =>
				download(frm.doc.refused_accounts_file)
			);
		}
		if (frm.doc.bulk_operation_tracker) {
			frm.add_custom_button(__("Bulk Operation Tracker"), () =>
				frappe.set_route("Form", "Bulk Operation Tracker", frm.doc.bulk_operation_tracker)
			);
		}
		if (status === "Failed" && frm.doc.error_message) {
			frm.dashboard.set_headline(frappe.utils.escape_html(frm.doc.error_message), "red");
		}
	},

	import_file(frm) {
		frm.get_field("preview").$wrapper.empty(); // a preview of another file no longer holds
	},

	async validate_file(frm) {
		if (frm.is_dirty()) await frm.save();
		const r = await frappe.call({
			method: "verenigingen.api.preview_import",
			args: { import_name: frm.doc.name },
			freeze: true,
			freeze_message: __("Reading the file…"),
		});
		render_preview(frm, r.message);
	},

	async start_import(frm) {
		if (frm.is_dirty()) await frm.save();
		if (frm.doc.create_accounts && !(await checks_allow(frm))) return;
		await frappe.xcall("verenigingen.api.start_import", { import_name: frm.doc.name });
		frappe.show_alert({ message: __("The import runs in the background"), indicator: "blue" });
		frm.reload_doc();
	},

	async create_accounts(frm) {
		if (!(await checks_allow(frm))) return;
		const started = await frappe.xcall("verenigingen.api.create_accounts", { import_name: frm.doc.name });
		const refused = Object.values(started.refused || {}).reduce((a, b) => a + b, 0);
		frappe.show_alert({
			message: __("{0} accounts requested, {1} members refused", [started.requested, refused]),
			indicator: "green",
		});
		frm.reload_doc();
	},

	show_outcome(frm) {
		const d = frm.doc;
		const same = !d.members_created && !d.members_updated && d.members_unchanged;
		if (same) {
			frm.dashboard.set_headline(
				__("Every member in this file was already stored as it is: nothing changed."),
				"blue"
			);
		}
	},
});

// A private file of the import, saved by the browser (never shown in a tab that might be left open).
function download(file_url) {
	const link = document.createElement("a");
	link.href = file_url;
	link.download = file_url.split("/").pop();
	document.body.appendChild(link);
	link.click();
	link.remove();
}

// The startup checks (bulk queue, workers, the site's limit on new users), shown before anything starts.
async function checks_allow(frm) {
	const checks = await frappe.xcall("verenigingen.api.account_checks", { import_name: frm.doc.name });
	if (!checks.length) return true;
	const blocking = checks.some((c) => c.code === "queue_not_declared");
	const items = checks.map((c) => `<li>${frappe.utils.escape_html(c.message)}</li>`).join(""); // translated
	const message = `<ul class="verenigingen-checks">${items}</ul>`;
	if (blocking) {
		frappe.msgprint({ title: __("The accounts cannot start yet"), message, indicator: "red" });
		return false;
	}
	return new Promise((resolve) => {
		frappe.confirm(
			`<p>${__("Before the accounts start:")}</p>${message}<p>${__("Start anyway?")}</p>`,
			() => resolve(true),
			() => resolve(false)
		);
	});
}

function render_preview(frm, preview) {
	const esc = frappe.utils.escape_html;
	const o = preview.outcomes;
	const summary = __(
		"{0}: {1} rows. {2} new members, {3} changed, {4} unchanged, {5} rejected, {6} skipped.",
		[esc(preview.file), preview.rows, o.create, o.update, o.unchanged, o.rejected, o.skipped]
	);
	const labels = {
		create: __("new"),
		update: __("changed"),
		unchanged: __("unchanged"),
	};
	const label = (field) => preview.labels[field] || field;
	const head = ["row", "outcome", ...preview.columns].map((c) => `<th>${esc(label(c))}</th>`).join("");
	const body = preview.first_rows
		.map(
			(r) =>
				"<tr>" +
				["row", "outcome", ...preview.columns]
					.map((c) => {
						let value = r[c] == null ? "" : String(r[c]);
						if (c === "outcome") value = labels[value] || value;
						if (c === "iban" && value.length > 8) value = value.slice(0, 4) + " … " + value.slice(-4);
						return `<td>${esc(value)}</td>`;
					})
					.join("") +
				"</tr>"
		)
		.join("");
	const kinds = { error: __("Error"), warning: __("Warning"), skipped: __("Skipped") };
	const colours = { error: "red", warning: "orange", skipped: "gray" };
	const problems = preview.problems
		.map(
			(p) => `<tr>
				<td>${p.row}</td>
				<td><span class="indicator-pill ${colours[p.kind]}">${kinds[p.kind]}</span></td>
				<td>${esc(p.field ? label(p.field) : __("(row)"))}</td>
				<td>${esc(p.message)}</td>
			</tr>`
		)
		.join("");
	const counts = preview.problem_counts;
	const listed = preview.problems.length;
	const all = counts.error + counts.warning + counts.skipped;
	const more = all > listed ? `<p class="text-muted">${__("The first {0} of {1} are listed.", [listed, all])}</p>` : "";
	frm.get_field("preview").$wrapper.html(`
		<div class="verenigingen-preview">
			<p class="verenigingen-preview-summary">${summary}</p>
			<h5>${__("The first members as they will be stored")}</h5>
			<div class="table-responsive"><table class="table table-sm table-bordered">
				<thead><tr>${head}</tr></thead><tbody>${body}</tbody>
			</table></div>
			<h5>${__("Errors and warnings")} (${counts.error} / ${counts.warning})</h5>
			${
				listed
					? `<div class="table-responsive"><table class="table table-sm verenigingen-problems">
						<thead><tr><th>${__("Row")}</th><th>${__("Kind")}</th><th>${__("Column")}</th><th>${__("Reason")}</th></tr></thead>
						<tbody>${problems}</tbody></table></div>${more}`
					: `<p>${__("No errors, no warnings.")}</p>`
			}
		</div>`);
}
