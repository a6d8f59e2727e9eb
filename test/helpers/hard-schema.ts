/** A schema with everything the issue lists, and the awkward cases around it. */
export const HARD_SCHEMA = `
CREATE SCHEMA "Billing Ünïcode";
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.positive_int AS integer DEFAULT 1 NOT NULL CONSTRAINT positive CHECK (VALUE > 0);
CREATE TYPE app.pair AS (a int, b text);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW."updatedAt" := now(); RETURN NEW; END $$;
CREATE FUNCTION app.double(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
CREATE SEQUENCE app.invoice_no AS bigint INCREMENT BY 5 START WITH 1000 CACHE 1;
CREATE TABLE app.accounts (
  id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10) PRIMARY KEY,
  "Display Name" text NOT NULL COLLATE "C",
  mood app.mood DEFAULT 'ok',
  score app.positive_int,
  doubled int GENERATED ALWAYS AS (app.double(score)) STORED,
  tags text[] DEFAULT '{}',
  meta jsonb NOT NULL DEFAULT '{"v": 1}',
  balance numeric(12, 4) DEFAULT 0 CHECK (balance >= -1000),
  "updatedAt" timestamptz DEFAULT now(),
  invoice bigint DEFAULT nextval('app.invoice_no'),
  UNIQUE ("Display Name")
);
ALTER SEQUENCE app.invoice_no OWNED BY app.accounts.invoice;
CREATE TABLE "Billing Ünïcode"."Invoice Lines" (
  id serial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES app.accounts (id) ON DELETE CASCADE,
  amount numeric NOT NULL,
  note text
);
-- A foreign key cycle.
CREATE TABLE app.a (id int PRIMARY KEY, b_id int);
CREATE TABLE app.b (id int PRIMARY KEY, a_id int REFERENCES app.a (id));
ALTER TABLE app.a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES app.b (id) DEFERRABLE INITIALLY DEFERRED;
-- No primary key, full replica identity.
CREATE TABLE app.events (at timestamptz, payload jsonb);
ALTER TABLE app.events REPLICA IDENTITY FULL;
-- Partitions.
CREATE TABLE app.measurements (id bigint, taken date NOT NULL, value double precision) PARTITION BY RANGE (taken);
CREATE TABLE app.measurements_2026 PARTITION OF app.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.measurements_rest PARTITION OF app.measurements DEFAULT;
CREATE INDEX measurements_taken ON app.measurements (taken);
CREATE INDEX accounts_meta ON app.accounts USING gin (meta);
CREATE UNIQUE INDEX accounts_lower_name ON app.accounts (lower("Display Name")) WHERE mood <> 'sad';
CREATE TRIGGER accounts_touch BEFORE UPDATE ON app.accounts FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON app.accounts AS PERMISSIVE FOR SELECT TO PUBLIC USING (mood <> 'sad');
CREATE POLICY no_negative ON app.accounts AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (balance >= 0);
CREATE VIEW app.happy_accounts AS SELECT id, "Display Name" FROM app.accounts WHERE mood = 'happy';
CREATE VIEW app.happy_count AS SELECT count(*) AS n FROM app.happy_accounts;
CREATE MATERIALIZED VIEW app.totals AS SELECT account_id, sum(amount) AS total FROM "Billing Ünïcode"."Invoice Lines" GROUP BY account_id;
COMMENT ON TABLE app.accounts IS 'Customer accounts, with ''quotes''';
COMMENT ON COLUMN app.accounts."Display Name" IS 'Shown in the UI';
COMMENT ON TYPE app.mood IS 'How it feels';
COMMENT ON FUNCTION app.double(int) IS 'Twice';
COMMENT ON SCHEMA app IS 'The application';
`

/**
 * Rows that are hard to carry: arbitrary bytes, tabs, newlines and backslashes, NULL next to empty
 * strings, numeric precision, infinite timestamps, arrays, jsonb, unicode, a foreign key cycle, partitions.
 */
