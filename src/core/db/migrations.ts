import type { Pool } from 'pg'

/** Versioned migrations of the `ops` schema. Append only: never edit a migration that has shipped. */
export interface Migration {
  version: number
  name: string
  sql: string
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'health, jobs and audit',
    sql: `
      CREATE TABLE ops.health_results (
        id bigserial PRIMARY KEY,
        service text NOT NULL,
        status text NOT NULL,
        latency_ms double precision,
        reason text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        checked_at timestamptz NOT NULL
      );
      CREATE INDEX health_results_service_time ON ops.health_results (service, checked_at DESC);
      CREATE TABLE ops.health_state (
        service text PRIMARY KEY,
        status text NOT NULL,
        reason text NOT NULL,
        since timestamptz NOT NULL,
        last_checked timestamptz NOT NULL
      );
      CREATE TABLE ops.health_changes (
        id bigserial PRIMARY KEY,
        service text NOT NULL,
        from_status text,
        to_status text NOT NULL,
        reason text NOT NULL,
        at timestamptz NOT NULL
      );
      CREATE INDEX health_changes_service_time ON ops.health_changes (service, at DESC);
      CREATE TABLE ops.jobs (
        id text PRIMARY KEY,
        kind text NOT NULL,
        state text NOT NULL,
        input jsonb NOT NULL DEFAULT '{}',
        progress jsonb,
        result jsonb,
        error jsonb,
        started_at timestamptz NOT NULL,
        finished_at timestamptz
      );
      CREATE TABLE ops.audit_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        target text,
        outcome text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_log_time ON ops.audit_log (at DESC);
    `,
  },
  {
    version: 2,
    name: 'restores',
    sql: `
      CREATE TABLE ops.restores (
        id text PRIMARY KEY,
        kind text NOT NULL,
        actor text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        outcome text NOT NULL,
        point text NOT NULL,
        target text NOT NULL,
        tables text[] NOT NULL DEFAULT '{}',
        safety_set_id text,
        proven_set_id text,
        duration_ms bigint,
        error text,
        report jsonb,
        plan jsonb
      );
      CREATE INDEX restores_time ON ops.restores (started_at DESC);
      CREATE INDEX restores_proven ON ops.restores (proven_set_id, finished_at DESC) WHERE outcome = 'succeeded';
    `,
  },
  {
    version: 3,
    name: 'metrics',
    sql: `
      CREATE TABLE ops.metric_samples (
        series text NOT NULL,
        host text NOT NULL,
        ts timestamptz NOT NULL,
        value double precision
      );
      CREATE INDEX metric_samples_series_time ON ops.metric_samples (series, host, ts);
      CREATE INDEX metric_samples_time ON ops.metric_samples (ts);
      CREATE TABLE ops.metric_rollups (
        tier text NOT NULL,
        series text NOT NULL,
        host text NOT NULL,
        bucket timestamptz NOT NULL,
        min double precision NOT NULL,
        max double precision NOT NULL,
        sum double precision NOT NULL,
        count integer NOT NULL,
        PRIMARY KEY (tier, series, host, bucket)
      );
      CREATE INDEX metric_rollups_time ON ops.metric_rollups (tier, bucket);
    `,
  },
  {
    version: 4,
    name: 'alerts',
    sql: `
      CREATE TABLE ops.alert_rules (
        name text PRIMARY KEY,
        spec jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL
      );
      CREATE TABLE ops.alert_state (
        rule text NOT NULL,
        fingerprint text NOT NULL,
        labels jsonb NOT NULL,
        phase text NOT NULL,
        active_at timestamptz,
        fired_at timestamptz,
        last_true_at timestamptz,
        resolved_at timestamptz,
        value double precision,
        text text,
        severity text NOT NULL,
        acked_by text,
        acked_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (rule, fingerprint)
      );
      CREATE TABLE ops.alert_transitions (
        id bigserial PRIMARY KEY,
        rule text NOT NULL,
        fingerprint text NOT NULL,
        labels jsonb NOT NULL,
        from_phase text NOT NULL,
        to_phase text NOT NULL,
        value double precision,
        text text,
        at timestamptz NOT NULL
      );
      CREATE INDEX alert_transitions_time ON ops.alert_transitions (at DESC);
      CREATE TABLE ops.alert_groups (
        channel text NOT NULL,
        group_key text NOT NULL,
        first_seen timestamptz NOT NULL,
        last_sent_at timestamptz,
        last_digest text,
        PRIMARY KEY (channel, group_key)
      );
      CREATE TABLE ops.alert_deliveries (
        id bigserial PRIMARY KEY,
        channel text NOT NULL,
        group_key text NOT NULL,
        status text NOT NULL,
        alerts jsonb NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        outcome text NOT NULL,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      );
      CREATE INDEX alert_deliveries_time ON ops.alert_deliveries (created_at DESC);
      CREATE TABLE ops.alert_silences (
        id text PRIMARY KEY,
        matchers jsonb NOT NULL,
        starts_at timestamptz NOT NULL DEFAULT now(),
        ends_at timestamptz NOT NULL,
        created_by text NOT NULL,
        reason text NOT NULL,
        expired_by text
      );
    `,
  },
  {
    // Numbered after its issue (14) so parallel work on other capabilities can take the numbers before it.
    version: 14,
    name: 'error tracking',
    sql: `
      CREATE TABLE ops.error_groups (
        id text PRIMARY KEY,
        project text NOT NULL,
        hash text NOT NULL UNIQUE,
        method text NOT NULL,
        explanation text NOT NULL,
        components jsonb NOT NULL DEFAULT '[]',
        title text NOT NULL,
        culprit text NOT NULL,
        type text NOT NULL,
        level text NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        count bigint NOT NULL DEFAULT 0,
        users int NOT NULL DEFAULT 0,
        state text NOT NULL DEFAULT 'unresolved',
        state_changed_at timestamptz,
        resolved_in_release text,
        ignore_until timestamptz,
        ignore_until_count bigint,
        regressed_at timestamptz,
        releases text[] NOT NULL DEFAULT '{}',
        environments text[] NOT NULL DEFAULT '{}',
        last_release text
      );
      CREATE INDEX error_groups_last_seen ON ops.error_groups (last_seen DESC);
      CREATE INDEX error_groups_state ON ops.error_groups (state, last_seen DESC);
      CREATE TABLE ops.error_group_users (
        group_id text NOT NULL,
        user_key text NOT NULL,
        PRIMARY KEY (group_id, user_key)
      );
      CREATE TABLE ops.error_counts (
        group_id text NOT NULL,
        hour timestamptz NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (group_id, hour)
      );
      CREATE INDEX error_counts_hour ON ops.error_counts (hour);
      -- Events by day of arrival: retention drops whole partitions (see core/errors/store.ts).
      CREATE TABLE ops.error_events (
        received_at timestamptz NOT NULL,
        seq bigserial,
        id text NOT NULL,
        group_id text NOT NULL,
        occurred_at timestamptz NOT NULL,
        level text NOT NULL,
        release text,
        environment text,
        user_key text,
        event jsonb NOT NULL
      ) PARTITION BY RANGE (received_at);
      CREATE INDEX error_events_group ON ops.error_events (group_id, occurred_at DESC, seq DESC);
      CREATE TABLE ops.error_ingest_stats (
        outcome text PRIMARY KEY,
        count bigint NOT NULL DEFAULT 0
      );
    `,
  },
  {
    // Issue 15. The timeline reads the other capabilities' tables by time: the indexes below (on tables
    // created by earlier migrations) make each of its per-source range scans an index scan.
    version: 15,
    name: 'incidents',
    sql: `
      CREATE TABLE ops.incidents (
        id text PRIMARY KEY,
        title text NOT NULL,
        severity text NOT NULL,
        status text NOT NULL,
        commander text,
        origin text NOT NULL,
        alert_rule text,
        declared_from jsonb,
        opened_at timestamptz NOT NULL,
        opened_by text NOT NULL,
        resolved_at timestamptz,
        last_activity_at timestamptz NOT NULL,
        pinned_series text[] NOT NULL DEFAULT '{}',
        review jsonb
      );
      CREATE INDEX incidents_opened ON ops.incidents (opened_at DESC);
      CREATE INDEX incidents_open ON ops.incidents (last_activity_at DESC) WHERE status <> 'resolved';
      CREATE TABLE ops.incident_status_changes (
        id bigserial PRIMARY KEY,
        incident_id text NOT NULL REFERENCES ops.incidents (id) ON DELETE CASCADE,
        at timestamptz NOT NULL,
        from_status text,
        to_status text NOT NULL,
        by text NOT NULL
      );
      CREATE INDEX incident_status_changes_incident ON ops.incident_status_changes (incident_id, at, id);
      CREATE TABLE ops.incident_commanders (
        id bigserial PRIMARY KEY,
        incident_id text NOT NULL REFERENCES ops.incidents (id) ON DELETE CASCADE,
        at timestamptz NOT NULL,
        from_commander text,
        commander text NOT NULL,
        by text NOT NULL
      );
      CREATE INDEX incident_commanders_incident ON ops.incident_commanders (incident_id, at, id);
      CREATE TABLE ops.incident_notes (
        id bigserial PRIMARY KEY,
        incident_id text NOT NULL REFERENCES ops.incidents (id) ON DELETE CASCADE,
        at timestamptz NOT NULL,
        by text NOT NULL,
        text text NOT NULL
      );
      CREATE INDEX incident_notes_incident ON ops.incident_notes (incident_id, at, id);
      -- One row per alert firing that opened or joined an incident: (alert, fired_at) is unique, so the same
      -- firing never opens a second incident (a retried evaluation, a takeover replaying a transition).
      CREATE TABLE ops.incident_alerts (
        incident_id text NOT NULL REFERENCES ops.incidents (id) ON DELETE CASCADE,
        alert_id text NOT NULL,
        rule text NOT NULL,
        severity text NOT NULL,
        fired_at timestamptz NOT NULL,
        joined_at timestamptz NOT NULL,
        PRIMARY KEY (alert_id, fired_at)
      );
      CREATE INDEX incident_alerts_incident ON ops.incident_alerts (incident_id, joined_at);
      -- The timeline's range scans over the other capabilities' records.
      CREATE INDEX IF NOT EXISTS health_changes_time ON ops.health_changes (at);
      CREATE INDEX IF NOT EXISTS jobs_backup_finished ON ops.jobs (finished_at) WHERE kind LIKE 'backup.%';
      CREATE INDEX IF NOT EXISTS restores_finished ON ops.restores (finished_at);
      CREATE INDEX IF NOT EXISTS error_groups_first_seen ON ops.error_groups (first_seen);
      CREATE INDEX IF NOT EXISTS error_groups_regressed ON ops.error_groups (regressed_at) WHERE regressed_at IS NOT NULL;
    `,
  },
]

/** Apply pending migrations under an advisory lock so two consoles starting together do not race. */
export async function migrate(pool: Pool): Promise<number[]> {
  const client = await pool.connect()
  const applied: number[] = []
  try {
    await client.query('BEGIN')
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('examforge-ops:migrate'))`)
    await client.query('CREATE SCHEMA IF NOT EXISTS ops')
    await client.query(
      `CREATE TABLE IF NOT EXISTS ops.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const { rows } = await client.query<{ version: number }>('SELECT version FROM ops.schema_migrations')
    const done = new Set(rows.map((r) => r.version))
    for (const m of migrations) {
      if (done.has(m.version)) continue
      await client.query(m.sql)
      await client.query('INSERT INTO ops.schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
      applied.push(m.version)
    }
    await client.query('COMMIT')
    return applied
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    client.release()
  }
}
