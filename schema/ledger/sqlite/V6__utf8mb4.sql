-- Ledger schema V6 converts MySQL/MariaDB's ledger tables to utf8mb4 (schema/ledger/mysql). Here text
-- is already the database's one encoding and compares byte for byte: nothing to change, but the version
-- is the same in every dialect.
SELECT 1;
