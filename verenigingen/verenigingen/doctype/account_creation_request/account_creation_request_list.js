frappe.listview_settings["Account Creation Request"] = {
	add_fields: ["status"],
	get_indicator(doc) {
		const colours = {
			Requested: "gray",
			Queued: "blue",
			Processing: "orange",
			Completed: "green",
			Failed: "red",
			Cancelled: "darkgrey",
		};
		return [__(doc.status), colours[doc.status] || "gray", "status,=," + doc.status];
	},
};
