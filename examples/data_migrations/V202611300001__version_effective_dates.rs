//! UPDATE-shaped example: versions the app wrote without an effective date get their creation date.
//!
//! The runner walks `competency_versions.id` in key ranges; each batch journals the rows' old and new
//! `effective_from` in the ledger (`backfill_undo`) in the same transaction as the update, so
//! `backfill revert` puts back exactly the NULLs that were there, and refuses rows edited since.

use crate::kit::update::UpdateBackfill;

pub static MIGRATION: UpdateBackfill = UpdateBackfill {
    table: "competency_versions",
    key: "id",
    columns: &["effective_from"],
    // `date()` is a function in all three dialects.
    values: &["date(t.created_at)"],
    only: Some("t.effective_from IS NULL"),
    skip: None,
};
