//! UPDATE-shaped test migration (`exact_emails`, created by `tests/update_exact.rs`): e-mail
//! addresses in lower case, notes without surrounding blanks. A case-only change and a trimmed
//! trailing space are changes, whatever the column's collation.

use crate::kit::update::UpdateBackfill;

pub static MIGRATION: UpdateBackfill = UpdateBackfill {
    table: "exact_emails",
    key: "id",
    columns: &["email", "note"],
    values: &["LOWER(t.email)", "TRIM(t.note)"],
    only: None,
    skip: None,
};
