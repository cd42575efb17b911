"""A member of the association, as Mijnrood knows them; the user account is linked once it exists."""

from frappe.model.document import Document

from verenigingen.dutch.names import full_name
from verenigingen.frappe_host.permissions import guard_member_link


class Member(Document):
    def validate(self):
        # Dutch name parts make one display name: "Anna ten Boom".
        self.full_name = full_name(self.first_name, self.tussenvoegsel, self.last_name)
        if self.email:
            self.email = self.email.strip().lower()
        guard_member_link(self)
