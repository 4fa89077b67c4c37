-- The app's tables as its Laravel migrations create them on PostgreSQL (for tests, demo and bench).
create table "scenarios" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "name" varchar(255) not null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null,
    "source_generation_id" bigint null
);

create table "competencies" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "name" varchar(255) not null,
    "description" text null,
    "status" varchar(255) not null default 'active',
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

create table "capabilities" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "name" varchar(255) not null,
    "discovered_in_scenario_id" bigint null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

alter table "capabilities" add constraint "capabilities_discovered_in_scenario_id_foreign"
    foreign key ("discovered_in_scenario_id") references "scenarios" ("id") on delete set null;

create table "capability_competencies" (
    "id" bigserial not null primary key,
    "scenario_id" bigint not null,
    "capability_id" bigint not null,
    "competency_id" bigint not null,
    "required_level" integer null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

alter table "capability_competencies" add constraint "capability_competencies_scenario_id_foreign"
    foreign key ("scenario_id") references "scenarios" ("id") on delete cascade;

alter table "capability_competencies" add constraint "capability_competencies_capability_id_foreign"
    foreign key ("capability_id") references "capabilities" ("id") on delete cascade;

alter table "capability_competencies" add constraint "capability_competencies_competency_id_foreign"
    foreign key ("competency_id") references "competencies" ("id") on delete cascade;

alter table "capability_competencies" add constraint "capability_competencies_scenario_capability_competency_unique"
    unique ("scenario_id", "capability_id", "competency_id");

create index "capability_competencies_competency_id_index" on "capability_competencies" ("competency_id");

create table "competency_versions" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "competency_id" bigint null,
    "version_group_id" uuid null,
    "name" varchar(255) not null,
    "description" text null,
    "effective_from" date null,
    "evolution_state" varchar(255) check ("evolution_state" in ('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
    "obsolescence_reason" text null,
    "metadata" json null,
    "created_by" bigint null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

alter table "competency_versions" add constraint "competency_versions_competency_id_foreign"
    foreign key ("competency_id") references "competencies" ("id") on delete set null;

create index "competency_versions_competency_id_index" on "competency_versions" ("competency_id");

-- `description` is encrypted at rest by the app (Laravel's `encrypted` cast, key APP_KEY): it holds
-- Crypt's base64 JSON payload ("eyJpdiI6..."), never the text, so it is `text` however short the role's
-- description is. The role_versions backfill copies it as it is and never writes its plaintext.
create table "roles" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "name" varchar(255) not null,
    "description" text null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

create table "scenario_roles" (
    "id" bigserial not null primary key,
    "scenario_id" bigint not null,
    "role_id" bigint not null,
    "role_change" varchar(255) null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

alter table "scenario_roles" add constraint "scenario_roles_scenario_id_foreign"
    foreign key ("scenario_id") references "scenarios" ("id") on delete cascade;

alter table "scenario_roles" add constraint "scenario_roles_role_id_foreign"
    foreign key ("role_id") references "roles" ("id") on delete cascade;

alter table "scenario_roles" add constraint "scenario_roles_scenario_id_role_id_unique"
    unique ("scenario_id", "role_id");

create index "scenario_roles_role_id_index" on "scenario_roles" ("role_id");

create table "role_versions" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "role_id" bigint null,
    "version_group_id" uuid null,
    "name" varchar(255) not null,
    "description" text null,
    "effective_from" date null,
    "evolution_state" varchar(255) check ("evolution_state" in ('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
    "metadata" json null,
    "created_by" bigint null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null
);

alter table "role_versions" add constraint "role_versions_role_id_foreign"
    foreign key ("role_id") references "roles" ("id") on delete set null;

create index "role_versions_role_id_index" on "role_versions" ("role_id");

-- Trimmed to what the scenario_id backfill and the app's NOT NULLs need. `scenario_id` came later
-- (2026_02_10_120000) and is unique; it and `scenarios.source_generation_id` point at each other.
create table "scenario_generations" (
    "id" bigserial not null primary key,
    "organization_id" bigint not null,
    "status" varchar(255) check ("status" in ('queued', 'processing', 'complete', 'failed')) not null default 'queued',
    "metadata" json null,
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null,
    "scenario_id" bigint null
);

create index "scenario_generations_organization_id_index" on "scenario_generations" ("organization_id");

alter table "scenario_generations" add constraint "scenario_generations_scenario_id_unique"
    unique ("scenario_id");

alter table "scenario_generations" add constraint "scenario_generations_scenario_id_foreign"
    foreign key ("scenario_id") references "scenarios" ("id") on delete set null;

alter table "scenarios" add constraint "scenarios_source_generation_id_foreign"
    foreign key ("source_generation_id") references "scenario_generations" ("id") on delete set null;

create index "scenarios_source_generation_id_index" on "scenarios" ("source_generation_id");

-- The pivot of scenarios and capabilities, as 2026_01_12_193106 creates it and 2026_01_23_120000
-- extends it (positions). No metadata column: the scenario_capabilities backfill records the keys
-- it inserts in the ledger instead of marking rows.
create table "scenario_capabilities" (
    "id" bigserial not null primary key,
    "scenario_id" bigint not null,
    "capability_id" bigint not null,
    "strategic_role" varchar(255) not null default 'target',
    "strategic_weight" smallint not null default '10',
    "priority" smallint not null default '1',
    "rationale" text null,
    "required_level" integer not null default '3',
    "is_critical" boolean not null default '0',
    "created_at" timestamp(0) without time zone null,
    "updated_at" timestamp(0) without time zone null,
    "position_x" double precision null,
    "position_y" double precision null,
    "is_fixed" boolean not null default '0'
);

alter table "scenario_capabilities" add constraint "scenario_capabilities_scenario_id_foreign"
    foreign key ("scenario_id") references "scenarios" ("id") on delete cascade;

alter table "scenario_capabilities" add constraint "scenario_capabilities_capability_id_foreign"
    foreign key ("capability_id") references "capabilities" ("id") on delete cascade;

alter table "scenario_capabilities" add constraint "scenario_capabilities_scenario_id_capability_id_unique"
    unique ("scenario_id", "capability_id");
