-- The triple store, its provenance, embeddings, and the change feed that carries every commit to the compute tier
-- (docs/compute.md, "Change feed"). Applied once, in one transaction with the version row that records it.

create table sources (
    id bigint generated always as identity primary key,
    session text,
    actor text,
    created_at timestamptz not null default now(),
    metadata jsonb not null default '{}'::jsonb
);

create table triples (
    id bigint generated always as identity primary key,
    subject text not null check (subject <> '' and octet_length(subject) <= 1024),
    predicate text not null check (predicate <> '' and octet_length(predicate) <= 256),
    -- Indexed in OSP: a btree entry holds at most about 2,700 bytes.
    object text not null check (octet_length(object) <= 2000),
    object_kind text not null check (object_kind in ('entity', 'literal')),
    confidence real not null default 1 check (confidence >= 0 and confidence <= 1),
    source_id bigint references sources (id),
    valid_from timestamptz not null default now(),
    valid_to timestamptz,
    superseded_by bigint references triples (id),
    check (object_kind = 'literal' or object <> ''),
    check (valid_to is null or valid_to >= valid_from),
    check (superseded_by is null or valid_to is not null)
);

-- Covering indexes for every bound-prefix pattern: SPO, POS, OSP.
create index triples_spo on triples (subject, predicate, object) include (id, object_kind, confidence, valid_to);
create index triples_pos on triples (predicate, object, subject) include (id, object_kind, confidence, valid_to);
create index triples_osp on triples (object, subject, predicate) include (id, object_kind, confidence, valid_to);

create table embeddings (
    entity text not null check (entity <> '' and octet_length(entity) <= 1024),
    model text not null check (model ~ '^[A-Za-z0-9._:/-]{1,128}$'),
    dims integer not null check (dims between 1 and 4096),
    vector real[] not null,
    updated_at timestamptz not null default now(),
    primary key (entity, model),
    check (array_ndims(vector) = 1 and array_length(vector, 1) = dims)
);

-- The feed. Every transaction that changes triples or embeddings gets one commit row, numbered by a counter that
-- is taken at pre-commit and held until the commit ends: the numbers are dense (a rolled-back transaction takes
-- none) and follow commit order exactly, so a reader that has seen seq N has seen every commit before it.
create table feed_head (
    singleton boolean primary key default true check (singleton),
    seq bigint not null
);
insert into feed_head (singleton, seq) values (true, 0);

create table feed_commits (
    seq bigint primary key,
    txid xid8 not null unique,
    -- Random per commit: after a failover that lost commits a new history reuses seq numbers (and xids), never
    -- this id, so a reader checks that the commit it last applied is still there.
    commit_id uuid not null,
    committed_at timestamptz not null
);

-- The row images of a transaction's changes, in the order it made them.
create table feed_changes (
    txid xid8 not null,
    n bigint generated always as identity,
    relation text not null,
    op text not null check (op in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    image jsonb,
    primary key (txid, n)
);

-- Numbers this transaction's commit, once, however many rows it changed.
create function feed_register() returns bigint language plpgsql as $$
declare
    tx xid8 := pg_current_xact_id();
    numbered bigint;
begin
    if current_setting('memorycluster.feed_txid', true) = tx::text then
        return null;
    end if;
    perform set_config('memorycluster.feed_txid', tx::text, true);
    update feed_head set seq = seq + 1 returning seq into numbered;
    insert into feed_commits (seq, txid, commit_id, committed_at) values (numbered, tx, gen_random_uuid(), clock_timestamp());
    perform pg_notify('memorycluster_feed', numbered::text);
    return numbered;
end $$;

create function feed_capture() returns trigger language plpgsql as $$
begin
    insert into feed_changes (txid, relation, op, image)
    values (pg_current_xact_id(), tg_table_name, tg_op,
            case tg_op when 'DELETE' then to_jsonb(old) when 'TRUNCATE' then null else to_jsonb(new) end);
    if tg_op = 'TRUNCATE' then
        -- A constraint trigger cannot fire on TRUNCATE: the commit is numbered now (the counter is held from here).
        perform feed_register();
    end if;
    return null;
end $$;

create function feed_commit() returns trigger language plpgsql as $$
begin
    perform feed_register();
    return null;
end $$;

create trigger triples_feed_capture after insert or update or delete on triples for each row execute function feed_capture();
create trigger triples_feed_truncate after truncate on triples for each statement execute function feed_capture();
create constraint trigger triples_feed_commit after insert or update or delete on triples
    deferrable initially deferred for each row execute function feed_commit();

create trigger embeddings_feed_capture after insert or update or delete on embeddings for each row execute function feed_capture();
create trigger embeddings_feed_truncate after truncate on embeddings for each statement execute function feed_capture();
create constraint trigger embeddings_feed_commit after insert or update or delete on embeddings
    deferrable initially deferred for each row execute function feed_commit();
