frappe.listview_settings["Mijnrood CSV Import"] = {
	add_fields: ["status"],
	get_indicator(doc) {
		const colours = { Pending: "gray", Validated: "blue", Importing: "orange", Completed: "green", Failed: "red" };
		return [__(doc.status), colours[doc.status] || "gray", "status,=," + doc.status];
	},
};
