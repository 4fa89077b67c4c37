-- Every case the scenario_id backfill tells apart, in SQL all three dialects run.
-- 1: filled with 11 (the lowest of 11 and 12); 2: filled with 13; 3: skipped, its lowest scenario
-- (14) is held by 4; 4: already set; 5: no scenario, stays NULL.
INSERT INTO scenario_generations (id, organization_id, status, created_at, updated_at, scenario_id) VALUES
    (1, 1, 'complete', '2026-01-10 10:00:00', '2026-01-10 10:00:00', NULL),
    (2, 1, 'complete', '2026-01-11 10:00:00', '2026-01-11 10:00:00', NULL),
    (3, 1, 'complete', '2026-01-12 10:00:00', '2026-01-12 10:00:00', NULL),
    (4, 1, 'complete', '2026-01-13 10:00:00', '2026-01-13 10:00:00', NULL),
    (5, 1, 'queued', '2026-01-14 10:00:00', '2026-01-14 10:00:00', NULL);
INSERT INTO scenarios (id, organization_id, name, created_at, updated_at, source_generation_id) VALUES
    (11, 1, 'from 1', '2026-01-10 11:00:00', '2026-01-10 11:00:00', 1),
    (12, 1, 'from 1 again', '2026-01-10 12:00:00', '2026-01-10 12:00:00', 1),
    (13, 1, 'from 2', '2026-01-11 11:00:00', '2026-01-11 11:00:00', 2),
    (14, 1, 'from 3', '2026-01-12 11:00:00', '2026-01-12 11:00:00', 3);
UPDATE scenario_generations SET scenario_id = 14 WHERE id = 4;
-- The scenario_capabilities insert: 21 and 26 get their pivot row in scenario 11, 22 in 13, 25 in
-- 14; 23 has one already (its values chosen in the app), 24 was discovered in no scenario.
INSERT INTO capabilities (id, organization_id, name, discovered_in_scenario_id, created_at, updated_at) VALUES
    (21, 1, 'Data literacy', 11, '2026-01-10 11:30:00', '2026-01-10 11:30:00'),
    (22, 1, 'Negotiation', 13, '2026-01-11 11:30:00', '2026-01-11 11:30:00'),
    (23, 1, 'Forecasting', 11, '2026-01-10 11:40:00', '2026-01-10 11:40:00'),
    (24, 1, 'Facilitation', NULL, '2026-01-09 09:00:00', '2026-01-09 09:00:00'),
    (25, 1, 'Cloud costs', 14, '2026-01-12 11:30:00', '2026-01-12 11:30:00'),
    (26, 1, 'Coaching', 11, '2026-01-10 11:50:00', '2026-01-10 11:50:00');
INSERT INTO scenario_capabilities (scenario_id, capability_id, strategic_role, strategic_weight, priority, rationale, required_level, is_critical, created_at, updated_at) VALUES
    (11, 23, 'core', 40, 2, 'chosen in the app', 4, TRUE, '2026-01-20 08:00:00', '2026-01-21 08:00:00');
