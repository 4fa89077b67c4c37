//! The reference SQL: what backfill does, as one statement, no batching, no ledger.

use backfill::db::Dialect;
use backfill::engine::runner::Options;
/// The migration measured, as its module defines it: the floor runs its own SQL, unranged.
use backfill::registry::generated::v202611230001__competency_versions::MIGRATION as COMPETENCY_VERSIONS;

pub(crate) fn floor_group_by(d: Dialect) -> String {
    COMPETENCY_VERSIONS.count_by_scenario_sql(d)
}

pub(crate) fn context(version: i64, run_id: &str) -> backfill::kit::migration::Context {
    backfill::kit::migration::Context {
        version,
        run_id: uuid::Uuid::parse_str(run_id).unwrap_or_else(|_| uuid::Uuid::nil()),
        run_date: chrono::Utc::now().date_naive(),
        group: None,
        ledger_rows: 0,
        stage: None,
    }
}

/// One way to write every pending version in a single `INSERT … SELECT`.
pub(crate) struct Form {
    pub(crate) label: &'static str,
    pub(crate) sql: String,
}

/// Every single-statement form of the apply this harness knows for the dialect, the migration's own
/// first (its SQL, unranged). Each writes exactly the migration's rows, with the same expressions
/// (UUID, marker, date, times); they differ only in how the lowest scenario per competency and the
/// "no version yet" test are computed. The fastest one is the reference for `apply`.
pub(crate) fn single_statements(d: Dialect, version: i64, run_id: &str) -> Vec<Form> {
    let ctx = context(version, run_id);
    let m = &COMPETENCY_VERSIONS;
    let (entity, link, le, ls, versions, fk) = (
        m.entity,
        m.link,
        m.link_entity,
        m.link_scenario,
        m.versions,
        m.fk,
    );
    let insert = |from: String| insert_select(d, &ctx, &from);
    let grouped = format!(
        "(SELECT {le} AS entity_id, MIN({ls}) AS scenario_id FROM {link} WHERE {ls} IS NOT NULL GROUP BY {le}) s"
    );
    let not_versioned = format!("NOT EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id)");
    let grouped_join = insert(format!(
        "FROM {grouped} JOIN {entity} e ON e.id = s.entity_id WHERE {not_versioned}"
    ));
    let per_entity = insert(format!(
        "FROM (SELECT e.id, e.organization_id, e.name, e.description, \
         (SELECT MIN({ls}) FROM {link} WHERE {le} = e.id) AS scenario_id \
         FROM {entity} e WHERE {not_versioned}) p WHERE p.scenario_id IS NOT NULL"
    ));
    let anti_join = insert(format!(
        "FROM {grouped} JOIN {entity} e ON e.id = s.entity_id \
         LEFT JOIN (SELECT {fk} AS versioned FROM {versions} WHERE {fk} IS NOT NULL) v ON v.versioned = e.id \
         WHERE v.versioned IS NULL"
    ));
    let mut forms = vec![own_form(d, &ctx)];
    match d {
        Dialect::Mysql => forms.push(Form {
            label: "grouped derived table joined to competencies",
            sql: grouped_join,
        }),
        _ => forms.push(Form {
            label: "per-entity subquery",
            sql: per_entity,
        }),
    }
    forms.push(Form {
        label: "grouped derived table, anti-join (LEFT JOIN … IS NULL) instead of NOT EXISTS",
        sql: anti_join,
    });
    if d == Dialect::Postgres {
        let distinct_on = format!(
            "(SELECT DISTINCT ON ({le}) {le} AS entity_id, {ls} AS scenario_id FROM {link} \
             WHERE {ls} IS NOT NULL ORDER BY {le}, {ls}) s"
        );
        forms.push(Form {
            label: "DISTINCT ON (lowest scenario first) joined to competencies",
            sql: insert(format!(
                "FROM {distinct_on} JOIN {entity} e ON e.id = s.entity_id WHERE {not_versioned}"
            )),
        });
    }
    forms
}

/// The migration's own statement is one of the shapes `single_statements` knows
/// (src/kit/version_backfill.rs): the per-entity subquery on MariaDB, the grouped join elsewhere.
/// It is listed once, as itself.
fn own_form(d: Dialect, ctx: &backfill::kit::migration::Context) -> Form {
    Form {
        label: match d {
            Dialect::Mysql => "per-entity subquery (the migration's own statement, unranged)",
            _ => "grouped derived table joined to competencies (the migration's own statement, unranged)",
        },
        sql: COMPETENCY_VERSIONS.insert_sql(d, false, ctx),
    }
}

/// `INSERT INTO` the versions table `SELECT` the migration's expressions (UUID, marker, date, times)
/// `from` a form's source of (organization_id, id, name, description, scenario_id).
fn insert_select(d: Dialect, ctx: &backfill::kit::migration::Context, from: &str) -> String {
    let m = &COMPETENCY_VERSIONS;
    let (versions, fk) = (m.versions, m.fk);
    format!(
        "INSERT INTO {versions} (organization_id, {fk}, version_group_id, name, description, effective_from, \
         evolution_state, metadata, created_by, created_at, updated_at) \
         SELECT organization_id, id, {uuid}, name, description, {date}, 'new_embryo', {metadata}, NULL, {now}, {now} \
         {from} ORDER BY id",
        uuid = d.uuid_v4(),
        date = d.date_param(),
        now = d.utc_now(),
        metadata = backfill::kit::marker::json(d, ctx, Some(("scenario_id", "scenario_id"))),
    )
}

/// The migration's own marker condition (the kit's), as revert uses it.
pub(crate) fn marker(d: Dialect, version: i64) -> String {
    backfill::kit::marker::condition(d, "metadata", &context(version, ""), None).0
}

pub(crate) fn floor_delete(d: Dialect, version: i64) -> String {
    format!(
        "DELETE FROM competency_versions WHERE {}",
        marker(d, version)
    )
}

/// What `backfill` does when no `--batch-size` is given.
pub(crate) fn default_batching() -> String {
    let o = Options::default();
    match o.batch_target {
        Some(t) => format!(
            "start at {} keys, resized toward {} ms per batch",
            o.batch_size,
            t.as_millis()
        ),
        None => format!("{} keys per batch", o.batch_size),
    }
}

pub(crate) fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}