export const HARD_DATA = `
ALTER TABLE app.measurements_2026 REPLICA IDENTITY FULL;
ALTER TABLE app.measurements_rest REPLICA IDENTITY FULL;
CREATE TABLE app.oddities (
  id int PRIMARY KEY,
  raw bytea,
  body text,
  maybe text,
  exact numeric,
  at timestamptz,
  day date,
  nums int[],
  doc jsonb,
  flags boolean[],
  span interval
);
INSERT INTO app.accounts ("Display Name", mood, score, tags, meta, balance)
SELECT 'Ünïcode ' || g || E' \\\\ tab\\there', (ARRAY['sad','ok','happy'])[1 + g % 3]::app.mood, 1 + g % 7,
       ARRAY['a' || g, NULL, 'quote"s', 'comma,s'], jsonb_build_object('v', g, 'nested', jsonb_build_object('k', ARRAY[g, g + 1])), g * 1.2345
  FROM generate_series(1, 300) g;
INSERT INTO "Billing Ünïcode"."Invoice Lines" (account_id, amount, note)
SELECT a.id, (a.id % 97) + 0.000000000000000000000001, CASE WHEN a.id % 5 = 0 THEN NULL WHEN a.id % 5 = 1 THEN '' ELSE E'line\\nbreak ' || a.id END
  FROM app.accounts a, generate_series(1, 3);
INSERT INTO app.a (id, b_id) SELECT g, NULL FROM generate_series(1, 50) g;
INSERT INTO app.b (id, a_id) SELECT g, g FROM generate_series(1, 50) g;
UPDATE app.a SET b_id = 51 - id;
INSERT INTO app.events (at, payload) SELECT '2026-01-01'::timestamptz + g * interval '1 hour', jsonb_build_object('n', g) FROM generate_series(1, 100) g;
INSERT INTO app.events (at, payload) SELECT '2026-01-01'::timestamptz, '{"n": 1}' FROM generate_series(1, 3);
INSERT INTO app.measurements (id, taken, value) SELECT g, '2025-06-01'::date + g, g / 7.0 FROM generate_series(1, 600) g;
INSERT INTO app.oddities VALUES
  (1, '\\x00ff0a0d095c22', E'tab\\there\\nnew line \\\\ backslash', NULL, 3.14159265358979323846264338327950288419716939937510, 'infinity', '-infinity', '{1,NULL,3}', '{"a": [1, "x", null]}', '{t,f,NULL}', '1 year 2 mons -3 days'),
  (2, '', '', '', -0.0000000000000000001, '-infinity', 'infinity', '{}', 'null', '{}', '-00:00:01.5'),
  (3, NULL, NULL, 'NULL', 'NaN', '1999-12-31 23:59:59.999999+00', '0001-01-01 BC', NULL, '"\\\\u00e9 \\\\t"', NULL, NULL),
  (4, decode(repeat('00010203fefdfc', 4000), 'hex'), repeat(E'\\\\N\\t\\r', 5000), E'\\\\N', 1e100, now(), now()::date, ARRAY[2147483647, -2147483648], '{"big": 12345678901234567890}', '{t}', '0');
REFRESH MATERIALIZED VIEW app.totals;
-- Triggers that would change rows, or add some, if a restore let them fire on its inserts.
CREATE TABLE app.trigger_log (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION app.stamp_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := 'changed by a trigger'; RETURN NEW; END $$;
CREATE FUNCTION app.log_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO app.trigger_log (what) VALUES ('inserted ' || NEW.id); RETURN NULL; END $$;
CREATE TRIGGER oddities_stamp BEFORE INSERT ON app.oddities FOR EACH ROW EXECUTE FUNCTION app.stamp_insert();
CREATE TRIGGER oddities_log AFTER INSERT ON app.oddities FOR EACH ROW EXECUTE FUNCTION app.log_insert();
`
