-- The app's tables as its Laravel migrations create them on MySQL / MariaDB (for tests, demo and bench).
create table `scenarios` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `name` varchar(255) not null,
    `created_at` timestamp null,
    `updated_at` timestamp null,
    `source_generation_id` bigint unsigned null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

create table `competencies` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `name` varchar(255) not null,
    `description` text null,
    `status` varchar(255) not null default 'active',
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

create table `capabilities` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `name` varchar(255) not null,
    `discovered_in_scenario_id` bigint unsigned null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `capabilities` add constraint `capabilities_discovered_in_scenario_id_foreign`
    foreign key (`discovered_in_scenario_id`) references `scenarios` (`id`) on delete set null;

create table `capability_competencies` (
    `id` bigint unsigned not null auto_increment primary key,
    `scenario_id` bigint unsigned not null,
    `capability_id` bigint unsigned not null,
    `competency_id` bigint unsigned not null,
    `required_level` int null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `capability_competencies` add unique `capability_competencies_scenario_capability_competency_unique`
    (`scenario_id`, `capability_id`, `competency_id`);

alter table `capability_competencies` add index `capability_competencies_competency_id_index` (`competency_id`);

alter table `capability_competencies` add constraint `capability_competencies_scenario_id_foreign`
    foreign key (`scenario_id`) references `scenarios` (`id`) on delete cascade;

alter table `capability_competencies` add constraint `capability_competencies_capability_id_foreign`
    foreign key (`capability_id`) references `capabilities` (`id`) on delete cascade;

alter table `capability_competencies` add constraint `capability_competencies_competency_id_foreign`
    foreign key (`competency_id`) references `competencies` (`id`) on delete cascade;

create table `competency_versions` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `competency_id` bigint unsigned null,
    `version_group_id` char(36) null,
    `name` varchar(255) not null,
    `description` text null,
    `effective_from` date null,
    `evolution_state` enum('transformed', 'obsolescent', 'new_embryo', 'stable') not null default 'stable',
    `obsolescence_reason` text null,
    `metadata` json null,
    `created_by` bigint unsigned null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `competency_versions` add index `competency_versions_competency_id_index` (`competency_id`);

alter table `competency_versions` add constraint `competency_versions_competency_id_foreign`
    foreign key (`competency_id`) references `competencies` (`id`) on delete set null;

-- `description` is encrypted at rest by the app (Laravel's `encrypted` cast, key APP_KEY): it holds
-- Crypt's base64 JSON payload ("eyJpdiI6..."), never the text, so it is `text` however short the role's
-- description is. The role_versions backfill copies it as it is and never writes its plaintext.
create table `roles` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `name` varchar(255) not null,
    `description` text null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

create table `scenario_roles` (
    `id` bigint unsigned not null auto_increment primary key,
    `scenario_id` bigint unsigned not null,
    `role_id` bigint unsigned not null,
    `role_change` varchar(255) null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `scenario_roles` add unique `scenario_roles_scenario_id_role_id_unique` (`scenario_id`, `role_id`);

alter table `scenario_roles` add index `scenario_roles_role_id_index` (`role_id`);

alter table `scenario_roles` add constraint `scenario_roles_scenario_id_foreign`
    foreign key (`scenario_id`) references `scenarios` (`id`) on delete cascade;

alter table `scenario_roles` add constraint `scenario_roles_role_id_foreign`
    foreign key (`role_id`) references `roles` (`id`) on delete cascade;

create table `role_versions` (
    `id` bigint unsigned not null auto_increment primary key,
    `organization_id` bigint unsigned not null,
    `role_id` bigint unsigned null,
    `version_group_id` char(36) null,
    `name` varchar(255) not null,
    `description` text null,
    `effective_from` date null,
    `evolution_state` enum('transformed', 'obsolescent', 'new_embryo', 'stable') not null default 'stable',
    `metadata` json null,
    `created_by` bigint unsigned null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `role_versions` add index `role_versions_role_id_index` (`role_id`);

alter table `role_versions` add constraint `role_versions_role_id_foreign`
    foreign key (`role_id`) references `roles` (`id`) on delete set null;

-- Trimmed to what the scenario_id backfill and the app's NOT NULLs need. `scenario_id` came later
-- (2026_02_10_120000, `->after('id')`) and is unique; it and `scenarios.source_generation_id` point at
-- each other.
create table `scenario_generations` (
    `id` bigint unsigned not null auto_increment primary key,
    `scenario_id` bigint unsigned null,
    `organization_id` bigint unsigned not null,
    `status` enum('queued', 'processing', 'complete', 'failed') not null default 'queued',
    `metadata` json null,
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `scenario_generations` add index `scenario_generations_organization_id_index` (`organization_id`);

alter table `scenario_generations` add unique `scenario_generations_scenario_id_unique` (`scenario_id`);

alter table `scenario_generations` add constraint `scenario_generations_scenario_id_foreign`
    foreign key (`scenario_id`) references `scenarios` (`id`) on delete set null;

alter table `scenarios` add constraint `scenarios_source_generation_id_foreign`
    foreign key (`source_generation_id`) references `scenario_generations` (`id`) on delete set null;

alter table `scenarios` add index `scenarios_source_generation_id_index` (`source_generation_id`);

-- The pivot of scenarios and capabilities, as 2026_01_12_193106 creates it and 2026_01_23_120000
-- extends it (positions). No metadata column: the scenario_capabilities backfill records the keys
-- it inserts in the ledger instead of marking rows.
create table `scenario_capabilities` (
    `id` bigint unsigned not null auto_increment primary key,
    `scenario_id` bigint unsigned not null,
    `capability_id` bigint unsigned not null,
    `strategic_role` varchar(255) not null default 'target',
    `strategic_weight` smallint unsigned not null default '10',
    `priority` smallint unsigned not null default '1',
    `rationale` text null,
    `required_level` int not null default '3',
    `is_critical` tinyint(1) not null default '0',
    `position_x` double null,
    `position_y` double null,
    `is_fixed` tinyint(1) not null default '0',
    `created_at` timestamp null,
    `updated_at` timestamp null
) default character set utf8mb4 collate 'utf8mb4_unicode_ci' engine = InnoDB;

alter table `scenario_capabilities` add constraint `scenario_capabilities_scenario_id_foreign`
    foreign key (`scenario_id`) references `scenarios` (`id`) on delete cascade;

alter table `scenario_capabilities` add constraint `scenario_capabilities_capability_id_foreign`
    foreign key (`capability_id`) references `capabilities` (`id`) on delete cascade;

alter table `scenario_capabilities` add unique `scenario_capabilities_scenario_id_capability_id_unique`
    (`scenario_id`, `capability_id`);
