-- Seed rows for the testkit's tests, in SQL that PostgreSQL, MariaDB and SQLite all accept: three
-- competencies and their versions as the app wrote them, two without an effective date (what the
-- version_effective_dates example fills), one of them edited since it was created.
INSERT INTO competencies (id, organization_id, name, description, status, created_at, updated_at)
VALUES (1, 1, 'Data literacy', 'Reads; writes; argues with numbers', 'active', '2026-01-15 10:00:00', '2026-01-15 10:00:00'),
       (2, 1, 'Negotiation', NULL, 'active', '2026-01-15 10:00:00', '2026-01-15 10:00:00'),
       (3, 2, 'Gestión del cambio', 'It''s about people', 'active', '2026-01-15 10:00:00', '2026-01-15 10:00:00');

INSERT INTO competency_versions
    (organization_id, competency_id, name, description, effective_from, evolution_state, metadata, created_at, updated_at)
VALUES (1, 1, 'Data literacy', NULL, NULL, 'stable', NULL, '2026-01-16 09:30:00', '2026-01-16 09:30:00'),
       (1, 2, 'Negotiation', NULL, '2026-01-20', 'stable', NULL, '2026-01-20 08:00:00', '2026-01-20 08:00:00'),
       (2, 3, 'Gestión del cambio', NULL, NULL, 'transformed', '{"source":"import"}', '2026-01-17 11:00:00', '2026-02-01 12:00:00');
