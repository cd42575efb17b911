// A bulk operation at a glance: its status in colour and how far it is.
frappe.listview_settings["Bulk Operation Tracker"] = {
	finished: ["Completed", "Completed with errors", "Failed", "Cancelled"],
	add_fields: ["status", "total_records", "processed_records", "failed_records"],
	hide_name_column: false,
	get_indicator(doc) {
		const colours = {
			Preparing: "gray",
			Queued: "blue",
			Processing: "orange",
			Completed: "green",
			"Completed with errors": "red",
			Failed: "red",
			Paused: "yellow",
			Cancelled: "darkgrey",
		};
		let label = __(doc.status);
		if (["Queued", "Processing"].includes(doc.status) && doc.total_records) {
			const percent = Math.floor((100 * (doc.processed_records || 0)) / doc.total_records);
			label = __("{0} ({1}%)", [label, percent]);
		}
		return [label, colours[doc.status] || "gray", "status,=," + doc.status];
	},
	formatters: {
		processed_records(value, df, doc) {
			if (!doc.total_records) return value;
			return __("{0} of {1}", [value || 0, doc.total_records]);
		},
	},
	refresh(listview) {
		// Counters move in the workers without a document save: look again while something runs.
		clearTimeout(listview.verenigingen_timer);
		const finished = frappe.listview_settings["Bulk Operation Tracker"].finished;
		const running = (listview.data || []).some((d) => !finished.includes(d.status));
		if (running) {
			listview.verenigingen_timer = setTimeout(() => {
				const [view, doctype] = frappe.get_route();
				if (view === "List" && doctype === "Bulk Operation Tracker") listview.refresh(); // on screen only
			}, 5000);
		}
	},
};
