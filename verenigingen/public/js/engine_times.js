// The engine keeps its times in UTC (one clock on every host, through daylight-saving changes). Frappe would
// show them as if they were the site's time: the forms of the engine's DocTypes show them in the reader's
// time zone instead, as Frappe shows its own times. Added to those forms by the `doctype_js` hook.
frappe.provide("verenigingen");

verenigingen.engine_time = function (value) {
	if (!value) return "";
	// To the site's time, as Frappe stores its own: str_to_user takes it on to the reader's time zone.
	const zone = frappe.boot.time_zone && frappe.boot.time_zone.system;
	const site = zone ? moment.utc(value).tz(zone) : moment.utc(value).local();
	return frappe.datetime.str_to_user(site.format(frappe.defaultDatetimeFormat));
};

verenigingen.show_engine_times = function (frm) {
	for (const df of frm.meta.fields.filter((field) => field.fieldtype === "Datetime")) {
		frm.set_df_property(df.fieldname, "formatter", (value) => verenigingen.engine_time(value));
	}
};
