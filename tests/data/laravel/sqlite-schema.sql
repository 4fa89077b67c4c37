CREATE TABLE IF NOT EXISTS "scenarios"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "name" varchar not null,
  "created_at" datetime,
  "updated_at" datetime,
  "source_generation_id" integer,
  foreign key("source_generation_id") references "scenario_generations"("id") on delete set null
);
CREATE INDEX "scenarios_source_generation_id_index" on "scenarios"(
  "source_generation_id"
);
CREATE TABLE IF NOT EXISTS "competencies"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "name" varchar not null,
  "description" text,
  "status" varchar not null default 'active',
  "created_at" datetime,
  "updated_at" datetime
);
CREATE TABLE IF NOT EXISTS "capabilities"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "name" varchar not null,
  "discovered_in_scenario_id" integer,
  "created_at" datetime,
  "updated_at" datetime,
  foreign key("discovered_in_scenario_id") references "scenarios"("id") on delete set null
);
CREATE TABLE IF NOT EXISTS "capability_competencies"(
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
CREATE UNIQUE INDEX "capability_competencies_scenario_capability_competency_unique"
on "capability_competencies"(
  "scenario_id",
  "capability_id",
  "competency_id"
);
CREATE INDEX "capability_competencies_competency_id_index" on "capability_competencies"(
  "competency_id"
);
CREATE TABLE IF NOT EXISTS "competency_versions"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "competency_id" integer,
  "version_group_id" varchar,
  "name" varchar not null,
  "description" text,
  "effective_from" date,
  "evolution_state" varchar check("evolution_state" in('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
  "obsolescence_reason" text,
  "metadata" text,
  "created_by" integer,
  "created_at" datetime,
  "updated_at" datetime,
  foreign key("competency_id") references "competencies"("id") on delete set null
);
CREATE INDEX "competency_versions_competency_id_index" on "competency_versions"(
  "competency_id"
);
CREATE TABLE IF NOT EXISTS "roles"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "name" varchar not null,
  "description" text,
  "created_at" datetime,
  "updated_at" datetime
);
CREATE TABLE IF NOT EXISTS "scenario_roles"(
  "id" integer primary key autoincrement not null,
  "scenario_id" integer not null,
  "role_id" integer not null,
  "role_change" varchar,
  "created_at" datetime,
  "updated_at" datetime,
  foreign key("scenario_id") references "scenarios"("id") on delete cascade,
  foreign key("role_id") references "roles"("id") on delete cascade
);
CREATE UNIQUE INDEX "scenario_roles_scenario_id_role_id_unique" on "scenario_roles"(
  "scenario_id",
  "role_id"
);
CREATE INDEX "scenario_roles_role_id_index" on "scenario_roles"("role_id");
CREATE TABLE IF NOT EXISTS "scenario_capabilities"(
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
CREATE UNIQUE INDEX "scenario_capabilities_scenario_id_capability_id_unique" on "scenario_capabilities"(
  "scenario_id",
  "capability_id"
);
CREATE TABLE IF NOT EXISTS "role_versions"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "role_id" integer,
  "version_group_id" varchar,
  "name" varchar not null,
  "description" text,
  "effective_from" date,
  "evolution_state" varchar check("evolution_state" in('transformed', 'obsolescent', 'new_embryo', 'stable')) not null default 'stable',
  "metadata" text,
  "created_by" integer,
  "created_at" datetime,
  "updated_at" datetime,
  foreign key("role_id") references "roles"("id") on delete set null
);
CREATE INDEX "role_versions_role_id_index" on "role_versions"("role_id");
CREATE TABLE IF NOT EXISTS "scenario_generations"(
  "id" integer primary key autoincrement not null,
  "organization_id" integer not null,
  "status" varchar check("status" in('queued', 'processing', 'complete', 'failed')) not null default 'queued',
  "metadata" text,
  "created_at" datetime,
  "updated_at" datetime,
  "scenario_id" integer
);
CREATE INDEX "scenario_generations_organization_id_index" on "scenario_generations"(
  "organization_id"
);
CREATE UNIQUE INDEX "scenario_generations_scenario_id_unique" on "scenario_generations"(
  "scenario_id"
);
CREATE TABLE IF NOT EXISTS "migrations"(
  "id" integer primary key autoincrement not null,
  "migration" varchar not null,
  "batch" integer not null
);

INSERT INTO migrations VALUES(1,'0001_01_00_000000_create_organizations_table',1);
INSERT INTO migrations VALUES(2,'0001_01_01_000000_create_users_table',1);
INSERT INTO migrations VALUES(3,'2026_01_06_190000_create_scenarios_table',1);
INSERT INTO migrations VALUES(4,'2026_01_12_192910_create_capabilities_table',1);
INSERT INTO migrations VALUES(5,'2026_01_12_192940_create_competencies_table',1);
INSERT INTO migrations VALUES(6,'2026_01_12_193126_create_scenario_roles_table',1);
INSERT INTO migrations VALUES(7,'2026_01_23_121000_create_capability_competencies_table',1);
INSERT INTO migrations VALUES(8,'2026_02_04_100000_create_competency_versions_table',1);
INSERT INTO migrations VALUES(9,'2026_02_04_100100_create_role_versions_table',1);
INSERT INTO migrations VALUES(10,'2026_02_06_180000_create_scenario_generations_table',2);
INSERT INTO migrations VALUES(11,'2026_02_10_120000_add_scenario_id_to_scenario_generations',2);
