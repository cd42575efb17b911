// The member's account from the Member form: Create Account (the individual path), or why it cannot be
// made now; the account and the member's latest requests.
const ACCOUNT_ROLES = ["Verenigingen Administrator", "Verenigingen Manager"];

frappe.ui.form.on("Member", {
	async refresh(frm) {
		if (frm.is_new() || !ACCOUNT_ROLES.some((role) => frappe.user.has_role(role))) return;
		const account = await frappe.xcall("verenigingen.api.member_account", { member: frm.doc.name });
		if (account.user) {
			frm.add_custom_button(__("User Account"), () => frappe.set_route("Form", "User", account.user));
		} else if (account.refused) {
			frm.dashboard.set_headline(
				__("No account can be requested now: {0}.", [frappe.utils.escape_html(account.refused.message)]),
				"orange"
			);
		} else {
			frm.add_custom_button(__("Create Account"), async () => {
				const done = await frappe.xcall("verenigingen.api.request_account", { member: frm.doc.name });
				frappe.show_alert({
					message: done.linked
						? __("The member's existing user is linked to it")
						: __("Account requested: {0}", [done.request]),
					indicator: "green",
				});
				frm.reload_doc();
			}).addClass("btn-primary");
		}
		if (account.requests.length) {
			frm.add_custom_button(__("Account Requests"), () =>
				frappe.set_route("List", "Account Creation Request", { source_record: frm.doc.name })
			);
			const latest = account.requests[0];
			if (latest.status === "Failed" && !account.user) {
				frm.dashboard.set_headline(
					__("The latest account request failed: {0}", [frappe.utils.escape_html(latest.failure_reason || "")]),
					"red"
				);
			}
		}
	},
});
