-- The app's tables as its Laravel migrations create them on SQLite (for tests, demo and bench).
create table "scenarios" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "name" varchar not null,
    "created_at" datetime,
    "updated_at" datetime,
    "source_generation_id" integer,
    foreign key("source_generation_id") references "scenario_generations"("id") on delete set null
);

create index "scenarios_source_generation_id_index" on "scenarios" ("source_generation_id");

create table "competencies" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "name" varchar not null,
    "description" text,
    "status" varchar not null default 'active',
    "created_at" datetime,
    "updated_at" datetime
);

create table "capabilities" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "name" varchar not null,
    "discovered_in_scenario_id" integer,
    "created_at" datetime,
    "updated_at" datetime,
    foreign key("discovered_in_scenario_id") references "scenarios"("id") on delete set null
);

create table "capability_competencies" (
    "id" integer primary key autoincrement not null,
    "scenario_id" integer not null,
    "capability_id" integer not null,
    "competency_id" integer not null,
    "required_level" integer,
    "created_at" datetime,
    "updated_at" datetime,
    foreign key("scenario_id") references "scenarios"("id") on delete cascade,
    foreign key("capability_id") references "capabilities"("id") on delete cascade,
    foreign key("competency_id") references "competencies"("id") on delete cascade
);

create unique index "capability_competencies_scenario_capability_competency_unique"
    on "capability_competencies" ("scenario_id", "capability_id", "competency_id");

create index "capability_competencies_competency_id_index" on "capability_competencies" ("competency_id");

create table "competency_versions" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "competency_id" integer,
    "version_group_id" varchar,
    "name" varchar not null,
    "description" text,
    "effective_from" date,
    "evolution_state" varchar check ("evolution_state" in ('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
    "obsolescence_reason" text,
    "metadata" text,
    "created_by" integer,
    "created_at" datetime,
    "updated_at" datetime,
    foreign key("competency_id") references "competencies"("id") on delete set null
);

create index "competency_versions_competency_id_index" on "competency_versions" ("competency_id");

-- `description` is encrypted at rest by the app (Laravel's `encrypted` cast, key APP_KEY): it holds
-- Crypt's base64 JSON payload ("eyJpdiI6..."), never the text, so it is `text` however short the role's
-- description is. The role_versions backfill copies it as it is and never writes its plaintext.
create table "roles" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "name" varchar not null,
    "description" text,
    "created_at" datetime,
    "updated_at" datetime
);

create table "scenario_roles" (
    "id" integer primary key autoincrement not null,
    "scenario_id" integer not null,
    "role_id" integer not null,
    "role_change" varchar,
    "created_at" datetime,
    "updated_at" datetime,
    foreign key("scenario_id") references "scenarios"("id") on delete cascade,
    foreign key("role_id") references "roles"("id") on delete cascade
);

create unique index "scenario_roles_scenario_id_role_id_unique" on "scenario_roles" ("scenario_id", "role_id");

create index "scenario_roles_role_id_index" on "scenario_roles" ("role_id");

create table "role_versions" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "role_id" integer,
    "version_group_id" varchar,
    "name" varchar not null,
    "description" text,
    "effective_from" date,
    "evolution_state" varchar check ("evolution_state" in ('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
    "metadata" text,
    "created_by" integer,
    "created_at" datetime,
    "updated_at" datetime,
    foreign key("role_id") references "roles"("id") on delete set null
);

create index "role_versions_role_id_index" on "role_versions" ("role_id");

-- Trimmed to what the scenario_id backfill and the app's NOT NULLs need. `scenario_id` came later
-- (2026_02_10_120000) and is unique, without a foreign key on SQLite (the app skips it there).
create table "scenario_generations" (
    "id" integer primary key autoincrement not null,
    "organization_id" integer not null,
    "status" varchar check ("status" in ('queued', 'processing', 'complete', 'failed')) not null default 'queued',
    "metadata" text,
    "created_at" datetime,
    "updated_at" datetime,
    "scenario_id" integer
);

create index "scenario_generations_organization_id_index" on "scenario_generations" ("organization_id");

create unique index "scenario_generations_scenario_id_unique" on "scenario_generations" ("scenario_id");

-- The pivot of scenarios and capabilities, as 2026_01_12_193106 creates it and 2026_01_23_120000
-- extends it (positions, added at the end on SQLite). No metadata column: the scenario_capabilities
-- backfill records the keys it inserts in the ledger instead of marking rows.
create table "scenario_capabilities" (
    "id" integer primary key autoincrement not null,
    "scenario_id" integer not null,
    "capability_id" integer not null,
    "strategic_role" varchar not null default 'target',
    "strategic_weight" integer not null default '10',
    "priority" integer not null default '1',
    "rationale" text,
    "required_level" integer not null default '3',
    "is_critical" tinyint(1) not null default '0',
    "created_at" datetime,
    "updated_at" datetime,
    "position_x" float,
    "position_y" float,
    "is_fixed" tinyint(1) not null default '0',
    foreign key("scenario_id") references "scenarios"("id") on delete cascade,
    foreign key("capability_id") references "capabilities"("id") on delete cascade
);

create unique index "scenario_capabilities_scenario_id_capability_id_unique" on "scenario_capabilities" ("scenario_id", "capability_id");
